"""Durably accepted alerts per second: the intake against a bare FastAPI 202 endpoint.

Both servers run as uvicorn subprocesses on loopback (one worker each); the load comes
from this process: an open loop that sends request i at t0 + i/rate (at most
``--concurrency`` in flight), each request one new Alertmanager alert (a new incident:
the most expensive case, one committed transaction with an inbox and a dispatch row).
The intake is ``oncall serve --no-dispatch``: acceptance is what is measured, not Prefect.

    python benchmarks/intake_throughput.py                    # SQLite (the default store)
    python benchmarks/intake_throughput.py --store postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

TOKEN = "benchmark-token"
PATH = "/v1/alerts/alertmanager"


def bare_app() -> FastAPI:
    """The baseline: reads the body, answers 202, does nothing else."""
    app = FastAPI()

    @app.post(PATH)
    async def accept(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse(status_code=202, content={"accepted": True})

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _message(n: int) -> dict[str, Any]:
    labels = {"alertname": "BenchAlert", "service": f"bench-{uuid.uuid4().hex[:12]}"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="BenchAlert",n="{n}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "oncall",
        "groupLabels": {},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {},
                "startsAt": datetime.now(UTC).isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }


@dataclass
class Run:
    """The outcome of one offered load against one server."""

    offered: float
    achieved: float
    p50_ms: float
    p99_ms: float
    errors: int


async def offer(url: str, rate: float, seconds: float, concurrency: int) -> Run:
    """Send ``rate`` requests per second for ``seconds``; latency from the scheduled send time.

    ``concurrency`` senders, each with its own keep-alive connection, take the next due
    request in turn. One shared client pool would not do: httpcore scans every pooled
    connection for every request, so past ~30 open connections the load generator itself
    becomes the bottleneck (seen in a profile) and a slower server looks slower still.
    """
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bodies = [_message(i) for i in range(total)]
    next_index = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with AsyncExitStack() as stack:
        # Clients (and their TLS contexts) are made before the clock starts.
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, limits=limits, timeout=30, verify=False)
            )
            for _ in range(concurrency)
        ]
        start = time.perf_counter()

        async def sender(client: httpx.AsyncClient) -> None:
            nonlocal errors, next_index
            while next_index < total:
                i, next_index = next_index, next_index + 1
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    response = await client.post(PATH, json=bodies[i], headers=headers)
                    ok = response.status_code == 202
                except httpx.HTTPError:
                    ok = False
                # Measured from when the request was due: queueing in the client counts too.
                latencies.append(time.perf_counter() - due)
                errors += 0 if ok else 1

        await asyncio.gather(*(sender(client) for client in clients))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return Run(
        offered=rate,
        achieved=(total - errors) / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        errors=errors,
    )


class Server:
    """This script re-run as a uvicorn server subprocess."""

    def __init__(self, kind: str, home: Path, store: str | None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ONCALL_HOME": str(home), "ONCALL_INTAKE_TOKEN": TOKEN}
        if store:
            env["ONCALL_DATABASE_URL"] = store
        if kind == "bare":
            argv = [sys.executable, __file__, "--serve", "bare", "--port", str(self.port)]
        else:  # the product's own command, as operators run it
            oncall = str(Path(sys.executable).parent / "oncall")
            argv = [oncall, "serve", "--no-dispatch", "--port", str(self.port)]
            argv += ["--log-level", "warning"]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code in (200, 404):
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"{kind} server did not start")

    def stop(self) -> None:
        """Terminate and wait."""
        self.proc.terminate()
        self.proc.wait(15)


def serve_bare(port: int) -> None:
    """Run the bare baseline server (the subprocess side)."""
    import uvicorn

    uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    """Measure both servers at each offered rate and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rates", default="50,100,200,400,800")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--store", default=None, help="store URL (default: SQLite under a temp dir)"
    )
    args = parser.parse_args()
    if args.serve:
        serve_bare(args.port)
        return
    if args.store and args.store.startswith("postgresql"):
        with _pg_schema(args.store) as url:
            run(args, url)
    else:
        run(args, None)


@contextmanager
def _pg_schema(admin_url: str) -> Iterator[str]:
    """A throw-away schema, so the benchmark's tables never mix with anyone's."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in admin_url else "?"
    try:
        yield f"{admin_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run(args: argparse.Namespace, store_url: str | None) -> None:
    """Measure both servers at each offered rate and print the table."""
    rates = [float(r) for r in args.rates.split(",")]
    home = Path(tempfile.mkdtemp(prefix="oncall-bench-"))
    results: dict[str, list[Run]] = {}
    for kind in ("bare", "intake"):
        server = Server(kind, home, store_url)
        try:
            asyncio.run(offer(server.url, 50, 1.0, args.concurrency))  # warm-up
            results[kind] = [
                asyncio.run(offer(server.url, rate, args.seconds, args.concurrency))
                for rate in rates
            ]
        finally:
            server.stop()
    store = (
        args.store.split("@")[-1].split("?")[0] if args.store else "SQLite (WAL, synchronous=FULL)"
    )
    print(f"store: {store}; {args.seconds:.0f} s per rate; at most {args.concurrency} in flight")
    print(
        "| offered/s | bare acc/s | bare p50 ms | bare p99 ms "
        "| intake acc/s | intake p50 ms | intake p99 ms | intake errors | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for bare, intake in zip(results["bare"], results["intake"], strict=True):
        print(
            f"| {bare.offered:.0f} | {bare.achieved:.0f} | {bare.p50_ms:.1f} | {bare.p99_ms:.1f} "
            f"| {intake.achieved:.0f} | {intake.p50_ms:.1f} | {intake.p99_ms:.1f} "
            f"| {intake.errors} | {intake.achieved / bare.achieved:.2f} |"
        )


if __name__ == "__main__":
    main()
