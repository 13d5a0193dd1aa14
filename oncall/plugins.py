"""What other installed packages add to `oncall`, found through entry points.

The product does not import the sandbox cluster: the sandbox package (`oncall_sandbox`,
installed with the drill) registers its commands (`oncall drill`, `oncall sandbox ...`) and
the cluster `oncall up --sandbox` starts, under the two entry point groups below.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

import typer

from oncall.errors import PermanentError

COMMANDS_GROUP = "oncall.commands"
"""Callables ``register(app: typer.Typer) -> None`` that add commands to the CLI."""
SANDBOX_GROUP = "oncall.sandbox"
"""The factory of a local cluster: ``(home, time_scale, scenario) -> RunningSandbox``."""


class RunningSandbox(Protocol):
    """A local cluster the stack runs beside the playbooks (what `oncall up` shows)."""

    @property
    def api_url(self) -> str:
        """Its Kubernetes API."""
        ...

    @property
    def kubeconfig_path(self) -> Path:
        """A kubeconfig for it."""
        ...

    def start(self) -> None:
        """Seed and serve it."""

    def stop(self) -> None:
        """Stop serving."""


class SandboxFactory(Protocol):
    """Makes the sandbox of one scenario."""

    def __call__(self, *, home: Path, time_scale: float, scenario: str) -> RunningSandbox:
        """A sandbox, not yet started."""
        ...


def register_commands(app: typer.Typer) -> None:
    """Let every installed plugin add its commands to the CLI."""
    for point in entry_points(group=COMMANDS_GROUP):
        point.load()(app)


def sandbox_factory() -> SandboxFactory:
    """The installed sandbox cluster; a clear error if none is."""
    found = list(entry_points(group=SANDBOX_GROUP))
    if not found:
        raise PermanentError(
            "no sandbox cluster is installed: `pip install 'oncall-pipelines[sandbox]'` "
            "(or the repository's `pip install -e .`) brings `oncall_sandbox`"
        )
    factory: SandboxFactory = found[0].load()
    return factory
