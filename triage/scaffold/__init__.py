"""`init DIR`: a team repository that runs the tick through the reusable action.

The files are package data beside this module: the commented `config.yaml` (also the
documented defaults), the tick's workflow and a CI workflow (whose `uses:` name the action
and its ref), Dependabot, `.gitignore` and `templates/README.md`.
"""

from __future__ import annotations

import difflib
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


def scaffold_files(action: ActionRef) -> dict[Path, str]:
    """What `init` writes, by path in the team's repository."""

    def read(name: str) -> str:
        return (SCAFFOLD / name).read_text(encoding="utf-8")

    return {
        Path("config.yaml"): read("config.yaml"),
        WORKFLOW_PATH: read("workflow.yml").replace("__ACTION__", action.uses()),
        CI_PATH: read("ci.yml").replace("__CHECK_ACTION__", action.uses(CHECK_ACTION)),
        DEPENDABOT_PATH: read("dependabot.yml"),
        GITIGNORE_PATH: read("gitignore"),
        Path("templates") / "README.md": read("templates_README.md"),
        # git keeps no empty folder: this one holds state.yaml once the first tick ran.
        Path("state") / ".gitkeep": "",
    }


def scaffold(directory: Path, action: ActionRef | str, *, existing: bool = False) -> Scaffolded:
    """Write the scaffold into `directory`. Never overwrites: a team's settings and state are
    theirs. Without `existing`, refuses a directory that holds any of its files; with it, adds
    only the missing ones and says what to merge into the others. `action` is what the
    workflows call (OWNER/REPO@REF); a commit SHA gets its release's `# vX.Y.Z` comment."""
    if isinstance(action, str):
        try:
            action = parse_action(action)[0]
        except ReleaseError as exc:
            raise UsageError(str(exc)) from None
    files = scaffold_files(action)
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
