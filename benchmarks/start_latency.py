"""Run created -> the flow's first task running: warm runner vs Prefect's process worker vs serve().

Each setup runs the same probe flow (benchmarks/probe_flow.py) against one Prefect server
started for this script; the latency of a run is (first task run's start_time) - (the time
the run was created through the API), both as the Prefect server records them, so every
setup is measured the same way. Usage:

    .venv/bin/python benchmarks/start_latency.py --runs 20
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

HERE = Path(__file__).resolve().parent
PY = sys.executable


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_task_latency(api: str, flow_run_id: UUID, timeout_s: float = 120) -> float:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout_s
    with SyncPrefectClient(api) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state and run.state.is_final():
                # Task run records reach the server through its event stream, a moment later.
                tasks = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
                )
                starts = [t.start_time for t in tasks if t.start_time]
                if run.created and starts:
                    return (min(starts) - run.created).total_seconds()
            time.sleep(0.05)
    raise TimeoutError(f"run {flow_run_id} did not finish")


def _measure(api: str, deployment: str, runs: int, gap_s: float) -> list[float]:
    from prefect.deployments import run_deployment

    latencies = []
    for _ in range(runs):
        run = run_deployment(deployment, parameters={"created": time.time()}, timeout=0)
        latencies.append(_first_task_latency(api, run.id))
        time.sleep(gap_s)
    return latencies


def _measure_intake(api: str, settings: Any, runs: int, gap_s: float) -> list[float]:
    """POST an Alertmanager message, read when the routed run's first task started."""
    import threading
    import uuid

    import httpx
    import uvicorn
    from pydantic import SecretStr

    from oncall.alerting import label_fingerprint
    from oncall.intake.app import create_app
    from oncall.models import Alert, Incident
    from oncall.routing import PlaybookRouter, Route

    router = PlaybookRouter(
        routes=[Route(deployment="start-latency-probe/warm", match={"alertname": "Probe"})]
    )
    token = "bench-token"
    app = create_app(
        settings.model_copy(update={"intake_token": SecretStr(token)}),
        prefect_api_url=api,
        router=router,
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    latencies = []
    from prefect.client.orchestration import SyncPrefectClient

    for _ in range(runs):
        labels = {"alertname": "Probe", "service": f"svc-{uuid.uuid4().hex[:8]}"}
        now = time.time()
        body = {
            "version": "4",
            "groupKey": "{}:{}",
            "status": "firing",
            "receiver": "oncall",
            "alerts": [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {},
                    "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "",
                    "fingerprint": label_fingerprint(labels),
                }
            ],
        }
        sent = time.time()
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/alerts/alertmanager",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 202, response.text
        alert = Alert.model_validate(
            {
                "name": "Probe",
                "labels": labels,
                "starts_at": body["alerts"][0]["startsAt"],
                "fingerprint": label_fingerprint(labels),
            }
        )
        incident_id = Incident.id_for(alert)
        flow_run_id = None
        deadline = time.monotonic() + 60
        with SyncPrefectClient(api) as client:
            while flow_run_id is None and time.monotonic() < deadline:
                view = httpx.get(
                    f"http://127.0.0.1:{port}/v1/incidents/{incident_id}",
                    headers={"Authorization": f"Bearer {token}"},
                )
                if view.status_code == 200 and view.json().get("flow_run_id"):
                    flow_run_id = UUID(view.json()["flow_run_id"])
                else:
                    time.sleep(0.02)
            assert flow_run_id, "the intake did not dispatch"
            started = _first_task_start(client, flow_run_id)
        latencies.append(started - sent)
        time.sleep(gap_s)
    server.should_exit = True
    return latencies


def _first_task_start(client: Any, flow_run_id: UUID, timeout_s: float = 60) -> float:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        starts = [t.start_time for t in tasks if t.start_time]
        if starts:
            return float(min(starts).timestamp())
        time.sleep(0.05)
    raise TimeoutError(f"run {flow_run_id} never started a task")


def _background(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=HERE,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("setup did not become ready")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between runs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="oncall-bench-"))
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    os.environ.update(
        PREFECT_API_URL=api,
        PREFECT_HOME=str(work / "client"),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    sys.path.insert(0, str(HERE))
    from oncall.prefect_server import start_server, stop_server
    from oncall.settings import OncallSettings

    settings = OncallSettings(home=work / "home")
    print(f"starting a Prefect server on {api} ...", flush=True)
    start_server(settings, port=port)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    results: dict[str, list[float]] = {}
    try:
        # 1. The warm runner (`oncall worker`), in-process here.
        import threading

        from oncall.runner import DeploymentSpec, WarmRunner

        runner = WarmRunner(
            api, [DeploymentSpec(name="warm", entrypoint="probe_flow:start_latency_probe")]
        )
        thread = threading.Thread(target=runner.serve, daemon=True)
        thread.start()
        _wait_for(lambda: bool(runner.names), 60)
        print("measuring the warm runner ...", flush=True)
        results["warm runner (oncall worker)"] = _measure(
            api, "start-latency-probe/warm", args.runs, args.gap
        )

        # 1b. The whole path: alert POSTed to the intake -> dispatcher -> warm runner.
        print("measuring alert -> first task through the intake ...", flush=True)
        results["alert via intake + warm runner"] = _measure_intake(
            api, settings, args.runs, args.gap
        )
        runner.stop()

        # 2. Prefect's process worker at its defaults.
        subprocess.run(
            [PY, "-m", "prefect", "work-pool", "create", "bench-process", "--type", "process"],
            env=env,
            check=True,
            capture_output=True,
        )
        from probe_flow import start_latency_probe

        start_latency_probe.from_source(
            source=str(HERE), entrypoint="probe_flow.py:start_latency_probe"
        ).deploy(  # type: ignore[attr-defined]
            name="process", work_pool_name="bench-process", print_next_steps=False
        )
        worker = _background(
            [PY, "-m", "prefect", "worker", "start", "--pool", "bench-process"],
            env,
            work / "worker.log",
        )
        time.sleep(8)
        print("measuring Prefect's process worker ...", flush=True)
        results["Prefect process worker"] = _measure(
            api, "start-latency-probe/process", max(5, args.runs // 2), args.gap
        )
        _stop(worker)

        # 3. serve() at its default polling.
        served = _background(
            [PY, "-c", "from probe_flow import start_latency_probe as f; f.serve(name='served')"],
            env,
            work / "serve.log",
        )
        time.sleep(8)
        print("measuring serve() ...", flush=True)
        results["Prefect serve()"] = _measure(
            api, "start-latency-probe/served", max(5, args.runs // 2), args.gap
        )
        _stop(served)
    finally:
        stop_server(settings)

    print("\n| setup | runs | p50 (s) | p95 (s) | max (s) |\n|---|---|---|---|---|")
    for name, values in results.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.2f} | {p95:.2f} | "
            f"{max(values):.2f} |"
        )


if __name__ == "__main__":
    main()
