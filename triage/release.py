"""What a release is: its version, the action it ships and the commit that action is at, and
its notes from CHANGELOG.md.

    python -m triage.release notes --tag vX.Y.Z [--changelog CHANGELOG.md]
        check that the tag is v + triage.__version__ and print that version's CHANGELOG section
    python -m triage.release stamp --repository OWNER/REPO --commit SHA
        record, in the tree a release is built from, where its action lives and at which commit

A commit cannot hold its own SHA, so `RELEASE_COMMIT` is empty in the repository: the release
workflow stamps it into the wheel it builds from the tag and attaches to the GitHub release.
`init` pins the action to it (see `release_action`), which is how a team's workflow calls the
exact code that was released, by a reference nobody can move.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from triage import __version__

# Where the action lives, and the commit of this release: the one place that says so. The
# release workflow rewrites both lines (`stamp`) in what it builds; keep them one line each.
ACTION_REPOSITORY = "hightouch-triage/hightouch-triage"
RELEASE_COMMIT = ""

FULL_SHA = re.compile(r"[0-9a-f]{40}")
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
ACTION = re.compile(r"(?P<repository>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)@(?P<ref>[A-Za-z0-9_./-]+)")
DISTRIBUTION = "hightouch-triage"


class ReleaseError(ValueError):
    pass


@dataclass(frozen=True)
class ActionRef:
    """The action a workflow calls: `repository@ref`, and the release `ref` is (for the
    `# vX.Y.Z` comment beside a SHA, which Dependabot reads and updates with the SHA)."""

    repository: str
    ref: str
    version: str | None = None

    @property
    def pinned(self) -> bool:
        return bool(FULL_SHA.fullmatch(self.ref))

    def uses(self, path: str = "") -> str:
        """The `uses:` value, `path` being a sub-action of the repository (`/check`)."""
        text = f"{self.repository}{path}@{self.ref}"
        return f"{text} # v{self.version}" if self.pinned and self.version else text


def mutable_ref_warning(action: ActionRef) -> str:
    return (
        f"the workflow calls {action.repository}@{action.ref}: a tag or branch can be moved to other code, "
        "which would then run with your secrets (zizmor reports it as unpinned-uses); pin it to the full "
        "commit SHA of a release: --action OWNER/REPO@SHA"
    )


def parse_action(text: str, version: str = __version__) -> tuple[ActionRef, str | None]:
    """`--action OWNER/REPO@REF` as an ActionRef, and a warning when REF is not a commit SHA.
    Beside a SHA the comment names this tool's own version: pin the release you installed."""
    match = ACTION.fullmatch(text.strip())
    if match is None:
        raise ReleaseError(f"--action {text!r}: expected OWNER/REPO@REF, e.g. {ACTION_REPOSITORY}@<commit SHA>")
    action = ActionRef(match["repository"], match["ref"], version if FULL_SHA.fullmatch(match["ref"]) else None)
    return action, None if action.pinned else mutable_ref_warning(action)


def release_action(
    version: str = __version__,
    *,
    commit: str | None = None,
    repository: str | None = None,
    direct_url: Callable[[], str | None] | None = None,
) -> tuple[ActionRef, str | None]:
    """The action `init` writes by default: this release's own, pinned to its commit.

    The commit is known when this copy was built by the release workflow (`RELEASE_COMMIT`),
    or installed by pip from git at the release's tag (pip records the commit it checked
    out: PEP 610's direct_url.json). Otherwise the action is called by its tag, with a
    warning to pin it."""
    commit = RELEASE_COMMIT if commit is None else commit
    repository = repository or ACTION_REPOSITORY
    if FULL_SHA.fullmatch(commit):
        return ActionRef(repository, commit, version), None
    installed = _git_install((direct_url or _direct_url)())
    if installed is not None and installed[2] == f"v{version}":
        return ActionRef(installed[0], installed[1], version), None
    action = ActionRef(repository, f"v{version}")
    return action, (
        f"this copy of hightouch-triage does not know the commit of release v{version} (it was not installed "
        "from the release's wheel or its git tag); " + mutable_ref_warning(action)
    )


