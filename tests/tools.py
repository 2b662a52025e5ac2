"""Command-line tools some tests run when they are installed (they are, in CI's virtualenv)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def zizmor() -> str | None:
    """zizmor on PATH, or beside this Python (a virtualenv that was not activated)."""
    beside = Path(sys.executable).parent / "zizmor"
    return shutil.which("zizmor") or (str(beside) if beside.exists() else None)


def run_zizmor(*args: str) -> subprocess.CompletedProcess[str]:
    """zizmor offline with its default persona; exit 0 means no finding."""
    tool = zizmor()
    assert tool is not None
    return subprocess.run([tool, "--offline", *args], capture_output=True, text=True, check=False, timeout=120)
