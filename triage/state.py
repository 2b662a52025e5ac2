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
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from triage.errors import StateBusy, StateError
from triage.models import Group, State, Storm, SyncState, Watchdog

log = logging.getLogger(__name__)

VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: the flat per-sync fields of the release before incidents

# libyaml's C loader and dumper are several times faster on big state files.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


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
        for entry in self._read_journal():
            entry.apply(state)
        return state

    def has_journal(self) -> bool:
        return self.journal_path.exists()

    def record(self, sync_id: str, sync_state: SyncState) -> None:
        """Make one sync's new state durable now (append to the journal, fsync)."""
        self._append({"sync_id": sync_id, "state": plain(sync_state)})

    def record_storm(self, channel: str, storm: Storm | None) -> None:
        """Make a storm's new state (None: it is over) durable now."""
        self._append({"storm": channel, "value": None if storm is None else plain(storm)})

    def record_group(self, signature: str, group: Group | None) -> None:
        """Make a cause group's new state (None: it is over) durable now."""
        self._append({"group": signature, "value": None if group is None else plain(group)})

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False)
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
        fsync_dir(self.path.parent)
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

    def _read_journal(self) -> list[JournalEntry]:
        try:
            lines = self.journal_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries: list[JournalEntry] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entries.append(_journal_entry(json.loads(line), f"{self.journal_path}:{number}"))
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


class JournalEntry:
    """One line of the journal: a sync's, a storm's or a group's new state."""

    def __init__(self, table: str, key: str, value: Any) -> None:
        self.table, self.key, self.value = table, key, value

    def apply(self, state: State) -> None:
        records: dict[str, Any] = getattr(state, self.table)
        if self.value is None:
            records.pop(self.key, None)
        else:
            records[self.key] = self.value


def _journal_entry(item: dict[str, Any], where: str) -> JournalEntry:
    if "sync_id" in item:
        return JournalEntry("syncs", str(item["sync_id"]), _sync_state(item["state"], where))
    if "storm" in item:
        value = item["value"]
        return JournalEntry("storms", str(item["storm"]), None if value is None else decode(Storm, value, where))
    if "group" in item:
        value = item["value"]
        return JournalEntry("groups", str(item["group"]), None if value is None else decode(Group, value, where))
    raise KeyError("sync_id")


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
            *([f"digest_at: {_scalar(state.digest_at)}"] if state.digest_at else []),
            *([f"watchdog: {json.dumps(plain(state.watchdog), ensure_ascii=False)}"] if state.watchdog else []),
            "syncs:" if state.syncs else "syncs: {}",
        ]
        lines += [
            f"  {json.dumps(sync_id)}: {json.dumps(plain(state.syncs[sync_id]), ensure_ascii=False)}"
            for sync_id in sorted(state.syncs)
        ]
        if state.deferred:
            lines.append(f"deferred: {json.dumps(list(state.deferred), ensure_ascii=False)}")
        for table in ("storms", "groups"):
            records = getattr(state, table)
            if records:
                lines.append(f"{table}:")
                lines += [
                    f"  {json.dumps(key, ensure_ascii=False)}: {json.dumps(plain(records[key]), ensure_ascii=False)}"
                    for key in sorted(records)
                ]
        return "\n".join(lines) + "\n"


def _scalar(value: str | None) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


# Written even when empty, so every sync's line says where its runs were read to.
_ALWAYS = frozenset({"name", "cursor_run_id", "last_run_at", "consecutive_failures"})


