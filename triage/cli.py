"""Command line: argument parsing, wiring and exit codes. No business logic.

Exit codes of `run` and `validate`: 0 done (also when rate limits deferred
part of the tick), 2 usage or config error, 1 anything else that stopped the
tick or left a sync unhandled.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from triage import __version__
from triage.config import (
    MIN_SECRET_LENGTH,
    SECRET_VARIABLES,
    Config,
    Environment,
    HightouchConfig,
    fit_to_workflow,
    load_config,
    load_environment,
)
from triage.demo import run_demo
from triage.dryrun import PrintingLinear, PrintingSlack, printing_trigger
from triage.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    StateBusy,
    StateError,
    TriageError,
    UsageError,
)
from triage.explain import routes_table
from triage.health import report_health, run_url
from triage.hightouch import HightouchClient
from triage.http import HttpClient, Meter, Pacer, Throttle, WaitBudget, redact
from triage.linear import LinearClient
from triage.output import append_text, safe_stream, workflow_command
from triage.preflight import placeholder_warnings, preflight, state_branch_findings
from triage.release import ReleaseError, parse_action, release_action
from triage.render import Renderer, markdown_escape
from triage.sandbox import SCENARIOS, SandboxServer, ScenarioError, World, load_scenario_file
from triage.scaffold import scaffold
from triage.slack import SLACK_BURST, SLACK_MESSAGES_PER_SECOND, SlackClient
from triage.state import StateStore
from triage.status import (
    DEFAULT_ARTIFACTS_DIR,
    EXIT_BAD_CREDENTIALS,
    EXIT_BAD_REQUEST,
    EXIT_NOT_FOUND,
    EXIT_OTHER_ERROR,
    check,
    describe,
    parse_duration,
    wait_for,
)
from triage.summary import TickSummary, format_summary, summary_markdown, workflow_commands
from triage.template_check import check_templates, renders
from triage.template_files import export_templates, template_listing
from triage.tick import Services, Tick
from triage.times import parse_iso_time
from triage.virtual_time import clocks_from
from triage.workspaces import select_workspace, state_path

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


DESCRIPTION = """\
Watch Hightouch syncs: alert Slack when a sync run fails, open a Linear issue
when a sync keeps failing. `run` does one tick; schedule it every 15 minutes.

