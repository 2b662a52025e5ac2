"""`validate` catches what would otherwise fail on a bad day, or never show: a channel Slack
would refuse, a template mistake on a branch one sample does not reach, a misspelt override,
and a Hightouch value that could ping a channel."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from triage.cli import main
from triage.config import Config, slack_channel_problem
from triage.render import Renderer
from triage.template_check import alert_samples, check_templates, health_samples, recovery_samples


def validate(tmp_path: Path, config: str = "", **templates: str) -> tuple[int, str]:
    (tmp_path / "config.yaml").write_text(config)
    if templates:
        (tmp_path / "templates").mkdir(exist_ok=True)
    for name, text in templates.items():
        (tmp_path / "templates" / name).write_text(text)
    out = io.StringIO()
    code = main(["validate", "--config", str(tmp_path / "config.yaml")], environ={}, stdout=out)
    return code, out.getvalue()


def test_a_channel_name_slack_would_refuse_fails_validate_with_the_name_it_would_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = validate(tmp_path, 'slack:\n  channel: "#data alerts"\n')
    assert code == 2
    err = capsys.readouterr().err
    assert "config.yaml:2: slack.channel: '#data alerts' is not a Slack channel: a name has spaces" in err
    assert "'#data-alerts'" in err


def test_a_route_channel_is_checked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = "routes:\n  - name: crm\n    match: {sync: [a]}\n    slack: {channel: ['#crm-alerts', '#CRM.Alerts']}\n"
    assert validate(tmp_path, config)[0] == 2
    assert "config.yaml:4: routes[0] (crm).slack.channel: '#CRM.Alerts'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "channel", ["#data-alerts", "data_alerts", "#alerts-2026", "#données", "C024BE91L", "G0123456789", "U024BE7LH"]
)
def test_names_and_ids_slack_accepts_pass(channel: str) -> None:
    assert slack_channel_problem(channel) is None


@pytest.mark.parametrize(
    ("channel", "problem"),
    [
        ("#data alerts", "spaces"),
        ("#data.alerts", "periods"),
        ("#Data-Alerts", "capitals"),
        ("#DATA", "capitals"),
        ("#alerts!", "other characters"),
        ("#" + "a" * 81, "more than 80 characters"),
        ("#", "no name"),
    ],
)
def test_names_slack_refuses_fail(channel: str, problem: str) -> None:
    found = slack_channel_problem(channel)
    assert found is not None and problem in found


def test_an_unknown_name_names_the_file_the_line_and_the_names_there_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = "{{ mentions }}\n*Destination:* {{ destination | slack }}\n*Model:* {{ modle | slack }}\n"
    assert validate(tmp_path, **{"slack_message.md.j2": template})[0] == 2
    err = capsys.readouterr().err
    assert "templates/slack_message.md.j2:3: 'modle' is undefined — did you mean model?" in err
    assert "the names a template has here: " in err
    assert all(f" {name}," in err for name in ("consecutive_failures", "ctx", "destination", "model"))


def test_an_unknown_attribute_names_the_attributes_there_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(tmp_path, **{"linear_description.md.j2": "line\n{{ run.eror }}\n"})[0] == 2
    err = capsys.readouterr().err
    assert "templates/linear_description.md.j2:2: 'triage.render.RunView object' has no attribute 'eror'" in err
    assert "did you mean error? a RunView has: added, changed," in err


def test_a_mistake_in_an_else_branch_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped sample has a Linear issue: only a sample without one reaches the else."""
    template = (
        "{% if linear_issue %}\n<{{ linear_url }}|{{ linear_issue }}>\n{% else %}\n{{ linear_isue }}\n{% endif %}\n"
    )
    assert validate(tmp_path, **{"slack_message.md.j2": template})[0] == 2
    assert "templates/slack_message.md.j2:4: 'linear_isue' is undefined" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "template", "where"),
    [
        ("slack_recovery.md.j2", "{% if not linear_issue %}{{ nope }}{% endif %}\n", "recovery"),
        ("slack_health.md.j2", "{% if failed %}down{% else %}{{ nope }}{% endif %}\n", "health working again"),
        ("slack_health.md.j2", "{% if run_url %}x{% else %}{{ nope }}{% endif %}\n", "no run link"),
        ("slack_message.md.j2", "{% if not history %}{{ nope }}{% endif %}\n", "first failure"),
        ("slack_message.md.j2", "{% if not escalates %}{{ nope }}{% endif %}\n", "without Linear"),
        ("slack_message.md.j2", "{% if new_failures > 1 %}{{ nope }}{% endif %}\n", "repeat"),
        ("slack_storm.md.j2", "{% if by_error | length > 10 %}{{ nope }}{% endif %}\n", "big storm"),
        ("linear_outage_title.txt.j2", "{% if by == 'destination' %}{{ nope }}{% endif %}\n", "by destination"),
    ],
)
def test_every_branch_is_reached_by_some_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, template: str, where: str
) -> None:
    assert validate(tmp_path, **{name: template})[0] == 2
    err = capsys.readouterr().err
    assert f"templates/{name}:1: 'nope' is undefined" in err and where in err


