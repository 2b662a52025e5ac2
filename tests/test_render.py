"""What people read: the Slack message and the Linear issue."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.factories import NO_USER_FILES, config, known, run, steady, sync
from triage.decide import decide_sync
from triage.errors import ConfigError
from triage.render import (
    SLACK_SECTION_LIMIT,
    Renderer,
    TriageContext,
    build_context,
    code_block,
    markdown_escape,
    slack_code,
    slack_escape,
    slack_inline,
)


def context(
    name: str = "salesforce-contacts", error: str = "Salesforce said: INVALID_EMAIL", **kw: object
) -> TriageContext:
    runs = [run(1, "success"), run(2, "failed"), run(3, "failed"), run(4, "failed", error=error)]
    decision = decide_sync(sync(name=name), runs, known(1), steady(), config())
    assert decision.alert is not None
    return build_context(
        decision.alert,
        destination=str(kw.get("destination", "Salesforce Production")),
        model=str(kw.get("model", "Active contacts")),
        url="https://app.hightouch.com/acme/syncs/1",
        threshold=3,
    )


def renderer(tmp_path: Path = NO_USER_FILES) -> Renderer:
    return Renderer(config(base_dir=tmp_path))


def test_slack_message_holds_everything_a_person_needs() -> None:
    message = renderer().slack_message(context())
    text = message.mrkdwn
    assert "<https://app.hightouch.com/acme/syncs/1|salesforce-contacts>" in text
    assert "Salesforce Production" in text
    assert "Active contacts" in text
    assert "3 rejected vs 10 added · 2 changed · 0 removed" in text
    assert "Salesforce said: INVALID_EMAIL" in text
    assert "(3 new failed runs since the last check)" in text
    assert "✓ ✗ ✗" in text
    assert "previous 3 also failing: *no*" in text
    assert message.text.startswith(":red_circle: *Hightouch sync")
    assert all(b["type"] == "section" for b in message.blocks)


def test_name_that_tries_to_ping_the_channel_is_escaped() -> None:
    ctx = context(name="<!channel> & co", error="<@U123> <https://evil|click>", destination="<!here>")
    text = renderer().slack_message(ctx).mrkdwn
    assert "&lt;!channel&gt; &amp; co" in text
    assert "&lt;!here&gt;" in text
    assert "&lt;@U123&gt; &lt;https://evil|click&gt;" in text
    assert "<!channel>" not in text and "<!here>" not in text and "<@U123>" not in text


def test_ten_thousand_character_error_is_cut_to_fit_a_section() -> None:
    message = renderer().slack_message(context(error="x" * 10_000))
    assert all(len(b["text"]["text"]) <= SLACK_SECTION_LIMIT for b in message.blocks)
    assert "[cut: 8,500 more characters]" in message.mrkdwn
    assert len(message.blocks) <= 50


def test_error_full_of_ampersands_still_fits_every_section() -> None:
    message = renderer().slack_message(context(error="&" * 10_000))
    assert all(len(b["text"]["text"]) <= SLACK_SECTION_LIMIT for b in message.blocks)
    assert all(not b["text"]["text"].endswith("&am") for b in message.blocks)


def test_linear_issue_has_title_table_error_and_link() -> None:
    issue = renderer().linear_issue(context(name="hubspot_deals|x"))
    assert issue.title == "Hightouch sync hubspot_deals|x failing repeatedly"
    assert "hubspot\\_deals\\|x" in issue.description
    assert "[hubspot\\_deals\\|x](https://app.hightouch.com/acme/syncs/1)" in issue.description
    assert "| Run | Status |" in issue.description
    assert "| **4** | ✗ failed |" in issue.description
    assert "```text\nSalesforce said: INVALID_EMAIL\n```" in issue.description
    assert "Salesforce Production" in issue.description


def test_markdown_helpers_keep_values_inert() -> None:
    assert markdown_escape("a|b *c*\nd") == "a\\|b \\*c\\* d"
    assert code_block("has ``` inside") == "````text\nhas ``` inside\n````"
    assert slack_escape("a&b<c>") == "a&amp;b&lt;c&gt;"


def test_template_override_beside_the_config_wins(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "linear_title.txt.j2").write_text("Sync {{ sync_name }} is on fire\n")
    assert renderer(tmp_path).linear_issue(context()).title == "Sync salesforce-contacts is on fire"


def test_a_template_edited_between_two_renderers_of_one_process_says_its_new_words(tmp_path: Path) -> None:
    """Compiled templates are kept for the process (the workspaces matrix builds several
    renderers), but by their words: an edit is compiled again, and a broken one still fails."""
    title = tmp_path / "templates" / "linear_title.txt.j2"
    title.parent.mkdir()
    for words in (
        "Sync {{ sync_name }} is on fire",
        "{{ sync_name }}: still on fire",
        "Sync {{ sync_name }} is on fire",
    ):
        title.write_text(words + "\n")
        assert renderer(tmp_path).linear_issue(context()).title == words.replace(
            "{{ sync_name }}", "salesforce-contacts"
        )
    title.write_text("{% if %}\n")
    with pytest.raises(ConfigError, match=r"linear_title.txt.j2:1: template error"):
        renderer(tmp_path).check()


def test_a_second_renderer_of_the_same_templates_compiles_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = f"Sync {{{{ sync_name }}}} is on fire ({uuid.uuid4()})"  # compiled by no test before
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "linear_title.txt.j2").write_text(words + "\n")
    compiled: list[str] = []
    real = jinja2.Environment._compile

    def counted(self: jinja2.Environment, source: str, filename: str) -> Any:
        compiled.append(filename)
        return real(self, source, filename)

    monkeypatch.setattr(jinja2.Environment, "_compile", counted)
    for _ in range(2):
        assert renderer(tmp_path).linear_issue(context()).title.startswith("Sync salesforce-contacts is on fire")
    assert [f for f in compiled if f.endswith("linear_title.txt.j2")] == [
        str(tmp_path / "templates" / "linear_title.txt.j2")
    ]


def test_broken_template_is_a_config_error_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "slack_message.md.j2").write_text("fine\n{% if %}\n")
    with pytest.raises(ConfigError, match=r"slack_message.md.j2:2: template error"):
        renderer(tmp_path).check()


def test_template_naming_an_unknown_value_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "linear_title.txt.j2").write_text("{{ sync_nmae }}\n")
    with pytest.raises(ConfigError, match=r"linear_title\.txt\.j2.*sync_nmae"):
        renderer(tmp_path).check()


def test_missing_row_counts_show_as_not_available() -> None:
    runs = [run(1, "success"), replace(run(2, "failed"), failed=replace(run(2).failed, added=None))]
    decision = decide_sync(sync(), runs, known(1), steady(), config())
    assert decision.alert is not None
    ctx = build_context(decision.alert, destination="d", model="m", url="u", threshold=3)
    assert ctx.run.rejected == "n/a"


def fences_balanced(block: dict[str, Any]) -> bool:
    return str(block["text"]["text"]).count("```") % 2 == 0


def test_a_multi_paragraph_error_stays_one_code_block() -> None:
    error = "SQL compilation error:\n\nobject 'CONTACTS' does not exist\n\n  at *line* 3, _column_ 7\n\n```nested```"
    message = renderer().slack_message(context(error=error))
    (block,) = [b for b in message.blocks if "SQL compilation error" in b["text"]["text"]]
    assert "at *line* 3, _column_ 7" in block["text"]["text"]  # inside the block: shown as typed
    assert all(fences_balanced(b) for b in message.blocks)


def test_an_error_that_grows_when_escaped_is_split_between_whole_code_blocks() -> None:
    message = renderer().slack_message(context(error="&<>" * 2000))
    code = [b["text"]["text"] for b in message.blocks if "&amp;" in b["text"]["text"]]
    assert len(code) >= 2  # longer than one block once escaped
    assert all(len(text) <= SLACK_SECTION_LIMIT for text in code)
    assert all(text.count("```") % 2 == 0 for text in code)
    assert all(text.rstrip().endswith("```") for text in code)
    assert all(not re.search(r"&[a-z]*$", text.removesuffix("```")) for text in code)  # no entity cut in two


def test_names_from_hightouch_render_literally_whatever_mrkdwn_they_hold() -> None:
    ctx = context(name="*sf*_contacts_", destination="~Sales~force*", model="`contacts` _v2_")
    text = renderer().slack_message(ctx).mrkdwn
    for raw in ("*sf*_contacts_", "~Sales~force*", "`contacts` _v2_"):
        shown = slack_escape(raw)
        assert shown in text
        # Every formatting character that stands at a word boundary follows a zero-width
        # space, so Slack sees no delimiter; inside a word Slack formats nothing.
        bare = re.sub("\u200b[*_~`]", "", shown)
        assert not re.search(r"(?<![0-9A-Za-z])[*_~`]|[*_~`](?![0-9A-Za-z])", bare)


@pytest.mark.parametrize("word", ["hubspot_deals_v2", "HIGHTOUCH_API_KEY", "a*b", "x~y"])
def test_ordinary_words_stay_as_typed_copyable_and_searchable(word: str) -> None:
    assert slack_escape(word) == word


def test_code_keeps_its_backticks_and_closes_its_block() -> None:
    assert slack_code("error near `id`").endswith("`id`\u200b")
    assert "```" not in slack_code("a ``` b")
    assert "`" not in slack_inline("column `id` missing")


def test_notification_text_is_never_cut_inside_a_link() -> None:
    long_url = "https://app.hightouch.com/acme/syncs/" + "x" * 400
    ctx = replace(context(name="salesforce-contacts"), sync_url=long_url)
    text = renderer().slack_message(ctx).text
    assert "<https" not in text or ">" in text.split("<https", 1)[1]
    assert text.endswith("more characters]")
