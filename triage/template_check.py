"""`validate`'s look at the templates, sharper than one render with one sample:

- every template is rendered on a set of samples that between them reach each branch a
  template can take on real data (a first failure, a repeat, an escalation with and without
  Linear, odd data, recoveries, storms, outages, the tool's health failing and recovering);
- a mistake is reported with the template's file and line, and for an unknown name, the
  names that do exist (and the closest one);
- a file in templates/ that overrides no shipped template is an error naming the closest
  one: misspelt, it would be ignored in silence;
- a value from Hightouch inserted into a Slack template without the `slack` filter is a
  warning: a sync named `<!channel>` would ping the channel.

It renders only through the Renderer's public methods (strict), and reads templates through
the Jinja environment the Renderer exposes, so it checks exactly what a tick will render.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import nodes

from triage.errors import ConfigError
from triage.render import (
    HealthContext,
    OutageContext,
    RecoveryContext,
    Renderer,
    RunView,
    StormContext,
    SyncLink,
    TriageContext,
    sample_context,
    sample_recovery,
)
from triage.state_alarm import UnsavedContext, unsaved_message
from triage.template_files import TEMPLATE_SUFFIX, closest_template, shipped_templates

# What a template is given besides its context's fields and `ctx`, the context itself.
EXTRAS: dict[type, tuple[str, ...]] = {TriageContext: ("mentions",)}
CONTEXT_TYPES = (
    TriageContext,
    RunView,
    RecoveryContext,
    HealthContext,
    StormContext,
    OutageContext,
    SyncLink,
    UnsavedContext,
)


@dataclass(frozen=True)
class TemplateProblem:
    """One finding: `error` fails validate, `warning` is printed."""

    level: str
    message: str


# -- the samples --------------------------------------------------------------------------


def _run(run_id: str, status: str, failed: bool) -> RunView:
    symbol = "✗" if failed else ("✓" if status in ("success", "warning") else "–")
    return replace(sample_context().run, id=run_id, status=status, failed=failed, symbol=symbol)


def alert_samples() -> dict[str, TriageContext]:
    """Alerts as a tick builds them, chosen so every optional value is both set and empty."""
    escalation = sample_context()
    ok = replace(_run("98760", "success", False), error="(no error message)", rejected="0")
    first = replace(
        escalation,
        history=(),
        history_symbols="no earlier runs",
        previous_all_failed=False,
        new_failures=1,
        consecutive_failures=1,
        incident_since="",
        linear_issue="",
        linear_url="",
        slack_thread_url="",
    )
    repeat = replace(
        first,
        history=(ok, _run("98761", "failed", True)),
        history_symbols="✓ ✗",
        new_failures=2,
        consecutive_failures=2,
        incident_since="2026-11-23 08:30 UTC",
    )
    odd_run = replace(
        _run("run-7", "interrupted", True),
        error="<!channel> *bold* `code` ```fence``` & a very long error " + "x" * 6000 + "\n\nsecond paragraph",
        rejected="n/a",
        added="n/a",
        changed="n/a",
        removed="n/a",
        created_at="n/a",
        finished_at="n/a",
    )
    return {
        "first failure": first,
        "repeat": repeat,
        "escalation": escalation,
        "escalation, route without Linear": replace(escalation, escalates=False, linear_issue="", linear_url=""),
        "long streak": replace(repeat, consecutive_failures=250, new_failures=7, previous_all_failed=True),
        "odd data": replace(
            first,
            sync_name="<!channel> *sync*_name~`",
            destination="",
            model="",
            run=odd_run,
            history=(odd_run,),
            history_symbols="✗",
        ),
    }


def recovery_samples() -> dict[str, RecoveryContext]:
    full = sample_recovery()
    return {
        "recovery": full,
        "recovery after one failure, no Linear issue": replace(
            full, failed_runs=1, since="", duration="", linear_issue="", linear_url=""
        ),
    }


def storm_samples() -> dict[str, StormContext]:
    links = tuple(SyncLink(f"sync-{i}", f"https://app.hightouch.com/my-workspace/syncs/{i}") for i in range(14))
    errors = tuple((f"Warehouse error {i}", links[: i + 1]) for i in range(12))
    return {
        "storm": StormContext(12, (("Warehouse unreachable", links[:1]),), (("Salesforce", links[:1]),)),
        "big storm": StormContext(14, errors, (("Salesforce", links), ("", links[:2]))),
    }


def outage_samples() -> dict[str, OutageContext]:
    one = sample_context()
    other = replace(one, sync_id="1235", sync_name="hubspot-deals", destination="HubSpot", history=())
    return {
        "outage by error": OutageContext("Warehouse unreachable", "error", (one, other), 2),
        "outage by destination": OutageContext("Salesforce", "destination", (one, other, one), 3),
    }


def health_samples() -> dict[str, HealthContext]:
    return {
        f"health {'failing' if failed else 'working again'}{'' if link else ', no run link'}": HealthContext(
            failed, "Hightouch GET /syncs: HTTP 401 <!channel>", link, "2026-11-23 08:30 UTC"
        )
        for failed in (True, False)
        for link in ("https://github.com/acme/triage/actions/runs/1", "")
    }


def unsaved_samples() -> dict[str, UnsavedContext]:
    error = "remote: error: GH006: Protected branch update failed for refs/heads/main."
    return {
        "state not saved, protected branch": UnsavedContext("main", error, True, "https://github.com/a/b/runs/1"),
        "state not saved, push failed": UnsavedContext("triage-state", "the push failed 5 times", False, ""),
    }


def renders(renderer: Renderer) -> Iterator[tuple[str, Callable[[], object], type]]:
    """(sample name, a strict render of it, its context type), for every template."""
    for name, alert in alert_samples().items():
        for mentions in ((), ("S0123ABCD", "U024BE7LH")):
            label = f"{name}{', with mentions' if mentions else ''}"
            yield label, partial(renderer.slack_message, alert, mentions, strict=True), TriageContext
        yield name, partial(renderer.linear_issue, alert, strict=True), TriageContext
        yield name, partial(renderer.linear_comment, alert, strict=True), TriageContext
    for name, recovery in recovery_samples().items():
        yield name, partial(renderer.slack_recovery, recovery, strict=True), RecoveryContext
        yield name, partial(renderer.linear_comment, recovery, strict=True), RecoveryContext
    for name, storm in storm_samples().items():
        yield name, partial(renderer.slack_storm, storm, strict=True), StormContext
    for name, outage in outage_samples().items():
        yield name, partial(renderer.linear_outage, outage, strict=True), OutageContext
    for name, health in health_samples().items():
        yield name, partial(renderer.slack_health, health, strict=True), HealthContext
    for name, unsaved in unsaved_samples().items():
        yield name, partial(unsaved_message, renderer, unsaved, strict=True), UnsavedContext


# -- the checks ---------------------------------------------------------------------------


def check_templates(renderer: Renderer, templates_dir: Path) -> list[TemplateProblem]:
    """Every finding, errors first; `validate` fails on any error."""
    problems = stray_overrides(templates_dir)
    seen: set[str] = set()
    for sample, render, context_type in renders(renderer):
        try:
            render()
        except ConfigError as exc:
            message = describe_render_error(exc, context_type)
            if message not in seen:
                seen.add(message)
                problems.append(TemplateProblem("error", f"{message} (sample: {sample})"))
    problems += unescaped_slack_values(renderer)
    return sorted(problems, key=lambda p: p.level != "error")


def stray_overrides(templates_dir: Path) -> list[TemplateProblem]:
    """Files in templates/ that override nothing: a misspelt override is never used."""
    if not templates_dir.is_dir():
        return []
    shipped = set(shipped_templates())
    problems = []
    for path in sorted(templates_dir.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith((".", "_")) or name.lower().startswith("readme"):
            continue  # notes, and partials a template includes, override nothing on purpose
        if name in shipped:
            continue
        near = closest_template(name)
        hint = f"did you mean {near}?" if near else f"the templates are {', '.join(sorted(shipped))}"
        problems.append(
            TemplateProblem(
                "error",
                f"{path}: overrides no shipped template, so it is never used — {hint} "
                f"(a file for {{% include %}} or {{% import %}} starts with _)",
            )
        )
    return problems


_UNDEFINED_NAME = re.compile(r"'(?P<name>[^']+)' is undefined")
_NO_ATTRIBUTE = re.compile(r"'(?:[\w.]+\.)?(?P<type>\w+) object' has no attribute '(?P<name>[^']+)'")


def describe_render_error(exc: ConfigError, context_type: type) -> str:
    """The Renderer's error with the template's file:line and, for a name that does not exist,
    the names that do. The Jinja error is the ConfigError's context (raised `from None`)."""
    cause = exc.__context__
    if not isinstance(cause, jinja2.TemplateError) or isinstance(cause, jinja2.TemplateSyntaxError):
        return str(exc)  # a syntax error names its file and line already; a missing template its name
    where = _template_frame(cause.__traceback__)
    text = cause.message or str(cause)
    location = f"{where[0]}:{where[1]}" if where else str(exc).split(":", 1)[0]
    return f"{location}: {text}{_names_hint(text, context_type)}"


