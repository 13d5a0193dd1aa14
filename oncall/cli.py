"""The `oncall` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from oncall.catalog_cli import app as services_app
from oncall.cli_common import configured_prefect_api as _configured_prefect_api
from oncall.cli_common import console
from oncall.cli_common import fail as _fail
from oncall.errors import OncallError
from oncall.intake.cli import app as intake_app
from oncall.intake.cli import serve, warn_if_open
from oncall.plugins import register_commands
from oncall.postmortem.cli import postmortem
from oncall.rotation.cli import app as rotation_app
from oncall.settings import OncallSettings

app = typer.Typer(
    help="Incident remediation pipelines on Prefect.", no_args_is_help=True, add_completion=False
)
server_app = typer.Typer(help="The local Prefect server drills and small teams use.")
incidents_app = typer.Typer(help="Incidents in the store.")
app.add_typer(server_app, name="server")
app.add_typer(incidents_app, name="incidents")
app.add_typer(intake_app, name="intake")
app.command("serve")(serve)
app.add_typer(rotation_app, name="rotation")
app.add_typer(services_app, name="services")
app.command("postmortem")(postmortem)


@app.command()
def approve(
    flow_run_id: Annotated[str, typer.Argument(help="The paused flow run's id.")],
    approver: Annotated[
        str | None, typer.Option(help="Your name (only without a token: recorded unverified).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="ONCALL_APPROVER_TOKEN",
            help="Your approver token (`oncall approvers add NAME`): a verified decision.",
        ),
    ] = None,
    intake_url: Annotated[
        str, typer.Option(envvar="ONCALL_INTAKE_URL", help="The intake that checks the token.")
    ] = "http://127.0.0.1:8080",
    reason: Annotated[str, typer.Option(help="Why; kept on the incident.")] = "",
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
) -> None:
    """Approve (or --reject) a playbook waiting for a human decision."""
    from uuid import UUID

    import httpx

    from oncall.clients.prefect_api import PrefectApi

    verdict = "Rejected" if reject else "Approved"
    if token:
        try:
            answer = httpx.post(
                f"{intake_url.rstrip('/')}/v1/approvals/{flow_run_id}",
                json={"approve": not reject, "reason": reason, "via": "cli"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise _fail(f"the intake at {intake_url} does not answer: {exc}") from exc
        if answer.status_code != 200:
            detail = answer.json().get("detail", answer.text) if answer.content else ""
            raise _fail(f"the intake refused ({answer.status_code}): {detail}")
        who = answer.json()["approver"]
        console.print(f"{verdict} flow run {flow_run_id} as {who} (verified).")
        return
    if not approver or not approver.strip():
        raise _fail("give --token (a verified decision) or --approver NAME")
    api_url = _configured_prefect_api() or f"http://127.0.0.1:{OncallSettings().prefect_port}/api"
    try:
        PrefectApi(api_url).resume(
            UUID(flow_run_id), {"approve": not reject, "approver": approver, "reason": reason}
        )
    except (OncallError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"{verdict} flow run {flow_run_id} as {approver} (unverified: a P1/P2 rollback "
        "waits for a verified approver; use --token)."
    )


approvers_app = typer.Typer(help="People who may approve through the API and `oncall approve`.")
app.add_typer(approvers_app, name="approvers")


@approvers_app.command("add")
def approvers_add(
    name: Annotated[str, typer.Argument(help="The person, as decisions will name them.")],
) -> None:
    """Create (or replace) NAME's approver token; it is printed once and stored hashed."""
    from oncall.approvers import ApproverTokens
    from oncall.store import IncidentStore

    try:
        token = ApproverTokens(IncidentStore(OncallSettings().store_url)).add(name)
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"Approver token for {name.strip()} (shown once; keep it secret):")
    typer.echo(token)


@approvers_app.command("list")
def approvers_list() -> None:
    """The approvers and when their tokens were made (never the tokens)."""
    from oncall.approvers import ApproverTokens
    from oncall.store import IncidentStore

    table = Table("approver", "token created (UTC)")
    for name, created in ApproverTokens(IncidentStore(OncallSettings().store_url)).names():
        table.add_row(name, f"{created:%Y-%m-%d %H:%M}")
    console.print(table)


