"""Several Hightouch workspaces from one config.yaml: `run --workspace NAME` ticks one of
them, as if its config were the only one — its own Config (built by config.py), its own API
key (from the variable its `api_key_env` names), and its own state file (state/NAME.yaml),
so workspaces tick in parallel, one job each, and never touch each other's state. A config
without `workspaces` works as before: state/state.yaml and HIGHTOUCH_API_KEY."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from triage.config import Config
from triage.errors import UsageError

DEFAULT_STATE = Path("state") / "state.yaml"


@dataclass(frozen=True)
class Selected:
    """What one tick runs with."""

    config: Config
    environ: Mapping[str, str]  # HIGHTOUCH_API_KEY is the workspace's key
    state: Path
    health: Path  # the tool's own health record, beside the state
    workspace: str | None = None


def state_path(workspace: str | None, state: Path | None) -> Path:
    """The state file: --state when given, else state/NAME.yaml for a workspace, else state/state.yaml."""
    if state is not None:
        return state
    return DEFAULT_STATE if workspace is None else DEFAULT_STATE.with_name(f"{workspace}.yaml")


def select_workspace(
    config: Config,
    workspace: str | None,
    environ: Mapping[str, str],
    state: Path | None = None,
    *,
    need_key: bool = True,
) -> Selected:
    """The config, environment and state files of one tick (see the module doc)."""
    names = [w.name for w in config.workspaces]
    if workspace is None:
        if names:
            raise UsageError(
                f"config.yaml defines the workspaces {', '.join(names)}: pass --workspace NAME "
                "(each ticks on its own, with its own state file)"
            )
        path = state_path(None, state)
        return Selected(config, environ, path, path.parent / "health.yaml")
    chosen = next((w for w in config.workspaces if w.name == workspace), None)
    if chosen is None:
        if not names:
            raise UsageError(f"--workspace {workspace}: config.yaml defines no workspaces")
        near = difflib.get_close_matches(workspace, names, n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        raise UsageError(
            f"--workspace {workspace}: no such workspace in config.yaml; {hint}they are {', '.join(names)}"
        )
    key = environ.get(chosen.api_key_env, "").strip()
    if need_key and not key:
        raise UsageError(
            f"missing environment variable {chosen.api_key_env}: the API key of workspace {chosen.name} "
            "(its api_key_env in config.yaml)"
        )
    environment = dict(environ)
    environment.pop("HIGHTOUCH_API_KEY", None)  # never another workspace's key by mistake
    if key:
        environment["HIGHTOUCH_API_KEY"] = key
    path = state_path(chosen.name, state)
    return Selected(chosen.config, environment, path, path.with_name(f"{chosen.name}.health.yaml"), chosen.name)