def _template_frame(tb: TracebackType | None) -> tuple[str, int] | None:
    """The innermost frame of a template: Jinja rewrites tracebacks so that frame's file
    and line are the template's."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(TEMPLATE_SUFFIX):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _names_hint(text: str, context_type: type) -> str:
    if match := _UNDEFINED_NAME.fullmatch(text):
        names = [f.name for f in dataclasses.fields(context_type)] + ["ctx", *EXTRAS.get(context_type, ())]
        return _hint(match["name"], names, "the names a template has here")
    if match := _NO_ATTRIBUTE.fullmatch(text):
        kinds = {kind.__name__: kind for kind in CONTEXT_TYPES}
        if match["type"] in kinds:
            names = [f.name for f in dataclasses.fields(kinds[match["type"]])]
            return _hint(match["name"], names, f"a {match['type']} has")
    return ""


def _hint(wanted: str, names: list[str], what: str) -> str:
    near = difflib.get_close_matches(wanted, names, n=1)
    return f" — {'did you mean ' + near[0] + '? ' if near else ''}{what}: {', '.join(sorted(names))}"


# Values that come from Hightouch as text a person typed (names, errors, statuses): in Slack
# mrkdwn they must pass `slack` (or `slack_code` in a code block, `slack_inline` in inline code), or
# `<!channel>` pings.
HIGHTOUCH_VALUES = frozenset({"sync_name", "destination", "model", "error", "status", "name", "cause"})
ESCAPING_FILTERS = frozenset({"slack", "slack_code", "slack_inline"})
# Filters whose result is a number or a boolean, whatever they are given.
COUNTING_FILTERS = frozenset({"length", "count", "int", "float", "round", "abs", "bool"})


def unescaped_slack_values(renderer: Renderer) -> list[TemplateProblem]:
    """A warning for each `{{ … }}` in a Slack template that inserts a Hightouch value unescaped."""
    problems = []
    for name in shipped_templates():
        if not (name.startswith("slack_") and name.endswith(".md.j2")):
            continue
        loader = renderer.env.loader
        if loader is None:
            return []
        try:
            source, filename, _ = loader.get_source(renderer.env, name)
            tree = renderer.env.parse(source, name, filename)
        except jinja2.TemplateError:
            continue  # reported by the render
        for output in tree.find_all(nodes.Output):
            for child in output.nodes:
                for value in _unescaped(child):
                    shown = _dotted(value)
                    problems.append(
                        TemplateProblem(
                            "warning",
                            f"{filename}:{value.lineno}: {{{{ {shown} }}}} inserts a value from Hightouch without "
                            f"the slack filter: a name or error holding <!channel> would ping the channel, and "
                            f"*, _ or ` would format the text — write {{{{ {shown} | slack }}}}",
                        )
                    )
    return problems


def _unescaped(node: nodes.Node) -> Iterator[nodes.Name | nodes.Getattr]:
    if isinstance(node, nodes.Filter) and (node.name in ESCAPING_FILTERS or node.name in COUNTING_FILTERS):
        return
    if isinstance(node, (nodes.Test, nodes.Compare, nodes.Not, nodes.And, nodes.Or, nodes.TemplateData)):
        return  # a condition decides what is shown; it shows nothing itself
    if isinstance(node, nodes.CondExpr):
        yield from _unescaped(node.expr1)
        if node.expr2 is not None:
            yield from _unescaped(node.expr2)
        return
    if isinstance(node, nodes.Name) and node.name in HIGHTOUCH_VALUES:
        yield node
        return
    if isinstance(node, nodes.Getattr) and node.attr in HIGHTOUCH_VALUES:
        yield node
        return
    for child in node.iter_child_nodes():
        yield from _unescaped(child)


def _dotted(node: Any) -> str:
    if isinstance(node, nodes.Name):
        return str(node.name)
    if isinstance(node, nodes.Getattr):
        return f"{_dotted(node.node)}.{node.attr}"
    return "…"
