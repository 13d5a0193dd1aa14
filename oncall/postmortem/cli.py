"""`oncall postmortem INCIDENT_ID`: gather the evidence and draft the postmortem."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from oncall.errors import OncallError
from oncall.settings import OncallSettings

console = Console()


def postmortem(
    incident_id: Annotated[str, typer.Argument(help="The incident to write up.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the draft to this file.")
    ] = None,
) -> None:
    """Draft the postmortem of an incident from its evidence."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    from flows.postmortem import post_incident
    from oncall.prefect_server import is_healthy
    from oncall.store import IncidentStore

    settings = OncallSettings()
    configured = get_current_settings().api.url
    api_url = str(configured) if configured else f"http://127.0.0.1:{settings.prefect_port}/api"
    try:
        IncidentStore(settings.store_url).get(incident_id)
    except OncallError as exc:
        raise _fail(str(exc)) from exc
    if not is_healthy(api_url):
        raise _fail(f"Prefect API {api_url} does not answer; start it with `oncall server start`")
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        state = post_incident(incident_id=incident_id, return_state=True)
    if not state.is_completed():
        raise _fail(f"post-incident run ended {state.name}: {state.message}")
    path = Path(str(state.result()))
    console.print(f"Postmortem of [bold]{incident_id}[/] drafted: {path}")
    console.print(f"Evidence bundle: {path.with_suffix('')}/")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        console.print(f"Also written to {output}")


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(1)
