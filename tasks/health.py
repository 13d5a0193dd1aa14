"""Quick health check: pods and rollout state (`kubectl get pods`, `rollout status`)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oncall.clients.kube import KubeClient
from oncall.errors import PermanentError
from oncall.observations import DeploymentHealth
from oncall.retrying import retry_if_transient


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def check_deployment_health(kube: KubeClient, namespace: str, name: str) -> DeploymentHealth:
    """Read a deployment's rollout state and pod readiness."""
    health = kube.health(namespace, name)
    get_run_logger().info(
        "%s/%s: revision %d (%s), %d/%d ready, rollout %s",
        namespace,
        name,
        health.revision,
        ", ".join(health.images),
        health.ready_replicas,
        health.replicas,
        "complete" if health.rollout_complete else "in progress",
    )
    return health


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def check_endpoints(kube: KubeClient, namespace: str, service: str) -> list[str]:
    """`kubectl get endpoints`: the ready addresses behind a Service."""
    addresses = kube.endpoints(namespace, service)
    get_run_logger().info("service %s/%s: %d ready endpoint(s)", namespace, service, len(addresses))
    return addresses


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def check_pvc(kube: KubeClient, namespace: str, claim: str) -> str:
    """`kubectl get pvc`: the claim's phase (Bound is healthy; Unknown if not readable)."""
    try:
        phase = kube.pvc_phase(namespace, claim)
    except PermanentError as exc:
        # The least-privilege Role does not grant PVC reads; say so instead of failing.
        get_run_logger().warning("PVC %s/%s not checked: %s", namespace, claim, exc)
        return "Unknown"
    get_run_logger().info("PVC %s/%s: %s", namespace, claim, phase)
    return phase