@approvers_app.command("remove")
def approvers_remove(name: Annotated[str, typer.Argument(help="Whose token to revoke.")]) -> None:
    """Revoke NAME's approver token."""
    from oncall.approvers import ApproverTokens
    from oncall.store import IncidentStore

    try:
        ApproverTokens(IncidentStore(OncallSettings().store_url)).remove(name)
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"Revoked the approver token of {name}.")


@app.command()
def worker(
    prefect_yaml: Annotated[
        Path | None, typer.Option(help="Deployments to register and run (default: shipped).")
    ] = None,
    poll: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 0.2,
) -> None:
    """Run the playbooks' flow runs in this warm process (no interpreter start per run)."""
    import signal

    from oncall.prefect_server import is_healthy
    from oncall.runner import WarmRunner, default_prefect_yaml, load_deployments

    api_url = _configured_prefect_api() or f"http://127.0.0.1:{OncallSettings().prefect_port}/api"
    if not is_healthy(api_url):
        raise _fail(f"Prefect API {api_url} does not answer; start it with `oncall server start`")
    warn_if_open(api_url)
    specs = load_deployments(prefect_yaml or default_prefect_yaml())
    runner = WarmRunner(api_url, specs, poll_s=poll)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop_event.set())

    def ready(r: WarmRunner) -> None:
        for name in r.names.values():
            console.print(f"  registered {name}")
        console.print(f"[bold green]Worker ready[/]: polling {api_url} every {poll}s")

    try:
        runner.serve(on_ready=ready)
    except KeyboardInterrupt:
        pass
    finally:
        abandoned = runner.stop()
        for run_id in abandoned:
            console.print(f"flow run {run_id} was still in flight: marked Crashed")
        console.print(f"Worker stopped after starting {runner.started_runs} run(s).")


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Interface the intake binds to.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the intake.")] = 8080,
    sandbox: Annotated[
        str | None, typer.Option(help="Also run the sandbox cluster with this scenario.")
    ] = None,
    prefect_yaml: Annotated[
        Path | None, typer.Option(help="Deployments the worker runs (default: shipped).")
    ] = None,
) -> None:
    """Run the whole local stack: Prefect server, warm worker, intake (and the sandbox)."""
    from oncall.stack import run_stack

    try:
        run_stack(
            OncallSettings(),
            console,
            _configured_prefect_api(),
            host,
            port,
            sandbox,
            prefect_yaml=prefect_yaml,
        )
    except OncallError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def ack(
    incident_id: Annotated[str, typer.Argument(help="The incident to take.")],
    by: Annotated[str, typer.Option("--by", help="Who takes it; recorded.")],
) -> None:
    """Acknowledge an incident as a person: timers stop, PagerDuty is acknowledged."""
    from oncall import lifecycle
    from oncall.clients.prefect_api import PrefectApi
    from oncall.wiring import Clients

    settings = OncallSettings()
    api_url = _configured_prefect_api() or f"http://127.0.0.1:{settings.prefect_port}/api"
    clients = Clients(settings)
    try:
        done = lifecycle.acknowledge(
            clients.store, PrefectApi(api_url), clients.notifier, incident_id, by
        )
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    incident = done.incident
    console.print(
        f"{incident.id} acknowledged by {incident.acknowledged_by}; "
        f"{done.cancelled} escalation timer(s) cancelled."
    )


@app.command("resolve")
def resolve_incident(
    incident_id: Annotated[str, typer.Argument(help="The incident that is over.")],
    by: Annotated[str, typer.Option("--by", help="Who resolves it; recorded.")],
    note: Annotated[str, typer.Option("--note", help="What fixed it.")] = "",
) -> None:
    """Resolve an incident as a person: timers stop, the page is resolved, postmortem starts."""
    from oncall import lifecycle
    from oncall.clients.prefect_api import PrefectApi
    from oncall.wiring import Clients

    settings = OncallSettings()
    api_url = _configured_prefect_api() or f"http://127.0.0.1:{settings.prefect_port}/api"
    clients = Clients(settings)
    try:
        incident, run = lifecycle.close(
            clients.store, PrefectApi(api_url), clients.notifier, incident_id, by, note
        )
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    post = f"post-incident run {run.id}" if run else "no post-incident deployment registered"
    console.print(f"{incident.id} {incident.transitions[-1].note}; {post}.")


