"""`oncall serve` and `oncall intake ...`: the alert intake service."""

from __future__ import annotations

import typer

app = typer.Typer(help="The alert intake service's inbox and dead letters.", no_args_is_help=True)
