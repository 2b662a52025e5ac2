"""Commit state/ back to the repository after a tick (the workflow's last step).

    python -m triage.commit_state save [--branch BRANCH]     after a tick
    python -m triage.commit_state restore --branch BRANCH    before a tick, when state lives on its own branch

`save` commits only state/, and only when it changed, with a message that says
how many syncs changed; it pushes with a bounded `git pull --rebase` retry
loop, so a pull request merged while the tick ran never costs the state.

Where state lives: the branch named by --branch, else $STATE_BRANCH (the
repository variable TRIAGE_STATE_BRANCH, for a protected default branch),
else the default branch ($DEFAULT_BRANCH) when the run was started on another
ref ($GITHUB_REF_NAME) — a manual run from a feature branch reads and commits
the state the schedule uses, so it cannot fork it and re-send alerts — else
the checked-out branch.

A state that cannot be saved is loud: git's own error is shown, a protected branch
(GitHub's GH006 / GH013) is recognised on the first refusal and not retried, the message
says how to keep state on a branch of its own (TRIAGE_STATE_BRANCH), the step fails, and —
when SLACK_BOT_TOKEN is set — the default Slack channel is told that alerts will repeat or
be missed until it is fixed.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from triage.state import load_text

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class GitError(RuntimeError):
    pass


class ProtectedBranch(GitError):
    """The remote refuses every push to the branch: retrying cannot help."""

    def __init__(self, message: str, branch: str, git_error: str) -> None:
        super().__init__(message)
        self.branch = branch
        self.git_error = git_error


# What GitHub answers a push to a protected branch: GH006 (branch protection), GH013
# (repository rules); other hosts say "protected branch" (GitLab, Gitea, Bitbucket).
PROTECTED = re.compile(r"\bGH006\b|\bGH013\b|protected branch|rule violations", re.IGNORECASE)
STATE_BRANCH_VARIABLE = "TRIAGE_STATE_BRANCH"


def protected_branch_message(branch: str, git_error: str, *, configured: bool) -> str:
    """What to do when the branch that holds state refuses the bot's push."""
    if configured:
        fix = (
            f"{branch} is the branch {STATE_BRANCH_VARIABLE} names: lift its protection (it holds only the bot's "
            f"state commits), or set {STATE_BRANCH_VARIABLE} to another branch name"
        )
    else:
        fix = (
            f"keep state on a branch of its own: set the repository variable {STATE_BRANCH_VARIABLE} (Settings → "
            "Secrets and variables → Actions → Variables → New repository variable, name "
            f"{STATE_BRANCH_VARIABLE}, value triage-state; or `gh variable set {STATE_BRANCH_VARIABLE} --body "
            "triage-state`). The next tick creates that branch and commits state there"
        )
    return (
        f"could not save the state: the branch {branch} is protected and refused the state commit. Until this is "
        f"fixed every tick starts from the state it found, so alerts will repeat or be missed. To fix it, {fix}. "
        f"git said:\n{_indent(git_error)}"
    )


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.strip().splitlines()) or "    (nothing)"


# A git call that hangs (a network stall on fetch or push) must not hold the job until
# GitHub kills it: that would skip the retries and lose the commit's message.
GIT_TIMEOUT = 120.0


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=False, timeout=GIT_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args)}: no answer within {GIT_TIMEOUT:g}s") from None
    if check and result.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def state_branch(configured: str | None, ref_name: str | None, default_branch: str | None) -> str | None:
    """The branch that holds state, or None for the checked-out branch (see the module doc)."""
    if configured:
        return configured
    if default_branch and ref_name and ref_name != default_branch:
        return default_branch
    return None


