"""The state file and its journal: durable per sync, atomic per tick, never silently replaced."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from triage.errors import StateError
from triage.models import Incident, IssueRef, Sent, State, SyncState, Thread
from triage.state import StateStore, dump_state, load_text, parse_state


def sample() -> State:
    return State(
        baseline_at="2026-11-23T06:45:00Z",
        last_tick_at="2026-11-23T09:15:00Z",
        syncs={
            "1234": SyncState(
                name="salesforce-contacts",
                cursor_run_id="98765",
                last_run_at="2026-11-23T09:02:11Z",
                consecutive_failures=2,
                incident=Incident(started_at="2026-11-23T08:31:00Z", issue=IssueRef("DATA-42")),
            ),
            "99": SyncState(name="hubspot", cursor_run_id="5", last_run_at="2026-11-23T08:00:00Z"),
        },
    )


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.yaml")
    store.save(sample())
    assert store.load() == sample()


def test_file_matches_the_documented_format_sorted_and_compact(tmp_path: Path) -> None:
    text = dump_state(sample())
    doc = yaml.safe_load(text)
    assert doc["version"] == 2
    assert list(doc["syncs"]) == ["1234", "99"]
    assert doc["syncs"]["1234"] == {
        "name": "salesforce-contacts",
        "cursor_run_id": "98765",
        "last_run_at": "2026-11-23T09:02:11Z",
        "consecutive_failures": 2,
        "incident": {"started_at": "2026-11-23T08:31:00Z", "issue": {"identifier": "DATA-42"}},
    }
    assert "issue_pending" not in text and "pending_run_id" not in text
    assert '\n  "1234": {' in text  # ids stay strings; one line per sync, so a diff shows the syncs that changed
    assert len([line for line in text.splitlines() if line.startswith("  ")]) == 2


def test_recorded_sync_survives_a_crash_before_the_final_save(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.yaml")
    store.save(sample())
    store.record("1234", SyncState(name="salesforce-contacts", cursor_run_id="98770", consecutive_failures=3))
    # ... the process dies here; the next tick loads:
    loaded = StateStore(tmp_path / "state.yaml").load()
    assert loaded.syncs["1234"].cursor_run_id == "98770"
    assert loaded.syncs["99"] == sample().syncs["99"]


def test_save_folds_the_journal_away(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.yaml")
    store.record("1", SyncState(name="a"))
    assert store.journal_path.exists()
    store.save(store.load())
    assert not store.journal_path.exists()
    assert store.load().syncs["1"].name == "a"


def test_torn_last_journal_line_is_ignored(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.yaml")
    store.record("1", SyncState(name="a", cursor_run_id="7"))
    with open(store.journal_path, "a") as journal:
        journal.write('{"sync_id": "2", "state": {"na')
    assert store.load().syncs == {"1": SyncState(name="a", cursor_run_id="7")}


def test_corrupt_journal_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.yaml")
    store.journal_path.write_text("garbage\n" + '{"sync_id": "1", "state": {"name": "a"}}\n')
    with pytest.raises(StateError, match=r"state.journal:1"):
        store.load()


def test_no_state_file_means_baseline(tmp_path: Path) -> None:
    assert StateStore(tmp_path / "state.yaml").load().is_baseline


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nsyncs: [\n", "not valid YAML"),
        ("version: 3\nsyncs: {}\n", "unknown state version 3"),
        ("- a\n- b\n", "must be a mapping"),
        ("version: 1\nsyncs:\n  '1': {name: a, consecutive_failures: -1}\n", "consecutive_failures"),
        ("version: 1\nsyncs:\n  '1': {name: a, colour: red}\n", "unknown keys"),
    ],
)
def test_bad_state_file_is_an_error_and_stays_untouched(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(text)
    with pytest.raises(StateError, match=message):
        StateStore(path).load()
    assert path.read_text() == text


def test_save_leaves_no_temp_files(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.yaml")
    store.save(sample())
    store.save(sample())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.yaml"]


def test_unquoted_timestamps_written_by_hand_are_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text("version: 1\nlast_tick_at: 2026-11-23T09:15:00Z\nsyncs: {}\n")
    assert StateStore(path).load().last_tick_at == "2026-11-23T09:15:00Z"


def test_torn_journal_line_is_cut_before_the_next_record_so_no_record_is_lost(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.yaml")
    store.save(sample())
    store.record("1234", SyncState(name="salesforce-contacts", cursor_run_id="98770"))
    with open(store.journal_path, "a", encoding="utf-8") as journal:
        journal.write('{"state": {"name": "hubspot", "cursor_')  # the process died mid-write
    # The next tick records two syncs, then dies before folding the journal.
    next_tick = StateStore(tmp_path / "state.yaml")
    next_tick.load()
    next_tick.record("99", SyncState(name="hubspot", cursor_run_id="7"))
    next_tick.record("1234", SyncState(name="salesforce-contacts", cursor_run_id="98771"))
    loaded = StateStore(tmp_path / "state.yaml").load()
    assert loaded.syncs["99"].cursor_run_id == "7"
    assert loaded.syncs["1234"].cursor_run_id == "98771"


@pytest.mark.parametrize("text", ["", "\n", "# emptied by hand\n", "---\n"])
def test_empty_or_comment_only_state_file_stops_the_tick_and_is_left_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(text)
    with pytest.raises(StateError, match="empty"):
        StateStore(path).load()
    assert path.read_text() == text


def test_a_message_attempt_survives_the_journal_and_the_file_with_its_ts_or_without(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.yaml")
    store.save(sample())
    attempts = (
        Sent("#data-alerts", "failure", "98770", "2026-11-23T09:15:02Z", channel_id="C0DATA1234", ts="1700.000100"),
        Sent("#crm", "failure", "98770", "2026-11-23T09:15:03Z", thread_ts="1699.000200"),
    )
    known = replace(sample().syncs["1234"], sent=attempts)
    store.record("1234", known)
    assert store.load().syncs["1234"] == known  # from the journal
    state = store.load()
    store.save(state)
    assert store.load().syncs["1234"] == known  # from state.yaml
    saved = yaml.safe_load((tmp_path / "state.yaml").read_text())["syncs"]["1234"]["sent"]
    assert saved[1] == {"channel": "#crm", "kind": "failure", "run_id": "98770", "at": "2026-11-23T09:15:03Z",
                        "thread_ts": "1699.000200"}  # fmt: skip


ODD_NAMES = ['say "hi"', "back\\slash", "colon: and # hash", "ünïcödé ✓", "{braces} [list]", "- dash", "null", "yes"]


def test_the_fast_reader_and_any_yaml_parser_read_the_same_file() -> None:
    state = State(
        baseline_at="2026-11-01T00:00:00Z",
        syncs={str(n): SyncState(
            name=name,
            cursor_run_id=str(n),
            incident=Incident(started_at="2026-11-23T08:00:00Z", issue_pending=True) if n % 2 == 0 else None,
        )
               for n, name in enumerate(ODD_NAMES)},
        deferred=["3"],
    )  # fmt: skip
    text = dump_state(state)
    assert load_text(text) == yaml.safe_load(text)
    assert parse_state(load_text(text), "state.yaml") == state


def test_a_file_edited_by_hand_in_block_style_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(
        "version: 1\nbaseline_at: 2026-11-01T00:00:00Z\nsyncs:\n  '7':\n    name: contacts\n"
        "    cursor_run_id: '12'\n    consecutive_failures: 1\n"
    )
    assert StateStore(path).load().syncs == {
        "7": SyncState(name="contacts", cursor_run_id="12", consecutive_failures=1)
    }


def test_50000_syncs_round_trip(tmp_path: Path) -> None:
    syncs = {
        str(n): SyncState(name=f"sync-{n}", cursor_run_id=str(n * 7), last_run_at="2026-11-23T09:02:11Z")
        for n in range(50_000)
    }
    state = State(baseline_at="2026-11-01T00:00:00Z", syncs=syncs)
    store = StateStore(tmp_path / "state.yaml")
    store.save(state)
    assert store.load() == state


def test_a_version_1_file_loads_with_each_open_incident_gathered() -> None:
    text = (Path(__file__).parent / "fixtures" / "state_v1_incidents.yaml").read_text()
    state = parse_state(load_text(text), "state.yaml")
    first = state.syncs["1"].incident
    assert first == Incident(
        started_at="2026-11-23T08:31:00Z",
        threads=(Thread("#data-alerts", "C1", "1.5"),),
        issue=IssueRef("DATA-1", "https://linear.app/x/issue/DATA-1", "DATA"),
        escalated=True,  # it had an issue: its escalation was told, and is not told again
    )
    assert state.syncs["2"].incident is None  # healthy: the old issue is found again by its search
    third = state.syncs["3"].incident
    assert third is not None and third.issue_pending and third.issue_create_id == "u-1"
    assert state.storms["#data-alerts"].thread == Thread("#data-alerts", "C1", "2.5")
    assert parse_state(load_text(dump_state(state)), "state.yaml") == state