def test_the_samples_set_and_empty_every_optional_value() -> None:
    alerts = alert_samples().values()
    for field in ("incident_since", "linear_issue", "linear_url", "slack_thread_url", "history", "destination"):
        assert {bool(getattr(a, field)) for a in alerts} == {True, False}, field
    for flag in ("escalates", "previous_all_failed"):
        assert {getattr(a, flag) for a in alerts} == {True, False}, flag
    assert {a.new_failures > 1 for a in alerts} == {True, False}
    assert {a.consecutive_failures >= a.escalation_threshold for a in alerts} == {True, False}
    assert any(a.run.rejected == "n/a" for a in alerts)
    recoveries = recovery_samples().values()
    for field in ("since", "duration", "linear_issue"):
        assert {bool(getattr(r, field)) for r in recoveries} == {True, False}, field
    assert {r.failed_runs == 1 for r in recoveries} == {True, False}
    assert {(h.failed, bool(h.run_url)) for h in health_samples().values()} == {
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    }


def test_a_misspelt_override_is_an_error_naming_the_template_it_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(tmp_path, **{"slack_mesage.md.j2": "hello\n"})[0] == 2
    err = capsys.readouterr().err
    assert "templates/slack_mesage.md.j2: overrides no shipped template, so it is never used" in err
    assert "did you mean slack_message.md.j2?" in err


def test_notes_and_partials_in_templates_are_not_overrides(tmp_path: Path) -> None:
    code, out = validate(
        tmp_path,
        **{
            "README.md": "# ours\n",
            "_footer.j2": "— the data team\n",
            "linear_title.txt.j2": "{% include '_footer.j2' %} {{ sync_name }}\n",
        },
    )
    assert code == 0, out


def test_a_hightouch_value_unescaped_in_a_slack_template_is_a_warning(tmp_path: Path) -> None:
    template = (
        "{{ mentions }} *{{ sync_name }}* {{ run.status | upper }} {{ run.error | cut(9) | slack_code }}\n"
        "{{ 'x' if model }} {{ history | length }} {{ destination if escalates else 'none' }} {{ run.id }}\n"
    )
    code, out = validate(tmp_path, **{"slack_message.md.j2": template})
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert [w.split(" inserts")[0] for w in warnings] == [
        "warning: " + str(tmp_path / "templates" / "slack_message.md.j2") + ":1: {{ sync_name }}",
        "warning: " + str(tmp_path / "templates" / "slack_message.md.j2") + ":1: {{ run.status }}",
        "warning: " + str(tmp_path / "templates" / "slack_message.md.j2") + ":2: {{ destination }}",
    ]
    assert "write {{ sync_name | slack }}" in warnings[0]


def test_a_linear_template_may_show_values_as_markdown_without_a_warning(tmp_path: Path) -> None:
    code, out = validate(tmp_path, **{"linear_title.txt.j2": "{{ sync_name }} failing\n"})
    assert code == 0 and "warning" not in out


def test_the_shipped_templates_render_every_sample_and_warn_of_nothing(tmp_path: Path) -> None:
    config = dataclasses.replace(Config(), base_dir=tmp_path)
    assert check_templates(Renderer(config), tmp_path / "templates") == []