def changed_syncs(old_text: str | None, new_text: str | None) -> int:
    """How many syncs differ between two versions of state.yaml."""
    old, new = _syncs(old_text), _syncs(new_text)
    return sum(1 for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def _syncs(text: str | None) -> dict[str, Any]:
    try:
        doc = load_text(text or "") or {}  # the state's own fast reader: 50,000 syncs in a blink
    except yaml.YAMLError:
        return {}
    syncs = doc.get("syncs") if isinstance(doc, dict) else None
    return syncs if isinstance(syncs, dict) else {}


def commit_message(old_text: str | None, new_text: str | None) -> str:
    count = changed_syncs(old_text, new_text)
    if not old_text:
        what = f"baseline of {count} sync{'s' if count != 1 else ''}"
    elif count:
        what = f"{count} sync{'s' if count != 1 else ''} changed"
    else:
        what = "heartbeat, no sync changed"
    # [skip ci]: a state commit every 15 minutes must not run the test workflow.
    return f"state: {what} [skip ci]"


@dataclass(frozen=True)
class StateFiles:
    """The files a save commits: all of state/, or, for one of several workspaces, only its
    own (state/NAME.*), so workspaces ticking in parallel never commit each other's."""

    state_dir: str = "state"
    workspace: str | None = None

    @property
    def pathspec(self) -> str:
        return self.state_dir if self.workspace is None else f"{self.state_dir}/{self.workspace}.*"

    @property
    def state_file(self) -> str:
        return f"{self.state_dir}/{self.workspace or 'state'}.yaml"

    def mirror(self, source_root: Path, target_root: Path) -> None:
        """Make the target hold the source's files of this save (and only those change)."""
        if self.workspace is None:
            _mirror(source_root / self.state_dir, target_root / self.state_dir)
            return
        source, target = source_root / self.state_dir, target_root / self.state_dir
        pattern = f"{self.workspace}.*"
        for old in target.glob(pattern) if target.exists() else ():
            _remove(old)
        for new in source.glob(pattern) if source.exists() else ():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(new, target / new.name)


def save(
    repo: Path,
    *,
    state_dir: str = "state",
    workspace: str | None = None,
    branch: str | None = None,
    remote: str = "origin",
    attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
    out: Callable[[str], None] = print,
    configured: bool = False,
) -> bool:
    """Commit and push state/; True when a commit was pushed, False when nothing changed.
    Raises ProtectedBranch at the first refusal of a protected branch (`configured`: the
    branch is the one TRIAGE_STATE_BRANCH names), GitError when the push kept failing.
    With `workspace`, only that workspace's files (state/NAME.*) are committed."""
    files = StateFiles(state_dir, workspace)
    if branch is None:
        target = git(repo, "symbolic-ref", "--short", "HEAD").stdout.strip()
        return _commit_and_push(repo, files, target, remote, attempts, sleep, out, configured)
    worktree = Path(tempfile.mkdtemp(prefix="triage-state-"))
    try:
        exists = _fetch(repo, remote, branch)
        if exists:
            git(repo, "worktree", "add", "--detach", str(worktree), "FETCH_HEAD")
        else:
            git(repo, "worktree", "add", "--detach", str(worktree), "HEAD")
            git(worktree, "checkout", "--orphan", branch)
            git(worktree, "rm", "-r", "-q", "--cached", ".")
            for child in worktree.iterdir():
                if child.name != ".git":
                    _remove(child)
        files.mirror(repo, worktree)
        return _commit_and_push(worktree, files, branch, remote, attempts, sleep, out, configured)
    finally:
        git(repo, "worktree", "remove", "--force", str(worktree), check=False)
        shutil.rmtree(worktree, ignore_errors=True)


def restore(repo: Path, *, branch: str, state_dir: str = "state", remote: str = "origin") -> bool:
    """Put the state branch's state/ into the working tree; False when the branch does not exist yet."""
    if not _fetch(repo, remote, branch):
        return False
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", "FETCH_HEAD", state_dir],
            cwd=repo,
            capture_output=True,
            check=False,
            timeout=GIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git archive: no answer within {GIT_TIMEOUT:g}s") from None
    if archive.returncode != 0:
        return False  # the branch exists but holds no state/ yet
    with tempfile.TemporaryDirectory(prefix="triage-state-") as tmp:
        tar_path = Path(tmp) / "state.tar"
        tar_path.write_bytes(archive.stdout)
        extracted = Path(tmp) / "x"
        shutil.unpack_archive(str(tar_path), str(extracted), format="tar")
        _mirror(extracted / state_dir, repo / state_dir)
    return True


def _commit_and_push(
    worktree: Path,
    files: StateFiles,
    branch: str,
    remote: str,
    attempts: int,
    sleep: Callable[[float], None],
    out: Callable[[str], None],
    configured: bool = False,
) -> bool:
    if not git(worktree, "status", "--porcelain", "--untracked-files=all", "--", files.pathspec).stdout.strip():
        out("state unchanged: nothing to commit")
        return False
    state_file = files.state_file
    old = git(worktree, "show", f"HEAD:{state_file}", check=False)
    new_path = worktree / state_file
    message = commit_message(
        old.stdout if old.returncode == 0 else None, new_path.read_text() if new_path.exists() else None
    )
    if files.workspace:
        message = message.replace("state:", f"state ({files.workspace}):", 1)
    git(worktree, "add", "-A", "--", files.pathspec)
    git(worktree, "-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}", "commit", "-q", "-m", message)
    refused = ""
    for attempt in range(1, attempts + 1):
        push = git(worktree, "push", "-q", remote, f"HEAD:refs/heads/{branch}", check=False)
        if push.returncode == 0:
            out(f"pushed to {branch}: {message}")
            return True
        refused = push.stderr.strip() or push.stdout.strip() or f"git push exited {push.returncode}"
        if PROTECTED.search(refused):  # refused for good: no retry, no rebase can change it
            raise ProtectedBranch(protected_branch_message(branch, refused, configured=configured), branch, refused)
        if attempt == attempts:
            break
        # Someone pushed meanwhile (a merged config PR): replay the state commit on top.
        out(f"push to {branch} rejected (attempt {attempt}/{attempts}); rebasing on {remote}/{branch}. git said:")
        out(_indent(refused))
        if _fetch(worktree, remote, branch):
            rebase = git(
                worktree,
                "-c",
                f"user.name={BOT_NAME}",
                "-c",
                f"user.email={BOT_EMAIL}",
                "rebase",
                "-q",
                "FETCH_HEAD",
                check=False,
            )
            if rebase.returncode != 0:
                git(worktree, "rebase", "--abort", check=False)
                raise GitError(f"rebasing the state commit on {remote}/{branch} conflicted: {rebase.stderr.strip()}")
        sleep(min(30.0, 2.0**attempt) * (0.5 + random.random() / 2))
    raise GitError(
        f"could not save the state: the push to {branch} failed {attempts} times; until it succeeds every tick "
        f"starts from the state it found, so alerts will repeat or be missed. git said:\n{_indent(refused)}"
    )


def _fetch(repo: Path, remote: str, branch: str) -> bool:
    return git(repo, "fetch", "-q", remote, f"refs/heads/{branch}", check=False).returncode == 0


def _mirror(source: Path, target: Path) -> None:
    """Make `target` hold exactly the files of `source`."""
    if target.exists():
        shutil.rmtree(target)
    if source.exists():
        shutil.copytree(source, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m triage.commit_state", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    save_cmd = commands.add_parser("save", help="commit and push state/ if it changed")
    save_cmd.add_argument("--attempts", type=int, default=5, help="push attempts (default: 5)")
    save_cmd.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("CONFIG") or "config.yaml"),
        help="config.yaml, for the Slack channel told when the state cannot be saved (default: $CONFIG, "
        "else config.yaml)",
    )
    restore_cmd = commands.add_parser("restore", help="check out state/ from the branch that holds it")
    for sub in (save_cmd, restore_cmd):
        sub.add_argument("--branch", default=None, help="the branch that holds state (default: see above)")
        sub.add_argument("--state-dir", default="state")
        sub.add_argument(
            "--workspace",
            default=os.environ.get("WORKSPACE") or None,
            help="one of several workspaces: only its files, state/NAME.* (default: $WORKSPACE)",
        )
        sub.add_argument("--remote", default="origin")
        sub.add_argument("--repo", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    branch = args.branch or state_branch(
        os.environ.get("STATE_BRANCH"), os.environ.get("GITHUB_REF_NAME"), os.environ.get("DEFAULT_BRANCH")
    )
    try:
        if args.command == "save":
            return _save(args, branch)
        if branch is None:
            print("state/ is on the checked-out branch")
        elif restore(args.repo, branch=branch, state_dir=args.state_dir, remote=args.remote):
            print(f"state/ restored from {branch}")
        else:
            print(f"no state on {branch} yet: this tick starts from a baseline")
    except GitError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


def _save(args: argparse.Namespace, branch: str | None) -> int:
    """`save`, and when the state cannot be saved: the error with git's own words, an
    annotation on the run's page, and the default Slack channel told."""
    configured = bool(args.branch or os.environ.get("STATE_BRANCH"))
    try:
        save(
            args.repo,
            state_dir=args.state_dir,
            workspace=args.workspace,
            branch=branch,
            remote=args.remote,
            attempts=args.attempts,
            configured=configured,
        )
        return 0
    except GitError as exc:
        sys.stderr.write(f"error: {exc}\n")
        protected = isinstance(exc, ProtectedBranch)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            first = str(exc).splitlines()[0].replace("%", "%25")
            title = "state not saved: protected branch" if protected else "state not saved"
            print(f"::error title=hightouch-triage: {title}::{first}")
        where = exc.branch if isinstance(exc, ProtectedBranch) else (branch or _current_branch(args.repo))
        git_error = exc.git_error if isinstance(exc, ProtectedBranch) else str(exc)
        # Imported here: the commit-back needs the Slack client only on this bad day.
        from triage.state_alarm import context, tell_slack

        problem = tell_slack(args.config, os.environ, context(where, git_error, protected, os.environ))
        if problem:
            sys.stderr.write(f"warning: {problem}\n")
        return 1


def _current_branch(repo: Path) -> str:
    result = git(repo, "symbolic-ref", "--short", "HEAD", check=False)
    return result.stdout.strip() or "HEAD"


if __name__ == "__main__":
    sys.exit(main())
