"""Which tests read the files a team changes by pull request.

A team customises `config.yaml`, `templates/` and `.github/` in its fork; every other test
uses fixtures of its own, so a customisation can only change the outcome of the tests that
read those files. CI records them here while the suite runs (an audit hook sees every file
opened and every process started, whoever asks for it) and `.ci/customised` runs just those
in a customised copy: proof that a fork stays green, without running the suite twice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The team's files, as absolute path prefixes; `templates/` is the overrides folder (the
# defaults in the package are the product's, not the team's).
USER_FILES = (str(ROOT / "config.yaml"), str(ROOT / "templates") + os.sep, str(ROOT / ".github") + os.sep)


class Recorder:
    """Notes the test that is running whenever a team's file is opened or named to a process."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.readers: set[str] = set()

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        # Called for every audit event in the process: leave at once unless a test is running.
        if self.current is None or self.current in self.readers:
            return
        if event == "open":
            reads = _is_users(args[0])
        elif event == "subprocess.Popen":
            reads = _starts_reading(args[1] or (), args[2])
        else:
            return
        if reads:
            self.readers.add(self.current)

    def save(self, directory: Path, worker: str) -> None:
        self.current = None  # writing the record is not a test's read
        directory.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{nodeid}\n" for nodeid in sorted(self.readers))
        (directory / f"{worker}.txt").write_text(lines, encoding="utf-8")


def _is_users(name: object) -> bool:
    if not isinstance(name, (str, os.PathLike)):
        return False  # a file descriptor, or bytes: never one of ours
    path = os.path.abspath(os.fspath(name))
    return isinstance(path, str) and (path == USER_FILES[0] or path.startswith(USER_FILES[1:]))


def _starts_reading(arguments: Iterable[object], cwd: object) -> bool:
    """A process reads a team's file when an argument names one (`--config=…` included), or
    when it starts in the repository without a `--config`: the CLI's default is ./config.yaml."""
    words = [os.fspath(a) for a in arguments if isinstance(a, (str, os.PathLike))]
    if any(prefix in word for word in words for prefix in USER_FILES if isinstance(word, str)):
        return True
    directory = os.path.abspath(os.fspath(cwd)) if isinstance(cwd, (str, os.PathLike)) else os.getcwd()
    return directory == str(ROOT) and not any(str(word).startswith("--config") for word in words)


class Recording:
    """The pytest plugin that keeps the record while the suite runs (each xdist worker keeps
    its own and writes its own file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.recorder = Recorder()
        sys.addaudithook(self.recorder.audit)  # for the process's life: hooks cannot be removed

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        self.recorder.current = item.nodeid
        try:
            return (yield)
        finally:
            self.recorder.current = None

    def pytest_sessionfinish(self) -> None:
        self.recorder.save(self.folder, os.environ.get("PYTEST_XDIST_WORKER", "main"))
