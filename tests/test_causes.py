"""Known causes: every row of the shipped table recognises its own realistic messages, and
the messages people meet most land in the right class with a line of what to do."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triage.causes import (
    ERROR_CLASSES,
    HIGHTOUCH_ERROR_CODES_URL,
    UNKNOWN,
    Cause,
    KnownCause,
    classify,
    is_transient,
    known_causes,
    parse_causes,
    runbook_key_problem,
    runbook_url,
)

ROWS = known_causes()
ROW_EXAMPLES = [
    pytest.param(index, example, id=f"row{index}-{row.error_class}-{(row.codes or row.substrings or ('',))[0][:40]}")
    for index, row in enumerate(ROWS)
    for example in row.examples
]


@pytest.mark.parametrize(("index", "example"), ROW_EXAMPLES)
def test_each_row_classifies_its_own_examples(index: int, example: str) -> None:
    # First match wins: an example that an earlier row takes means the table's order is wrong.
    row = ROWS[index]
    first = next(i for i, candidate in enumerate(ROWS) if candidate.matches(example))
    assert first == index, f"row {first} ({ROWS[first].error_class}) takes an example of row {index}"
    assert classify(example) == row.cause(row.code_in(example))


@pytest.mark.parametrize("index", range(len(ROWS)), ids=[f"row{i}" for i in range(len(ROWS))])
def test_every_code_substring_and_pattern_of_a_row_is_exercised_by_an_example(index: int) -> None:
    row = ROWS[index]
    for code in row.codes:
        assert any(KnownCause("auth", "x", codes=(code,)).code_in(e) for e in row.examples), code
    for substring in row.substrings:
        assert any(substring.casefold() in e.casefold() for e in row.examples), substring
    for pattern in row.patterns:
        assert any(pattern.search(e) for e in row.examples), pattern.pattern


def test_the_shipped_table_covers_every_class_but_unknown() -> None:
    assert {row.error_class for row in ROWS} == set(ERROR_CLASSES) - {"unknown"}


# Messages as they reach a run's `error`, beyond the table's own examples: one or more per
# destination and warehouse the issue names.
REALISTIC = [
    # Salesforce
    ("INVALID_SESSION_ID", "auth"),
    ("INVALID_SESSION_ID: Session expired or invalid", "auth"),
    ("UNABLE_TO_LOCK_ROW", "destination_unavailable"),
    ("REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.", "rate_limit"),
    ("INVALID_FIELD: No such column 'NPS__c' on entity 'Contact'.", "schema"),
    ("Failed to upsert 12 records: REQUIRED_FIELD_MISSING: Required fields are missing: [Company]", "rows"),
    # HubSpot
    (
        '{"status":"error","message":"The OAuth token used to make this call expired 2 hour(s) ago.",'
        '"correlationId":"3f1c","category":"EXPIRED_AUTHENTICATION"}',
        "auth",
    ),
    ('{"status":"error","message":"You have reached your secondly limit.","category":"RATE_LIMITS"}', "rate_limit"),
    # Iterable
    ('{"msg":"Invalid API key","code":"BadApiKey","params":null}', "auth"),
    # Braze
    ('{"message":"Invalid API key: 7c0f..."}', "auth"),
    ("Braze responded with 429 Too Many Requests", "rate_limit"),
    ("Request failed with status code 502", "destination_unavailable"),
    # Google Ads / OAuth
    ("invalid_grant", "auth"),
    ("Error: invalid_grant: Token has been expired or revoked.", "auth"),
    ("QuotaError.RESOURCE_EXHAUSTED", "rate_limit"),
    # Marketo
    (
        '{"success":false,"errors":[{"code":"606","message":"Max rate limit \'100\' exceeded with in \'20\' secs"}]}',
        "rate_limit",
    ),
    # Snowflake
    ("SQL compilation error: error line 1 at position 31\ninvalid identifier 'LIFETIME_VALUE'", "schema"),
    ("SQL compilation error:\nTable 'DIM_USERS' does not exist or not authorized.", "model"),
    ("SQL access control error:\nInsufficient privileges to operate on table 'USERS'", "auth"),
    # BigQuery
    ("Unrecognized name: lifetime_value at [4:3]", "schema"),
    ("Not found: Dataset my-project:marts was not found in location EU", "model"),
    # Postgres / Redshift
    ('ERROR: column "lifetime_value" does not exist', "schema"),
    ('ERROR: relation "marts.users" does not exist', "model"),
    ("ERROR: permission denied for relation users", "auth"),
    # Network
    ("Error: read ECONNRESET", "destination_unavailable"),
    ("ETIMEDOUT", "destination_unavailable"),
    ("Request failed with status code 504", "destination_unavailable"),
]


@pytest.mark.parametrize(("message", "error_class"), REALISTIC)
def test_realistic_messages_land_in_their_class(message: str, error_class: str) -> None:
    cause = classify(message)
    assert cause.error_class == error_class
    assert cause.what_to_do


def test_invalid_grant_is_auth_with_what_to_do_and_a_link() -> None:
    cause = classify("invalid_grant: Token has been expired or revoked.")
    assert (cause.error_class, cause.code, cause.transient) == ("auth", "invalid_grant", False)
    assert "Reauthorize" in cause.what_to_do
    assert runbook_url(cause, {}, HIGHTOUCH_ERROR_CODES_URL) == HIGHTOUCH_ERROR_CODES_URL


def test_invalid_session_id_is_auth_from_salesforce() -> None:
    cause = classify("INVALID_SESSION_ID: Session expired or invalid")
    assert (cause.error_class, cause.code, cause.source) == ("auth", "INVALID_SESSION_ID", "salesforce")
    assert "Reconnect" in cause.what_to_do


def test_unable_to_lock_row_is_a_transient_unavailable_destination_with_the_retries_page() -> None:
    cause = classify("UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record or 1 records")
    assert (cause.error_class, cause.code, cause.transient) == ("destination_unavailable", "UNABLE_TO_LOCK_ROW", True)
    assert runbook_url(cause, {}, HIGHTOUCH_ERROR_CODES_URL) == "https://hightouch.com/docs/syncs/retries"


def test_a_missing_column_is_a_schema_error() -> None:
    cause = classify('ERROR: column "email_address" does not exist')
    assert (cause.error_class, cause.transient) == ("schema", False)


def test_a_code_is_a_whole_word() -> None:
    # Hightouch's DESTINATION_INVALID_GRANT is its own code, not the OAuth invalid_grant.
    assert classify("DESTINATION_INVALID_GRANT").code == "DESTINATION_INVALID_GRANT"
    assert classify("SALESFORCE_UNABLE_TO_LOCK_ROW").code == "SALESFORCE_UNABLE_TO_LOCK_ROW"


def test_a_message_recognised_by_its_wording_alone_carries_no_code() -> None:
    cause = classify("Salesforce said: Session expired or invalid")
    assert (cause.error_class, cause.code) == ("auth", None)


def test_no_message_or_an_unmatched_one_is_unknown_and_not_transient() -> None:
    for message in (None, "", "   ", "something odd happened"):
        assert classify(message) == UNKNOWN
    assert UNKNOWN.error_class == "unknown" and not UNKNOWN.transient and UNKNOWN.what_to_do


def test_only_rate_limits_and_unavailable_destinations_are_transient() -> None:
    assert [c for c in ERROR_CLASSES if is_transient(c)] == ["rate_limit", "destination_unavailable"]


def test_the_first_matching_row_wins() -> None:
    table = parse_causes(
        """
