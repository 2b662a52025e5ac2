"""The rules of a tick, as plain data in and decisions out (no I/O)."""

from __future__ import annotations

from dataclasses import replace

from tests.factories import BASELINE, at, config, known, run, steady, sync
from triage.actions import Escalate
from triage.config import LinearConfig
from triage.decide import SyncDecision, decide_sync, enough_runs, plan_tick
from triage.fold import delivered, not_sent, sending
from triage.models import Incident, Outcome, Run, Sent, State, SyncState, outcome
from triage.plan import Facts, IncidentRules, plan
from triage.signature import signature

PENDING = Incident(started_at="2026-11-23T06:01:00Z", issue_pending=True)


def test_baseline_on_first_tick_sends_nothing_and_records_cursor_and_count() -> None:
    runs = [run(1, "success"), run(2, "failed"), run(3, "failed"), run(4, "failed")]
    decision = decide_sync(sync(), runs, None, BASELINE, config())
    assert decision.alert is None
    assert decision.escalation is None
    assert decision.state.cursor_run_id == "4"
    assert decision.state.consecutive_failures == 3
    assert decision.state.last_run_at == sync().last_run_at


def test_new_failed_run_gives_one_slack_alert() -> None:
    runs = [run(1, "success"), run(2, "failed", error="Salesforce said no")]
    decision = decide_sync(sync(), runs, known(1), steady(), config())
    assert decision.alert is not None
    assert decision.alert.run.id == "2"
    assert decision.alert.new_failures == 1
    assert decision.alert.run.error == "Salesforce said no"
    assert decision.state.cursor_run_id == "2"


def test_same_runs_again_give_nothing() -> None:
    runs = [run(1, "success"), run(2, "failed")]
    first = decide_sync(sync(), runs, known(1), steady(), config())
    again = decide_sync(sync(), runs, first.state, steady(10), config())
    assert again.alert is None
    assert again.escalation is None
    assert again.state == first.state


def test_two_new_failures_in_one_tick_give_one_message_that_says_two() -> None:
    runs = [run(1, "success"), run(2, "failed"), run(3, "failed", error="newest")]
    decision = decide_sync(sync(), runs, known(1), steady(), config())
    assert decision.alert is not None
    assert decision.alert.new_failures == 2
    assert decision.alert.run.id == "3"  # the context is the newest failure's
    assert decision.alert.run.error == "newest"


def test_third_consecutive_failure_escalates_to_linear() -> None:
    runs = [run(1, "failed"), run(2, "failed"), run(3, "failed")]
    decision = decide_sync(sync(), runs, known(2, failures=2), steady(), config(threshold=3))
    assert decision.state.consecutive_failures == 3
    assert decision.alert is not None
    assert decision.escalation is not None
    assert decision.state.issue_pending is True  # cleared only once the Linear step succeeded


def test_single_failure_after_successes_pings_slack_only() -> None:
    runs = [run(1, "success"), run(2, "success"), run(3, "failed")]
    decision = decide_sync(sync(), runs, known(2), steady(), config())
    assert decision.alert is not None
    assert decision.escalation is None
    assert decision.state.consecutive_failures == 1


def test_success_resets_the_count() -> None:
    runs = [run(1, "failed"), run(2, "failed"), run(3, "success")]
    decision = decide_sync(sync(), runs, known(2, failures=2), steady(), config())
    assert decision.state.consecutive_failures == 0
    assert decision.alert is None


def test_warning_counts_as_success() -> None:
    decision = decide_sync(sync(), [run(1, "failed"), run(2, "warning")], known(1, failures=4), steady(), config())
    assert decision.state.consecutive_failures == 0


def test_cancelled_run_leaves_the_count() -> None:
    runs = [run(1, "failed"), run(2, "failed"), run(3, "cancelled")]
    decision = decide_sync(sync(), runs, known(2, failures=2), steady(), config())
    assert decision.state.consecutive_failures == 2
    assert decision.state.cursor_run_id == "3"
    assert decision.alert is None


def test_cancelled_between_failures_still_reaches_the_threshold() -> None:
    runs = [run(1, "failed"), run(2, "failed"), run(3, "cancelled"), run(4, "failed")]
    decision = decide_sync(sync(), runs, known(2, failures=2), steady(), config(threshold=3))
    assert decision.state.consecutive_failures == 3
    assert decision.escalation is not None


def test_disabled_sync_gets_no_runs_request_and_no_action() -> None:
    paused = sync("7", disabled=True, last_run_at="2026-11-23T09:00:00Z")
    plan = plan_tick([paused], State(baseline_at="x", syncs={"7": known(1)}))
    assert plan.to_check == []
    assert plan.disabled == [paused]


