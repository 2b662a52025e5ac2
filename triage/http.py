"""One retry and back-off policy shared by every API client.

Kept in small parts, each testable alone (after slack_sdk's http_retry):
`should_retry` decides whether a failure may be tried again, `RetryPolicy`
how long to wait, `WaitBudget` how much waiting the whole tick may still do,
and `Throttle` paces requests below a service's published rate. Clients never
sleep on their own; only `HttpClient` waits, through an injected `sleep`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from triage.errors import AnswerLost, ApiError, OutOfTime, RateLimited

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before attempt n+1, and how many attempts a failure gets."""

    max_attempts: int = 4  # for 5xx and network errors
    max_rate_limit_attempts: int = 8  # for 429, bounded by the wait budget too
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5  # up to this fraction added at random, so clients do not march in step

    def delay(self, attempt: int, retry_after: float | None, rand: Callable[[], float] = random.random) -> float:
        if retry_after is not None:
            return max(0.0, retry_after) + rand()  # slack_sdk adds up to 1 s the same way
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return backoff * (1 + self.jitter * rand())


class Meter:
    """What a tick's requests cost so far, across every client: for progress lines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.waits = 0
        self.waited = 0.0

    def request(self) -> None:
        with self._lock:
            self.requests += 1

    def wait(self, seconds: float) -> None:
        with self._lock:
            self.waits += 1
            self.waited += seconds


class WaitBudget:
    """Seconds of waiting left to the whole tick, and the time past which it starts no
    request at all (`deadline`, on `clock`). Thread-safe."""

    def __init__(
        self, seconds: float, *, deadline: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._left = seconds
        self._lock = threading.Lock()
        self.deadline = deadline
        self.clock = clock

    def time_left(self) -> float:
        """Seconds until the deadline (infinite without one)."""
        return float("inf") if self.deadline is None else self.deadline - self.clock()

    @property
    def left(self) -> float:
        return self._left

    def take(self, seconds: float) -> bool:
        """Spend `seconds` if that much is left; otherwise spend nothing and say no."""
        with self._lock:
            if seconds > self._left:
                return False
            self._left -= seconds
            return True


class Pacer:
    """Per key (a Slack channel), at most `rate` sends a second in bursts of `burst`.

    Slack takes about one message a second per channel. Keeping to that pace is the
    expected cost of posting, not a fault: the caller waits out `reserve`'s answer within
    the tick's time limit, never from its wait budget, and channels do not wait on each
    other.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def reserve(self, key: str) -> float:
        """Take `key`'s next slot: the seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate) - 1.0
            self._buckets[key] = (tokens, now)
        return -tokens / self.rate if tokens < 0 else 0.0

    def give_back(self, key: str) -> None:
        """Return a slot that was not used (the send was called off)."""
        with self._lock:
            tokens, then = self._buckets[key]
            self._buckets[key] = (tokens + 1.0, then)


class Throttle:
    """At most `rate` requests per second on average, in bursts of at most `burst`.

    A token bucket: Hightouch allows 200 requests / 10 s per workspace and its
    429s carry no Retry-After, so staying under the limit beats reacting to it.
    It is a Pacer with one key that sleeps for its slot itself.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._pacer = Pacer(rate, burst, clock=clock)
        self._sleep = sleep

    def acquire(self) -> None:
        wait = self._pacer.reserve("")
        if wait > 0:
            self._sleep(wait)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Verdict:
    """What a response means for retrying: done, rate limited, or a transient failure."""

    retry: str | None = None  # None | "rate_limited" | "transient"
    retry_after: float | None = None
    reason: str = ""


DONE = Verdict()


def default_verdict(response: requests.Response) -> Verdict:
    """HTTP 429 is a rate limit (Retry-After honoured when sent); 5xx is transient."""
    if response.status_code == 429:
        return Verdict(
            "rate_limited", parse_retry_after(response.headers.get("Retry-After")), "rate limited (HTTP 429)"
        )
    if response.status_code >= 500:
        return Verdict("transient", reason=f"HTTP {response.status_code}")
    return DONE


def parsed_json(response: requests.Response) -> Any:
    """The body as JSON, parsed once however often it is asked for (the verdict reads it,
    then the client); raises ValueError when it is not JSON."""
    if "_parsed_json" not in response.__dict__:
        response.__dict__["_parsed_json"] = response.json()
    return response.__dict__["_parsed_json"]


