"""The template files: the shipped ones (package data), a team's overrides in templates/
beside config.yaml, and `templates export`, which copies a shipped one there for editing."""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path

from triage.errors import UsageError
from triage.render import SHIPPED_TEMPLATES

TEMPLATE_SUFFIX = ".j2"


def shipped_templates() -> tuple[str, ...]:
    """The names of the shipped templates, sorted."""
    return tuple(sorted(p.name for p in SHIPPED_TEMPLATES.glob(f"*{TEMPLATE_SUFFIX}")))


def closest_template(name: str) -> str | None:
    """The shipped template a misspelt name most likely meant, if any is close."""
    found = difflib.get_close_matches(name, shipped_templates(), n=1, cutoff=0.6)
    return found[0] if found else None


def shipped_name(name: str) -> str:
    """A shipped template named in full (slack_message.md.j2) or by its stem (slack_message)."""
    names = shipped_templates()
    for candidate in (name, *(n for n in names if n.split(".", 1)[0] == name)):
        if candidate in names:
            return candidate
    near = closest_template(name)
    hint = f"did you mean {near}? " if near else ""
    raise UsageError(f"no shipped template {name!r}: {hint}the templates are {', '.join(names)}")


@dataclass(frozen=True)
class Exported:
    written: tuple[Path, ...]


def export_templates(names: list[str], directory: Path) -> Exported:
    """Copy shipped templates into `directory` for editing. Refuses to overwrite one that is
    there (it holds the team's wording) and checks every name before copying any."""
    chosen = [shipped_name(name) for name in names]
    there = [directory / name for name in chosen if (directory / name).exists()]
    if there:
        raise UsageError(f"{there[0]} exists: it is your override already; edit it, or delete it to start again")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in dict.fromkeys(chosen):
        shutil.copyfile(SHIPPED_TEMPLATES / name, directory / name)
        written.append(directory / name)
    return Exported(tuple(written))


def template_listing(directory: Path) -> str:
    """The shipped templates, each marked when `directory` overrides it."""
    lines = []
    for name in shipped_templates():
        overridden = (directory / name).exists()
        lines.append(f"  {name:<36} {'overridden: ' + str(directory / name) if overridden else 'shipped'}\n")
    return "".join(lines)