Secrets come from the environment only: HIGHTOUCH_API_KEY, SLACK_BOT_TOKEN,
LINEAR_API_KEY. HIGHTOUCH_API_URL, HIGHTOUCH_APP_URL, SLACK_API_URL and
LINEAR_API_URL point the tool at other endpoints (a sandbox, a proxy)."""


def build_parser(environ: Mapping[str, str] | None = None, prog: str = "python -m triage") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"hightouch-triage {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        default=(os.environ if environ is None else environ).get("TRIAGE_LOG_LEVEL", "warning"),
        choices=["debug", "info", "warning", "error"],
        help="how much to log on stderr (default: warning, or $TRIAGE_LOG_LEVEL)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="one tick: check every sync, alert on new failures, escalate repeated ones",
        description="One tick: list syncs, find runs that newly failed, post to Slack, open Linear issues "
        "for syncs failing repeatedly, and save state. Exit 0 when the tick finished (also when rate "
        "limits deferred part of it), 2 on a usage or config error, 1 otherwise.",
    )
    run.add_argument("--config", type=Path, default=Path("config.yaml"), help="settings file (default: config.yaml)")
    run.add_argument(
        "--state",
        type=Path,
        default=None,
        help="state file (default: state/state.yaml, or state/NAME.yaml with --workspace NAME)",
    )
    run.add_argument(
        "--workspace",
        metavar="NAME",
        help="with `workspaces` in config.yaml: the one this tick is for (its key from its api_key_env)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="read Hightouch, print what would be sent; send nothing, write no state "
        "(SLACK_BOT_TOKEN and LINEAR_API_KEY are not needed)",
    )

    routes = commands.add_parser(
        "routes",
        parents=[common],
        help="show where each sync's alerts would go (reads Hightouch, sends nothing)",
        description="List every enabled sync with the route its alerts follow: channels, mentions, Linear team, "
        "threshold, whether it escalates, and any mute. Needs only HIGHTOUCH_API_KEY; sends nothing.",
    )
    routes.add_argument("--config", type=Path, default=Path("config.yaml"), help="settings file")
    routes.add_argument("--sync", help="only this sync (slug or id)")
    routes.add_argument("--workspace", metavar="NAME", help="with `workspaces` in config.yaml: which one")

    validate = commands.add_parser(
        "validate",
        parents=[common],
        help="check config.yaml and every template; with --online, the keys, channels, teams and labels too",
        description="Check config.yaml and render every template once with sample data. "
        "Exit 0 when both are valid, 2 otherwise. Needs no credentials. With --online, also check the "
        "setup against the real APIs (needs HIGHTOUCH_API_KEY, SLACK_BOT_TOKEN, LINEAR_API_KEY; sends "
        "nothing) and exit 2 when any check fails.",
    )
    validate.add_argument("--config", type=Path, default=Path("config.yaml"), help="settings file")
    validate.add_argument(
        "--online",
        action="store_true",
        help="also check with the real APIs: the three keys, every configured channel (and the bot's "
        "membership), every team and label; sends nothing",
    )
    validate.add_argument(
        "--workspace",
        metavar="NAME",
        help="with `workspaces` in config.yaml: check this one's settings (needed with --online)",
    )

    init = commands.add_parser(
        "init",
        parents=[common],
        help="scaffold a team repository that runs the tick through the reusable action",
        description="Write config.yaml (commented), state/, templates/, .gitignore, Dependabot, the tick's "
        "workflow and a CI workflow (both calling the hightouch-triage action) into DIR, a new repository of "
        "your team's. Overwrites nothing; with --existing, adds what is missing to an existing repository "
        "and prints what to merge by hand.",
    )
    init.add_argument("directory", type=Path, metavar="DIR", help="where to write (created if missing)")
    init.add_argument(
        "--existing",
        action="store_true",
        help="DIR is an existing repository: add only the missing files, overwrite nothing, "
        "and print what to merge into the files that are there",
    )
    init.add_argument(
        "--workspace",
        dest="workspaces",
        action="append",
        default=[],
        metavar="NAME",
        help="a Hightouch workspace to tick (repeat for several): config.yaml gets a `workspaces` section and "
        "the workflow one job per workspace",
    )
    init.add_argument(
        "--action",
        default=None,
        help="the action as the workflow calls it, OWNER/REPO@REF, REF a release's full commit SHA "
        f"(written with a # v{__version__} comment for Dependabot; a tag or branch works, with a warning). "
        f"Default: the commit of this release, v{__version__}",
    )

    workspaces = commands.add_parser(
        "workspaces",
        parents=[common],
        help="list the workspaces config.yaml defines (name, key variable, state file)",
        description="List the Hightouch workspaces config.yaml defines: each one's name, the environment "
        "variable holding its API key, its state file and its slug. Reads no API.",
    )
    workspaces.add_argument("--config", type=Path, default=Path("config.yaml"), help="settings file")
    workspaces.add_argument(
        "--key-env", metavar="NAME", help="print only the variable holding workspace NAME's key (for scripts)"
    )

    templates = commands.add_parser(
        "templates",
        parents=[common],
        help="list the shipped templates, or copy some into templates/ to edit them",
        description="The words of every message are Jinja templates shipped with the tool; a file of the same "
        "name in templates/ beside config.yaml overrides one.",
    )
    templates_commands = templates.add_subparsers(dest="templates_command", required=True, metavar="ACTION")
    listing = templates_commands.add_parser(
        "list", parents=[common], help="the shipped templates, and which templates/ overrides"
    )
    export = templates_commands.add_parser(
        "export",
        parents=[common],
        help="copy shipped templates into templates/ for editing (never overwrites)",
        description="Copy shipped templates into templates/ beside config.yaml, to edit by pull request. "
        "Refuses to overwrite a file that is there.",
    )
    export.add_argument(
        "names", nargs="+", metavar="NAME", help="a template, e.g. slack_message.md.j2 or slack_message"
    )
    for sub in (listing, export):
        sub.add_argument("--config", type=Path, default=Path("config.yaml"), help="templates/ is beside it")

    status = commands.add_parser(
        "status",
        parents=[common],
        help="check one sync run and exit 0 / 210 / 211 (succeeded / failed / not finished)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check a sync's latest run (or --run-id), print one line about it, save the raw API "
        "response as JSON, and exit with a code other schedulers can chain on.",
        epilog=SHIPYARD_CODES,
    )
    status.add_argument("--sync-id", help="the sync (default: $HIGHTOUCH_SYNC_ID)")
    status.add_argument("--run-id", help="the run (default: $HIGHTOUCH_SYNC_RUN_ID, else the latest run)")
    add_artifact_options(status)

    trigger = commands.add_parser(
        "trigger",
        parents=[common],
        help="start a sync run; with --wait, exit like `status` once it settles",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start a run of a sync and print its run id. With --wait, poll until the run settles "
        "(or --timeout passes: exit 211) and exit like `status`.",
        epilog=SHIPYARD_CODES,
    )
    trigger.add_argument("--sync-id", help="the sync (default: $HIGHTOUCH_SYNC_ID)")
    trigger.add_argument("--full-resync", action="store_true", help="resync every row, not just changes")
    trigger.add_argument("--wait", action="store_true", help="wait for the run to settle")
    trigger.add_argument("--timeout", default="1h", help="with --wait: give up after this long (default: 1h)")
    trigger.add_argument("--poll-interval", default="30s", help="with --wait: time between checks (default: 30s)")
    add_artifact_options(trigger)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="play a scripted story against the built-in sandbox (no credentials needed)",
        description="Start the sandbox on 127.0.0.1, run several ticks of a scripted story in a temporary "
        "directory, and print what Slack and Linear received. Needs no credentials and no network.",
    )
    demo.add_argument("--scenario", type=Path, help="scenario file (default: the built-in demo story)")

    sandbox = commands.add_parser(
        "sandbox",
        parents=[common],
        help="run the local emulator of Hightouch, Slack and Linear",
        description="Serve the emulator on 127.0.0.1 until interrupted, and print the environment variables "
        "that point `run` and `status` at it. POST /_sandbox/advance applies the next scenario step; "
        "GET /_sandbox/state shows what Slack and Linear received.",
    )
    sandbox.add_argument("--port", type=int, default=8787, help="port on 127.0.0.1 (default: 8787; 0 for any)")
    sandbox.add_argument("--scenario", type=Path, help="scenario file (default: the built-in demo story)")
    sandbox.add_argument("--rate-limit", action="store_true", help="enforce 200 requests / 10 s like Hightouch")
    sandbox.add_argument("--latency-ms", type=float, default=None, help="delay every answer by this much")
    return parser


SHIPYARD_CODES = """\
exit codes (Shipyard's):
  0    the run succeeded (also `warning`, unless --warning-is-error)
  210  the run finished with an error (failed, interrupted, cancelled)
  211  the run has not finished (or --wait timed out)
  212  the run has a status this tool does not know
  200  bad credentials (HIGHTOUCH_API_KEY refused)
  201  unknown sync or run
  202  bad request
  3    any other error
  2    usage error (e.g. no sync id)"""


def add_artifact_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifacts-dir",
        type=Path,
        default=DEFAULT_ARTIFACTS_DIR,
        help=f"where the raw response is saved, under responses/ (default: {DEFAULT_ARTIFACTS_DIR})",
    )
    parser.add_argument("--warning-is-error", action="store_true", help="a run ending in `warning` exits 210")


def entry_point() -> None:
    """The `hightouch-triage` console script: the same CLI as `python -m triage`."""
    prog = Path(sys.argv[0]).name if sys.argv[0].endswith("hightouch-triage") else "python -m triage"
    sys.exit(main(prog=prog, **clocks_from(os.environ)))  # TRIAGE_VIRTUAL_SLEEP: a testing knob


def tick_now(environ: Mapping[str, str], now: Callable[[], datetime]) -> datetime:
    """The tick's now: `TRIAGE_NOW` (an ISO 8601 time) when set — for the sandbox, the demo and
    outside test harnesses, so stories over hours run in seconds — else the clock's."""
    given = environ.get("TRIAGE_NOW", "").strip()
    if not given:
        return now()
    moment = parse_iso_time(given)
    if moment is None:
        raise UsageError(f"TRIAGE_NOW={given!r} is not an ISO 8601 time (e.g. 2026-11-23T09:15:00Z)")
    return moment


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    prog: str = "python -m triage",
    clock: Callable[[], float] = time.monotonic,  # the tick's time limit and Slack's pace run on it
) -> int:
    environ = os.environ if environ is None else environ
    secrets = _secret_values(environ)
    out = safe_stream(stdout or sys.stdout, secrets)
    parser = build_parser(environ, prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    _configure_logging(args.log_level, secrets)
    if args.command in ("status", "trigger"):
        return _run_status_command(args, environ, out, sleep, now, secrets)
    try:
        if args.command == "validate":
            return _validate(args.config, out, environ if args.online else None, sleep, args.workspace)
        if args.command == "init":
            return _init(args.directory, args.action, args.existing, out, secrets, args.workspaces)
        if args.command == "templates":
            return _templates(args, out)
        if args.command == "workspaces":
            return _workspaces(args, out)
        if args.command == "demo":
            return run_demo(out, main, args.scenario)
        if args.command == "sandbox":
            return _sandbox(args, out)
        if args.command == "routes":
            return _routes(args, environ, out, sleep)
        return _run(args, environ, out, sleep, tick_now(environ, now), clock)
    except (UsageError, ConfigError) as exc:
        _error(str(exc), secrets)
        return EXIT_USAGE
    except (StateError, TriageError) as exc:
        _error(str(exc), secrets)
        return EXIT_ERROR
    except Exception as exc:  # the last line of defence: still never print a secret
        logging.getLogger("triage").debug("unexpected error", exc_info=True)
        _error(f"unexpected error: {type(exc).__name__}: {exc}", secrets)
        return EXIT_ERROR


def _run_status_command(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    out: TextIO,
    sleep: Callable[[float], None],
    now: Callable[[], datetime],
    secrets: tuple[str, ...],
) -> int:
    """`status` and `trigger`, with Shipyard's exit codes for every outcome and error."""
    try:
        sync_id = args.sync_id or environ.get("HIGHTOUCH_SYNC_ID", "").strip()
        if not sync_id:
            raise UsageError("no sync id: pass --sync-id or set HIGHTOUCH_SYNC_ID")
        env = load_environment(environ, need_senders=False)
        wait = args.command == "trigger" and args.wait
        timeout = parse_duration(args.timeout, "--timeout") if wait else 0.0
        interval = parse_duration(args.poll_interval, "--poll-interval") if wait else 0.0
        budget = WaitBudget(max(timeout, 120.0))
        http = HttpClient(
            name="Hightouch",
            secrets=env.secrets,
            budget=budget,
            throttle=hightouch_throttle(HightouchConfig().max_requests_per_10s, sleep),
            sleep=sleep,
        )
        client = HightouchClient(http, env.hightouch_api_url, env.hightouch_api_key)
        if args.command == "status":
            run_id = args.run_id or environ.get("HIGHTOUCH_SYNC_RUN_ID", "").strip() or None
            checked = check(client, sync_id, run_id, args.artifacts_dir, warning_is_error=args.warning_is_error)
        else:
            run_id = client.trigger(sync_id, full_resync=args.full_resync)
            out.write(f"triggered sync {sync_id}: run {run_id}\n")
            if not wait:
                return EXIT_OK
            out.flush()
            checked = wait_for(
                client,
                sync_id,
                run_id,
                args.artifacts_dir,
                timeout=timeout,
                poll_interval=interval,
                sleep=sleep,
                now=now,
                out=out,
                warning_is_error=args.warning_is_error,
            )
        out.write(describe(sync_id, checked.run) + "\n")
        return checked.exit_code
    except UsageError as exc:
        _error(str(exc), secrets)
        return EXIT_USAGE
    except AuthError as exc:
        _error(str(exc), secrets)
        return EXIT_BAD_CREDENTIALS
    except NotFoundError as exc:
        _error(str(exc), secrets)
        return EXIT_NOT_FOUND
    except BadRequestError as exc:
        _error(str(exc), secrets)
        return EXIT_BAD_REQUEST
    except Exception as exc:  # rate limits past the budget, outages, anything else
        _error(f"{type(exc).__name__}: {exc}" if not isinstance(exc, TriageError) else str(exc), secrets)
        return EXIT_OTHER_ERROR


def _sandbox(args: argparse.Namespace, out: TextIO) -> int:
    world = World()
    try:
        world.load_scenario(load_scenario_file(args.scenario or SCENARIOS / "demo.yaml"))
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    world.rate_limit = world.rate_limit or args.rate_limit
    if args.latency_ms is not None:
        world.latency = args.latency_ms / 1000
    try:
        server = SandboxServer(world, args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    out.write(f"Sandbox listening on {server.base_url} (Ctrl-C to stop). Point the CLI at it with:\n")
    for name, value in server.environment().items():
        out.write(f"  export {name}={value}\n")
    out.write(f"Advance the scenario: curl -X POST {server.base_url}/_sandbox/advance\n")
    out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def _init(
    directory: Path,
    action_text: str | None,
    existing: bool,
    out: TextIO,
    secrets: tuple[str, ...],
    workspaces: Sequence[str] = (),
) -> int:
    try:
        action, warning = release_action() if action_text is None else parse_action(action_text)
    except ReleaseError as exc:
        raise UsageError(str(exc)) from None
    if warning:
        _warn(warning, secrets)
    done = scaffold(directory, action, existing=existing, workspaces=workspaces)
    out.write(f"Wrote into {directory}/:\n" if done.files else f"Nothing was missing in {directory}/.\n")
    out.writelines(f"  {path}\n" for path in done.files)
    if done.present:
        out.write("Already there, kept as they are:\n")
        out.writelines(f"  {path}\n" for path in done.present)
    for merge in done.to_merge:
        out.write(f"\n{merge.path} exists and was kept; merge by hand — {merge.advice}\n")
    if done.to_merge:
        out.write("\n")
    out.write(
        "Next: set hightouch.workspace_slug, slack.channel and linear.team in config.yaml; add the repository "
        "secrets HIGHTOUCH_API_KEY, SLACK_BOT_TOKEN and LINEAR_API_KEY; push (the ci workflow checks every pull "
        "request: config, templates, workflows); then run the hightouch-triage workflow once by hand with dry_run "
        "ticked (it checks the keys, channels and teams online). To change the wording of a message: "
        "hightouch-triage templates export NAME. See README: Deploy.\n"
    )
    return EXIT_OK


def _workspaces(args: argparse.Namespace, out: TextIO) -> int:
    config = load_config(args.config)
    if args.key_env is not None:
        selected = select_workspace(config, args.key_env, {}, need_key=False)
        (chosen,) = [w for w in config.workspaces if w.name == selected.workspace]
        out.write(f"{chosen.api_key_env}\n")
        return EXIT_OK
    if not config.workspaces:
        out.write(
            f"{args.config} defines no workspaces: one workspace, key HIGHTOUCH_API_KEY, state state/state.yaml\n"
        )
        return EXIT_OK
    rows = [("workspace", "key variable", "state file", "slug", "channel")]
    rows += [
        (
            w.name,
            w.api_key_env,
            str(state_path(w.name, None)),
            w.config.hightouch.workspace_slug,
            ", ".join(w.config.slack.channels),
        )
        for w in config.workspaces
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
        if index == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")
    return EXIT_OK


def _templates(args: argparse.Namespace, out: TextIO) -> int:
    directory = args.config.parent / "templates"
    if args.templates_command == "list":
        out.write(f"Shipped templates (a file of the same name in {directory}/ overrides one):\n")
        out.write(template_listing(directory))
        return EXIT_OK
    done = export_templates(args.names, directory)
    out.writelines(f"Copied {path}: edit it, then run validate.\n" for path in done.written)
    return EXIT_OK


def _routes(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO, sleep: Callable[[float], None]) -> int:
    selected = select_workspace(load_config(args.config), args.workspace, environ)
    config = selected.config
    env = load_environment(selected.environ, need_senders=False)
    services = build_services(config, env, dry_run=True, sleep=sleep)
    out.write(routes_table(services.hightouch, config, args.sync))
    return EXIT_OK


def _validate(
    config_path: Path,
    out: TextIO,
    online: Mapping[str, str] | None,
    sleep: Callable[[float], None],
    workspace: str | None = None,
) -> int:
    """The config (every workspace's) and templates; with `online` (the environment), the
    setup against the APIs: of one workspace, when config.yaml has several."""
    loaded = load_config(config_path)
    if workspace is not None or (online is not None and loaded.workspaces):
        selected = select_workspace(loaded, workspace, online or {}, need_key=online is not None)
        loaded, online = selected.config, (selected.environ if online is not None else None)
    fit = fit_to_workflow(config_path, loaded)
    config = fit.config
    problems = check_templates(Renderer(config), config.base_dir / "templates")
    errors = [problem.message for problem in problems if problem.level == "error"]
    if errors:
        raise ConfigError("\nerror: ".join(errors))
    samples = sum(1 for _ in renders(Renderer(config)))
    out.write(f"{config_path}: valid; templates render ({samples} sample alerts and messages).\n")
    out.writelines(f"warning: {warning}\n" for warning in fit.warnings)
    out.writelines(f"warning: {problem.message}\n" for problem in problems if problem.level == "warning")
    if online is None:
        # With workspaces, each one's slug is what links use: the top-level one is only a default.
        checked = [w.config for w in config.workspaces] or [config]
        out.writelines(f"{finding.line().strip()}\n" for c in checked for finding in placeholder_warnings(c))
        return EXIT_OK
    env = load_environment(online, need_senders=False)
    services = build_services(config, env, dry_run=False, sleep=sleep)
    findings = preflight(
        config,
        services.hightouch,
        services.slack if env.slack_bot_token else None,
        services.linear if env.linear_api_key else None,
    )
    findings += state_branch_findings(online, sleep)
    out.write(f"Preflight of {config_path} against the APIs (nothing is sent):\n")
    out.writelines(f"{finding.line()}\n" for finding in findings)
    failed = sum(1 for finding in findings if finding.level == "FAIL")
    out.write(f"{failed} problem(s) to fix.\n" if failed else "Ready: every check passed.\n")
    return EXIT_USAGE if failed else EXIT_OK


def _run(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    out: TextIO,
    sleep: Callable[[float], None],
    now: datetime,
    clock: Callable[[], float],
) -> int:
    selected = select_workspace(load_config(args.config), args.workspace, environ, args.state)
    fit = fit_to_workflow(args.config, selected.config)
    config = fit.config
    for warning in fit.warnings:
        logging.getLogger("triage").warning("%s", warning)
    env = load_environment(selected.environ, need_senders=not args.dry_run)
    renderer = Renderer(config)
    renderer.check()
    # The tick's one time limit, on its one clock: every client and the tick share it.
    deadline = clock() + config.triage.tick_time_limit_seconds
    services = build_services(config, env, dry_run=args.dry_run, sleep=sleep, clock=clock, deadline=deadline, out=out)
    tick = Tick(
        config=config,
        services=services,
        store=StateStore(selected.state),
        renderer=renderer,
        now=now,
        out=out,
        dry_run=args.dry_run,
        clock=clock,
        deadline=deadline,
    )
    step_summary = environ.get("GITHUB_STEP_SUMMARY")
    in_actions = environ.get("GITHUB_ACTIONS") == "true"
    try:
        if args.dry_run:  # reads only: it may run beside a real tick
            summary = tick.run()
        else:
            with tick.store.exclusive(sleep=sleep):
                summary = tick.run()
    except StateBusy as exc:
        out.write(f"{exc}\n")
        return EXIT_OK
    except TriageError as exc:
        message = redact(str(exc), env.secrets)
        if step_summary:
            stopped = f"### hightouch-triage tick\n\nThe tick stopped: {markdown_escape(message)}\n"
            append_text(step_summary, stopped, env.secrets)
        if in_actions:
            out.write(workflow_commands(TickSummary(), message))
        _health(selected.health, services, renderer, config, environ, now, message, out, dry_run=args.dry_run)
        raise
    out.write(format_summary(summary, args.dry_run))
    if step_summary:
        append_text(step_summary, summary_markdown(summary, args.dry_run), env.secrets)
    problems = summary.config_errors or summary.errors
    failure = f"{len(problems)} sync(s) could not be handled, e.g. {problems[0]}" if problems else None
    if failure is None and summary.linear_errors:
        # Slack went on; Linear's share waits for the next tick, and someone should know why.
        failure = f"Linear failed for {len(summary.linear_errors)} escalation(s), e.g. {summary.linear_errors[0]}"
    if in_actions:
        out.write(workflow_commands(summary, failure))
    _health(selected.health, services, renderer, config, environ, now, failure, out, summary.slack_sent, args.dry_run)
    if summary.config_errors:
        return EXIT_USAGE  # a route points nowhere: its alerts wait for the fix, the rest went out
    return EXIT_ERROR if summary.errors or summary.linear_errors else EXIT_OK


def _health(
    path: Path,
    services: Services,
    renderer: Renderer,
    config: Config,
    environ: Mapping[str, str],
    now: datetime,
    failure: str | None,
    out: TextIO,
    sent: int = 0,
    dry_run: bool = False,
) -> None:
    """Tell the default channel when ticks start failing, and when they work again. If
    Slack itself is what fails, the workflow run shows it as an error annotation."""
    if dry_run:
        return  # a dry run tells no one
    try:
        report_health(
            path,
            failure,
            slack=services.slack,
            renderer=renderer,
            channel=config.slack.channels[0],
            now=now,
            link=run_url(environ),
            sent=sent,
        )
    except TriageError as exc:
        log = logging.getLogger("triage")
        log.error("could not tell Slack about the tool's health: %s", exc)
        if environ.get("GITHUB_ACTIONS") == "true":  # the tick's own error, if any, is annotated already
            out.write(workflow_command("error", str(exc), title="hightouch-triage: Slack not told"))


def build_services(
    config: Config,
    env: Environment,
    *,
    dry_run: bool,
    sleep: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
    deadline: float | None = None,
    out: TextIO | None = None,
) -> Services:
    """One wait budget and one time limit for the whole tick (`deadline`, on `clock`), shared
    by every client. A dry run gets Slack and Linear stand-ins that print to `out`."""
    if deadline is None:
        deadline = clock() + config.triage.tick_time_limit_seconds
    budget = WaitBudget(config.triage.wait_budget_seconds, deadline=deadline, clock=clock)
    meter = Meter()

    def http(name: str, throttle: Throttle | None = None, *, rate_limits_use_budget: bool = True) -> HttpClient:
        return HttpClient(
            name=name,
            secrets=env.secrets,
            budget=budget,
            throttle=throttle,
            sleep=sleep,
            read_timeout=config.triage.request_timeout_seconds,
            meter=meter,
            rate_limits_use_budget=rate_limits_use_budget,
        )

    hightouch = HightouchClient(
        http("Hightouch", hightouch_throttle(config.hightouch.max_requests_per_10s, sleep)),
        env.hightouch_api_url,
        env.hightouch_api_key,
        concurrency=config.hightouch.concurrency,
    )
    if dry_run:
        printing = out or sys.stdout
        return Services(
            hightouch=hightouch,
            slack=PrintingSlack(printing),
            linear=PrintingLinear(printing),
            app_url=env.hightouch_app_url,
            meter=meter,
            trigger=printing_trigger(printing),
        )
    return Services(
        hightouch=hightouch,
        slack=SlackClient(
            http("Slack", rate_limits_use_budget=False),  # its 429s are its pace, like the pacer's waits
            env.slack_api_url,
            env.slack_bot_token,
            pacer=Pacer(SLACK_MESSAGES_PER_SECOND, SLACK_BURST, clock=clock),
        ),
        linear=LinearClient(http("Linear"), env.linear_api_url, env.linear_api_key),
        app_url=env.hightouch_app_url,
        meter=meter,
        trigger=hightouch.trigger,
    )


def hightouch_throttle(
    per_10s: int, sleep: Callable[[float], None], clock: Callable[[], float] = time.monotonic
) -> Throttle | None:
    """A token bucket that never lets more than `per_10s` requests into any 10 s window."""
    if per_10s <= 0:
        return None
    burst = max(1, min(10, per_10s // 2))
    return Throttle(rate=(per_10s - burst) / 10, burst=burst, sleep=sleep, clock=clock)


def _secret_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """What every output is redacted of. A value too short to be a secret is left out (it
    would mangle ordinary words): a command that uses it refuses it at start instead
    (load_environment), and the others never send it anywhere."""
    names = (*SECRET_VARIABLES, "GITHUB_TOKEN", *(n for n in environ if n.startswith("HIGHTOUCH_API_KEY_")))
    return tuple(v for v in (environ.get(n, "").strip() for n in names) if len(v) >= MIN_SECRET_LENGTH)


class _RedactSecrets(logging.Filter):
    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info:
            # A traceback is text too: format it here, redacted, instead of in the handler.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        return True


def _configure_logging(level: str, secrets: tuple[str, ...]) -> None:
    handler = logging.StreamHandler(safe_stream(sys.stderr, secrets))
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(_RedactSecrets(secrets))
    root = logging.getLogger("triage")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _error(message: str, secrets: tuple[str, ...]) -> None:
    safe_stream(sys.stderr, secrets).write(f"error: {message}\n")


def _warn(message: str, secrets: tuple[str, ...]) -> None:
    safe_stream(sys.stderr, secrets).write(f"warning: {message}\n")
