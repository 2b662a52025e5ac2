"""`init DIR`: a team repository that runs the tick through the reusable action.

The files are package data beside this module: the commented `config.yaml` (also the
documented defaults) and the workflow, whose `uses:` names the action and its ref.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from triage.errors import UsageError
from triage.release import ActionRef, ReleaseError, parse_action

SCAFFOLD = Path(__file__).resolve().parent
WORKFLOW_PATH = Path(".github") / "workflows" / "triage.yml"


@dataclass(frozen=True)
class Scaffolded:
    directory: Path
    files: tuple[Path, ...]


def scaffold(directory: Path, action: ActionRef | str) -> Scaffolded:
    """Write config.yaml, state/, the workflow and a Dependabot config into `directory`. Refuses to overwrite
    any file that exists: a team's settings and state are theirs. `action` is what the workflow
    calls (OWNER/REPO@REF); a commit SHA gets its release's `# vX.Y.Z` comment, for Dependabot."""
    if isinstance(action, str):
        try:
            action = parse_action(action)[0]
        except ReleaseError as exc:
            raise UsageError(str(exc)) from None
    files = {
        Path("config.yaml"): (SCAFFOLD / "config.yaml").read_text(encoding="utf-8"),
        WORKFLOW_PATH: (SCAFFOLD / "workflow.yml").read_text(encoding="utf-8").replace("__ACTION__", action.uses()),
        Path(".github") / "dependabot.yml": (SCAFFOLD / "dependabot.yml").read_text(encoding="utf-8"),
        # git keeps no empty folder: this one holds state.yaml once the first tick ran.
        Path("state") / ".gitkeep": "",
    }
    existing = [path for path in files if (directory / path).exists()]
    if existing:
        raise UsageError(f"{directory / existing[0]} exists; init writes only into a new repository")
    for path, text in files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(text, encoding="utf-8")
    return Scaffolded(directory, tuple(files))
