"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from tests import user_files
from tests.fakes import World
from tests.sandboxed import Workspace, mounted
from triage.sandbox import World as SandboxWorld

# Hightouch documents no order for a sync's runs (its reference's example lists them oldest
# first). The tests of the clients and the tick's reads (`world`) run with both; the
# stories told through `workspace` with oldest first, the order that makes reads page.
RUNS_ORDERS = ["newest_first", "oldest_first"]


@pytest.fixture(params=RUNS_ORDERS)
def runs_order(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def world(runs_order: str) -> Iterator[World]:
    """Hightouch, Slack and Linear fakes, answering through `responses` for the test's duration."""
    w = World()
    w.sandbox.newest_first = runs_order == "newest_first"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        w.register(rsps)
        yield w


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """An empty sandbox workspace behind `responses`, with the CLI ready to tick against it."""
    world = SandboxWorld()
    world.newest_first = False
    with mounted(world):
        yield Workspace(tmp_path, world)


def pytest_configure(config: pytest.Config) -> None:
    # CI records which tests read the team's own files (config.yaml, templates/, .github/)
    # into the folder this names, for `.ci/customised` to run just those on a customised copy.
    folder = os.environ.get("TRIAGE_USER_FILE_READERS")
    if folder:
        config.pluginmanager.register(user_files.Recording(Path(folder)), "user-file-readers")
