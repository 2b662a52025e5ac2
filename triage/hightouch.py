"""Hightouch REST client: syncs, runs, destinations, models, trigger.

Parses responses into `triage.models` types at this edge. Tolerant of what
the API is loose about (ids as numbers or strings, null row counts, missing
fields); strict about what would make a decision wrong (a run without id or
status is dropped rather than guessed at).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from dateutil import parser as dateparser

from triage.errors import ApiError, AuthError, BadRequestError, NotFoundError
from triage.http import HttpClient, json_verdict, parsed_json
from triage.models import RowCounts, Run, Sync
from triage.signals import run_metrics

log = logging.getLogger(__name__)

# Names of destinations or models: read from their list when this many or more are wanted.
LIST_NAMES_FROM = 4
PAGE_SIZE = 100  # no maximum is documented; 100 is the documented default of List Syncs
# A runs read covers the runs started since this long before the moment it looks back to
# (far more than any margin the clocks need): one page for syncs that run every few minutes
# to hourly, in either order. While the previous runs an alert shows are not yet found (a
# sync that runs daily), earlier slices follow, each 4x longer, reaching 256 days back.
RUNS_LOOKBACK = timedelta(hours=6)
HISTORY_SLICES = 5
SLICE_OVERLAP = timedelta(seconds=1)
# 100,000 syncs or runs of one sync: far past any real workspace, and it bounds a server that never stops.
MAX_PAGES = 1000


@dataclass(frozen=True)
class Named:
    """A destination or model as the tool shows it and routes on it."""

    name: str
    type: str | None = None


class HightouchClient:
    def __init__(self, http: HttpClient, base_url: str, api_key: str, *, concurrency: int = 1) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.concurrency = max(1, concurrency)
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._names: dict[tuple[str, str], Named] = {}
        self._names_lock = threading.Lock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}

    # -- syncs -------------------------------------------------------------

    def list_syncs(self, expected: int = 0, after: str | None = None) -> list[Sync]:
        """Every sync of the workspace (or, with `after`, every sync that ran after that ISO
        time), all pages, each sync once.

        `expected` (how many syncs the last tick saw) lets the pages be read
        in parallel; if the workspace grew, the rest is read page by page.
        Ordered by id, so syncs created meanwhile land on the last page; a
        sync that a shifting listing shows twice is kept once.
        """
        guess = max(1, -(-expected // PAGE_SIZE)) if after is None else 1
        with ThreadPoolExecutor(max_workers=min(self.concurrency, guess)) as pool:
            bodies = list(
                pool.map(lambda offset: self._syncs_page(offset, after), [i * PAGE_SIZE for i in range(guess)])
            )
        syncs: dict[str, Sync] = {}
        pages = _Pages("GET /syncs")
        offset = 0
        for body in bodies:
            page = self._take_syncs(body, syncs)
            if not pages.more(body, [_id(item.get("id")) for item in page]):
                return list(syncs.values())
            offset += len(page)
            if len(page) < PAGE_SIZE:
                break  # the server pages smaller than asked: the parallel offsets are off
        while True:
            body = self._syncs_page(offset, after)
            page = self._take_syncs(body, syncs)
            if not pages.more(body, [_id(item.get("id")) for item in page]):
                return list(syncs.values())
            offset += len(page)

    def probe(self) -> None:
        """One List Syncs call of one sync: raises AuthError when the key is refused."""
        self._get("/syncs", params={"limit": 1})

    def _syncs_page(self, offset: int, after: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": offset, "orderBy": "id"}
        if after is not None:
            params["after"] = after
        return self._get("/syncs", params=params)

    @staticmethod
    def _take_syncs(body: dict[str, Any], syncs: dict[str, Sync]) -> list[dict[str, Any]]:
        page = _data(body, "/syncs")
        for sync in (parse_sync(item) for item in page):
            if sync is not None:
                syncs.setdefault(sync.id, sync)
        return page

    def get_sync(self, sync_id: str) -> Sync | None:
        """One sync by id; None when Hightouch says it does not exist (HTTP 404)."""
        try:
            body = self._get(f"/syncs/{sync_id}")
        except NotFoundError:
            return None
        data = body.get("data")
        return parse_sync(data if isinstance(data, dict) else body)

    # -- runs ----------------------------------------------------------------

    def list_runs(
        self,
        sync_id: str,
        enough: Callable[[list[Run]], bool],
        *,
        after: datetime | None = None,
        created: datetime | None = None,
    ) -> list[Run]:
        """Runs of one sync, enough to decide by `enough(runs)`.

        Hightouch documents no order for runs (its own example lists them oldest first),
        so a read is bounded by time, never by the order. With `after` — the moment
        `enough` looks back to: the cursor run's time, the previous tick's, or now at a
        baseline — the runs started since RUNS_LOOKBACK before it are read (every page),
        then, while `enough` does not hold, earlier slices of time, each four times as
        long, HISTORY_SLICES at most. Without `after`, every page is read. Either way,
        paging stops early once `enough` holds on pages seen to come newest first. `created`
        (the sync's creation) ends the look back: a young sync has no earlier runs to find.
        """
        path = f"/syncs/{sync_id}/runs"
        if after is None:
            return self._read_runs(path, {}, [], enough)
        start = after - RUNS_LOOKBACK
        runs = self._read_runs(path, {"after": api_time(start)}, [], enough)
        if created is not None and start <= created:
            return runs
        lookback = RUNS_LOOKBACK
        for _ in range(HISTORY_SLICES):
            if enough(runs):
                break
            end, lookback = start, lookback * 4
            start = after - lookback
            # Slices overlap a little: whether `after` and `before` include their bound is undocumented.
            window = {"after": api_time(start), "before": api_time(end + SLICE_OVERLAP)}
            runs = self._read_runs(path, window, runs, enough)
            if created is not None and start <= created:
                break  # the slice reaches back past the sync's creation: there is nothing earlier
        return runs

    def _read_runs(
        self, path: str, window: dict[str, str], runs: list[Run], enough: Callable[[list[Run]], bool]
    ) -> list[Run]:
        """`runs` and every run of the time `window` (all of them when it is empty), page by
        page; pages seen to come newest first stop as soon as `enough` holds."""
        runs = list(runs)
        read: list[Run] = []
        offset = 0
        pages = _Pages(f"GET {path}")
        while True:
            body = self._get(path, params={"limit": PAGE_SIZE, "offset": offset, **window})
            page = [r for r in (parse_run(item) for item in _data(body, path)) if r is not None]
            read.extend(page)
            runs.extend(page)
            if not pages.more(body, [r.id for r in page]):
                return runs
            if _newest_first(read) and enough(runs):
                return runs
            offset += len(page)

    def get_run(self, sync_id: str, run_id: str) -> tuple[Run | None, dict[str, Any]]:
        """One run by id, with the raw response body."""
        path = f"/syncs/{sync_id}/runs"
        body = self._get(path, params={"runId": run_id})
        runs = [r for r in (parse_run(item) for item in _data(body, path)) if r is not None]
        match = next((r for r in runs if r.id == str(run_id)), None)
        return match, body

    def latest_run_id(self, sync_id: str) -> str | None:
        """The id of the sync's newest run (by id, then time), if it has run at all.

        One page holds every run of a young sync. A longer history is read around the
        sync's `lastRunAt`, so it costs a few requests in whatever order the API lists runs."""
        path = f"/syncs/{sync_id}/runs"
        body = self._get(path, params={"limit": PAGE_SIZE, "offset": 0})
        runs = [r for r in (parse_run(item) for item in _data(body, path)) if r is not None]
        if body.get("hasMore") and runs:
            sync = self.get_sync(sync_id)
            if sync is None:
                raise NotFoundError(f"Hightouch GET /syncs/{sync_id}: not found (HTTP 404)")
            runs += self.list_runs(sync_id, enough=bool, after=_time(sync.last_run_at))
        return max(runs, key=lambda r: r.sort_key).id if runs else None

    def trigger(self, sync_id: str, *, full_resync: bool = False) -> str:
        """Start a run; returns its id. Not idempotent: retried only when nothing was started."""
        path = f"/syncs/{sync_id}/trigger"
        body = self._call("POST", path, json={"fullResync": full_resync})
        run_id = _id(body.get("id"))
        if run_id is None:
            raise ApiError(f"Hightouch POST {path}: the answer carries no run id")
        return run_id

    # -- names ---------------------------------------------------------------

    def destination_name(self, destination_id: str | None) -> str:
        return self._named("destinations", destination_id).name

    def destination_type(self, destination_id: str | None) -> str | None:
        """The destination's type (salesforce, hubspot, …), from the same cached lookup as its name."""
        return self._named("destinations", destination_id).type

    def model_name(self, model_id: str | None) -> str:
        return self._named("models", model_id).name

    def read_names(self, kind: str, ids: Iterable[str | None]) -> None:
        """Learn the names of many destinations (or models) at once, from their list: when
        LIST_NAMES_FROM or more ids are not known yet, pages of the list are read while each
        page so far named at least one of them, so it costs at most one request more than
        asking for each, and usually a page or two. Whatever is still unknown is asked for
        by id when wanted; a list that cannot be read leaves them all to that."""
        with self._names_lock:
            wanted = {i for i in ids if i and (kind, i) not in self._names}
        if len(wanted) < LIST_NAMES_FROM:
            return
        path = f"/{kind}"
        offset = 0
        try:
            for _ in range(MAX_PAGES):
                body = self._get(path, params={"limit": PAGE_SIZE, "offset": offset, "orderBy": "id"})
                page = _data(body, path)
                before = len(wanted)
                with self._names_lock:
                    for item in page:
                        object_id = _id(item.get("id")) if isinstance(item, dict) else None
                        if object_id is not None:
                            self._names.setdefault((kind, object_id), _named(kind, object_id, item))
                            wanted.discard(object_id)
                if not wanted or len(wanted) == before or not page or not body.get("hasMore"):
                    return
                offset += len(page)
        except AuthError:
            raise
        except ApiError as exc:
            log.info("the list of %s could not be read (each is asked for by id instead): %s", kind, exc)

    def _named(self, kind: str, object_id: str | None) -> Named:
        """Name (and type) of a destination or model, fetched once per id per client (one tick)."""
        if not object_id:
            return Named("unknown")
        key = (kind, object_id)
        with self._names_lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        # One request per id even when several threads ask at once.
        with key_lock:
            if key not in self._names:
                try:
                    self._names[key] = _named(kind, object_id, self._get(f"/{kind}/{object_id}"))
                except NotFoundError:
                    self._names[key] = Named(f"{kind[:-1]} {object_id} (not found)")
            return self._names[key]

    # -- plumbing ------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> dict[str, Any]:
        endpoint = f"{method} {path}"
        response = self.http.request(
            method,
            self.base_url + path,
            endpoint=endpoint,
            idempotent=method == "GET",
            headers=self._headers,
            params=params,
            json=json,
            classify=json_verdict,
        )
        return _json_object(response, endpoint)


def _json_object(response: requests.Response, endpoint: str) -> dict[str, Any]:
    status = response.status_code
    if status == 401 or status == 403:
        raise AuthError(f"Hightouch {endpoint}: HTTP {status}: the API key was refused (HIGHTOUCH_API_KEY)")
    if status == 404:
        raise NotFoundError(f"Hightouch {endpoint}: not found (HTTP 404)")
    if status in (400, 422):
        raise BadRequestError(f"Hightouch {endpoint}: request rejected (HTTP {status}): {_message(response)}")
    if status >= 400:
        raise ApiError(f"Hightouch {endpoint}: HTTP {status}: {_message(response)}")
    try:
        body = parsed_json(response)
    except ValueError:
        raise ApiError(f"Hightouch {endpoint}: the response is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(f"Hightouch {endpoint}: expected a JSON object")
    return body


def _message(response: requests.Response) -> str:
    try:
        body = parsed_json(response)
    except ValueError:
        return response.reason or "no details"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(body)[:300]


def _data(body: dict[str, Any], endpoint: str) -> list[dict[str, Any]]:
    data = body.get("data")
    if not isinstance(data, list):
        raise ApiError(f"Hightouch GET {endpoint}: response has no 'data' list")
    return [item for item in data if isinstance(item, dict)]


class _Pages:
    """Ends paging that the server would never end: a page that brings nothing new
    although `hasMore` says there is more (an ignored offset), or too many pages."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.count = 0
        self.seen: set[str | None] = set()

    def more(self, body: dict[str, Any], ids: list[str | None]) -> bool:
        """Whether to read the next page after this one; raises when paging has gone wrong."""
        self.count += 1
        fresh = [i for i in ids if i not in self.seen]
        self.seen.update(ids)
        if not body.get("hasMore") or not ids:
            return False
        if not fresh:
            raise ApiError(
                f"Hightouch {self.endpoint}: page {self.count} repeats earlier results although hasMore is true "
                "(the server ignores offset?); stopped paging"
            )
        if self.count >= MAX_PAGES:
            raise ApiError(
                f"Hightouch {self.endpoint}: still more after {MAX_PAGES} pages of {PAGE_SIZE}; stopped paging"
            )
        return True


def _newest_first(runs: list[Run]) -> bool:
    return len(runs) >= 2 and runs[0].sort_key > runs[-1].sort_key


def api_time(moment: datetime) -> str:
    """A time as Hightouch writes it (ISO 8601, UTC, milliseconds), rounded down."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _id(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    cleaned = text(value).strip()
    return cleaned or None


# Halves of a UTF-16 surrogate pair: JSON can carry one alone ("\ud800"), and no
# encoder can write it, so it would break every file and stream it reached.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def text(value: Any) -> str:
    """A string from Hightouch, made safe to write anywhere (lone surrogates become U+FFFD)."""
    return _LONE_SURROGATE.sub("\ufffd", str(value))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dateparser.isoparse(value)
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _rows(value: Any) -> RowCounts:
    if not isinstance(value, dict):
        return RowCounts()
    return RowCounts(
        added=_count(value.get("addedCount")),
        changed=_count(value.get("changedCount")),
        removed=_count(value.get("removedCount")),
    )


def parse_sync(item: dict[str, Any]) -> Sync | None:
    sync_id = _id(item.get("id"))
    if sync_id is None:
        log.warning("Hightouch sent a sync without an id; skipped")
        return None
    last_run_at = item.get("lastRunAt")
    tags = item.get("tags")
    schedule = item.get("schedule")
    return Sync(
        id=sync_id,
        name=text(item.get("slug") or item.get("name") or f"sync-{sync_id}"),
        disabled=bool(item.get("disabled")) or item.get("status") == "disabled",
        last_run_at=str(last_run_at) if last_run_at else None,
        destination_id=_id(item.get("destinationId")),
        model_id=_id(item.get("modelId")),
        tags=tuple(sorted((text(k), text(v)) for k, v in tags.items())) if isinstance(tags, dict) else (),
        status=text(item["status"]) if isinstance(item.get("status"), str) else None,
        schedule=json.dumps(schedule, sort_keys=True) if isinstance(schedule, dict) else None,
        created_at=_time(item.get("createdAt")),
    )


def parse_run(item: dict[str, Any]) -> Run | None:
    run_id = _id(item.get("id"))
    status = item.get("status")
    if run_id is None or not isinstance(status, str):
        log.warning("Hightouch sent a run without id or status; skipped")
        return None
    metrics = run_metrics(item)
    error = item.get("error")
    if isinstance(error, dict):
        error = error.get("message") or str(error)
    return Run(
        id=run_id,
        status=status.strip().lower(),
        created_at=_time(item.get("createdAt")),
        started_at=_time(item.get("startedAt")),
        finished_at=_time(item.get("finishedAt")),
        error=text(error) if error else None,
        successful=_rows(item.get("successfulRows")),
        failed=_rows(item.get("failedRows")),
        planned=_rows(item.get("plannedRows")),
        # Checked as signals read them: a negative or absurd size is no size at all.
        query_size=metrics.query_size,
        completion_ratio=metrics.completion_ratio,
    )


def _named(kind: str, object_id: str, body: dict[str, Any]) -> Named:
    """A destination or model as Get Destination / Get Model (or their lists) describe it."""
    name = text(body.get("name") or body.get("slug") or f"{kind[:-1]} {object_id}")
    kind_of = body.get("type")
    return Named(name, text(kind_of).lower() if isinstance(kind_of, str) else None)