@app.command()
def reopen(
    incident_id: Annotated[str, typer.Argument(help="The resolved incident that is back.")],
    by: Annotated[str, typer.Option("--by", help="Who reopens it; recorded.")],
    reason: Annotated[str, typer.Option("--reason", help="What is happening again.")],
) -> None:
    """Reopen a resolved incident: it is escalated again, with you on it."""
    from oncall import lifecycle
    from oncall.wiring import Clients

    clients = Clients(OncallSettings())
    try:
        incident = lifecycle.reopen(clients.store, clients.notifier, incident_id, by, reason)
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{incident.id} {incident.transitions[-1].note}.")


@app.command()
def declare(
    service: Annotated[str, typer.Argument(help="The service that is in trouble.")],
    title: Annotated[str, typer.Option("--title", help="What is wrong, in one line.")],
    by: Annotated[str, typer.Option("--by", help="Who declares it (they have it); recorded.")],
    severity: Annotated[str, typer.Option("--severity", help="P1 to P4.")] = "P2",
) -> None:
    """Declare an incident no alert has raised: opened with you on it, announced, paged."""
    from oncall import lifecycle
    from oncall.models import Severity
    from oncall.wiring import Clients

    if severity.upper() not in Severity.__members__:
        raise _fail(f"--severity: {severity!r} is not one of P1, P2, P3, P4", code=2)
    if not title.strip() or not by.strip():
        raise _fail("--title and --by may not be empty", code=2)
    clients = Clients(OncallSettings())
    try:
        incident = lifecycle.declare(
            clients.store, clients.notifier, service, Severity(severity.upper()), title, by
        )
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{incident.id} declared: {incident.title}: {title} (acknowledged by {by})")


