"""Memory of runs paused for approval: N paused playbook-shaped runs in one warm worker.

Prefect's process worker keeps one Python process per paused run (~94 MB each here); the
warm runner keeps a thread. This starts a Prefect server, a warm runner in this process,
creates N runs of a flow that pauses for an ApprovalDecision, waits until all N are
Paused, and reports this process's resident memory before and after, then resumes them all.

    .venv/bin/python benchmarks/paused_memory.py --runs 100
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    """Resident set size of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oncall-bench-"))
    sys.path.insert(0, str(HERE))
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    os.environ.update(PREFECT_API_URL=api, PREFECT_HOME=str(work / "client"), DO_NOT_TRACK="1")
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    from oncall.prefect_server import start_server, stop_server
    from oncall.runner import DeploymentSpec, WarmRunner
    from oncall.settings import OncallSettings

    settings = OncallSettings(home=work / "home")
    start_server(settings, port=port)
    try:
        runner = WarmRunner(
            api, [DeploymentSpec(name="bench", entrypoint="paused_flow:paused_probe")]
        )
        threading.Thread(target=runner.serve, daemon=True).start()
        while not runner.names:
            time.sleep(0.1)
        time.sleep(2)
        before = rss_mb()
        runs_made: list[FlowRun] = [
            run_deployment("paused-probe/bench", timeout=0)  # type: ignore[misc]
            for _ in range(args.runs)
        ]
        ids = [run.id for run in runs_made]
        with SyncPrefectClient(api) as client:
            deadline = time.monotonic() + 600
            paused = ended = 0
            last_change, last_seen = time.monotonic(), -1
            while time.monotonic() < deadline:
                # One read for all runs: polling each run alone would load the server more
                # than the paused runs themselves do.
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
                )
                states = [r.state for r in runs]
                paused = sum(1 for s in states if s and s.is_paused())
                ended = sum(1 for s in states if s and s.is_final())
                if paused + ended == len(ids):
                    break
                if paused != last_seen:
                    last_change, last_seen = time.monotonic(), paused
                elif time.monotonic() - last_change > 20:
                    break  # the rest failed to start (reported as such below)
                time.sleep(2)
            after = rss_mb()
            per_run = (after - before) / max(paused, 1)
            print(
                "| runs | paused | failed to start | RSS before (MB) | RSS all paused (MB) |"
                " per paused run (MB) | threads |"
            )
            print("|---|---|---|---|---|---|---|")
            print(
                f"| {len(ids)} | {paused} | {len(ids) - paused} | {before:.0f} | {after:.0f} | "
                f"{per_run:.2f} | {threading.active_count()} |"
            )
            for i in ids:
                if (state := client.read_flow_run(i).state) and state.is_paused():
                    client.resume_flow_run(i, run_input={"approve": False, "approver": "bench"})
        runner.stop()
    finally:
        stop_server(settings)


if __name__ == "__main__":
    main()
