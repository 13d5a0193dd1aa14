"""Every playbook flow, by the sandbox scenario that drills it."""

from __future__ import annotations

from typing import Any

from flows.db_pool_exhausted import db_pool_exhausted
from flows.degraded_performance import degraded_performance
from flows.high_api_error_rate import high_api_error_rate
from flows.high_latency import high_latency
from flows.high_llm_latency import high_llm_latency
from flows.minor_issue import minor_issue
from flows.pod_crash_loop import pod_crash_loop
from flows.service_down import service_down
from flows.weaviate_down import weaviate_down

PLAYBOOK_FOR_SCENARIO: dict[str, Any] = {
    "bad-deploy": high_api_error_rate,
    "llm-latency": high_llm_latency,
    "weaviate-down": weaviate_down,
    "service-down": service_down,
    "degraded": degraded_performance,
    "crash-loop": pod_crash_loop,
    "db-pool-exhausted": db_pool_exhausted,
    "high-latency": high_latency,
    "minor": minor_issue,
}
