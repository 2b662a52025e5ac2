"""Routing: which route a sync follows, and what it inherits."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from tests.factories import BASELINE, config, known, planned, posts, run, steady, sync
from tests.sandboxed import Workspace
from triage.actions import Escalate
from triage.cli import main
from triage.config import Config, parse_config
from triage.decide import TickContext, decide_sync
from triage.errors import ConfigError
from triage.models import Thread
from triage.routing import Target, matches, resolve_route

ROUTES = """
slack:
  channel: "#data-alerts"
linear:
  team: DATA
routes:
  - name: crm-production
    match:
      sync: ["sf-*", "1234"]
      destination: ["Salesforce*"]
      destination_type: [salesforce, hubspot]
      model: ["*contacts*"]
      tags: {env: production}
    slack:
      channel: ["#crm-alerts", "#crm-oncall"]
      mention: [S0123ABCD, U024BE7LH]
      dm_on_escalation: [U024BE7LH]
    linear:
      team: CRM
      escalation_threshold: 2
      priority: urgent
      labels: [hightouch]
  - name: staging
    match: {tags: {env: staging}}
    linear: {escalate: false}
  - name: legacy
    match: {sync: ["legacy-*"]}
    mute_until: 2026-12-31
  - name: hubspot
    match: {destination_type: [hubspot]}
    slack: {channel: "#marketing"}