def test_sync_whose_last_run_at_did_not_change_gets_no_runs_request() -> None:
    remembered = replace(known(5), last_run_at="2026-11-23T09:00:00Z")
    same = sync("1", last_run_at="2026-11-23T09:00:00Z")
    moved = sync("2", last_run_at="2026-11-23T09:15:00Z")
    plan = plan_tick([same, moved], State(baseline_at="x", syncs={"1": remembered, "2": remembered}))
    assert plan.unchanged == [same]
    assert plan.to_check == [moved]


def test_unchanged_sync_with_a_pending_run_is_checked_again() -> None:
    remembered = replace(known(5), last_run_at="2026-11-23T09:00:00Z", pending_run_id="6")
    plan = plan_tick([sync("1", last_run_at="2026-11-23T09:00:00Z")], State(baseline_at="x", syncs={"1": remembered}))
    assert [s.id for s in plan.to_check] == ["1"]


def test_unchanged_sync_with_a_pending_linear_step_is_checked_again() -> None:
    remembered = replace(known(5, failures=3), last_run_at="2026-11-23T09:00:00Z", incident=PENDING)
    plan = plan_tick([sync("1", last_run_at="2026-11-23T09:00:00Z")], State(baseline_at="x", syncs={"1": remembered}))
    assert [s.id for s in plan.to_check] == ["1"]


def test_syncs_deferred_last_tick_go_first() -> None:
    syncs = [sync(str(i), last_run_at=f"2026-11-23T09:0{i}:00Z") for i in range(1, 5)]
    plan = plan_tick(syncs, State(baseline_at="x", deferred=["3", "4"]))
    assert [s.id for s in plan.to_check] == ["3", "4", "1", "2"]


def test_sync_that_never_ran_is_remembered_without_a_runs_request() -> None:
    plan = plan_tick([sync("9", last_run_at=None)], State(baseline_at="x"))
    assert plan.to_check == []
    assert [s.id for s in plan.never_ran] == ["9"]


def test_run_still_processing_is_alerted_at_the_next_tick_exactly_once() -> None:
    cfg = config()
    first = decide_sync(sync(), [run(1, "success"), run(2, "processing")], known(1), steady(), cfg)
    assert first.alert is None
    assert first.state.cursor_run_id == "1"
    assert first.state.pending_run_id == "2"

    second = decide_sync(sync(), [run(1, "success"), run(2, "failed")], first.state, steady(15), cfg)
    assert second.alert is not None and second.alert.run.id == "2"
    assert second.state.pending_run_id is None

    third = decide_sync(sync(), [run(1, "success"), run(2, "failed")], second.state, steady(30), cfg)
    assert third.alert is None


def test_handling_stops_at_the_first_unsettled_run() -> None:
    runs = [run(1, "success"), run(2, "querying"), run(3, "failed")]
    decision = decide_sync(sync(), runs, known(1), steady(), config())
    assert decision.alert is None
    assert decision.state.cursor_run_id == "1"
    assert decision.state.pending_run_id == "2"


def test_sync_created_after_the_baseline_with_a_failed_run_is_alerted() -> None:
    # The previous tick ran at minute 100; the sync's runs all came after it.
    runs = [run(101, "success"), run(102, "failed")]
    decision = decide_sync(sync("55"), runs, None, steady(previous_tick=100), config())
    assert decision.alert is not None
    assert decision.alert.run.id == "102"


def test_sync_first_seen_later_treats_runs_before_the_previous_tick_as_baseline() -> None:
    runs = [run(10, "failed"), run(20, "failed"), run(120, "failed")]
    decision = decide_sync(sync("55"), runs, None, steady(previous_tick=100), config())
    assert decision.alert is not None
    assert decision.alert.new_failures == 1
    assert decision.alert.run.id == "120"
    assert decision.state.consecutive_failures == 3


def test_runs_are_sorted_locally_whatever_the_api_order() -> None:
    runs = [run(3, "failed"), run(1, "success"), run(2, "success")]
    decision = decide_sync(sync(), runs, known(1), steady(), config())
    assert decision.alert is not None and decision.alert.run.id == "3"
    assert decision.state.cursor_run_id == "3"
    assert decision.state.consecutive_failures == 1


def test_runs_with_equal_created_at_are_ordered_by_numeric_id() -> None:
    runs = [run(10, "success", minute=5), run(9, "failed", minute=5)]
    decision = decide_sync(sync(), runs, known(8), steady(), config())
    assert decision.state.cursor_run_id == "10"
    assert decision.state.consecutive_failures == 0


def test_finished_run_with_unknown_status_is_settled_but_not_a_failure() -> None:
    odd = replace(run(2, "success"), status="completed_with_surprises")
    decision = decide_sync(sync(), [run(1, "failed"), odd], known(1, failures=1), steady(), config())
    assert decision.alert is None
    assert decision.state.cursor_run_id == "2"
    assert decision.state.consecutive_failures == 1
    assert decision.unknown_statuses == ("completed_with_surprises",)


