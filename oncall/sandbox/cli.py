"""`oncall sandbox ...`: run and inspect the sandbox cluster."""

from __future__ import annotations

import typer

app = typer.Typer(help="The local sandbox Kubernetes cluster.", no_args_is_help=True)
