"""The shared retry policy: whether to retry, how long to wait, how much waiting is left."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
import requests
import responses
import urllib3

from triage.errors import ApiError, OutOfTime, RateLimited
from triage.http import HttpClient, Pacer, RetryPolicy, Throttle, WaitBudget, parse_retry_after, redact
from triage.plan import interleaved

URL = "https://api.example.test/thing"


def client(budget: float = 100, sleeps: list[float] | None = None) -> HttpClient:
    record = sleeps if sleeps is not None else []
    return HttpClient(
        name="Svc", secrets=["s3cret"], budget=WaitBudget(budget), policy=RetryPolicy(), sleep=record.append
    )


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after("Mon, 23 Nov 2026 09:00:30 GMT", now=now) == 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=8, jitter=0.5)
    assert [policy.delay(n, None, rand=lambda: 0) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]
    assert policy.delay(1, None, rand=lambda: 1) == 1.5
    assert policy.delay(1, 20, rand=lambda: 0.5) == 20.5


def test_budget_is_spent_and_refuses_past_the_end() -> None:
    budget = WaitBudget(10)
    assert budget.take(6)
    assert not budget.take(5)
    assert budget.take(4)
    assert budget.left == 0


def test_throttle_sleeps_once_the_burst_is_used() -> None:
    sleeps: list[float] = []
    throttle = Throttle(rate=10, burst=2, clock=lambda: 0.0, sleep=sleeps.append)
    for _ in range(4):
        throttle.acquire()
    assert sleeps == pytest.approx([0.1, 0.2])


def test_429_is_retried_honouring_retry_after() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.get(URL, status=429, headers={"Retry-After": "3"})
        rsps.get(URL, json={"ok": 1})
        response = client(sleeps=sleeps).request("GET", URL, endpoint="GET /thing", idempotent=True)
    assert response.status_code == 200
    assert len(sleeps) == 1 and 3 <= sleeps[0] < 4


def test_429_past_the_budget_raises_rate_limited_without_waiting() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.get(URL, status=429, headers={"Retry-After": "500"})
        with pytest.raises(RateLimited):
            client(budget=60, sleeps=sleeps).request("GET", URL, endpoint="GET /thing", idempotent=True)
    assert sleeps == []


def test_connection_refused_is_retried_even_for_a_post() -> None:
    with responses.RequestsMock() as rsps:
        refused = requests.ConnectionError(
            urllib3.exceptions.MaxRetryError(None, URL, urllib3.exceptions.NewConnectionError(None, "refused"))  # type: ignore[arg-type]
        )
        rsps.post(URL, body=refused)
        rsps.post(URL, json={"ok": True})
        response = client().request("POST", URL, endpoint="POST /thing", idempotent=False)
    assert response.status_code == 200


def test_read_timeout_on_a_post_is_not_retried() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(URL, body=requests.ReadTimeout("read timed out s3cret"))
        with pytest.raises(ApiError, match="read timeout") as info:
            client().request("POST", URL, endpoint="POST /thing", idempotent=False)
        assert len(rsps.calls) == 1
    assert "s3cret" not in str(info.value)


def test_redact_hides_every_secret() -> None:
    assert redact("token s3cret and s3cret", ["s3cret", ""]) == "token [redacted] and [redacted]"


def test_hightouch_throttle_never_lets_more_than_the_limit_into_any_10_second_window() -> None:
    from triage.cli import hightouch_throttle

    now = [0.0]
    sent: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    throttle = hightouch_throttle(190, sleep, clock=lambda: now[0])
    assert throttle is not None
    for _ in range(1000):
        throttle.acquire()
        sent.append(now[0])
    worst = max(sum(1 for t in sent if start <= t < start + 10) for start in sent)
    assert worst <= 190
    assert sent[-1] == pytest.approx((1000 - 10) / 18, rel=0.01)  # still close to the limit
    assert hightouch_throttle(0, sleep) is None


def test_the_pacer_keeps_each_channel_to_its_rate_and_channels_do_not_wait_on_each_other() -> None:
    now = [0.0]
    pacer = Pacer(1.0, 2, clock=lambda: now[0])
    assert [pacer.reserve("#a") for _ in range(4)] == [0.0, 0.0, 1.0, 2.0]  # a burst of 2, then 1 a second
    assert pacer.reserve("#b") == 0.0  # another channel has its own pace
    now[0] = 10.0
    assert pacer.reserve("#a") == 0.0  # the slots came back with time
    pacer.give_back("#a")
    assert pacer.reserve("#a") == 0.0


def test_pacing_and_a_paced_services_429s_wait_within_the_time_limit_not_the_budget() -> None:
    sleeps: list[float] = []
    now = [0.0]
    budget = WaitBudget(5, deadline=60, clock=lambda: now[0])
    http = HttpClient(name="Slack", secrets=[], budget=budget, sleep=sleeps.append, rate_limits_use_budget=False)
    http.pace(1.0, "chat.postMessage")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, URL, status=429, headers={"Retry-After": "30"})
        rsps.add(responses.POST, URL, json={"ok": True})
        assert http.request("POST", URL, endpoint="chat.postMessage", idempotent=False).status_code == 200
    assert sleeps[0] == 1.0 and 30 <= sleeps[1] < 31
    assert budget.left == 5  # neither wait came out of the budget
    now[0] = 59.5
    with pytest.raises(OutOfTime):
        http.pace(1.0, "chat.postMessage")  # but nothing waits past the tick's time limit


def test_channels_take_turns_so_one_channels_pace_never_holds_up_another() -> None:
    posts = ["a1", "a2", "a3", "b1", "b2", "c1"]
    assert interleaved(posts, key=lambda p: p[0]) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert interleaved([], key=str) == []


class Trickler:
    """A server on 127.0.0.1 that answers one request a byte at a time, forever, until the
    client goes away; `gone` is set once a write finds the connection closed."""

    def __init__(self, *, headers_too: bool) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.headers_too = headers_too
        self.gone = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="trickler", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/thing"

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)  # the request
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            try:
                if not self.headers_too:
                    connection.sendall(head)
                    head = b""
                for byte in itertools.chain(head, itertools.repeat(ord(" "))):
                    connection.sendall(bytes([byte]))
                    time.sleep(0.01)  # the server's slowness, not the test's timing
            except OSError:
                self.gone.set()


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_request_past_its_deadline_leaves_no_thread_reading_the_answer(headers_too: bool) -> None:
    server = Trickler(headers_too=headers_too)
    before = set(threading.enumerate())
    http = HttpClient(
        name="Svc", secrets=[], budget=WaitBudget(0), policy=RetryPolicy(max_attempts=1), read_timeout=0.3
    )
    with pytest.raises(ApiError, match=r"no whole answer within 0\.3s"):
        http.request("GET", server.url, endpoint="GET /thing", idempotent=True)
    assert set(threading.enumerate()) - before == set()  # nothing left behind, reading or waiting
    assert server.gone.wait(timeout=10)  # the connection was closed, not left to trickle
    server.listener.close()
