"""`init DIR`: a team repository that runs the tick through the reusable action.

The files are package data beside this module: the commented `config.yaml` (also the
documented defaults), the tick's workflow and a CI workflow (whose `uses:` name the action
and its ref), Dependabot, `.gitignore` and `templates/README.md`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from triage.errors import UsageError
from triage.release import ActionRef, ReleaseError, parse_action

SCAFFOLD = Path(__file__).resolve().parent
WORKFLOW_PATH = Path(".github") / "workflows" / "triage.yml"
CI_PATH = Path(".github") / "workflows" / "ci.yml"
DEPENDABOT_PATH = Path(".github") / "dependabot.yml"
GITIGNORE_PATH = Path(".gitignore")
CHECK_ACTION = "/check"  # the sub-action the CI workflow calls: validate, render, zizmor


@dataclass(frozen=True)
class ToMerge:
    """A file `init --existing` kept as it was, and what to merge into it by hand."""

    path: Path
    advice: str


@dataclass(frozen=True)
class Scaffolded:
    directory: Path
    files: tuple[Path, ...]  # written
    present: tuple[Path, ...] = ()  # already there, the same as the scaffold's
    to_merge: tuple[ToMerge, ...] = ()  # already there, different: kept, merge by hand


def key_variable(workspace: str) -> str:
    """The environment variable (and repository secret) holding a workspace's API key."""
    return "HIGHTOUCH_API_KEY_" + re.sub(r"[^A-Z0-9]", "_", workspace.upper())


def workspaces_workflow(action: str, workspaces: Sequence[str]) -> str:
    """The tick's workflow for several workspaces: a matrix, one job each, each with its own
    concurrency group and its own key (chosen by a static expression, so no job can read
    another's secret)."""
    key = " || ".join(f"matrix.workspace == '{w}' && secrets.{key_variable(w)}" for w in workspaces) + " || ''"
    text = (SCAFFOLD / "workflow_workspaces.yml").read_text(encoding="utf-8")
    return text.replace("__WORKSPACES__", ", ".join(workspaces)).replace("__KEY__", key).replace("__ACTION__", action)


def workspaces_config(workspaces: Sequence[str]) -> str:
    """The `workspaces` section init appends to config.yaml."""
    lines = [
        "",
        "# Several Hightouch workspaces, ticked in parallel, one job each (.github/workflows/triage.yml).",
        "# Each reads its key from the variable api_key_env names (a repository secret of that name),",
        "# keeps its state in state/<name>.yaml, and may override slack, linear and routes.",
        "workspaces:",
    ]
    for name in workspaces:
        lines += [
            f"  - name: {name}",
            f"    api_key_env: {key_variable(name)}",
            f"    workspace_slug: {name}  # Set this: the workspace's slug in app URLs",
        ]
    return "\n".join(lines) + "\n"


WORKSPACE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def scaffold_files(action: ActionRef, workspaces: Sequence[str] = ()) -> dict[Path, str]:
    """What `init` writes, by path in the team's repository."""

    def read(name: str) -> str:
        return (SCAFFOLD / name).read_text(encoding="utf-8")

    for name in workspaces:
        if not WORKSPACE_NAME.fullmatch(name):
            raise UsageError(f"--workspace {name!r}: lowercase letters, digits, - and _ (it names the state file)")
    if len(set(workspaces)) != len(workspaces):
        raise UsageError("--workspace: each workspace once")
    tick = workspaces_workflow(action.uses(), workspaces) if workspaces else read("workflow.yml")
    return {
        Path("config.yaml"): read("config.yaml") + (workspaces_config(workspaces) if workspaces else ""),
        WORKFLOW_PATH: tick.replace("__ACTION__", action.uses()),
        CI_PATH: read("ci.yml").replace("__CHECK_ACTION__", action.uses(CHECK_ACTION)),
        DEPENDABOT_PATH: read("dependabot.yml"),
        GITIGNORE_PATH: read("gitignore"),
        Path("templates") / "README.md": read("templates_README.md"),
        # git keeps no empty folder: this one holds state.yaml once the first tick ran.
        Path("state") / ".gitkeep": "",
    }


def scaffold(
    directory: Path, action: ActionRef | str, *, existing: bool = False, workspaces: Sequence[str] = ()
) -> Scaffolded:
    """Write the scaffold into `directory`. Never overwrites: a team's settings and state are
    theirs. Without `existing`, refuses a directory that holds any of its files; with it, adds
    only the missing ones and says what to merge into the others. `action` is what the
    workflows call (OWNER/REPO@REF); a commit SHA gets its release's `# vX.Y.Z` comment."""
    if isinstance(action, str):
        try:
            action = parse_action(action)[0]
        except ReleaseError as exc:
            raise UsageError(str(exc)) from None
    files = scaffold_files(action, workspaces)
    there = [path for path in files if (directory / path).exists()]
    if there and not existing:
        raise UsageError(
            f"{directory / there[0]} exists; init writes into a new repository — to add what is missing to an "
            "existing one, without overwriting anything, use init --existing"
        )
    written: list[Path] = []
    present: list[Path] = []
    to_merge: list[ToMerge] = []
    for path, text in files.items():
        target = directory / path
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            written.append(path)
            continue
        try:
            current = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            to_merge.append(ToMerge(path, f"could not be read ({exc}): compare it with the scaffold by hand"))
            continue
        if current == text or (advice := merge_advice(path, current, text)) is None:
            present.append(path)
        else:
            to_merge.append(ToMerge(path, advice))
    return Scaffolded(directory, tuple(written), tuple(present), tuple(to_merge))


def merge_advice(path: Path, current: str, scaffold_text: str) -> str | None:
    """What to merge by hand into a file that exists, or None when it already has what matters."""
    if path == GITIGNORE_PATH:
        have = {line.strip() for line in current.splitlines()}
        missing = [
            line for line in scaffold_text.splitlines() if line and not line.startswith("#") and line not in have
        ]
        return "add these lines:\n" + "\n".join(missing) if missing else None
    if path == DEPENDABOT_PATH:
        try:
            doc = yaml.safe_load(current)
        except yaml.YAMLError:
            doc = None
        updates = doc.get("updates") if isinstance(doc, dict) else None
        watched = any(isinstance(u, dict) and u.get("package-ecosystem") == "github-actions" for u in updates or [])
        if watched:
            return None
        entry = scaffold_text[scaffold_text.index("  - package-ecosystem") :]
        return "add this entry under `updates:`, so the pinned action is kept current:\n" + entry.rstrip()
    if path in (Path("config.yaml"), Path("templates") / "README.md", Path("state") / ".gitkeep"):
        return None  # yours: nothing of the scaffold's needs to be in it
    diff = difflib.unified_diff(
        current.splitlines(), scaffold_text.splitlines(), f"{path} (yours)", f"{path} (init's)", lineterm=""
    )
    return "merge what you need of init's version (its `uses:` line above all):\n" + "\n".join(diff)
