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

from triage.errors import ApiError, AuthError, ConfigError
from triage.http import HttpClient, Verdict, json_verdict, parse_retry_after

TEAM_QUERY = """
query Team($key: String!) {
  teams(filter: {or: [{key: {eq: $key}}, {name: {eqIgnoreCase: $key}}]}) {
    nodes { id key name }
  }
}
"""

# The deterministic `issues` filter, not the fuzzy, tightly rate-limited `searchIssues`.
OPEN_ISSUES_QUERY = """
query OpenIssues($teamId: ID!, $name: String!) {
  issues(first: 20, filter: {
    team: {id: {eq: $teamId}},
    state: {type: {nin: ["completed", "canceled", "duplicate"]}},
    or: [{title: {containsIgnoreCase: $name}}, {description: {containsIgnoreCase: $name}}]
  }) {
    nodes { id identifier title description url state { type } }
  }
}
"""

ISSUE_QUERY = """
query Issue($id: String!) {
  issue(id: $id) { id identifier title url state { type } }
}
"""

CLOSED_STATES = ("completed", "canceled", "duplicate")

CREATE_MUTATION = """
mutation CreateIssue($input: IssueCreateInput!) {
  issueCreate(input: $input) {
    success
    issue { id identifier title url }
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
        for node in nodes:
            if node.get("key") == key_or_name or str(node.get("name", "")).lower() == key_or_name.lower():
                return Team(id=str(node["id"]), key=str(node.get("key")), name=str(node.get("name")))
        raise ConfigError(
            f"Linear team {key_or_name!r} not found (check linear.team in config.yaml: a team key or name)"
        )

    def find_open_issue(self, team: Team, sync_name: str) -> Issue | None:
        """An open issue of the team whose title or description names the sync, if any."""
        data = self._graphql("issues", OPEN_ISSUES_QUERY, {"teamId": team.id, "name": sync_name}, idempotent=True)
        for node in (data.get("issues") or {}).get("nodes") or []:
            text = f"{node.get('title') or ''}\n{node.get('description') or ''}"
            if mentions(text, sync_name):
                return _issue(node)
        return None

    def open_issue(self, identifier: str) -> Issue | None:
        """The issue with this identifier (e.g. DATA-42) if it exists and is still open."""
        try:
            data = self._graphql("issue", ISSUE_QUERY, {"id": identifier}, idempotent=True)
        except ApiError as exc:
            if "not found" in str(exc).lower():
                return None
            raise
        node = data.get("issue")
        if not isinstance(node, dict) or (node.get("state") or {}).get("type") in CLOSED_STATES:
            return None
        return _issue(node)

    def create_issue(self, team: Team, title: str, description: str, priority: int) -> Issue:
        variables = {"input": {"teamId": team.id, "title": title, "description": description, "priority": priority}}
        data = self._graphql("issueCreate", CREATE_MUTATION, variables, idempotent=False)
        result = data.get("issueCreate") or {}
        if not result.get("success") or not isinstance(result.get("issue"), dict):
            raise ApiError("Linear issueCreate: success was false", endpoint="issueCreate")
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
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if response.status_code in (401, 403):
                raise AuthError(
                    f"Linear {operation}: HTTP {response.status_code}: LINEAR_API_KEY was refused", endpoint=operation
                )
            raise ApiError(
                f"Linear {operation}: HTTP {response.status_code}, response is not JSON",
                endpoint=operation,
                retryable=response.status_code >= 500,
            )
        errors = body.get("errors")
        if errors:
            raise _classify(operation, errors, response.status_code)
        if response.status_code >= 400:
            raise ApiError(
                f"Linear {operation}: HTTP {response.status_code}",
                endpoint=operation,
                retryable=response.status_code >= 500,
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise ApiError(f"Linear {operation}: response has no data", endpoint=operation)
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
        body = response.json()
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
        return AuthError(f"{text} (LINEAR_API_KEY)", endpoint=operation)
    return ApiError(text, endpoint=operation, retryable="internal" in kind)


def _issue(node: dict[str, Any]) -> Issue:
    return Issue(
        id=str(node.get("id")),
        identifier=str(node.get("identifier")),
        title=str(node.get("title") or ""),
        url=str(node.get("url") or ""),
    )