"""


def cfg(text: str = ROUTES) -> Config:
    return parse_config(text, Path("config.yaml"))


def target(name: str = "sf-contacts", sync_id: str = "1", tags: dict[str, str] | None = None, **kw: str) -> Target:
    base = sync(sync_id=sync_id, name=name)
    base = replace(base, tags=tuple(sorted((tags or {}).items())))
    return Target(
        base,
        destination=kw.get("destination", "Salesforce Production"),
        destination_type=kw.get("destination_type", "salesforce"),
        model=kw.get("model", "Active contacts"),
    )


PROD = {"env": "production"}


def test_a_sync_matching_every_key_takes_the_route_and_its_overrides() -> None:
    route = resolve_route(target(tags=PROD), cfg())
    assert route.name == "crm-production"
    assert route.channels == ("#crm-alerts", "#crm-oncall")
    assert route.mentions == ("S0123ABCD", "U024BE7LH")
    assert route.dm_on_escalation == ("U024BE7LH",)
    assert (route.team, route.escalation_threshold, route.priority, route.labels) == (
        "CRM",
        2,
        "urgent",
        ("hightouch",),
    )
    assert route.escalate is True  # not overridden: the default


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"name": "hs-contacts"}, "sync glob"),
        ({"destination": "HubSpot"}, "destination glob"),
        ({"destination_type": "iterable"}, "destination type"),
        ({"model": "Deals"}, "model glob"),
        ({"tags": {"env": "staging"}}, "tag value"),
        ({"tags": {}}, "missing tag"),
    ],
)
def test_every_given_key_must_fit(change: dict[str, object], why: str) -> None:
    kw: dict[str, object] = {"tags": PROD, **change}
    assert not matches(cfg().routes[0].match, target(**kw)), why  # type: ignore[arg-type]


def test_in_a_list_any_item_fits_and_ids_match_exactly() -> None:
    match = cfg().routes[0].match
    assert matches(match, target(name="anything", sync_id="1234", tags=PROD))  # by id
    assert matches(match, target(destination_type="HubSpot", tags=PROD))  # any type, any case
    assert matches(match, target(destination="salesforce (EU)", tags=PROD))  # globs ignore case


def test_the_first_matching_route_wins_and_no_match_means_the_defaults() -> None:
    config = cfg()
    staging_hubspot = target(
        name="hs-deals", destination="HubSpot", destination_type="hubspot", tags={"env": "staging"}
    )
    assert resolve_route(staging_hubspot, config).name == "staging"  # also fits `hubspot`, listed later
    route = resolve_route(target(name="other", destination="Braze", destination_type="braze"), config)
    assert route.name == "default"
    assert (route.channels, route.team, route.escalation_threshold, route.priority) == (
        ("#data-alerts",),
        "DATA",
        3,
        "high",
    )


def test_overrides_are_key_by_key() -> None:
    route = resolve_route(target(name="hs", destination="HubSpot", destination_type="hubspot"), cfg())
    assert route.name == "hubspot"
    assert route.channels == ("#marketing",)
    assert route.team == "DATA" and route.escalate is True  # inherited


def test_mute_until_holds_through_that_day() -> None:
    route = resolve_route(target(name="legacy-orders"), cfg())
    assert route.muted(date(2026, 12, 31)) and not route.muted(date(2027, 1, 1))
    assert resolve_route(target(name="legacy-x"), cfg(ROUTES.replace("mute_until: 2026-12-31", "mute: true"))).muted(
        date(2999, 1, 1)
    )


def test_a_muted_route_posts_nothing_and_escalates_nothing_but_state_advances() -> None:
    runs = [run(1), run(2, "failed"), run(3, "failed"), run(4, "failed")]
    ctx = TickContext(baseline=False, previous_tick_at=None, today=date(2026, 12, 1))
    decision = decide_sync(sync(name="legacy-orders"), runs, known(1), ctx, cfg())
    assert decision.muted and planned(decision, cfg()) == () and decision.escalation is None
    assert decision.state.cursor_run_id == "4" and decision.state.consecutive_failures == 3
    later = TickContext(baseline=False, previous_tick_at=None, today=date(2027, 1, 2))
    again = decide_sync(sync(name="legacy-orders"), runs, decision.state, later, cfg())
    assert planned(again, cfg()) == ()  # nothing alerted retroactively once the mute ends


def test_posts_go_to_every_channel_with_mentions_and_dms_come_once_at_the_threshold() -> None:
    prod = replace(sync(name="sf-contacts"), tags=(("env", "production"),))
    facts = Target(prod, destination="Salesforce", destination_type="salesforce", model="contacts")
    first = decide_sync(prod, [run(1), run(2, "failed")], known(1), steady(), cfg(), facts)
    people = ("S0123ABCD", "U024BE7LH")
    assert posts(first, cfg()) == [("#crm-alerts", "open", people), ("#crm-oncall", "open", people)]
    # The first messages went out: the incident has its threads.
    assert first.state.incident is not None
    told = replace(
        first.state,
        incident=replace(
            first.state.incident,
            threads=(
                Thread("#crm-alerts", "C1", "1.1"),
                Thread("#crm-oncall", "C2", "2.1"),
            ),
        ),
    )
    second = decide_sync(prod, [run(2, "failed"), run(3, "failed")], told, steady(), cfg(), facts)
    assert posts(second, cfg()) == [  # crossing 2: the issue, the DM, then the escalation replies
        ("U024BE7LH", "dm", ()),
        ("#crm-alerts", "escalation", people),
        ("#crm-oncall", "escalation", people),
    ]
    (escalate,) = [a for a in planned(second, cfg()) if isinstance(a, Escalate)]
    assert (escalate.team, escalate.priority, escalate.labels) == ("CRM", 1, ("hightouch",))
    third = decide_sync(prod, [run(3, "failed"), run(4, "failed")], second.state, steady(), cfg(), facts)
    assert posts(third, cfg()) == [("#crm-alerts", "repeat", ()), ("#crm-oncall", "repeat", ())]
    assert third.escalation is not None  # searched every time; nobody pinged again


def test_a_route_that_never_escalates() -> None:
    staging = replace(sync(name="x"), tags=(("env", "staging"),))
    runs = [run(1, "failed"), run(2, "failed"), run(3, "failed"), run(4, "failed"), run(5, "failed")]
    base = decide_sync(staging, runs[:4], None, BASELINE, cfg())
    decision = decide_sync(staging, runs, base.state, steady(), cfg())
    assert decision.state.consecutive_failures == 5
    assert posts(decision, cfg()) and decision.escalation is None and not decision.state.issue_pending


def test_without_routes_everything_follows_the_defaults() -> None:
    decision = decide_sync(sync(), [run(1), run(2, "failed")], known(1), steady(), config())
    assert posts(decision) == [("#data-alerts", "open", ())] and decision.route.name == "default"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routes:\n  - match: {colour: red}\n", r"config.yaml:2: routes\[0\].match.colour: unknown key"),
        (
            "routes:\n  - name: a\n    match: {sync: ['sf-[']}\n",
            r"config.yaml:3: routes\[0\] \(a\).match.sync: bad glob",
        ),
        (
            "routes:\n  - slack: {mention: [bob]}\n",
            r"config.yaml:2: routes\[0\].slack.mention: 'bob' is not a Slack user-group",
        ),
        ("routes:\n  - slack: {dm_on_escalation: [S0123]}\n", r"routes\[0\].slack.dm_on_escalation: 'S0123' is not"),
        ("routes:\n  - linear: {escalate: maybe}\n", r"routes\[0\].linear.escalate: expected true or false"),
        ("routes:\n  - mute_until: soon\n", r"routes\[0\].mute_until: expected a date"),
        ("routes:\n  - linear: {priority: sky}\n", r"routes\[0\].linear.priority: expected one of"),
        ("routes: {a: 1}\n", r"config.yaml:1: routes: expected a list of routes"),
    ],
)
def test_bad_routes_are_config_errors_naming_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cfg(text)


def test_a_past_mute_until_is_only_a_warning_naming_the_route(caplog: pytest.LogCaptureFixture) -> None:
    config = cfg("routes:\n  - name: old\n    mute_until: 2020-01-01\n")
    assert config.routes[0].mute_until == date(2020, 1, 1)
    assert "routes[0] (old): mute_until 2020-01-01 is past" in caplog.text


def test_routes_command_shows_where_each_sync_would_go(workspace: Workspace) -> None:
    world = workspace.world
    world.add_sync("1", "sf-contacts", destination="Salesforce", tags={"env": "production"})
    world.add_sync("2", "hs-deals", destination="HubSpot", tags={"env": "staging"})
    world.add_sync("3", "legacy-users", destination="Braze")
    world.add_sync("4", "paused", disabled=True)
    workspace.config.write_text(ROUTES)
    out = io.StringIO()
    env = {name: workspace.env[name] for name in ("HIGHTOUCH_API_KEY", "HIGHTOUCH_API_URL")}  # nothing else
    code = main(["routes", "--config", str(workspace.config)], environ=env, stdout=out, sleep=lambda s: None)
    assert code == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        *["sync", "id", "route", "channels", "mentions", "team", "threshold", "escalate", "muted", "until"]
    ]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"sf-contacts", "hs-deals", "legacy-users"}  # the paused sync is not listed
    assert rows["hs-deals"].split()[2:] == ["staging", "#data-alerts", "-", "-", "-", "no", "-"]
    assert rows["legacy-users"].split()[2:] == ["legacy", "#data-alerts", "-", "DATA", "3", "yes", "2026-12-31"]
    assert rows["sf-contacts"].split()[2:5] == ["crm-production", "#crm-alerts,", "#crm-oncall"]
    only = io.StringIO()
    assert main(["routes", "--config", str(workspace.config), "--sync", "2"], environ=env, stdout=only) == 0
    assert len(only.getvalue().splitlines()) == 3


def test_a_label_missing_in_the_routes_team_holds_that_sync_and_names_the_label(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    world = workspace.world
    world.add_label("hightouch")  # a workspace label: any team may use it
    workspace.config.write_text(
        "linear: {escalation_threshold: 1, labels: [hightouch]}\n"
        "routes:\n  - name: tagged\n    match: {sync: [b]}\n    linear: {labels: [hightouch, nope]}\n"
    )
    for sync_id, name in (("1", "a"), ("2", "b")):
        world.add_sync(sync_id, name)
        world.add_run(sync_id, "success")
    workspace.tick()
    for sync_id in "12":
        world.add_run(sync_id, "failed")
    code, _ = workspace.tick()
    assert code == 2
    assert "route 'tagged': Linear label 'nope' not found in team DATA" in capsys.readouterr().err
    (issue,) = world.linear_issues  # sync a's, with the workspace label
    assert issue["labelIds"] == ["label-1"]
    assert workspace.saved()["syncs"]["2"]["incident"]["issue_pending"] is True  # sync b's waits for the fix