def _direct_url() -> str | None:
    try:
        return metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None


def _git_install(text: str | None) -> tuple[str, str, str] | None:
    """(OWNER/REPO, commit, requested ref) of a pip install from a GitHub repository, if it was one."""
    try:
        info = json.loads(text or "null")
    except ValueError:
        return None
    vcs = info.get("vcs_info") if isinstance(info, dict) else None
    if not isinstance(vcs, dict) or vcs.get("vcs") != "git":
        return None
    url = urlsplit(str(info.get("url", "")))
    repository = url.path.strip("/").removesuffix(".git")
    commit = str(vcs.get("commit_id", ""))
    if url.hostname != "github.com" or not REPOSITORY.fullmatch(repository) or not FULL_SHA.fullmatch(commit):
        return None
    return repository, commit, str(vcs.get("requested_revision", ""))


def check_tag(tag: str, version: str = __version__) -> None:
    """A release tag is `v` + the version the code says it is, or the release would lie."""
    if tag != f"v{version}":
        raise ReleaseError(
            f"tag {tag!r} does not match the version in triage/__init__.py ({version}): "
            f"tag v{version}, or set __version__ = {tag.removeprefix('v')!r} and CHANGELOG.md first"
        )


_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\]", re.MULTILINE)


def release_notes(changelog: str, version: str, where: str = "CHANGELOG.md") -> str:
    """The body of `## [version]` in a Keep a Changelog file, up to the next `## [`."""
    headings = list(_HEADING.finditer(changelog))
    for index, heading in enumerate(headings):
        if heading["version"] == version:
            end = headings[index + 1].start() if index + 1 < len(headings) else len(changelog)
            body = changelog[heading.end() : end]
            body = body.split("\n", 1)[1] if "\n" in body else ""  # the rest of the heading line: its date
            body = re.split(r"^\[[^\]]+\]: ", body, maxsplit=1, flags=re.MULTILINE)[0]  # link definitions
            if body.strip():
                return body.strip() + "\n"
            raise ReleaseError(f"{where}: the section ## [{version}] is empty: say what the release changes")
    raise ReleaseError(
        f"{where}: no section ## [{version}]: move the Unreleased entries under ## [{version}] - YYYY-MM-DD"
    )


def stamp(path: Path, repository: str, commit: str) -> None:
    """Write the repository and commit a release is built from into this module's file."""
    if not REPOSITORY.fullmatch(repository):
        raise ReleaseError(f"--repository {repository!r}: expected OWNER/REPO")
    if not FULL_SHA.fullmatch(commit):
        raise ReleaseError(f"--commit {commit!r}: expected a full 40-character commit SHA")
    text = path.read_text(encoding="utf-8")
    for name, value in (("ACTION_REPOSITORY", repository), ("RELEASE_COMMIT", commit)):
        text, count = re.subn(rf'^{name} = ".*"$', f'{name} = "{value}"', text, count=1, flags=re.MULTILINE)
        if count != 1:
            raise ReleaseError(f'{path}: no line {name} = "…" to stamp')
    path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m triage.release", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    notes = commands.add_parser("notes", help="check the tag against the version; print its CHANGELOG section")
    notes.add_argument("--tag", required=True)
    notes.add_argument("--changelog", type=Path, default=Path("CHANGELOG.md"))
    stamp_cmd = commands.add_parser("stamp", help="record the repository and commit a release is built from")
    stamp_cmd.add_argument("--repository", required=True)
    stamp_cmd.add_argument("--commit", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "notes":
            check_tag(args.tag)
            changelog = args.changelog.read_text(encoding="utf-8")
            sys.stdout.write(release_notes(changelog, __version__, str(args.changelog)))
        else:
            stamp(Path(__file__), args.repository, args.commit)
            print(f"release of {args.repository} at {args.commit}: stamped into {Path(__file__).name}")
    except (ReleaseError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
