"""What the sandbox adds to `oncall`: `oncall drill` and `oncall sandbox ...` (an entry point)."""

from __future__ import annotations

from typing import Annotated

import typer

from oncall.cli_common import configured_prefect_api as _configured_prefect_api
from oncall.cli_common import console
from oncall.cli_common import fail as _fail
from oncall.errors import OncallError
from oncall.settings import OncallSettings
from oncall_sandbox.cli import app as sandbox_app
from oncall_sandbox.registry import SCENARIOS


def register(app: typer.Typer) -> None:
    """Add the drill and the sandbox's own commands to the `oncall` CLI."""
    app.command("drill")(drill)
    app.add_typer(sandbox_app, name="sandbox")


def drill(
    scenario: Annotated[str, typer.Argument(help="Sandbox scenario to inject.")] = "bad-deploy",
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Approve the pause through Prefect's API.")
    ] = False,
    approver: Annotated[
        str | None, typer.Option(help="Name recorded as approver with --auto-approve.")
    ] = None,
    approval_timeout: Annotated[
        int, typer.Option(min=1, help="Seconds to wait for the approval before escalating.")
    ] = 900,
    stack: Annotated[
        bool,
        typer.Option(
            "--stack", help="Fire at a running `oncall up --sandbox NAME` through its intake."
        ),
    ] = False,
    intake_url: Annotated[
        str, typer.Option(help="Intake of the running stack (with --stack).")
    ] = "http://127.0.0.1:8080",
    target: Annotated[
        str | None,
        typer.Option(
            help="With --stack: drill your own workload NS/KIND/NAME of the stack's sandbox "
            "(a bad release, then the KubePodCrashLooping alert for one of its pods)."
        ),
    ] = None,
    fault: Annotated[
        str, typer.Option(help="With --target: the fault (bad-release).")
    ] = "bad-release",
) -> None:
    """Run a drill: fault into the sandbox, alert fires, playbook runs; exit 0 if resolved."""
    from oncall.prefect_server import ensure_server
    from oncall_sandbox.drill import render_summary, run_drill

    if target is not None and not stack:
        raise _fail("--target drills a workload of a running stack: add --stack", 2)
    if target is not None and fault != "bad-release":
        raise _fail(f"--fault {fault!r}: only bad-release works on any workload", 2)
    if target is None and scenario not in SCENARIOS:
        raise _fail(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}", 2)
    settings = OncallSettings()
    configured = _configured_prefect_api()
    with console.status("Prefect server: checking / starting (a cold start takes ~20 s)..."):
        try:
            server = ensure_server(settings, configured)
        except OncallError as exc:
            raise _fail(str(exc)) from exc
    how = "started" if server.started else "already running"
    console.print(f"[bold]Prefect server[/] {how} at {server.ui_url}")
    try:
        if stack and target is not None:
            from oncall_sandbox.stack_drill import run_target_drill

            result = run_target_drill(
                settings,
                server.api_url,
                console,
                target,
                intake_url,
                auto_approve,
                approver or "drill auto-approve",
            )
        elif stack:
            from oncall_sandbox.stack_drill import run_stack_drill

            result = run_stack_drill(
                settings,
                server.api_url,
                console,
                scenario,
                intake_url,
                auto_approve,
                approver or "drill auto-approve",
            )
        else:
            result = run_drill(
                settings, server, console, scenario, auto_approve, approver, approval_timeout
            )
    except (OncallError, TimeoutError) as exc:
        raise _fail(f"drill aborted: {exc}") from exc
    render_summary(result, console)
    if server.started:
        console.print(
            "The Prefect server keeps running for the UI link above; stop it with "
            "[bold]oncall server stop[/]."
        )
    if not result.resolved:
        raise _fail(
            f"incident {result.incident.id} NOT verified resolved ({result.incident.status.value})"
        )
    console.print(f"[bold green]Incident {result.incident.id} verified resolved.[/]")
