"""`oncall sandbox ...`: run and inspect the sandbox cluster."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from oncall.settings import OncallSettings
from oncall_sandbox.registry import SCENARIOS

app = typer.Typer(help="The local sandbox Kubernetes cluster.", no_args_is_help=True)
console = Console()


def _state_file(home: Path) -> Path:
    return home / "sandbox" / "state.json"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the sandbox as cleanly as Ctrl-C


def _render(status: dict[str, Any]) -> None:
    console.print(
        f"[bold]Scenario[/] {status['scenario']} (namespace {status['namespace']}, "
        f"time scale {status['timeScale']}) API {status['apiURL']}"
    )
    workloads = Table("Namespace", "Deployment", "Ready", "Revision", "Image")
    for w in status["workloads"]:
        workloads.add_row(
            w["namespace"], w["name"], w["ready"], w["revision"], ", ".join(w["images"])
        )
    console.print(workloads)
    faults = Table("Scenario", "Active", "Fault")
    for f in status["faults"]:
        faults.add_row(f["scenario"], "[red]yes[/]" if f["active"] else "[green]no[/]", f["fault"])
    console.print(faults if status["faults"] else "No fault injected.")


@app.command()
def up(
    scenario: Annotated[str, typer.Option(help=f"One of: {', '.join(SCENARIOS)}.")] = "bad-deploy",
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Where to write the kubeconfig (default under ONCALL_HOME).")
    ] = None,
    inject: Annotated[bool, typer.Option("--inject", help="Inject the scenario's fault.")] = False,
    time_scale: Annotated[
        float, typer.Option(min=0.0001, max=1.0, help="Real seconds per simulated second.")
    ] = 1.0,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between status lines.")] = 10.0,
) -> None:
    """Run the sandbox in the foreground until Ctrl-C."""
    from oncall_sandbox.server import Sandbox

    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {scenario!r}", param_hint="--scenario")
    home = OncallSettings().home
    sandbox = Sandbox(home, time_scale=time_scale, scenario=scenario)
    if kubeconfig is not None:
        sandbox.kubeconfig_path = kubeconfig
    state = _state_file(home)
    signal.signal(signal.SIGTERM, _interrupt)
    with sandbox:
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(
            json.dumps(
                {
                    "api_url": sandbox.api_url,
                    "kubeconfig": str(sandbox.kubeconfig_path),
                    "pid": os.getpid(),
                }
            )
        )
        console.print(f"[bold]API[/] {sandbox.api_url}")
        console.print(f"[bold]kubeconfig[/] {sandbox.kubeconfig_path}")
        for key, url in sorted(sandbox.status()["services"].items()):
            console.print(f"[bold]service[/] {key} {url}")
        if inject:
            spec = SCENARIOS[scenario]
            console.print(f"[bold red]Injecting[/] {scenario}: {spec.fault}")
            sandbox.inject_fault()
        try:
            while True:
                status = sandbox.status()
                active = [f["scenario"] for f in status["faults"] if f["active"]]
                ready = ", ".join(f"{w['name']} {w['ready']}" for w in status["workloads"])
                shown = ", ".join(active) or "none"
                console.print(f"{time.strftime('%H:%M:%S')} faults active: {shown} | {ready}")
                time.sleep(interval)
        except KeyboardInterrupt:
            console.print("Stopping the sandbox.")
        finally:
            state.unlink(missing_ok=True)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw status document.")] = False,
) -> None:
    """Show the running sandbox's workloads and active faults."""
    state = _state_file(OncallSettings().home)
    if not state.exists():
        console.print("No sandbox is running (start one with `oncall sandbox up`).")
        raise typer.Exit(1)
    api_url = json.loads(state.read_text())["api_url"]
    try:
        document = httpx.get(f"{api_url}/sandbox/v1/status", timeout=5).json()
    except httpx.HTTPError as exc:
        console.print(f"[red]The sandbox at {api_url} does not answer:[/] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        console.print_json(data=document)
    else:
        _render(document)


@app.command()
def fault(
    kind: Annotated[str, typer.Argument(help="The fault: bad-release.")],
    target: Annotated[
        str, typer.Option(help="The workload, NS/KIND/NAME (deployment, statefulset, daemonset).")
    ],
) -> None:
    """Fault any workload of the running sandbox: bad-release rolls out a crashing build."""
    if kind != "bad-release":
        console.print(f"[red]Unknown fault {kind!r}[/]: only bad-release works on any workload.")
        raise typer.Exit(2)
    state = _state_file(OncallSettings().home)
    if not state.exists():
        console.print("No sandbox is running (start one with `oncall sandbox up`).")
        raise typer.Exit(1)
    api_url = json.loads(state.read_text())["api_url"]
    try:
        response = httpx.post(
            f"{api_url}/sandbox/v1/faults/bad-release", json={"target": target}, timeout=10
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]The sandbox at {api_url} does not answer:[/] {exc}")
        raise typer.Exit(1) from exc
    if response.status_code >= 400:
        console.print(f"[red]Refused:[/] {response.json().get('message', response.text)}")
        raise typer.Exit(1)
    console.print(f"{target} now rolls out {response.json()['image']}, which crashes at start.")
