"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from tests.fakes import World


@pytest.fixture
def world() -> Iterator[World]:
    """Hightouch, Slack and Linear fakes, answering through `responses` for the test's duration."""
    w = World()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        w.register(rsps)
        yield w
