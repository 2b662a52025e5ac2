"""Known causes: what a sync failure's error message means, and what to do about it.

A run's error is classified into one of ERROR_CLASSES by the first row of the known-causes
table (`causes.yaml`, package data) that matches it: Hightouch's published error codes, the
codes and messages of the destinations and warehouses Hightouch works with, then generic
HTTP and network errors. The table is data so that a new cause is a pull request to a YAML
file, with its own test example, not a change of code.

Pure: nothing here talks to the network; the table is read from the package once, on first
use, never at import time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

# The classes, in the order people read them. `unknown` is what no row matched.
ERROR_CLASSES: tuple[str, ...] = (
    "auth",  # credentials or access refused: reconnect the destination or source
    "rate_limit",  # an API limit or quota was reached
    "destination_unavailable",  # 5xx, timeouts, dropped connections, locked rows
    "model",  # the model's query failed in the warehouse
    "schema",  # a column, field or target object is missing or mistyped
    "rows",  # the destination rejected some rows
    "unknown",
)
# Classes that pass on their own: a retry later is the likely fix. Everything else needs a
# person (and a later issue may hold alerts back for transient classes).
TRANSIENT_CLASSES: frozenset[str] = frozenset({"rate_limit", "destination_unavailable"})

# Hightouch's page of its error codes: the link when neither a runbook nor the table's row has one.
HIGHTOUCH_ERROR_CODES_URL = "https://hightouch.com/docs/developer-tools/error-codes"

CAUSES_FILE = Path(__file__).resolve().parent / "causes.yaml"  # package data

# Error texts can be whole JSON answers; what identifies a cause is near the start. Bounding
# the text bounds the time the patterns take on a pathological message.
MAX_TEXT = 20_000

ROW_KEYS = frozenset({"class", "codes", "match", "regex", "source", "do", "doc", "examples"})

UNKNOWN_WHAT_TO_DO = "No known cause matched: read the run's error and its rejected rows in Hightouch's debugger."


def is_transient(error_class: str) -> bool:
    """Whether failures of this class usually pass without anyone acting."""
    return error_class in TRANSIENT_CLASSES


@dataclass(frozen=True)
class Cause:
    """What an error means. `code` is the error code found in the text (Hightouch's, or the
    vendor's), None when the message was recognised by its wording alone or not at all."""

    error_class: str
    code: str | None
    transient: bool
    what_to_do: str
    doc_url: str | None = None  # a page about this error, when the table names one
    source: str | None = None  # the destination or source the message comes from, when specific


UNKNOWN = Cause(error_class="unknown", code=None, transient=False, what_to_do=UNKNOWN_WHAT_TO_DO)


@dataclass(frozen=True)
class KnownCause:
    """One row of the known-causes table (see the head of causes.yaml)."""

    error_class: str
    what_to_do: str
    codes: tuple[str, ...] = ()
    substrings: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    source: str | None = None
    doc_url: str | None = None
    examples: tuple[str, ...] = ()
    _code_patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A code is a whole word: DESTINATION_INVALID_GRANT must not read as INVALID_GRANT.
        compiled = tuple(re.compile(rf"(?<!\w){re.escape(code)}(?!\w)", re.IGNORECASE) for code in self.codes)
        object.__setattr__(self, "_code_patterns", compiled)

    def code_in(self, text: str) -> str | None:
        """The first of the row's codes that appears in `text` as a whole word."""
        for code, pattern in zip(self.codes, self._code_patterns, strict=True):
            if pattern.search(text):
                return code
        return None

    def matches(self, text: str) -> bool:
        """Whether the row recognises `text`: a code as a whole word, a substring or a
        pattern, all regardless of case."""
        if self.code_in(text) is not None:
            return True
        folded = text.casefold()
        if any(s.casefold() in folded for s in self.substrings):
            return True
        return any(p.search(text) for p in self.patterns)

    def cause(self, code: str | None) -> Cause:
        return Cause(
            error_class=self.error_class,
            code=code,
            transient=is_transient(self.error_class),
            what_to_do=self.what_to_do,
            doc_url=self.doc_url,
            source=self.source,
        )


def classify(error: str | None, table: Sequence[KnownCause] | None = None) -> Cause:
    """The cause of an error message: the first row of the table that matches it, else
    `unknown`. Never raises; None or a blank message is `unknown`.

    `table` defaults to the shipped table (read once); tests may pass their own.
    """
    if error is None or not error.strip():
        return UNKNOWN
    text = error[:MAX_TEXT]
    for row in known_causes() if table is None else table:
        if row.matches(text):
            return row.cause(row.code_in(text))
    return UNKNOWN


def runbook_url(cause: Cause, runbooks: Mapping[str, str], default_doc: str) -> str:
    """Where the alert links for this cause, most specific first: the team's runbook for
    its error code, then for its class (`runbooks:` in config; keys compared without
    case), then the table's page for the error, then `default_doc` (config passes
    Hightouch's error-code page, HIGHTOUCH_ERROR_CODES_URL). Always a URL."""
    folded = {key.casefold(): url for key, url in runbooks.items()}
    if cause.code is not None and cause.code.casefold() in folded:
        return folded[cause.code.casefold()]
    if cause.error_class in folded:
        return folded[cause.error_class]
    return cause.doc_url or default_doc


def known_codes() -> frozenset[str]:
    """Every error code the table knows, folded to lower case (runbook keys are compared so)."""
    return frozenset(code.casefold() for row in known_causes() for code in row.codes)


def runbook_key_problem(key: str) -> str | None:
    """Why `key` cannot be a key of `runbooks:` (None when it can): a key names an error
    class or an error code of the table. A typo would otherwise never link anything."""
    if key in ERROR_CLASSES or key.casefold() in known_codes():
        return None
    everything = list(ERROR_CLASSES) + sorted({c for row in known_causes() for c in row.codes})
    close = difflib.get_close_matches(key, everything, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{key!r} is neither an error class ({', '.join(ERROR_CLASSES)}) nor an error code of the known causes{hint}"


@cache
def known_causes() -> tuple[KnownCause, ...]:
    """The shipped table, read and checked on first use. A broken table is a bug of the
    package, found by the tests: it raises ValueError naming the row."""
    return parse_causes(CAUSES_FILE.read_text(encoding="utf-8"), str(CAUSES_FILE.name))


def parse_causes(text: str, where: str = "causes.yaml") -> tuple[KnownCause, ...]:
    """Read a known-causes table (the format of causes.yaml). Raises ValueError naming
    `where`, the row and the key at fault."""
    doc = yaml.safe_load(text)
    rows = doc.get("causes") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{where}: expected a top-level `causes:` list")
    return tuple(_row(row, f"{where}: causes[{index}]") for index, row in enumerate(rows))


def _row(raw: Any, where: str) -> KnownCause:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping")
    unknown = set(raw) - ROW_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(ROW_KEYS))})")
    error_class = raw.get("class")
    if error_class not in ERROR_CLASSES or error_class == "unknown":
        raise ValueError(f"{where}.class: expected one of {', '.join(ERROR_CLASSES[:-1])}, got {error_class!r}")
    what_to_do = raw.get("do")
    if not isinstance(what_to_do, str) or not what_to_do.strip() or "\n" in what_to_do.strip():
        raise ValueError(f"{where}.do: expected one line of what to do")
    codes, substrings = _strings(raw, "codes", where), _strings(raw, "match", where)
    patterns = []
    for pattern in _strings(raw, "regex", where):
        try:
            patterns.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            raise ValueError(f"{where}.regex: {pattern!r} is not a valid regular expression: {exc}") from None
    if not (codes or substrings or patterns):
        raise ValueError(f"{where}: a row needs at least one of codes, match, regex")
    examples = _strings(raw, "examples", where)
    if not examples:
        raise ValueError(f"{where}.examples: give at least one realistic message (the tests check it)")
    source, doc = raw.get("source"), raw.get("doc")
    for key, value in (("source", source), ("doc", doc)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{where}.{key}: expected a string")
    if doc is not None and not str(doc).startswith("https://"):
        raise ValueError(f"{where}.doc: expected an https:// URL, got {doc!r}")
    return KnownCause(
        error_class=error_class,
        what_to_do=what_to_do.strip(),
        codes=codes,
        substrings=substrings,
        patterns=tuple(patterns),
        source=source,
        doc_url=doc,
        examples=examples,
    )


def _strings(raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}.{key}: expected a list of non-empty strings")
    return tuple(value)
