"""`oncall rotation ...`: who is on call."""

from __future__ import annotations

import typer

app = typer.Typer(help="The on-call rotation.", no_args_is_help=True)