def json_verdict(response: requests.Response) -> Verdict:
    """As `default_verdict`, and a success whose body is not JSON is transient (a torn answer)."""
    verdict = default_verdict(response)
    if verdict.retry is None and response.status_code < 400:
        try:
            parsed_json(response)
        except ValueError:
            return Verdict("transient", reason="the response is not valid JSON")
    return verdict


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced, also where a renderer escaped it on the way (a
    backslash before any character, as Markdown and JSON escape; or percent-encoded),
    so an error that echoes a header cannot leak it through any output."""
    pattern = _secrets_pattern(tuple(s for s in secrets if s))
    return pattern.sub("[redacted]", text) if pattern is not None else text


@lru_cache(maxsize=16)
def _secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    if not secrets:
        return None
    forms: list[str] = []
    for secret in sorted(secrets, key=len, reverse=True):
        forms.append("".join(r"\\?" + re.escape(char) for char in secret))
        forms.append(re.escape(quote(secret, safe="")))
    return re.compile("|".join(forms))


class HttpClient:
    """requests.Session with timeouts, throttling, retries and a shared wait budget.

    `idempotent=False` marks a request that may create something (a Slack
    message, a Linear issue): it is retried only when the failure proves the
    server did nothing (HTTP 429, or a connection that never opened).
    """

    def __init__(
        self,
        *,
        name: str,
        secrets: Iterable[str],
        budget: WaitBudget,
        policy: RetryPolicy | None = None,
        throttle: Throttle | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
        read_timeout: float = READ_TIMEOUT,
        meter: Meter | None = None,
        rate_limits_use_budget: bool = True,
    ) -> None:
        self.name = name
        self.meter = meter or Meter()
        # False for a service whose rate limit is the expected pace of the work (Slack's
        # per-channel message rate): its 429s are waited out within the tick's time limit only.
        self.rate_limits_use_budget = rate_limits_use_budget
        self.read_timeout = read_timeout
        self.secrets = tuple(s for s in secrets if s)
        self.budget = budget
        self.policy = policy or RetryPolicy()
        self.throttle = throttle
        self._sleep = sleep
        if session is None:
            session = requests.Session()
            # Room for every worker thread to keep its connection open.
            adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=32)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session

    def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        classify: Callable[[requests.Response], Verdict] = default_verdict,
    ) -> requests.Response:
        """Send with retries. Returns the last response that is not retried (any status).

        `classify` says what a response means for retrying; rate limits are
        always retried (they prove nothing was done), transient failures only
        when the request is idempotent. Raises RateLimited when waiting out a
        rate limit would overrun the budget, and ApiError when the service
        stayed unreachable or kept failing.
        """
        attempt = 0
        while True:
            attempt += 1
            if self.budget.time_left() <= 0:
                raise OutOfTime(f"{self.name} {endpoint}: the tick's time limit is reached")
            if self.throttle is not None:
                self.throttle.acquire()
            started = time.monotonic()
            self.meter.request()
            try:
                response = self._send(method, url, headers=dict(headers or {}), params=params, json=json)
            except requests.RequestException as exc:
                problem = f"{self.name} {endpoint}: {_describe(exc)}"
                self._log_request(method, url, _describe(exc), started)
                if not (idempotent or _never_connected(exc)):
                    raise AnswerLost(redact(problem, self.secrets)) from None
                if attempt >= self.policy.max_attempts:
                    raise ApiError(redact(problem, self.secrets)) from None
                self._wait(self.policy.delay(attempt, None), problem, endpoint, rate_limited=False)
                continue

            self._log_request(method, url, str(response.status_code), started)
            verdict = classify(response)
            problem = f"{self.name} {endpoint}: {verdict.reason}"
            if verdict.retry == "rate_limited":
                if attempt >= self.policy.max_rate_limit_attempts:
                    raise RateLimited(redact(problem, self.secrets))
                self._wait(self.policy.delay(attempt, verdict.retry_after), problem, endpoint, rate_limited=True)
                continue
            if verdict.retry == "transient" and idempotent and attempt < self.policy.max_attempts:
                self._wait(self.policy.delay(attempt, None), problem, endpoint, rate_limited=False)
                continue
            return response

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One attempt, whole answer included, within `read_timeout` seconds overall.

        requests' own timeout bounds each read, so a server that trickles a byte at a
        time could hold a request forever. The attempt runs on the caller's thread; a
        watchdog cuts its connection at the deadline, which ends any read at once, and
        the cut attempt counts as a timeout. No thread is left reading a trickling answer.
        """
        attempt = _Attempt()
        watchdog = threading.Thread(
            target=attempt.watch, args=(self.read_timeout,), name=f"{self.name} deadline", daemon=True
        )
        _attempts.current = attempt
        watchdog.start()
        try:
            response = self.session.request(method, url, timeout=(CONNECT_TIMEOUT, self.read_timeout), **kwargs)
        except requests.RequestException as exc:
            if attempt.finish() and not _never_connected(exc):  # a connection never opened proves more
                raise AnswerTooSlow(f"no whole answer within {self.read_timeout:g}s") from None
            raise
        finally:
            attempt.finish()
            watchdog.join()
            _attempts.current = None
        if attempt.expired:  # cut in its headers, a truncated answer can even look whole
            response.close()
            raise AnswerTooSlow(f"no whole answer within {self.read_timeout:g}s")
        return response

    def pace(self, seconds: float, endpoint: str) -> None:
        """Wait `seconds` for a pacer's slot: within the tick's time limit, not from the budget."""
        if seconds <= 0:
            return
        if seconds >= self.budget.time_left():
            raise OutOfTime(f"{self.name} {endpoint}: the next slot is past the tick's time limit")
        log.debug("%s %s: pacing, %.1f s", self.name, endpoint, seconds)
        self.meter.wait(seconds)
        self._sleep(seconds)

    def _wait(self, seconds: float, problem: str, endpoint: str, *, rate_limited: bool) -> None:
        if seconds >= self.budget.time_left():
            message = f"{problem}; waiting {seconds:.0f}s more would pass the tick's time limit"
            raise OutOfTime(redact(message, self.secrets))
        if rate_limited and not self.rate_limits_use_budget:
            log.info(
                "%s: waiting %.1f s (the service's pace, not the wait budget)", redact(problem, self.secrets), seconds
            )
            self.meter.wait(seconds)
            self._sleep(seconds)
            return
        if not self.budget.take(seconds):
            message = redact(
                f"{problem}; waiting {seconds:.0f}s more would overrun the tick's wait budget", self.secrets
            )
            if rate_limited:
                raise RateLimited(message)
            raise ApiError(message)
        log.info(
            "%s: waiting %.1f s, %.0f s of wait budget left", redact(problem, self.secrets), seconds, self.budget.left
        )
        self.meter.wait(seconds)
        self._sleep(seconds)

    def _log_request(self, method: str, url: str, outcome: str, started: float) -> None:
        """At debug: every request, as method, path, status (or what went wrong) and time."""
        if log.isEnabledFor(logging.DEBUG):
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            elapsed = (time.monotonic() - started) * 1000
            log.debug("%s %s %s: %s in %.0f ms", self.name, method, redact(target, self.secrets), outcome, elapsed)