def test_unfinished_run_with_unknown_status_is_not_settled() -> None:
    odd = Run(id="2", status="warming_up", created_at=at(2))
    assert outcome(odd, ("failed",)) is Outcome.UNSETTLED


def test_aborted_counts_as_a_failure() -> None:
    decision = decide_sync(sync(), [run(1, "success"), run(2, "aborted")], known(1), steady(), config())
    assert decision.alert is not None


def test_alert_carries_the_previous_runs_and_whether_they_all_failed() -> None:
    runs = [run(i, "failed") for i in range(1, 8)]
    decision = decide_sync(sync(), runs, known(6, failures=6), steady(), config(window=5))
    assert decision.alert is not None
    assert [r.id for r in decision.alert.previous_runs] == ["2", "3", "4", "5", "6"]
    assert decision.alert.previous_all_failed is True

    mixed = [run(1, "failed"), run(2, "success"), run(3, "failed")]
    decision = decide_sync(sync(), mixed, known(2), steady(), config())
    assert decision.alert is not None
    assert decision.alert.previous_all_failed is False


def test_missing_cursor_run_falls_back_to_numeric_ids() -> None:
    runs = [run(5, "failed"), run(7, "failed")]  # run 6, the cursor, was deleted
    decision = decide_sync(sync(), runs, known(6), steady(), config())
    assert decision.alert is not None
    assert decision.alert.new_failures == 1
    assert decision.alert.run.id == "7"


def test_failed_linear_step_is_retried_without_a_new_slack_message() -> None:
    runs = [run(1, "failed"), run(2, "failed"), run(3, "failed")]
    pending = replace(known(3, failures=3), incident=PENDING)
    decision = decide_sync(sync(), runs, pending, steady(), config(threshold=3))
    assert decision.alert is None
    assert decision.escalation is not None
    assert decision.escalation.run.id == "3"
    assert decision.state.issue_pending is True


def test_pending_linear_step_is_dropped_once_the_sync_recovers() -> None:
    runs = [run(3, "failed"), run(4, "success")]
    pending = replace(known(3, failures=3), incident=PENDING)
    decision = decide_sync(sync(), runs, pending, steady(), config(threshold=3))
    assert decision.escalation is None
    assert decision.state.issue_pending is False


def test_baseline_never_escalates_even_past_the_threshold() -> None:
    runs = [run(i, "failed") for i in range(1, 6)]
    decision = decide_sync(sync(), runs, None, BASELINE, config(threshold=3))
    assert decision.escalation is None
    assert decision.state.issue_pending is False


def test_enough_runs_needs_the_cursor_and_the_history_window() -> None:
    cfg = config(window=2)
    remembered = known(5)
    assert not enough_runs([run(8), run(7), run(6)], remembered, steady(), cfg)
    assert not enough_runs([run(8), run(7), run(6), run(5)], remembered, steady(), cfg)
    assert enough_runs([run(8), run(7), run(6), run(5), run(4)], remembered, steady(), cfg)


def test_enough_runs_never_stops_early_when_nothing_was_settled_before() -> None:
    assert not enough_runs([run(2), run(1)], SyncState(name="x"), steady(), config(window=1))


def test_run_still_running_at_the_baseline_is_looked_at_again_and_alerted() -> None:
    # Found by the property test: the pending run was forgotten, and lastRunAt never moves.
    first = decide_sync(sync(), [run(1, "success"), run(2, "processing")], None, BASELINE, config())
    assert first.state.pending_run_id == "2"
    plan = plan_tick([sync()], State(baseline_at="x", syncs={"1": first.state}))
    assert [s.id for s in plan.to_check] == ["1"]
    second = decide_sync(sync(), [run(1, "success"), run(2, "failed")], first.state, steady(), config())
    assert second.alert is not None and second.alert.run.id == "2"


def test_run_left_unfinished_while_later_runs_settle_is_passed_over() -> None:
    # A zombie run (never finished) must not silence the sync forever.
    runs = [run(1, "success"), run(2, "processing"), run(3, "success"), run(4, "success"), run(5, "failed")]
    decision = decide_sync(sync(), runs, known(1), steady(), config())
    assert decision.alert is not None and decision.alert.run.id == "5"
    assert decision.state.pending_run_id is None
    assert decision.state.cursor_run_id == "5"


def test_run_followed_by_fewer_settled_runs_is_still_waited_for() -> None:
    runs = [run(1, "success"), run(2, "processing"), run(3, "success"), run(4, "failed")]
    decision = decide_sync(sync(), runs, known(1), steady(), config())
    assert decision.alert is None
    assert decision.state.pending_run_id == "2"


