"""Memory of runs paused for approval: the warm worker against one process per run.

Starts a Prefect server (SQLite, as embedded, or PostgreSQL with
`--prefect-database-url`), then in the same run:

- baseline: K runs executed the way Prefect's process worker executes them, one
  `python -m prefect.engine` process per flow run; each process's resident memory is read
  once its run is Paused;
- warm: a warm runner in this process, N runs created in a burst (an alert storm), and
  this process's resident memory read before the first run and once all N are Paused.

The flow pauses for an `ApprovalDecision` like every playbook before a rollback. Prints a
Markdown table (per paused run: warm thread vs. process, and their ratio), then rejects
every pending approval and stops.

    .venv/bin/python benchmarks/paused_memory.py --runs 100 --process-runs 3
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

HERE = Path(__file__).resolve().parent


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_paused(client: Any, ids: list[UUID], timeout_s: float = 600) -> tuple[int, float]:
    """Poll (one filtered read for all runs) until every run is Paused or final."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    started = time.monotonic()
    paused = 0
    while time.monotonic() - started < timeout_s:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
        )
        states = [r.state for r in runs]
        paused = sum(1 for s in states if s and s.is_paused())
        ended = sum(1 for s in states if s and s.is_final())
        if paused + ended == len(ids):
            break
        time.sleep(1)
    return paused, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100, help="runs paused in the warm worker")
    parser.add_argument("--process-runs", type=int, default=3, help="baseline processes")
    parser.add_argument(
        "--prefect-database-url",
        help="run the Prefect server on this database (postgresql+asyncpg://...) not SQLite",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oncall-bench-"))
    sys.path.insert(0, str(HERE))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    os.environ.update(PREFECT_API_URL=api, PREFECT_HOME=str(work / "client"), DO_NOT_TRACK="1")
    if args.prefect_database_url:
        os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = args.prefect_database_url
    from paused_flow import paused_probe
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.deployments import run_deployment

    from oncall.prefect_server import start_server, stop_server
    from oncall.runner import DeploymentSpec, WarmRunner
    from oncall.settings import OncallSettings

    settings = OncallSettings(home=work / "home")
    start_server(settings, port=port)
    children: list[subprocess.Popen[bytes]] = []
    runner = WarmRunner(api, [DeploymentSpec(name="warm", entrypoint="paused_flow:paused_probe")])
    try:
        with SyncPrefectClient(api) as client:
            # Baseline: one interpreter per flow run, as Prefect's process worker runs them.
            process_deployment = paused_probe.to_deployment(name="process").apply()  # type: ignore[union-attr]
            process_ids = [
                client.create_flow_run_from_deployment(process_deployment).id  # type: ignore[arg-type]
                for _ in range(args.process_runs)
            ]
            for run_id in process_ids:
                children.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "prefect.engine"],
                        env={**os.environ, "PREFECT__FLOW_RUN_ID": str(run_id)},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            process_paused, _ = wait_paused(client, process_ids)
            per_process = sum(rss_mb(c.pid) for c in children) / len(children)

            threading.Thread(target=runner.serve, daemon=True).start()
            while not runner.names:
                time.sleep(0.1)
            time.sleep(2)
            before, burst_started = rss_mb(), time.monotonic()
            ids = [
                run_deployment("paused-probe/warm", timeout=0).id  # type: ignore[union-attr]
                for _ in range(args.runs)
            ]
            paused, _ = wait_paused(client, ids)
            after, took_s = rss_mb(), time.monotonic() - burst_started
            per_thread = (after - before) / max(paused, 1)
            print(
                "| paused in warm worker | RSS before → all paused (MB) | per paused run, warm"
                " (MB) | per paused run, one process each (MB) | ratio | burst → all paused (s) |"
            )
            print("|---|---|---|---|---|---|")
            print(
                f"| {paused}/{len(ids)} | {before:.0f} → {after:.0f} | {per_thread:.1f} | "
                f"{per_process:.0f} ({process_paused}/{len(process_ids)} paused) | "
                f"{per_thread / per_process:.3f} | {took_s:.0f} |"
            )
            for run_id in [*process_ids, *ids]:
                try:
                    client.resume_flow_run(
                        run_id, run_input={"approve": False, "approver": "bench"}
                    )
                except Exception as exc:  # a run that never paused: say so, go on
                    print(f"could not resume {run_id}: {exc}", file=sys.stderr)
        runner.stop(grace_s=30)
    finally:
        for child in children:
            child.terminate()
        stop_server(settings)


if __name__ == "__main__":
    main()
