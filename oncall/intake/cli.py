"""`oncall serve` and `oncall intake ...`: the alert intake service."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from oncall.errors import OncallError
from oncall.intake.settings import IntakeSettings
from oncall.settings import OncallSettings

app = typer.Typer(help="The alert intake service's inbox and dead letters.", no_args_is_help=True)
console = Console()


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind (default: ONCALL_INTAKE_HOST, else 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to bind (default: ONCALL_INTAKE_PORT, else 8080).")
    ] = None,
    dispatch: Annotated[
        bool, typer.Option(help="Also create the flow runs (off: only accept into the inbox).")
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the alert intake: webhooks in, durable inbox, playbook runs out."""
    import logging

    import uvicorn

    from oncall.intake.app import create_app

    intake = IntakeSettings()
    try:
        application = create_app(OncallSettings(), intake, dispatch=dispatch)
    except OncallError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    warn_if_open(application.state.dispatcher.prefect.api_url)
    uvicorn.run(
        application,
        host=host or intake.host,
        port=port or intake.port,
        log_level=log_level,
        proxy_headers=False,
    )


def warn_if_open(api_url: str) -> None:
    """Say so, loudly, when the Prefect API takes requests without credentials."""
    from oncall.prefect_auth import OPEN_WARNING, accepts_anonymous

    if accepts_anonymous(api_url):
        console.print(
            f"[bold yellow]warning:[/] {OPEN_WARNING.format(url=api_url)}", soft_wrap=True
        )


@app.command("dead-letters")
def dead_letters(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
) -> None:
    """List request bodies the intake refused as malformed, with the reason."""
    from oncall.intake.inbox import Inbox

    inbox = Inbox(OncallSettings().store_url)
    try:
        letters = inbox.list_dead_letters(limit)
    except OncallError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        inbox.close()
    if as_json:
        typer.echo(json.dumps(letters, indent=2, default=str))
        return
    table = Table("id", "received (UTC)", "source", "status", "reason", "body")
    for letter in letters:
        table.add_row(
            str(letter["id"]),
            letter["received_at"].strftime("%Y-%m-%d %H:%M:%S"),
            letter["source"],
            str(letter["status_code"]),
            letter["reason"],
            letter["body"][:60].replace("\n", " "),
        )
    console.print(table)
