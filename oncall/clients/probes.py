"""Dependency probes: one cheap, time-bounded question to each dependency.

A probe never raises for a dependency that is down: "down" is an answer, reported in
the result. It raises TransientError only when the probe itself could not be made.
"""

from __future__ import annotations

import time

import httpx
import psycopg
import redis

from oncall.clients.service_urls import resolve
from oncall.observations import ProbeResult


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def probe_postgres(dsn: str, timeout_s: float) -> ProbeResult:
    """`SELECT 1` on PostgreSQL, as the CRONOS seed's dependency check does."""
    started = time.perf_counter()
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, round(timeout_s))) as conn:
            conn.execute(f"SET statement_timeout = {int(timeout_s * 1000)}")
            row = conn.execute("SELECT 1").fetchone()
        ok = row == (1,)
        return ProbeResult(
            name="postgresql",
            target=_redact(dsn),
            ok=ok,
            latency_ms=_elapsed_ms(started),
            detail="SELECT 1 ok" if ok else f"unexpected answer {row!r}",
        )
    except psycopg.Error as exc:
        return ProbeResult(
            name="postgresql",
            target=_redact(dsn),
            ok=False,
            latency_ms=_elapsed_ms(started),
            detail=str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        )


def probe_redis(url: str, timeout_s: float) -> ProbeResult:
    """`PING` on Redis, as the CRONOS seed's dependency check does."""
    started = time.perf_counter()
    conn = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        ok = bool(conn.ping())
        return ProbeResult(
            name="redis",
            target=_redact(url),
            ok=ok,
            latency_ms=_elapsed_ms(started),
            detail="PONG" if ok else "no PONG",
        )
    except redis.RedisError as exc:
        return ProbeResult(
            name="redis",
            target=_redact(url),
            ok=False,
            latency_ms=_elapsed_ms(started),
            detail=str(exc) or type(exc).__name__,
        )
    finally:
        conn.close()


def probe_http(
    name: str, url: str, timeout_s: float, http: httpx.Client | None = None
) -> ProbeResult:
    """GET a health URL: 2xx is up, anything else (or no answer) is down."""
    started = time.perf_counter()
    url = resolve(url)
    owned = http is None
    session = http or httpx.Client(timeout=timeout_s)
    try:
        response = session.get(url, timeout=timeout_s)
        return ProbeResult(
            name=name,
            target=url,
            ok=response.is_success,
            latency_ms=_elapsed_ms(started),
            detail=f"HTTP {response.status_code}",
        )
    except httpx.HTTPError as exc:
        return ProbeResult(
            name=name,
            target=url,
            ok=False,
            latency_ms=_elapsed_ms(started),
            detail=f"{type(exc).__name__}: {exc}",
        )
    finally:
        if owned:
            session.close()


def _redact(url: str) -> str:
    """Hide a password in a connection URL before it reaches logs or the UI."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