class AnswerTooSlow(requests.ReadTimeout):
    """The whole answer did not arrive within the request's overall deadline."""


class _Attempt:
    """The connection one request is using, so that its deadline can cut it.

    The connection is known only once the pool hands it out (`DeadlineAdapter`'s pools
    tell the attempt of their thread); a connection given back is let go first, so a
    deadline never cuts one that another request has taken since."""

    RECHECK = 0.05  # seconds between tries to cut a connection still opening at the deadline

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None
        self.done = threading.Event()
        self.expired = False

    def using(self, connection: Any) -> None:
        with self._lock:
            self._connection = None if self.done.is_set() else connection

    def released(self, connection: Any) -> None:
        with self._lock:
            if self._connection is connection:
                self._connection = None

    def watch(self, seconds: float) -> None:
        """Wait until the attempt is done or `seconds` pass; then cut its connection, again
        and again while it is still opening (it has no socket to cut yet)."""
        if self.done.wait(seconds):
            return
        while not self._cut():
            if self.done.wait(self.RECHECK):
                return

    def _cut(self) -> bool:
        """Mark the attempt expired and cut its connection; False while there is none to
        cut yet (not handed out, or no socket), so the watch goes on."""
        with self._lock:
            if self.done.is_set():
                return True
            self.expired = True
            return self._connection is not None and _cut(self._connection)

    def finish(self) -> bool:
        """No more cutting; whether the deadline came first."""
        with self._lock:
            self.done.set()
            self._connection = None
            return self.expired


_attempts = threading.local()  # the attempt each thread is making: `current`
ATTEMPT = "_triage_attempt"  # the attempt a pooled connection serves, on the connection


def _cut(connection: Any) -> bool:
    """End the connection's socket for both directions: a read blocked on it returns at once
    (unlike `close`, which leaves a blocked read waiting). Below TLS, so it works for both.
    False when the connection has no socket yet."""
    sock = getattr(connection, "sock", None)
    if sock is None:
        return False
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    return True


class _WatchedPool(urllib3.HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        attempt = getattr(_attempts, "current", None)
        if attempt is not None:
            attempt.using(connection)
            setattr(connection, ATTEMPT, attempt)
        return connection

    def _put_conn(self, conn: Any) -> None:
        attempt = getattr(conn, ATTEMPT, None)
        if attempt is not None:
            attempt.released(conn)
            setattr(conn, ATTEMPT, None)
        super()._put_conn(conn)


class _WatchedHTTPSPool(_WatchedPool, urllib3.HTTPSConnectionPool):
    pass


WATCHED_POOLS = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connection pools tell each request's deadline which connection
    it is using, directly or through a proxy."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.PoolManager):
            manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the request provably never reached the server (refused, or connect timed out)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


def _describe(exc: requests.RequestException) -> str:
    """A short reason without the URL and headers that requests' messages embed."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, AnswerTooSlow):
        return str(exc)
    if isinstance(exc, requests.ReadTimeout):
        return "no answer in time (read timeout)"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return type(exc).__name__
