"""Linear GraphQL client: find the team, find an open issue about a sync, create one.

GraphQL reports errors in an `errors` array on HTTP 200 as well as 400, so
every response is inspected for it whatever its status.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Any

import requests

from triage.errors import ApiError, AuthError, ConfigError, NotFoundError
from triage.http import HttpClient, Verdict, json_verdict, parse_retry_after, parsed_json

# Keys are typed by people: `team: data` finds DATA.
TEAM_QUERY = """
query Team($key: String!) {
  teams(filter: {or: [{key: {eqIgnoreCase: $key}}, {name: {eqIgnoreCase: $key}}]}) {
    nodes { id key name }
  }
}
"""

# The deterministic `issues` filter, not the fuzzy, tightly rate-limited `searchIssues`.
# Every page is read: a long list of issues naming a longer name (`crm-contacts` for
# `contacts`) must not hide the one that names this sync. The marker finds the tool's
# own issue even when its name was renamed, cut or escaped on the way.
OPEN_ISSUES_QUERY = """
query OpenIssues($teamId: ID!, $name: String!, $marker: String!, $after: String) {
  issues(first: 50, after: $after, filter: {
    team: {id: {eq: $teamId}},
    state: {type: {nin: ["completed", "canceled", "duplicate"]}},
    or: [
      {title: {containsIgnoreCase: $name}},
      {description: {containsIgnoreCase: $name}},
      {description: {contains: $marker}}
    ]
  }) {
    nodes { id identifier title description url archivedAt trashed state { type } team { key } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

# One search for many syncs (an outage's members): the same filter, one `or` clause per
# name and marker, so a 1,000-sync outage costs a few requests, not 1,000.
OPEN_ISSUES_OF_QUERY = """
query OpenIssuesOf($filter: IssueFilter!, $after: String) {
  issues(first: 50, after: $after, filter: $filter) {
    nodes { id identifier title description url archivedAt trashed state { type } team { key } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
SYNCS_PER_SEARCH = 25  # each adds three clauses to the filter: keep a query's complexity modest

ISSUE_QUERY = """
query Issue($id: String!) {
  issue(id: $id) { id identifier title url archivedAt trashed state { type } team { id key } }
}
"""

# The team's labels and the workspace's (which belong to no team), matched by name here.
LABELS_QUERY = """
query Labels($teamId: ID!) {
  issueLabels(first: 250, filter: {or: [{team: {id: {eq: $teamId}}}, {team: {null: true}}]}) {
    nodes { id name }
  }
}
"""

# Past this many pages of open issues naming one sync, something is wrong: stop, create nothing.
MAX_SEARCH_PAGES = 20

CLOSED_STATES = ("completed", "canceled", "duplicate")

# A team's "completed" states, in the order the team's board shows them.
DONE_STATES_QUERY = """
query DoneStates($teamId: ID!) {
  workflowStates(filter: {team: {id: {eq: $teamId}}, type: {eq: "completed"}}) {
    nodes { id name position }
  }
}
"""

CLOSE_MUTATION = """
mutation Close($id: String!, $stateId: String!) {
  issueUpdate(id: $id, input: {stateId: $stateId}) { success }
}
"""

COMMENT_MUTATION = """
mutation Comment($input: CommentCreateInput!) {
  commentCreate(input: $input) { success }
}
"""

CREATE_MUTATION = """
mutation CreateIssue($input: IssueCreateInput!) {
  issueCreate(input: $input) {
    success
    issue { id identifier title url team { key } }
  }
}
"""


@dataclass(frozen=True)
class Team:
    id: str
    key: str
    name: str


@dataclass(frozen=True)
class Issue:
    id: str
    identifier: str
    title: str
    url: str
    open: bool = True  # not completed, canceled or duplicate, nor archived or trashed
    team: str | None = None  # the team's key
    team_id: str | None = None


def marker(sync_id: str) -> str:
    """A line the tool puts in every issue it creates: a stable key for the sync that
    survives renames and Linear's Markdown round trip (letters, digits, '-' and spaces)."""
    return f"hightouch-triage sync-id {sync_id}"


def _others(text: str, key: str) -> bool:
    """Whether `text` is an issue this tool wrote for other syncs: it carries their markers and
    not `key` (this sync's). Naming this sync there — as a model, inside an error — does not
    make it this sync's issue; an issue a person filed (no marker) naming it does."""
    return "hightouch-triage sync-id " in text and not mentions(text, key)


def mentions(text: str, name: str) -> bool:
    """Whether `text` names the sync as a whole word: `contacts` is not `salesforce-contacts`."""
    pattern = rf"(?<![\w-]){re.escape(name)}(?![\w-])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


class LinearClient:
    def __init__(self, http: HttpClient, url: str, api_key: str) -> None:
        self.http = http
        self.url = url
        # Personal API keys go bare; OAuth tokens with "Bearer " (kept if the user set it).
        self._headers = {"Authorization": api_key, "Content-Type": "application/json"}

    def find_team(self, key_or_name: str) -> Team:
        data = self._graphql("teams", TEAM_QUERY, {"key": key_or_name}, idempotent=True)
        nodes = (data.get("teams") or {}).get("nodes") or []
        wanted = key_or_name.lower()
        for node in nodes:
            if wanted in (str(node.get("key", "")).lower(), str(node.get("name", "")).lower()):
                return Team(id=str(node["id"]), key=str(node.get("key")), name=str(node.get("name")))
        raise ConfigError(
            f"Linear team {key_or_name!r} not found (check linear.team in config.yaml: a team key or name)"
        )

    def find_open_issue(self, team: Team, sync_name: str, sync_id: str) -> Issue | None:
        """An open issue of the team that names the sync as a whole word, or carries the
        tool's marker for it; every page of the search is read."""
        key = marker(sync_id)
        after: str | None = None
        for _ in range(MAX_SEARCH_PAGES):
            variables = {"teamId": team.id, "name": sync_name, "marker": key, "after": after}
            issues = self._graphql("issues", OPEN_ISSUES_QUERY, variables, idempotent=True).get("issues") or {}
            for node in issues.get("nodes") or []:
                issue = _issue(node)
                text = f"{node.get('title') or ''}\n{node.get('description') or ''}"
                if issue.open and (mentions(text, key) or (mentions(text, sync_name) and not _others(text, key))):
                    return issue
            page = issues.get("pageInfo") or {}
            after = page.get("endCursor")
            if not page.get("hasNextPage") or not after:
                return None
        raise ApiError(
            f"Linear issues: more than {MAX_SEARCH_PAGES} pages of open issues name {sync_name!r}; "
            "not creating another one"
        )

    def find_open_issues(self, team: Team, syncs: list[tuple[str, str]]) -> dict[str, Issue]:
        """`find_open_issue` for many syncs ((name, id) each) in a few requests: each sync's
        open issue in the team, by the same rules, for those that have one."""
        found: dict[str, Issue] = {}
        for start in range(0, len(syncs), SYNCS_PER_SEARCH):
            chunk = syncs[start : start + SYNCS_PER_SEARCH]
            clauses: list[dict[str, Any]] = []
            for name, sync_id in chunk:
                clauses += [
                    {"title": {"containsIgnoreCase": name}},
                    {"description": {"containsIgnoreCase": name}},
                    {"description": {"contains": marker(sync_id)}},
                ]
            issue_filter = {
                "team": {"id": {"eq": team.id}},
                "state": {"type": {"nin": list(CLOSED_STATES)}},
                "or": clauses,
            }
            after: str | None = None
            for _ in range(MAX_SEARCH_PAGES):
                variables = {"filter": issue_filter, "after": after}
                issues = self._graphql("issues", OPEN_ISSUES_OF_QUERY, variables, idempotent=True).get("issues") or {}
                for node in issues.get("nodes") or []:
                    issue = _issue(node)
                    text = f"{node.get('title') or ''}\n{node.get('description') or ''}"
                    for name, sync_id in chunk:
                        key = marker(sync_id)
                        if sync_id in found or not issue.open:
                            continue
                        if mentions(text, key) or (mentions(text, name) and not _others(text, key)):
                            found[sync_id] = issue
                page = issues.get("pageInfo") or {}
                after = page.get("endCursor")
                if not page.get("hasNextPage") or not after:
                    break
            else:
                raise ApiError(
                    f"Linear issues: more than {MAX_SEARCH_PAGES} pages of open issues name an outage's syncs"
                )
        return found

    def issue(self, id_or_identifier: str) -> Issue | None:
        """The issue with this id (a UUID) or identifier (DATA-42); None if it does not exist."""
        try:
            data = self._graphql("issue", ISSUE_QUERY, {"id": id_or_identifier}, idempotent=True)
        except NotFoundError:
            return None
        node = data.get("issue")
        return _issue(node) if isinstance(node, dict) else None

    def open_issue(self, identifier: str) -> Issue | None:
        """The issue with this identifier if it exists and is still open."""
        issue = self.issue(identifier)
        return issue if issue is not None and issue.open else None

    def comment(self, issue_id: str, body: str, comment_id: str | None = None) -> None:
        """Add a Markdown comment to an issue (by its id). With `comment_id` (a UUID the caller
        derives from what the comment is about), sending it again is harmless: Linear answers
        that it exists, and that counts as done — so a tick that died after the comment, or
        whose answer was lost, never comments twice."""
        payload = {"issueId": issue_id, "body": body, **({"id": comment_id} if comment_id else {})}
        try:
            data = self._graphql("commentCreate", COMMENT_MUTATION, {"input": payload}, idempotent=False)
        except ApiError as exc:
            if comment_id and "already exists" in str(exc):
                return
            raise
        if not (data.get("commentCreate") or {}).get("success"):
            raise ApiError("Linear commentCreate: success was false")

    def close(self, issue_id: str, team_id: str) -> None:
        """Move an issue to its team's first "completed" state. Idempotent: closing twice is closed."""
        data = self._graphql("workflowStates", DONE_STATES_QUERY, {"teamId": team_id}, idempotent=True)
        nodes = [n for n in (data.get("workflowStates") or {}).get("nodes") or [] if isinstance(n, dict)]
        if not nodes:
            raise ApiError(f"Linear workflowStates: team {team_id} has no completed state")
        first = min(nodes, key=lambda n: float(n.get("position") or 0))
        result = self._graphql(
            "issueUpdate", CLOSE_MUTATION, {"id": issue_id, "stateId": str(first["id"])}, idempotent=True
        )
        if not (result.get("issueUpdate") or {}).get("success"):
            raise ApiError("Linear issueUpdate: success was false")

    def labels(self, team: Team) -> dict[str, str]:
        """Label ids by lower-cased name: the team's labels and the workspace's."""
        data = self._graphql("issueLabels", LABELS_QUERY, {"teamId": team.id}, idempotent=True)
        nodes = (data.get("issueLabels") or {}).get("nodes") or []
        return {str(n.get("name", "")).lower(): str(n.get("id")) for n in nodes if isinstance(n, dict)}

    def create_issue(
        self,
        team: Team,
        *,
        sync_id: str | tuple[str, ...],
        title: str,
        description: str,
        priority: int,
        issue_id: str,
        label_ids: tuple[str, ...] = (),
    ) -> Issue:
        """Create the issue with the id chosen (and recorded) before the first attempt, so an
        answer lost on the way can be looked up by that id instead of guessed at. It ends with
        the marker line of each sync it is about (one, or an outage's many)."""
        markers = "\n".join(marker(s) for s in ((sync_id,) if isinstance(sync_id, str) else sync_id))
        payload = {
            "id": issue_id,
            "teamId": team.id,
            "title": title,
            "description": f"{description}\n\n{markers}",
            "priority": priority,
        }
        if label_ids:
            payload["labelIds"] = list(label_ids)
        data = self._graphql("issueCreate", CREATE_MUTATION, {"input": payload}, idempotent=False)
        result = data.get("issueCreate") or {}
        if not result.get("success") or not isinstance(result.get("issue"), dict):
            raise ApiError("Linear issueCreate: success was false")
        return _issue(result["issue"])

    def _graphql(self, operation: str, query: str, variables: dict[str, Any], *, idempotent: bool) -> dict[str, Any]:
        response = self.http.request(
            "POST",
            self.url,
            endpoint=operation,
            idempotent=idempotent,
            headers=self._headers,
            json={"query": query, "variables": variables},
            classify=linear_verdict,
        )
        try:
            body = parsed_json(response)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if response.status_code in (401, 403):
                raise AuthError(f"Linear {operation}: HTTP {response.status_code}: LINEAR_API_KEY was refused")
            raise ApiError(f"Linear {operation}: HTTP {response.status_code}, response is not JSON")
        errors = body.get("errors")
        if errors:
            raise _classify(operation, errors, response.status_code)
        if response.status_code >= 400:
            raise ApiError(f"Linear {operation}: HTTP {response.status_code}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise ApiError(f"Linear {operation}: response has no data")
        return data


def linear_verdict(response: requests.Response) -> Verdict:
    """Linear signals rate limits as HTTP 429 or as a GraphQL error of type RATELIMITED
    (on HTTP 200 or 400); either proves the request was not carried out."""
    verdict = json_verdict(response)
    if verdict.retry == "rate_limited":
        return replace(verdict, retry_after=verdict.retry_after or _reset_after(response))
    if verdict.retry is not None:
        return verdict
    try:
        body = parsed_json(response)
    except ValueError:
        return verdict
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors if isinstance(errors, list) else []:
        if _error_kind(error) == "ratelimited":
            return Verdict("rate_limited", _reset_after(response), "rate limited (GraphQL RATELIMITED)")
    return verdict


def _error_kind(error: Any) -> str:
    """A GraphQL error's extensions.type (or code), normalised: "authentication error" → "authenticationerror"."""
    extensions = (error.get("extensions") if isinstance(error, dict) else None) or {}
    kind = str(extensions.get("type") or extensions.get("code") or "")
    return kind.lower().replace(" ", "").replace("_", "")


def _reset_after(response: requests.Response) -> float | None:
    """Seconds until Linear's rate-limit window resets (Retry-After, or the reset timestamp)."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    for header in ("X-RateLimit-Requests-Reset", "X-RateLimit-Complexity-Reset"):
        try:
            reset = float(response.headers.get(header, ""))
        except ValueError:
            continue
        if reset > 1e11:  # epoch milliseconds (Linear's documented unit); else seconds
            reset /= 1000
        return max(0.0, reset - time.time())
    return None


def _classify(operation: str, errors: Any, status: int) -> ApiError:
    """The error a GraphQL `errors` answer stands for (rate limits never get here: the
    HTTP policy waits them out or raises RateLimited)."""
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    extensions = first.get("extensions") or {}
    kind = _error_kind(first)
    message = str(extensions.get("userPresentableMessage") or first.get("message") or errors)[:300]
    text = f"Linear {operation}: {message}"
    if "authentication" in kind or status == 401:
        return AuthError(f"{text} (LINEAR_API_KEY)")
    if str(first.get("message") or "").startswith("Entity not found"):
        # Linear's answer for a missing (deleted) object: {"message": "Entity not found: Issue",
        # "extensions": {"code": "INPUT_ERROR", "userPresentableMessage": "Could not find ..."}}
        return NotFoundError(text)
    return ApiError(text)


def _issue(node: dict[str, Any]) -> Issue:
    closed = (node.get("state") or {}).get("type") in CLOSED_STATES
    return Issue(
        id=str(node.get("id")),
        identifier=str(node.get("identifier")),
        title=str(node.get("title") or ""),
        url=str(node.get("url") or ""),
        open=not (closed or node.get("archivedAt") or node.get("trashed")),
        team=str((node.get("team") or {}).get("key") or "") or None,
        team_id=str((node.get("team") or {}).get("id") or "") or None,
    )
