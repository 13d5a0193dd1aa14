"""What every `oncall` command shares: the console, failing with a message, Prefect's URL."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()


def configured_prefect_api() -> str | None:
    """PREFECT_API_URL from the environment or the active Prefect profile, if any."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error; the exit to raise."""
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)
