"""Text that leaves the process: stdout, stderr, the job summary.

Everything written goes through `SafeWriter`, so no string from an API can
stop a tick half-way (a name holding a lone surrogate cannot be encoded) and
no secret leaves the process, raw or escaped by a renderer.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TextIO, cast

from triage.http import redact


def printable(text: str, encoding: str | None) -> str:
    """`text` with whatever `encoding` cannot carry written as a backslash escape."""
    codec = encoding or "utf-8"
    return text.encode(codec, "backslashreplace").decode(codec)


class SafeWriter(io.TextIOBase):
    """A text stream that redacts secrets and never fails to encode what it is given."""

    def __init__(self, stream: TextIO, secrets: Iterable[str]) -> None:
        super().__init__()
        self.stream = stream
        self.secrets = tuple(secrets)

    def write(self, text: str) -> int:
        self.stream.write(printable(redact(text, self.secrets), getattr(self.stream, "encoding", None)))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def writable(self) -> bool:
        return True


def safe_stream(stream: TextIO, secrets: Iterable[str]) -> TextIO:
    return cast(TextIO, SafeWriter(stream, secrets))


def append_text(path: str, text: str, secrets: Iterable[str]) -> None:
    """Append to a file (the GitHub job summary) as UTF-8, redacted, never failing on a string."""
    with open(path, "a", encoding="utf-8", errors="backslashreplace") as handle:
        handle.write(redact(text, secrets))
