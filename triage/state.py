"""The state file (state/state.yaml) and its append-only journal.

Guarantees:
- a sync's progress is durable as soon as `StateStore.record` returns: one
  JSON line, flushed and fsync'd, in `state/state.journal`;
- state.yaml is replaced atomically (temp file, fsync, rename) once per tick,
  then the journal is emptied; a crash at any point loses nothing recorded;
- a state file that cannot be parsed, or has an unknown version, stops the
  tick with an error naming the file; it is never silently replaced.
"""

from __future__ import annotations

import fcntl
import gc
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from triage.errors import StateBusy, StateError
from triage.models import Sent, State, SyncState, Thread

log = logging.getLogger(__name__)

VERSION = 1

# libyaml's C loader and dumper are several times faster on big state files.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_SYNC_FIELDS = {f.name for f in fields(SyncState)}


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal_path = path.with_suffix(".journal")
        self._tail_checked = False

    @contextmanager
    def exclusive(self, *, wait: float = 10.0, sleep: Callable[[float], None] = time.sleep) -> Iterator[None]:
        """Hold the state directory for one tick. Two ticks on one state (a manual run
        beside the schedule) would both send every alert; the second waits up to `wait`
        seconds, then raises StateBusy. The lock is the directory's own (flock), so
        nothing is left behind for the commit-back step to pick up, and it dies with
        the process."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY)
        try:
            waited = 0.0
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if waited >= wait:
                        raise StateBusy(
                            f"another tick is running on {directory}/ (it holds the lock); this one stops "
                            "without doing anything, and the next tick carries on"
                        ) from None
                    sleep(0.5)
                    waited += 0.5
            yield
        finally:
            os.close(fd)  # releases the lock

    def load(self) -> State:
        """The state as the last tick left it, journal replayed on top."""
        state = self._load_file()
        for sync_id, sync_state in self._read_journal():
            state.syncs[sync_id] = sync_state
        return state

    def has_journal(self) -> bool:
        return self.journal_path.exists()

    def record(self, sync_id: str, sync_state: SyncState) -> None:
        """Make one sync's new state durable now (append to the journal, fsync)."""
        line = json.dumps({"sync_id": sync_id, "state": plain(sync_state)}, sort_keys=True)
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        if not self._tail_checked:
            # Once per tick is enough: every line this process appends is whole.
            _cut_torn_tail(self.journal_path)
            self._tail_checked = True
        with open(self.journal_path, "ab") as journal:
            journal.write(line.encode("utf-8") + b"\n")
            journal.flush()
            os.fsync(journal.fileno())

    def save(self, state: State) -> None:
        """Fold everything into state.yaml atomically, then empty the journal."""
        text = dump_state(state)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)
        self.journal_path.unlink(missing_ok=True)

    def _load_file(self) -> State:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return State()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read state file: {exc.strerror}") from None
        try:
            with _gc_paused():
                raw = load_text(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{self.path}:{mark.line + 1}" if mark else str(self.path)
            raise StateError(
                f"{where}: state file is not valid YAML; fix or remove it (it was left untouched)"
            ) from None
        with _gc_paused():
            return parse_state(raw, str(self.path))

    def _read_journal(self) -> list[tuple[str, SyncState]]:
        try:
            lines = self.journal_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries: list[tuple[str, SyncState]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                entries.append((str(item["sync_id"]), _sync_state(item["state"], f"{self.journal_path}:{number}")))
            except (ValueError, KeyError, TypeError, StateError):
                if number == len(lines):
                    # The process died while writing this line: that sync was not recorded.
                    log.warning("%s:%d: ignoring an incomplete last line", self.journal_path, number)
                    continue
                raise StateError(
                    f"{self.journal_path}:{number}: journal line is corrupt (it was left untouched)"
                ) from None
        return entries


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line left without its newline by a crash, so the next record starts a
    line of its own instead of merging into the torn one (which would lose both)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    if not data or data.endswith(b"\n"):
        return
    log.warning("%s: cutting off an incomplete last line left by a crash", path)
    with open(path, "r+b") as journal:
        journal.truncate(data.rfind(b"\n") + 1)
        journal.flush()
        os.fsync(journal.fileno())


HEADER = "# Written by hightouch-triage after every tick that changed something: one line per sync."


def dump_state(state: State) -> str:
    """state.yaml's text: YAML whose syncs are one flow mapping per line, sorted by id.

    One line per sync keeps a pull request's diff to the syncs that changed, and a flow
    mapping written as JSON is still YAML — but reads and writes with the json module's
    C code, so a 50,000-sync state costs a fraction of a block-style YAML file.
    """
    with _gc_paused():
        lines = [
            HEADER,
            f"version: {VERSION}",
            f"baseline_at: {_scalar(state.baseline_at)}",
            f"last_tick_at: {_scalar(state.last_tick_at)}",
            *([f"full_listing_at: {_scalar(state.full_listing_at)}"] if state.full_listing_at else []),
            "syncs:" if state.syncs else "syncs: {}",
        ]
        lines += [
            f"  {json.dumps(sync_id)}: {json.dumps(plain(state.syncs[sync_id]), ensure_ascii=False)}"
            for sync_id in sorted(state.syncs)
        ]
        if state.deferred:
            lines.append(f"deferred: {json.dumps(list(state.deferred), ensure_ascii=False)}")
        if state.storms:
            storms = {channel: {"channel_id": t.channel_id, "ts": t.ts} for channel, t in sorted(state.storms.items())}
            lines.append(f"storms: {json.dumps(storms, ensure_ascii=False)}")
        return "\n".join(lines) + "\n"


def _scalar(value: str | None) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


# Optional fields of a sync, written only when set, so the committed diff stays small.
_OPTIONAL = (
    "cursor_at",
    "linear_issue",
    "linear_url",
    "linear_team",
    "linear_create_id",
    "pending_run_id",
    "incident_at",
    "since",
)


def plain(sync_state: SyncState) -> dict[str, Any]:
    """One sync as state.yaml and the journal hold it, keys sorted, empty optional fields left out."""
    data: dict[str, Any] = {
        "name": sync_state.name,
        "cursor_run_id": sync_state.cursor_run_id,
        "last_run_at": sync_state.last_run_at,
        "consecutive_failures": sync_state.consecutive_failures,
    }
    for key in _OPTIONAL:
        value = getattr(sync_state, key)
        if value is not None:
            data[key] = value
    if sync_state.linear_pending:
        data["linear_pending"] = True
    if sync_state.threads:
        data["threads"] = [_set_fields(thread) for thread in sync_state.threads]
    if sync_state.sent:
        data["sent"] = [_set_fields(sent) for sent in sync_state.sent]
    return dict(sorted(data.items()))


def _set_fields(item: Thread | Sent) -> dict[str, Any]:
    return {f.name: getattr(item, f.name) for f in fields(item) if getattr(item, f.name) is not None}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building or dumping tens of thousands of small objects makes Python's collector run
    again and again over all of them; none of them is garbage until the work is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_SYNC_LINE = re.compile(r'  ("(?:[^"\\]|\\.)*"): (\{.*\})')


def load_text(text: str) -> Any:
    """The YAML document of state.yaml. The syncs lines this tool writes (JSON flow
    mappings) are read with json; anything else — a file edited by hand into block style,
    say — goes through the YAML parser whole. Both read the same data."""
    lines = text.split("\n")
    try:
        first = lines.index("syncs:") + 1
    except ValueError:
        return yaml.load(text, Loader=_Loader)
    syncs: dict[str, Any] = {}
    end = first
    while end < len(lines) and lines[end].startswith("  "):
        match = _SYNC_LINE.fullmatch(lines[end])
        if match is None:
            return yaml.load(text, Loader=_Loader)
        try:
            syncs[json.loads(match[1])] = json.loads(match[2])
        except ValueError:
            return yaml.load(text, Loader=_Loader)
        end += 1
    try:
        rest = yaml.load("\n".join(lines[: first - 1] + lines[end:]), Loader=_Loader)
    except yaml.YAMLError:
        return yaml.load(text, Loader=_Loader)  # raised again, with the file's own line numbers
    if not isinstance(rest, dict):
        return yaml.load(text, Loader=_Loader)
    return {**rest, "syncs": syncs}


def parse_state(raw: Any, where: str) -> State:
    if raw is None:
        # Only an absent file means "first tick": an emptied file (a bad merge, a truncated
        # write by hand) would otherwise start a new baseline and swallow pending alerts.
        raise StateError(
            f"{where}: state file is empty; restore it from history, or delete it to start a new baseline "
            "(it was left untouched)"
        )
    if not isinstance(raw, dict):
        raise StateError(f"{where}: state file must be a mapping (it was left untouched)")
    version = raw.get("version")
    if version != VERSION:
        raise StateError(
            f"{where}: unknown state version {version!r} (this tool reads version {VERSION}); left untouched"
        )
    syncs_raw = raw.get("syncs") or {}
    if not isinstance(syncs_raw, dict):
        raise StateError(f"{where}: 'syncs' must be a mapping (it was left untouched)")
    deferred = raw.get("deferred") or []
    if not isinstance(deferred, list):
        raise StateError(f"{where}: 'deferred' must be a list (it was left untouched)")
    storms = raw.get("storms") or {}
    if not isinstance(storms, dict) or not all(
        isinstance(t, dict) and {"channel_id", "ts"} <= set(t) for t in storms.values()
    ):
        raise StateError(f"{where}: 'storms' must map a channel to {{channel_id, ts}} (it was left untouched)")
    return State(
        version=VERSION,
        baseline_at=_optional_str(raw.get("baseline_at")),
        last_tick_at=_optional_str(raw.get("last_tick_at")),
        full_listing_at=_optional_str(raw.get("full_listing_at")),
        syncs={str(k): _sync_state(v, f"{where}: syncs.{k}") for k, v in syncs_raw.items()},
        deferred=[str(d) for d in deferred],
        storms={str(c): Thread(str(c), str(t["channel_id"]), str(t["ts"])) for c, t in storms.items()},
    )


def _sync_state(raw: Any, where: str) -> SyncState:
    if not isinstance(raw, dict):
        raise StateError(f"{where}: expected a mapping")
    unknown = set(raw) - _SYNC_FIELDS
    if unknown:
        raise StateError(f"{where}: unknown keys {sorted(unknown)}")
    count = raw.get("consecutive_failures", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise StateError(f"{where}: consecutive_failures must be a whole number")
    return SyncState(
        name=str(raw.get("name") or ""),
        cursor_run_id=_optional_str(raw.get("cursor_run_id")),
        cursor_at=_optional_str(raw.get("cursor_at")),
        last_run_at=_optional_str(raw.get("last_run_at")),
        consecutive_failures=count,
        linear_issue=_optional_str(raw.get("linear_issue")),
        linear_url=_optional_str(raw.get("linear_url")),
        linear_team=_optional_str(raw.get("linear_team")),
        linear_pending=bool(raw.get("linear_pending", False)),
        linear_create_id=_optional_str(raw.get("linear_create_id")),
        pending_run_id=_optional_str(raw.get("pending_run_id")),
        incident_at=_optional_str(raw.get("incident_at")),
        threads=_threads(raw.get("threads"), where),
        since=_optional_str(raw.get("since")),
        sent=_sent(raw.get("sent"), where),
    )


def _threads(raw: Any, where: str) -> tuple[Thread, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(t, dict) and {"channel", "channel_id", "ts"} <= set(t) for t in raw
    ):
        raise StateError(f"{where}: threads must be a list of {{channel, channel_id, ts}}")
    return tuple(
        Thread(str(t["channel"]), str(t["channel_id"]), str(t["ts"]), _optional_str(t.get("message_ts"))) for t in raw
    )


_SENT_FIELDS = {f.name for f in fields(Sent)}


def _sent(raw: Any, where: str) -> tuple[Sent, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(s, dict) and {"channel", "kind", "run_id", "at"} <= set(s) <= _SENT_FIELDS for s in raw
    ):
        raise StateError(f"{where}: sent must be a list of {{channel, kind, run_id, at, …}}")
    return tuple(
        Sent(
            channel=str(s["channel"]),
            kind=str(s["kind"]),
            run_id=str(s["run_id"]),
            at=str(_optional_str(s["at"])),
            thread_ts=_optional_str(s.get("thread_ts")),
            channel_id=_optional_str(s.get("channel_id")),
            ts=_optional_str(s.get("ts")),
        )
        for s in raw
    )


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        # YAML reads an unquoted timestamp as a datetime; keep the text form.
        return str(value.isoformat()).replace("+00:00", "Z")
    return str(value)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
