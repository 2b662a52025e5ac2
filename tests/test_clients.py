"""The three API clients against responses-mocked endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import responses

from tests.fakes import ENV, HT, LINEAR, SLACK, T0, World, reply
from triage.errors import ApiError, AuthError, BadRequestError, ConfigError, NotFoundError, RateLimited
from triage.hightouch import HISTORY_SLICES, HightouchClient
from triage.http import HttpClient, RetryPolicy, WaitBudget
from triage.linear import LinearClient, Team
from triage.models import Run
from triage.slack import SlackClient


def http(name: str = "test") -> HttpClient:
    return HttpClient(
        name=name, secrets=[], budget=WaitBudget(60), policy=RetryPolicy(base_delay=0.01), sleep=lambda s: None
    )


@pytest.fixture
def hightouch() -> HightouchClient:
    return HightouchClient(http(), HT, ENV["HIGHTOUCH_API_KEY"])


# -- Hightouch ---------------------------------------------------------------


def test_list_syncs_reads_every_page_with_the_bearer_header(world: World, hightouch: HightouchClient) -> None:
    for i in range(250):
        world.hightouch.add_sync(str(i), f"sync-{i}")
    syncs = hightouch.list_syncs()
    assert [s.id for s in syncs] == [str(i) for i in range(250)]
    assert world.hightouch.requests == ["GET /syncs?offset=0", "GET /syncs?offset=100", "GET /syncs?offset=200"]


def test_without_a_time_bound_every_page_is_read_unless_pages_come_newest_first(
    world: World, hightouch: HightouchClient, runs_order: str
) -> None:
    world.hightouch.add_sync("1", "s")
    for run_id in range(1, 351):
        world.hightouch.add_run("1", run_id, "success")

    def reached_run_120(runs: list[Run]) -> bool:
        return any(r.id == "120" for r in runs)

    runs = hightouch.list_runs("1", enough=reached_run_120)
    pages = 3 if runs_order == "newest_first" else 4  # oldest first: run 120 proves nothing about later runs
    assert world.hightouch.runs_requests() == [f"GET /syncs/1/runs?offset={100 * page}" for page in range(pages)]
    assert len(runs) == min(350, 100 * pages)


def year_of_runs(world: World, every_minutes: int = 15, days: int = 365) -> list[int]:
    """Sync 1, run every `every_minutes` for a year (or `days`) before T0; the run ids, oldest first."""
    world.hightouch.add_sync("1", "s")
    count = days * 24 * 60 // every_minutes
    for index in range(count):
        world.hightouch.add_run("1", 1 + index, "success", minute=(index - count) * every_minutes)
    return list(range(1, count + 1))


def runs_at_or_before(cursor: str, wanted: int) -> Callable[[list[Run]], bool]:
    """`enough` as the tick asks it: `wanted` runs at or before the cursor run."""
    return lambda runs: sum(1 for r in runs if int(r.id) <= int(cursor)) >= wanted


def test_a_runs_read_is_bounded_by_time_whatever_order_the_api_lists_runs(
    world: World, hightouch: HightouchClient
) -> None:
    ids = year_of_runs(world)
    cursor = ids[-3]  # two runs came after the last tick
    cursor_at = T0 + timedelta(minutes=-3 * 15)
    runs = hightouch.list_runs("1", enough=runs_at_or_before(str(cursor), 5), after=cursor_at)
    assert len(world.hightouch.runs_requests()) <= 2  # not the 351 pages of the whole year
    got = {int(r.id) for r in runs}
    assert set(ids[-7:]) <= got  # the runs after the cursor, and the 5 an alert shows before it


def test_a_runs_read_reaches_back_in_longer_slices_for_a_sync_that_runs_rarely(
    world: World, hightouch: HightouchClient
) -> None:
    ids = year_of_runs(world, every_minutes=24 * 60)  # daily
    runs = hightouch.list_runs("1", enough=runs_at_or_before(str(ids[-1]), 5), after=T0 - timedelta(days=1))
    assert set(ids[-5:]) <= {int(r.id) for r in runs}
    assert len(world.hightouch.runs_requests()) <= 4  # since 6 hours before, then 18 hours, 3 days, 12 days before


def test_a_sync_with_a_short_history_stops_looking_back_after_a_few_slices(
    world: World, hightouch: HightouchClient
) -> None:
    world.hightouch.add_sync("1", "s")
    world.hightouch.add_run("1", 1, "failed")
    runs = hightouch.list_runs("1", enough=runs_at_or_before("1", 5), after=T0)
    assert [r.id for r in runs] == ["1"]
    assert len(world.hightouch.runs_requests()) == 1 + HISTORY_SLICES


def test_every_run_since_the_bound_is_read_across_pages(world: World, hightouch: HightouchClient) -> None:
    ids = year_of_runs(world, every_minutes=1, days=3)  # a sync that runs every minute, 250 runs since the cursor
    cursor = ids[-251]
    runs = hightouch.list_runs("1", enough=runs_at_or_before(str(cursor), 5), after=T0 - timedelta(minutes=251))
    assert set(ids[-256:]) <= {int(r.id) for r in runs}


def test_the_latest_run_of_a_long_history_costs_a_few_requests(world: World, hightouch: HightouchClient) -> None:
    ids = year_of_runs(world)
    assert hightouch.latest_run_id("1") == str(ids[-1])
    assert len(world.hightouch.requests) <= 3


def test_destination_and_model_names_are_fetched_once_per_id(world: World, hightouch: HightouchClient) -> None:
    world.hightouch.add_sync("1", "s")
    for _ in range(3):
        assert hightouch.destination_name("10") == "Salesforce Production"
        assert hightouch.model_name("20") == "Active contacts"
    assert world.hightouch.requests == ["GET /destinations/10", "GET /models/20"]


def test_many_names_wanted_are_read_from_a_page_of_their_list_and_the_rest_by_id(
    world: World, hightouch: HightouchClient
) -> None:
    """The names a storm's alerts show cost a page or two of the list, not a request each;
    the list is read only while it costs at most half of asking for each."""
    for n in range(150):
        world.hightouch.world.destinations[str(n)] = f"Destination {n}"
    wanted = ["3", "60", "120", "149", "missing"]
    hightouch.read_names("destinations", wanted)
    assert world.hightouch.requests == ["GET /destinations?offset=0", "GET /destinations?offset=100"]
    assert [hightouch.destination_name(i) for i in wanted[:4]] == [f"Destination {i}" for i in (3, 60, 120, 149)]
    assert hightouch.destination_name("missing") == "destination missing (not found)"
    assert world.hightouch.requests[2:] == ["GET /destinations/missing"]  # the one the list lacked


def test_a_list_page_that_names_none_of_them_is_the_last_read(world: World, hightouch: HightouchClient) -> None:
    """At most one request more than asking for each: paging goes on only while pages help."""
    for n in range(400):
        world.hightouch.world.destinations[str(n)] = f"Destination {n}"
    hightouch.read_names("destinations", ["350", "351", "352", "353"])
    assert world.hightouch.requests == ["GET /destinations?offset=0"]


def test_a_few_names_are_asked_for_by_id_and_a_list_that_fails_leaves_them_to_that(
    world: World, hightouch: HightouchClient
) -> None:
    world.hightouch.add_sync("1", "s")
    hightouch.read_names("destinations", ["10", "10", None, "11"])  # 2 ids: cheaper one by one
    assert world.hightouch.requests == []
    world.hightouch.faults["/models"] = [reply(500, {"message": "boom"})] * 10
    hightouch.read_names("models", ["20", "21", "22", "23"])
    assert world.hightouch.requests and all(r.startswith("GET /models?") for r in world.hightouch.requests)
    del world.hightouch.faults["/models"]
    assert hightouch.model_name("20") == "Active contacts"


def test_unknown_destination_is_named_not_fatal(world: World, hightouch: HightouchClient) -> None:
    assert hightouch.destination_name("999") == "destination 999 (not found)"


def test_runs_parse_tolerates_null_counts_numeric_ids_and_odd_items(hightouch: HightouchClient) -> None:
    body = {
        "data": [
            {"id": 7, "status": "FAILED", "createdAt": "2026-11-23T06:00:00Z", "failedRows": {"addedCount": None}},
            {"status": "failed"},  # no id: dropped
            "garbage",
            {"id": "8", "status": "success", "createdAt": "not a date"},
        ],
        "hasMore": False,
    }
    with responses.RequestsMock() as rsps:
        rsps.get(f"{HT}/syncs/1/runs", json=body)
        runs = hightouch.list_runs("1", enough=lambda runs: False)
    assert [(r.id, r.status) for r in runs] == [("7", "failed"), ("8", "success")]
    assert runs[0].failed.added is None
    assert runs[1].created_at is None


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthError), (403, AuthError), (404, NotFoundError), (422, BadRequestError), (400, BadRequestError)],
)
def test_hightouch_http_errors_are_typed(hightouch: HightouchClient, status: int, error: type[Exception]) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{HT}/syncs", status=status, json={"message": "nope"})
        with pytest.raises(error):
            hightouch.list_syncs()


def test_malformed_json_is_an_api_error(hightouch: HightouchClient) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{HT}/syncs", body="{not json")
        with pytest.raises(ApiError, match="not valid JSON"):
            hightouch.list_syncs()


def test_server_errors_are_retried_then_reported(hightouch: HightouchClient) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{HT}/syncs", status=503)
        with pytest.raises(ApiError, match="HTTP 503"):
            hightouch.list_syncs()
        assert len(rsps.calls) == RetryPolicy().max_attempts


# -- Slack -------------------------------------------------------------------


@pytest.fixture
def slack() -> SlackClient:
    return SlackClient(http(), SLACK, ENV["SLACK_BOT_TOKEN"])


def test_post_message_sends_blocks_text_and_no_mention_parsing(world: World, slack: SlackClient) -> None:
    posted = slack.post_message(
        "#data-alerts", "fallback", [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]
    )
    sent = world.slack.messages[0]
    assert posted.ts == sent["ts"] and posted.channel.startswith("C")  # Slack answers the channel's id
    assert sent["channel"] == "#data-alerts"
    assert sent["text"] == "fallback"
    assert sent["link_names"] is False
    assert sent["unfurl_links"] is False and sent["unfurl_media"] is False


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "is_archived"])
def test_channel_errors_name_the_channel(world: World, slack: SlackClient, code: str) -> None:
    world.slack.errors = [code]
    with pytest.raises(ConfigError, match=rf"'#data-alerts'.*{code}"):
        slack.post_message("#data-alerts", "t", [])


def test_invalid_auth_is_an_auth_error(world: World, slack: SlackClient) -> None:
    world.slack.errors = ["invalid_auth"]
    with pytest.raises(AuthError, match="SLACK_BOT_TOKEN"):
        slack.post_message("#data-alerts", "t", [])


def test_slack_500_is_not_retried_because_the_message_may_have_been_posted(slack: SlackClient) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{SLACK}/chat.postMessage", status=500, body="oops")
        with pytest.raises(ApiError):
            slack.post_message("#c", "t", [])
        assert len(rsps.calls) == 1


def test_slack_429_is_retried_because_nothing_was_posted(slack: SlackClient) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{SLACK}/chat.postMessage", status=429, headers={"Retry-After": "1"}, json={"ok": False})
        rsps.post(f"{SLACK}/chat.postMessage", json={"ok": True, "channel": "C1", "ts": "1.2"})
        assert slack.post_message("#c", "t", []).ts == "1.2"
        assert len(rsps.calls) == 2


@pytest.mark.parametrize("code", ["rate_limited", "ratelimited"])
def test_a_rate_limit_in_an_ok_false_answer_is_waited_out_not_a_failure(
    world: World, slack: SlackClient, code: str
) -> None:
    world.slack.errors = [code]  # Slack lists rate_limited for chat.postMessage and chat.update, on HTTP 200
    posted = slack.post_message("#data-alerts", "t", [])
    assert [m["ts"] for m in world.slack.messages] == [posted.ts]
    world.slack.errors = [code, code]
    slack.update_message(posted.channel, posted.ts, "edited", [])
    assert world.slack.messages[0]["text"] == "edited"


def test_a_slack_server_error_on_http_200_is_retried_only_where_that_is_safe(world: World, slack: SlackClient) -> None:
    world.slack.errors = ["fatal_error"]
    with pytest.raises(ApiError, match="fatal_error"):
        slack.post_message("#data-alerts", "t", [])  # it may have been posted: the history decides
    assert world.slack.messages == []
    posted = slack.post_message("#data-alerts", "t", [])
    world.slack.errors = ["request_timeout"]
    assert slack.permalink(posted.channel, posted.ts).endswith(posted.ts.replace(".", ""))


# -- Linear ------------------------------------------------------------------

TEAM = Team(id="team-1", key="DATA", name="Data")


@pytest.fixture
def linear() -> LinearClient:
    return LinearClient(http(), LINEAR, ENV["LINEAR_API_KEY"])


def test_linear_uses_the_bare_api_key_and_finds_the_team_by_key_or_name(world: World, linear: LinearClient) -> None:
    assert linear.find_team("DATA") == TEAM
    assert linear.find_team("data") == TEAM


def test_unknown_team_is_a_config_error_naming_it(world: World, linear: LinearClient) -> None:
    with pytest.raises(ConfigError, match=r"'NOPE'.*linear\.team"):
        linear.find_team("NOPE")


def test_issue_search_filters_by_team_and_open_states(linear: LinearClient) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(LINEAR, json={"data": {"issues": {"nodes": []}}})
        assert linear.find_open_issue(TEAM, "salesforce-contacts", "1234") is None
        sent = json.loads(rsps.calls[0].request.body or b"")
        assert rsps.calls[0].request.headers["Authorization"] == ENV["LINEAR_API_KEY"]
    assert sent["variables"] == {
        "teamId": "team-1",
        "name": "salesforce-contacts",
        "marker": "hightouch-triage sync-id 1234",
        "after": None,
    }
    query = " ".join(sent["query"].split())
    assert "team: {id: {eq: $teamId}}" in query
    assert 'state: {type: {nin: ["completed", "canceled", "duplicate"]}}' in query
    assert "containsIgnoreCase: $name" in query


def test_issue_create_sends_priority_2_for_high(world: World, linear: LinearClient) -> None:
    issue = linear.create_issue(
        TEAM, sync_id="7", title="Hightouch sync s failing repeatedly", description="body", priority=2, issue_id="u-1"
    )
    assert issue.identifier == "DATA-1"
    op, variables = world.linear.calls[0]
    assert op == "issueCreate"
    assert variables["input"] == {
        "id": "u-1",
        "teamId": "team-1",
        "title": "Hightouch sync s failing repeatedly",
        "description": "body\n\nhightouch-triage sync-id 7",
        "priority": 2,
    }


@pytest.mark.parametrize("status", [200, 400])
def test_graphql_errors_are_errors_whatever_the_http_status(linear: LinearClient, status: int) -> None:
    body = {"errors": [{"message": "Argument Validation Error", "extensions": {"type": "invalid input"}}]}
    with responses.RequestsMock() as rsps:
        rsps.post(LINEAR, status=status, json=body)
        with pytest.raises(ApiError, match="Argument Validation Error"):
            linear.find_open_issue(TEAM, "s", "1")


def test_graphql_authentication_error_is_an_auth_error(linear: LinearClient) -> None:
    body = {"errors": [{"message": "Authentication required", "extensions": {"type": "authentication error"}}]}
    with responses.RequestsMock() as rsps:
        rsps.post(LINEAR, status=400, json=body)
        with pytest.raises(AuthError, match="LINEAR_API_KEY"):
            linear.find_team("DATA")


def test_issue_create_is_not_retried_on_a_server_error(linear: LinearClient) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(LINEAR, status=502, body="bad gateway")
        with pytest.raises(ApiError):
            linear.create_issue(TEAM, sync_id="1", title="t", description="d", priority=2, issue_id="u")
        assert len(rsps.calls) == 1


def test_issue_search_is_retried_on_a_server_error(linear: LinearClient) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(LINEAR, status=502, body="bad gateway")
        rsps.post(LINEAR, json={"data": {"issues": {"nodes": []}}})
        assert linear.find_open_issue(TEAM, "s", "1") is None
        assert len(rsps.calls) == 2


def test_reply_helper_round_trips() -> None:
    status, headers, body = reply(201, {"a": 1})
    assert (status, headers["Content-Type"], json.loads(body)) == (201, "application/json", {"a": 1})


def test_parallel_sync_pages_cost_exactly_one_request_per_page(world: World) -> None:
    client = HightouchClient(http(), HT, ENV["HIGHTOUCH_API_KEY"], concurrency=4)
    for i in range(450):
        world.hightouch.add_sync(str(i), f"sync-{i}")
    syncs = client.list_syncs(expected=450)
    assert [s.id for s in syncs] == [str(i) for i in range(450)]
    assert sorted(world.hightouch.requests) == sorted(f"GET /syncs?offset={o}" for o in (0, 100, 200, 300, 400))


def test_parallel_sync_pages_follow_a_workspace_that_grew(world: World) -> None:
    client = HightouchClient(http(), HT, ENV["HIGHTOUCH_API_KEY"], concurrency=4)
    for i in range(320):
        world.hightouch.add_sync(str(i), f"sync-{i}")
    assert len(client.list_syncs(expected=150)) == 320
    assert len(world.hightouch.requests) == 4


def test_sync_pages_smaller_than_asked_fall_back_to_sequential_offsets(hightouch: HightouchClient) -> None:
    items = [{"id": str(i), "slug": f"s{i}"} for i in range(120)]
    with responses.RequestsMock() as rsps:
        for start in (0, 50, 100):
            chunk = items[start : start + 50]
            rsps.get(
                f"{HT}/syncs",
                match=[responses.matchers.query_param_matcher({"limit": "100", "offset": str(start), "orderBy": "id"})],
                json={"data": chunk, "hasMore": start + 50 < 120},
            )
        syncs = hightouch.list_syncs()
    assert [s.id for s in syncs] == [str(i) for i in range(120)]


def test_names_are_fetched_once_even_when_threads_race(world: World) -> None:
    client = HightouchClient(http(), HT, ENV["HIGHTOUCH_API_KEY"], concurrency=8)
    world.hightouch.add_sync("1", "s")
    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: client.destination_name("10"), range(32)))
    assert set(names) == {"Salesforce Production"}
    assert world.hightouch.requests == ["GET /destinations/10"]


def test_linear_ratelimited_error_on_http_200_is_waited_out_and_retried(linear: LinearClient) -> None:
    sleeps: list[float] = []
    linear.http._sleep = sleeps.append
    limited = {"errors": [{"message": "Rate limit exceeded", "extensions": {"type": "RATELIMITED"}}]}
    with responses.RequestsMock() as rsps:
        rsps.post(LINEAR, json=limited, headers={"X-RateLimit-Requests-Reset": "0"})
        rsps.post(LINEAR, json={"data": {"issues": {"nodes": []}}})
        assert linear.find_open_issue(TEAM, "s", "1") is None
    assert len(sleeps) == 1


def test_linear_rate_limit_past_the_budget_raises_rate_limited(linear: LinearClient) -> None:
    far = str(int((time.time() + 3600) * 1000))  # reset in an hour, epoch ms
    limited = {"errors": [{"message": "Rate limit exceeded", "extensions": {"type": "ratelimited"}}]}
    with responses.RequestsMock() as rsps:
        rsps.post(LINEAR, status=400, json=limited, headers={"X-RateLimit-Requests-Reset": far})
        with pytest.raises(RateLimited):
            linear.create_issue(TEAM, sync_id="1", title="t", description="d", priority=2, issue_id="u")
        assert len(rsps.calls) == 1


def test_torn_json_from_hightouch_is_retried(hightouch: HightouchClient) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{HT}/syncs", body='{"data": [{"id": 1, "sl')
        rsps.get(f"{HT}/syncs", json={"data": [{"id": 1, "slug": "a"}], "hasMore": False})
        assert [s.name for s in hightouch.list_syncs()] == ["a"]


def test_open_issue_by_identifier_ignores_closed_and_missing_issues(linear: LinearClient) -> None:
    def issue(state: str) -> dict[str, object]:
        return {
            "data": {"issue": {"id": "i", "identifier": "DATA-7", "title": "t", "url": "u", "state": {"type": state}}}
        }

    not_found = {"errors": [{"message": "Entity not found: Issue", "extensions": {"type": "invalid input"}}]}
    with responses.RequestsMock() as rsps:
        rsps.post(LINEAR, json=issue("started"))
        rsps.post(LINEAR, json=issue("completed"))
        rsps.post(LINEAR, json=not_found)
        assert linear.open_issue("DATA-7") is not None
        assert linear.open_issue("DATA-7") is None
        assert linear.open_issue("DATA-7") is None