def test_failed_run_without_any_timestamp_is_ordered_by_its_id_and_alerted() -> None:
    undated = replace(run(102, "failed"), created_at=None, started_at=None, finished_at=None)
    decision = decide_sync(sync(), [run(100), run(101, "failed"), undated], known(101, failures=1), steady(), config())
    assert decision.alert is not None and decision.alert.run.id == "102"
    assert decision.state.cursor_run_id == "102"
    assert decision.state.consecutive_failures == 2


def test_opaque_run_ids_are_placed_after_a_vanished_cursor_by_its_time() -> None:
    def opaque(run_id: str, minute: int, status: str = "success") -> Run:
        return replace(run(minute, status), id=run_id)

    first = decide_sync(sync(), [opaque("b-run", 1), opaque("z-run", 2)], None, BASELINE, config())
    assert first.state.cursor_run_id == "z-run" and first.state.cursor_at is not None
    # Hightouch no longer lists the cursor run; a newer run with a "smaller" id failed.
    later = decide_sync(sync(), [opaque("a-run", 30, "failed")], first.state, steady(), config())
    assert later.alert is not None and later.alert.run.id == "a-run"
    again = decide_sync(sync(), [opaque("a-run", 30, "failed")], later.state, steady(), config())
    assert again.alert is None


def test_an_earlier_attempt_of_the_same_message_is_handed_to_its_post_and_forgotten_by_the_new_state() -> None:
    runs = [run(1, "success"), run(2, "failed")]
    attempt = Sent("#data-alerts", "failure", "2", "2026-11-23T06:05:00Z")
    other_run = Sent("#data-alerts", "failure", "7", "2026-11-23T06:05:00Z")
    before = known(1, sent=(attempt, other_run))
    decision = decide_sync(sync(), runs, before, steady(), config())
    assert decision.alert is not None
    assert decision.before == before  # attempts are recorded onto what stood: the executor looks them up
    assert decision.state.sent == ()  # once the decision is recorded, no attempt is open


def test_attempts_are_recorded_and_answered_with_pure_helpers() -> None:
    attempt = Sent("#data-alerts", "failure", "2", "2026-11-23T06:05:00Z")
    started = sending(known(1), attempt)
    assert started.sent == (attempt,)
    answered = delivered(started, attempt, "C0DATA1234", "1700.000100")
    assert answered.sent == (replace(attempt, channel_id="C0DATA1234", ts="1700.000100"),)
    assert not_sent(started, attempt).sent == ()


def test_one_cause_is_one_signature_whatever_the_numbers_and_warehouse_errors_ignore_the_destination() -> None:
    assert signature("Rate limit after 30 s (req 8f3a9c)", "d1") == signature(
        "Rate limit after 45 s (req 77b2e0)", "d1"
    )
    assert signature("Rate limit", "d1") != signature("Rate limit", "d2")
    warehouse = "SQL compilation error: object 'ORDERS' does not exist"
    assert signature(warehouse, "d1") == signature(warehouse, "d2")


def test_escalations_of_one_cause_past_the_outage_threshold_share_one_issue_per_team() -> None:
    def due(sync_id: str, error: str) -> SyncDecision:
        s = replace(sync(sync_id, f"sync-{sync_id}"), destination_id="sf")
        runs = [run(1, "failed"), run(2, "failed"), run(3, "failed", error=error)]
        opened = Incident(started_at="2026-11-23T06:01:00Z", cause=signature(error, "sf"), threads=())
        decision = decide_sync(s, runs, known(2, failures=2, incident=opened), steady(), config(threshold=3))
        assert decision.escalation is not None
        return decision

    same = [due(str(n), f"Warehouse down after {n} s") for n in range(1, 4)]
    alone = [due("7", "something else")]
    decisions = [*same, *alone]
    facts = {d.sync.id: Facts("Salesforce", "contacts", f"https://app/{d.sync.id}") for d in decisions}
    rules = IncidentRules.from_config(replace(config(), linear=LinearConfig(outage_threshold=3)))
    the_plan = plan(decisions, facts, State(), rules, at(60))
    escalations = [a for p in the_plan.syncs for a in p.actions if isinstance(a, Escalate)]
    grouped = {e.sync_id: e for e in escalations if e.group is not None}
    assert sorted(grouped) == ["1", "2", "3"]  # "7" keeps an issue of its own
    assert all(tuple(m.sync_id for m in e.members) == ("1", "2", "3") for e in grouped.values())
    # Joined the group in an earlier tick, the incidents already named the cause: not enough members now.
    rules = IncidentRules.from_config(replace(config(), linear=LinearConfig(outage_threshold=4)))
    assert not [a for p in plan(decisions, facts, State(), rules, at(60)).syncs for a in p.actions
                if isinstance(a, Escalate) and a.group]  # fmt: skip