@app.command("escalate")
def escalate_incident(
    incident_id: Annotated[str, typer.Argument(help="The incident to hand on.")],
    to: Annotated[str, typer.Option("--to", help="secondary, manager or vp.")],
    by: Annotated[str, typer.Option("--by", help="Who escalates; recorded.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
) -> None:
    """Hand an incident on to the secondary, the manager or the VP (from the rotation)."""
    from oncall import lifecycle
    from oncall.wiring import Clients

    role = lifecycle.ESCALATE_TO.get(to.lower())
    if role is None:
        raise _fail(f"--to: {to!r} is not one of {', '.join(lifecycle.ESCALATE_TO)}", code=2)
    clients = Clients(OncallSettings())
    try:
        incident = clients.store.get(incident_id)
        contacts = clients.contacts_for(role, incident)
        incident = lifecycle.escalate(
            clients.store, clients.notifier, incident_id, role, contacts, by, reason
        )
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{incident.id} {incident.transitions[-1].note} ({', '.join(contacts)}).")


@app.command()
def pause(
    service: Annotated[
        str | None, typer.Argument(help="The service (alert label or catalog name).")
    ] = None,
    all_services: Annotated[bool, typer.Option("--all", help="Every service.")] = False,
    duration: Annotated[
        str, typer.Option("--for", help="How long: 30m, 2h, 1h30m, 1d (at most 7 days).")
    ] = "1h",
    reason: Annotated[str, typer.Option("--reason", help="Why; shown wherever it applies.")] = "",
    by: Annotated[str, typer.Option("--by", help="Who pauses; recorded.")] = "",
) -> None:
    """Pause the automation: playbooks still diagnose and page, but change nothing."""
    from pydantic import ValidationError

    from oncall.pauses import ALL, PauseRequest, Pauses, parse_duration
    from oncall.store import IncidentStore

    if all_services == (service is not None):
        raise _fail("name one SERVICE, or --all", code=2)
    try:
        request = PauseRequest(
            service=ALL if all_services else str(service),
            duration=parse_duration(duration),
            reason=reason,
            by=by,
        )
        done = Pauses(IncidentStore(OncallSettings().store_url)).pause(request)
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise _fail(
            problems.replace("--service", "SERVICE").replace("--duration", "--for"), code=2
        ) from exc
    except OncallError as exc:
        raise _fail(str(exc), code=2) from exc
    console.print(f"{done.describe()} (ends by itself; `oncall resume` ends it now)")


@app.command()
def resume(
    service: Annotated[str | None, typer.Argument(help="The paused service.")] = None,
    all_services: Annotated[bool, typer.Option("--all", help="The all-services pause.")] = False,
    by: Annotated[str, typer.Option("--by", help="Who resumes; recorded.")] = "",
) -> None:
    """End a pause of the automation before it expires."""
    from oncall.pauses import ALL, Pauses
    from oncall.store import IncidentStore

    if all_services == (service is not None) or not by:
        raise _fail("name one SERVICE (or --all), and --by", code=2)
    try:
        ended = Pauses(IncidentStore(OncallSettings().store_url)).resume(
            ALL if all_services else str(service), by
        )
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    if not ended:
        raise _fail(f"no running pause of {'all services' if all_services else service}")
    console.print(f"{len(ended)} pause(s) ended by {by}; the automation acts again.")


@app.command()
def paused() -> None:
    """List the running pauses of the automation."""
    from oncall.pauses import Pauses
    from oncall.store import IncidentStore

    try:
        running = Pauses(IncidentStore(OncallSettings().store_url)).active()
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    if not running:
        console.print("The automation runs everywhere: no pause.")
    for pause in running:
        console.print(pause.describe())


@server_app.command("start")
def server_start() -> None:
    """Start the local Prefect server (state under ONCALL_HOME) in the background."""
    from oncall.prefect_server import start_server

    with console.status("Starting the Prefect server..."):
        try:
            server = start_server(OncallSettings())
        except OncallError as exc:
            raise _fail(str(exc)) from exc
    state = "started" if server.started else "already running"
    console.print(f"Prefect server {state}: UI {server.ui_url}, API {server.api_url}")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server started by `oncall`."""
    from oncall.prefect_server import stop_server

    stopped = stop_server(OncallSettings())
    console.print("Prefect server stopped." if stopped else "No local Prefect server was running.")


@server_app.command("status")
def server_status() -> None:
    """Say whether the local Prefect server answers."""
    from oncall.prefect_server import is_healthy

    url = _configured_prefect_api() or f"http://127.0.0.1:{OncallSettings().prefect_port}/api"
    healthy = is_healthy(url)
    console.print(f"{url}: {'healthy' if healthy else 'not answering'}")
    if not healthy:
        raise typer.Exit(1)


@incidents_app.command("list")
def incidents_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """List incidents, newest first (what `GET /v1/incidents` returns)."""
    from oncall.intake.inbox import Inbox
    from oncall.intake.views import incident_views

    inbox = Inbox(OncallSettings().store_url)
    try:
        items = incident_views(inbox, limit)
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    finally:
        inbox.close()
    if as_json:
        typer.echo(json.dumps([i.model_dump(mode="json") for i in items], indent=2))
        return
    columns = ("id", "severity", "alert", "service", "status", "opened (UTC)", "last seen")
    table = Table(*columns, "alerts", "flow run")
    for inc in items:
        opened = inc.transitions[0].at.strftime("%Y-%m-%d %H:%M:%S") if inc.transitions else ""
        seen = inc.last_seen_at.strftime("%H:%M:%S") if inc.last_seen_at else ""
        table.add_row(
            inc.id,
            inc.severity,
            inc.alert.name,
            inc.alert.service,
            inc.status.value,
            opened,
            seen,
            str(len(inc.occurrences)),
            inc.flow_run_id or "",
        )
    console.print(table)


@incidents_app.command("show")
def incidents_show(incident_id: str) -> None:
    """Show one incident as JSON (what `GET /v1/incidents/ID` returns)."""
    from oncall.intake.inbox import Inbox
    from oncall.intake.views import incident_view

    inbox = Inbox(OncallSettings().store_url)
    try:
        incident = incident_view(inbox, incident_id)
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    finally:
        inbox.close()
    typer.echo(incident.model_dump_json(indent=2))


# Last: a plugin's commands may use the helpers above (the sandbox adds `drill`).
register_commands(app)