def plain(record: Any) -> Any:
    """A state record as state.yaml and the journal hold it: a mapping with sorted keys, fields
    at their default left out (so the committed diff stays small), nested records alike."""
    if is_dataclass(record) and not isinstance(record, type):
        data: dict[str, Any] = {}
        for f in fields(record):
            value = getattr(record, f.name)
            if f.name not in _ALWAYS and value == _default(f):
                continue
            data[f.name] = plain(value)
        return dict(sorted(data.items()))
    if isinstance(record, (tuple, list)):
        return [plain(item) for item in record]
    return record


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def decode(cls: type[Any], raw: Any, where: str) -> Any:
    """A state record read back from `plain`'s form, every field checked against its type;
    an error names where in the file it is."""
    if not isinstance(raw, dict):
        raise StateError(f"{where}: expected a mapping")
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise StateError(f"{where}: unknown keys {sorted(unknown)}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in raw:
            values[name] = _decode_value(hints[name], raw[name], f"{where}.{name}")
        elif _default(f) is MISSING:
            raise StateError(f"{where}: {name} is missing")
    return cls(**values)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _decode_value(kind: Any, raw: Any, where: str) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        if raw is None:
            return None
        (inner,) = [a for a in get_args(kind) if a is not type(None)]
        return _decode_value(inner, raw, where)
    if origin is tuple:
        if not isinstance(raw, list):
            raise StateError(f"{where}: expected a list")
        inner = get_args(kind)[0]
        return tuple(_decode_value(inner, item, f"{where}[{i}]") for i, item in enumerate(raw))
    if is_dataclass(kind):
        return decode(kind, raw, where)  # type: ignore[arg-type]
    if kind is bool:
        return bool(raw)
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise StateError(f"{where}: must be a whole number")
        return raw
    if kind is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise StateError(f"{where}: must be a number")
        return float(raw)
    if raw is None:
        raise StateError(f"{where}: must not be empty")
    return _optional_str(raw)


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
    if version not in READABLE_VERSIONS:
        raise StateError(
            f"{where}: unknown state version {version!r} (this tool reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}); left untouched"
        )
    syncs_raw = raw.get("syncs") or {}
    if not isinstance(syncs_raw, dict):
        raise StateError(f"{where}: 'syncs' must be a mapping (it was left untouched)")
    deferred = raw.get("deferred") or []
    if not isinstance(deferred, list):
        raise StateError(f"{where}: 'deferred' must be a list (it was left untouched)")
    storms = raw.get("storms") or {}
    groups = raw.get("groups") or {}
    for name, table in (("storms", storms), ("groups", groups)):
        if not isinstance(table, dict):
            raise StateError(f"{where}: '{name}' must be a mapping (it was left untouched)")
    last_tick_at = _optional_str(raw.get("last_tick_at"))
    if version == 1:
        storms = {c: _storm_from_v1(c, t, last_tick_at, f"{where}: storms.{c}") for c, t in storms.items()}
    return State(
        version=VERSION,
        baseline_at=_optional_str(raw.get("baseline_at")),
        last_tick_at=last_tick_at,
        full_listing_at=_optional_str(raw.get("full_listing_at")),
        syncs={str(k): _sync_state(v, f"{where}: syncs.{k}") for k, v in syncs_raw.items()},
        deferred=[str(d) for d in deferred],
        storms={str(c): decode(Storm, t, f"{where}: storms.{c}") for c, t in storms.items()},
        groups={str(k): decode(Group, g, f"{where}: groups.{k}") for k, g in groups.items()},
        watchdog=decode(Watchdog, raw["watchdog"], f"{where}: watchdog") if raw.get("watchdog") else None,
        digest_at=_optional_str(raw.get("digest_at")),
    )


def _sync_state(raw: Any, where: str) -> SyncState:
    if isinstance(raw, dict) and _V1_INCIDENT_KEYS & set(raw):
        raw = sync_from_v1(raw)
    sync_state: SyncState = decode(SyncState, raw, where)
    return sync_state


# The fields the release before incidents kept flat on each sync; a journal it left behind
# can hold them too, so they are recognised by key, whatever the file's version says.
_V1_INCIDENT_KEYS = frozenset(
    {"incident_at", "threads", "linear_issue", "linear_url", "linear_team", "linear_pending", "linear_create_id"}
)


def sync_from_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """A sync as version 1 wrote it, in version 2's form: its open incident (first failed run's
    time, threads, Linear issue) gathered into `incident`. An incident with an issue, or one
    whose escalation was pending, was announced as escalated: it is not announced again."""
    data = {k: v for k, v in raw.items() if k not in _V1_INCIDENT_KEYS}
    failing = int(raw.get("consecutive_failures") or 0) > 0
    if not (failing or raw.get("threads")):
        return data  # healthy: a remembered issue was closed or is found again by its search
    issue = None
    if raw.get("linear_issue"):
        issue = {"identifier": raw["linear_issue"], "url": raw.get("linear_url"), "team": raw.get("linear_team")}
    incident = {
        "started_at": raw.get("incident_at"),
        "threads": raw.get("threads") or [],
        "issue": issue,
        "issue_pending": bool(raw.get("linear_pending")),
        "issue_create_id": raw.get("linear_create_id"),
        "escalated": issue is not None or bool(raw.get("linear_pending")),
    }
    data["incident"] = {k: v for k, v in incident.items() if v not in (None, [], False)}
    return data


def _storm_from_v1(channel: Any, raw: Any, opened_at: str | None, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not {"channel_id", "ts"} <= set(raw):
        raise StateError(f"{where}: expected {{channel_id, ts}} (it was left untouched)")
    thread = {"channel": str(channel), "channel_id": str(raw["channel_id"]), "ts": str(raw["ts"])}
    return {"channel": str(channel), "opened_at": opened_at or "", "thread": thread}


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        # YAML reads an unquoted timestamp as a datetime; keep the text form.
        return str(value.isoformat()).replace("+00:00", "Z")
    return str(value)


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a file renamed into it) survive a crash."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
