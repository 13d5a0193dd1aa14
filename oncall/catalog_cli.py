"""`oncall services`: print and check the service catalog."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from oncall.catalog import SecretRef, ServiceCatalog, ServiceEntry, is_sandbox, load_catalog
from oncall.clients.kube import KubeClient
from oncall.errors import OncallError
from oncall.settings import OncallSettings

app = typer.Typer(help="The service catalog: who owns what alerts are about.")
console = Console()

FileOption = Annotated[
    Path | None,
    typer.Argument(help="The catalog (default: ONCALL_SERVICES_FILE, else the shipped one)."),
]


def _load(path: Path | None) -> tuple[ServiceCatalog, Path | None]:
    settings = OncallSettings()
    path = path or settings.services_file
    kubeconfig = settings.kubeconfig or settings.sandbox_kubeconfig
    try:
        return load_catalog(path, sandbox=path is None and is_sandbox(kubeconfig)), path
    except OncallError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc


@app.command("list")
def services_list(path: FileOption = None) -> None:
    """Every service: team, namespaces, workloads, Slack channel."""
    catalog, _ = _load(path)
    table = Table("service", "team", "namespaces", "workloads", "slack")
    for entry in catalog:
        table.add_row(
            entry.name,
            entry.team,
            ", ".join(entry.match.namespaces),
            ", ".join(sorted(entry.workload_refs())),
            entry.slack_channel,
        )
    console.print(
        table if catalog.services else "The catalog is empty: every subject is read-only."
    )


@app.command("show")
def services_show(name: str, path: FileOption = None) -> None:
    """One service in full, as the playbooks read it (secrets by reference only)."""
    catalog, _ = _load(path)
    try:
        entry = catalog.get(name)
    except OncallError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    shown = entry.model_dump(mode="json", exclude_none=True)
    shown["guard (effective)"] = entry.policy().model_dump(mode="json")
    console.print_json(data=shown)


def _secret_problem(kube: KubeClient | None, entry: ServiceEntry, ref: SecretRef) -> str | None:
    if ref.env:
        return None if ref.from_env() else f"environment variable {ref.env} is not set"
    if kube is None:
        return "no cluster to read the Secret from"
    namespace = ref.namespace or (entry.match.namespaces or ["default"])[0]
    name = ref.secret or ""
    try:
        secret = kube._raw(
            f"get secret {namespace}/{name}",
            lambda: kube.core.read_namespaced_secret(name, namespace),
        )
    except OncallError as exc:
        return str(exc)
    value = (secret.get("data") or {}).get(ref.key or "")
    if value is None or not base64.b64decode(value):
        return f"Secret {namespace}/{ref.secret} has no key {ref.key!r}"
    return None


def _rotation_problem(entry: ServiceEntry) -> str | None:
    from oncall.rotation.loader import load_rotation

    try:
        load_rotation(entry.rotation_file or "")
    except OncallError as exc:  # the loader's errors name file, line and field
        return str(exc)
    return None


@app.command("check")
def services_check(
    path: FileOption = None,
    cluster: Annotated[
        bool, typer.Option(help="Also check every workload and Secret exists in the cluster.")
    ] = True,
) -> None:
    """Validate the catalog; check its workloads exist and its secret references resolve."""
    catalog, shown = _load(path)
    console.print(
        f"[green]valid[/]: {shown or 'the shipped catalog'} ({len(catalog.services)} services)"
    )
    settings = OncallSettings()
    kubeconfig = settings.kubeconfig or settings.sandbox_kubeconfig
    kube = KubeClient(kubeconfig) if cluster and kubeconfig.exists() else None
    if cluster and kube is None:
        console.print(f"[yellow]no cluster[/]: {kubeconfig} does not exist; workloads not checked")
    problems = 0
    for entry in catalog:
        checks: list[tuple[str, str | None]] = []
        if kube is not None:
            for ref in sorted(entry.workload_refs()):
                namespace, kind, name = ref.split("/")
                try:
                    kube._workload(namespace, kind, name)
                    checks.append((ref, None))
                except OncallError as exc:
                    checks.append((ref, str(exc)))
        if entry.rotation_file is not None:
            checks.append((f"rotation {entry.rotation_file}", _rotation_problem(entry)))
        refs = [("pagerduty_routing_key", entry.pagerduty_routing_key)]
        refs += [(f"dependency {d.name}", d.dsn) for d in entry.dependencies]
        for what, secret in refs:
            if secret is not None:
                checks.append(
                    (f"{what} ({secret.describe()})", _secret_problem(kube, entry, secret))
                )
        for what, problem in checks:
            mark = "[green]ok[/]" if problem is None else f"[red]FAIL[/] {problem}"
            console.print(f"  {entry.name}: {what}: {mark}")
            problems += problem is not None
    if kube is not None:
        kube.close()
    if problems:
        console.print(f"[bold red]{problems} problem(s)[/]")
        raise typer.Exit(1)
    console.print("[green]all checks passed[/]")
