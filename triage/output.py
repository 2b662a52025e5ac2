"""Text that leaves the process: stdout, stderr, the job summary.

Everything written goes through `SafeWriter`, so no string from an API can
stop a tick half-way (a name holding a lone surrogate cannot be encoded), no
secret leaves the process, raw or escaped by a renderer, and no line becomes a
command of the GitHub Actions log (`::add-mask::…`, `::stop-commands::…`) but
the annotations the tool means to give (`workflow_command`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import TextIO, cast

from triage.http import redact

# The Actions runner reads a step's output line by line (a line ends at LF, CR or CRLF)
# and takes as a command a line that starts with `::` once leading whitespace is trimmed,
# or, in the older syntax, one that holds `##[` anywhere.
_LINE_END = re.compile(r"(?<=[\r\n])")
_COMMAND_START = re.compile(r"^(\s*:)(?=:)")
_OLD_COMMAND = re.compile(r"(?<=##)(?=\[)")
# Invisible, and not whitespace to the runner (whose trim would otherwise see through it).
_INERT = "\u200b"


def printable(text: str, encoding: str | None) -> str:
    """`text` with whatever `encoding` cannot carry written as a backslash escape."""
    codec = encoding or "utf-8"
    return text.encode(codec, "backslashreplace").decode(codec)


def inert(line: str) -> str:
    """One line (or the start of one) that the Actions runner cannot read as a workflow
    command: a zero-width space between a leading `::` and between `##` and `[`. What a
    person reads is unchanged."""
    return _OLD_COMMAND.sub(_INERT, _COMMAND_START.sub(r"\1" + _INERT, line))


class WorkflowCommand(str):
    """A workflow command the tool means to give (an annotation on the run's page): the
    one kind of text `SafeWriter` writes as it is. Made by `workflow_command` only."""


def workflow_command(name: str, message: str, **properties: str) -> WorkflowCommand:
    """`::name key=value,…::message` as one line, escaped as GitHub requires, so that
    outside text in `message` or a property can neither end the line nor add a property."""
    props = ",".join(f"{key}={_escape(value, property_value=True)}" for key, value in properties.items())
    return WorkflowCommand(f"::{name}{' ' + props if props else ''}::{_escape(message)}\n")


def _escape(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


class SafeWriter(io.TextIOBase):
    """A text stream that redacts secrets, never fails to encode what it is given, and
    makes every line inert as a workflow command (but a `WorkflowCommand`'s).

    The runner sees the bytes, not the writes: a command split over two writes (`"  :"`
    then `":add-mask::…"`) is a command all the same, so the start of the line written
    so far is kept (only as much as can still matter) and judged with what follows.
    """

    def __init__(self, stream: TextIO, secrets: Iterable[str]) -> None:
        super().__init__()
        self.stream = stream
        self.secrets = tuple(secrets)
        self._line = ""  # the current line as written so far, shortened to what can still matter

    def write(self, text: str) -> int:
        if isinstance(text, WorkflowCommand):
            self._emit(("\n" if self._line else "") + redact(text, self.secrets))
            self._line = ""
            return len(text)
        written: list[str] = []
        for index, piece in enumerate(_LINE_END.split(redact(text, self.secrets))):
            head = self._line if index == 0 else ""
            safe = inert(head + piece)
            written.append(safe[len(inert(head)) :])
            self._line = _what_matters(head + piece)
        self._emit("".join(written))
        return len(text)

    def _emit(self, text: str) -> None:
        self.stream.write(printable(text, getattr(self.stream, "encoding", None)))

    def flush(self) -> None:
        self.stream.flush()

    def writable(self) -> bool:
        return True


def _what_matters(line: str) -> str:
    """The part of an unfinished line that a later write could still turn into a command:
    all of it while it is whitespace and at most one colon, else its last two characters
    behind a placeholder that keeps it from being a line start. A finished line: nothing."""
    if line.endswith(("\n", "\r")):
        return ""
    if line.lstrip() in ("", ":"):
        return line
    return "x" + line[-2:]


def safe_stream(stream: TextIO, secrets: Iterable[str]) -> TextIO:
    return cast(TextIO, SafeWriter(stream, secrets))


def append_text(path: str, text: str, secrets: Iterable[str]) -> None:
    """Append to a file (the GitHub job summary) as UTF-8, redacted, never failing on a string."""
    with open(path, "a", encoding="utf-8", errors="backslashreplace") as handle:
        handle.write(redact(text, secrets))