causes:
  - {class: model, match: [timeout], do: first, examples: [statement timeout]}
  - {class: destination_unavailable, match: [timeout], do: second, examples: [timeout]}
"""
    )
    assert classify("statement timeout", table).what_to_do == "first"


@given(st.text(max_size=300) | st.sampled_from([e for row in ROWS for e in row.examples]).map(lambda e: e[::-1]))
def test_any_text_gets_a_class_and_never_raises(message: str) -> None:
    cause = classify(message)
    assert cause.error_class in ERROR_CLASSES
    assert cause.transient is is_transient(cause.error_class)
    assert cause.what_to_do


def test_a_huge_message_is_classified_quickly() -> None:
    message = "x" * 1_000_000 + " ECONNRESET"
    started = time.monotonic()
    cause = classify(message)
    assert time.monotonic() - started < 2
    assert cause.error_class == "unknown"  # past the part of the text that is read


# -- runbooks ----------------------------------------------------------------------------


def test_a_runbook_for_the_code_beats_one_for_the_class() -> None:
    cause = classify("INVALID_SESSION_ID")
    runbooks = {"auth": "https://wiki/auth", "invalid_session_id": "https://wiki/sf-session"}
    assert runbook_url(cause, runbooks, HIGHTOUCH_ERROR_CODES_URL) == "https://wiki/sf-session"


def test_a_runbook_for_the_class_beats_the_tables_page() -> None:
    cause = classify("UNABLE_TO_LOCK_ROW")
    runbooks = {"destination_unavailable": "https://wiki/retry"}
    assert runbook_url(cause, runbooks, HIGHTOUCH_ERROR_CODES_URL) == "https://wiki/retry"


def test_without_a_runbook_or_a_page_the_default_doc_is_linked() -> None:
    cause = Cause(error_class="unknown", code=None, transient=False, what_to_do="x")
    assert runbook_url(cause, {"auth": "https://wiki/auth"}, "https://default") == "https://default"


def test_runbook_keys_are_classes_or_known_codes() -> None:
    assert runbook_key_problem("auth") is None
    assert runbook_key_problem("unknown") is None
    assert runbook_key_problem("UNABLE_TO_LOCK_ROW") is None
    assert runbook_key_problem("invalid_grant") is None
    assert runbook_key_problem("destination_invalid_grant") is None  # codes compare without case


def test_a_misspelt_runbook_key_is_named_with_a_suggestion() -> None:
    problem = runbook_key_problem("rate_limt")
    assert problem is not None
    assert "'rate_limt'" in problem and "did you mean rate_limit?" in problem


# -- the table's format ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{class: auth, match: [x], do: y, examples: [x], colour: red}", "causes[0]: unknown key 'colour'"),
        ("{class: nope, match: [x], do: y, examples: [x]}", "causes[0].class: expected one of"),
        ("{class: unknown, match: [x], do: y, examples: [x]}", "causes[0].class: expected one of"),
        ("{class: auth, regex: ['(unclosed'], do: y, examples: [x]}", "causes[0].regex: '(unclosed' is not a valid"),
        ("{class: auth, do: y, examples: [x]}", "causes[0]: a row needs at least one of codes, match, regex"),
        ("{class: auth, match: [x], do: y}", "causes[0].examples: give at least one"),
        ("{class: auth, match: [x], examples: [x]}", "causes[0].do: expected one line"),
        ("{class: auth, match: x, do: y, examples: [x]}", "causes[0].match: expected a list"),
        ("{class: auth, match: [x], do: y, examples: [x], doc: 'http://insecure'}", "causes[0].doc: expected an https"),
    ],
)
def test_a_broken_table_names_the_row_and_key(row: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^t\.yaml: ") as caught:
        parse_causes(f"causes:\n  - {row}\n", "t.yaml")
    assert message in str(caught.value)


def test_a_table_without_causes_is_refused() -> None:
    with pytest.raises(ValueError, match="top-level `causes:` list"):
        parse_causes("rows: []\n")


def test_the_table_is_read_on_first_use_not_at_import() -> None:
    code = "import triage.causes as c; print(c.known_causes.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
