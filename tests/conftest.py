"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from tests.fakes import World
from tests.sandboxed import Workspace, mounted
from triage.sandbox import World as SandboxWorld


@pytest.fixture
def world() -> Iterator[World]:
    """Hightouch, Slack and Linear fakes, answering through `responses` for the test's duration."""
    w = World()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        w.register(rsps)
        yield w


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """An empty sandbox workspace behind `responses`, with the CLI ready to tick against it."""
    world = SandboxWorld()
    with mounted(world):
        yield Workspace(tmp_path, world)
