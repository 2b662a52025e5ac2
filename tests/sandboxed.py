"""The sandbox's request handler served through `responses`: the one emulator of the
three APIs, answering in-process so unit tests need no port and no subprocess."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

import requests
import responses

from tests.slack_payloads import assert_slack_accepts
from tests.yaml_files import read_yaml
from triage.cli import main
from triage.sandbox import Sandbox, World, environment

SANDBOX_URL = "http://sandbox.test"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def request_body(request: requests.PreparedRequest) -> bytes:
    return request.body if isinstance(request.body, bytes) else str(request.body or "").encode()


def handled(handler: Sandbox, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
    """The sandbox's answer to a request that `responses` caught; every Slack post is first
    judged by Slack's own Block Kit models."""
    url = urlparse(str(request.url))
    body = request_body(request)
    if url.path.endswith("/chat.postMessage"):
        assert_slack_accepts(json.loads(body))
    target = url.path + (f"?{url.query}" if url.query else "")
    return handler.handle(str(request.method), target, request.headers, body)


@contextmanager
def mounted(world: World) -> Iterator[None]:
    """Answer every request to SANDBOX_URL with the sandbox's handler for the block's duration."""
    handler = Sandbox(world)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for method in (responses.GET, responses.POST):
            rsps.add_callback(
                method, re.compile(re.escape(SANDBOX_URL) + r"/.*"), callback=lambda r: handled(handler, r)
            )
        yield


class Workspace:
    """A sandbox workspace and the CLI's `run`, called in-process tick by tick."""

    def __init__(self, tmp_path: Path, world: World, config: str = "") -> None:
        self.world = world
        self.env = environment(SANDBOX_URL, world)
        self.config = tmp_path / "config.yaml"
        self.config.write_text("hightouch:\n  workspace_slug: acme\n" + config)
        self.state = tmp_path / "state" / "state.yaml"
        self.ticks = 0
        self.sleeps: list[float] = []
        # Runs added between ticks happen a minute after the last tick (before the first, a
        # minute before it), so an incident's duration reads as the ticks' times say.
        world.now = lambda: START - timedelta(minutes=1)

    def clock(self) -> float:
        """Virtual seconds: the tool's own waits (sleeps) and 15 minutes between ticks move
        it, so pacing and time limits are exact and no test waits for real."""
        return 900.0 * self.ticks + sum(self.sleeps)

    def tick(self, *extra: str, env: dict[str, str] | None = None, stdout: TextIO | None = None) -> tuple[int, str]:
        self.world.request_log.clear()
        out = stdout or io.StringIO()
        now = START + timedelta(minutes=15 * self.ticks)
        self.ticks += 1
        self.world.now = lambda: now + timedelta(minutes=1)
        code = main(
            ["run", "--config", str(self.config), "--state", str(self.state), *extra],
            environ={**self.env, **(env or {})},
            stdout=out,
            sleep=self.sleeps.append,
            now=lambda: now,
            clock=self.clock,
        )
        return code, out.getvalue() if isinstance(out, io.StringIO) else ""

    def healthy_at_baseline(self, syncs: Mapping[str, str], rows: Mapping[str, Any] | None = None) -> None:
        """The baseline tick, with `syncs` (id → name) each after one successful run."""
        for sync_id, name in syncs.items():
            self.world.add_sync(sync_id, name)
            self.world.add_run(sync_id, "success", rows=rows)
        self.tick()

    def failing_after_baseline(self, name: str = "contacts") -> None:
        """Sync 1, healthy at the baseline tick, then one failed run waiting for the next tick."""
        self.healthy_at_baseline({"1": name})
        self.world.add_run("1", "failed")

    def saved(self) -> dict[str, Any]:
        return dict(read_yaml(self.state))
