"""Rollback (seed step 7): plan it dry, then apply it only behind the guards."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from oncall.clients.kube import KubeClient
from oncall.errors import UnsafeToRemediate
from oncall.observations import ChangePlan, DeploymentHealth
from oncall.retrying import retry_if_transient


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def plan_rollback(
    kube: KubeClient, namespace: str, deployment: str, to_revision: int = 0
) -> ChangePlan:
    """Dry-run `kubectl rollout undo`: current and target revision and image, nothing changed."""
    rollback = kube.plan_rollback(namespace, deployment, to_revision)
    if rollback.no_op:
        raise UnsafeToRemediate(rollback.describe())
    plan = rollback.as_change()
    create_markdown_artifact(
        key=f"plan-rollback-{deployment}",
        markdown=plan.as_markdown(),
        description=rollback.describe(),
    )
    get_run_logger().info("Plan: %s", rollback.describe())
    return plan


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def wait_for_rollout(
    kube: KubeClient, namespace: str, deployment: str, timeout_s: float
) -> DeploymentHealth:
    """Watch the rollout finish, like `kubectl rollout status` (it may fail or stall)."""
    health = kube.wait_for_rollout(namespace, deployment, timeout_s)
    get_run_logger().info(
        "%s/%s now at revision %d (%s): rollout %s",
        namespace,
        deployment,
        health.revision,
        ", ".join(health.images),
        "complete" if health.rollout_complete else "NOT complete",
    )
    return health


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def wait_for_workload(
    kube: KubeClient, namespace: str, kind: str, name: str, timeout_s: float
) -> bool:
    """Watch any workload's rollout finish, like `kubectl rollout status`; True if it did."""
    if kind == "deployment":
        health = wait_for_rollout.fn(kube, namespace, name, timeout_s)
        return health.rollout_complete
    deadline = time.monotonic() + timeout_s
    while not kube.workload_ready(namespace, kind, name):
        if time.monotonic() > deadline:
            get_run_logger().info("%s/%s/%s: rollout NOT complete", namespace, kind, name)
            return False
        time.sleep(0.2)
    get_run_logger().info("%s/%s/%s: rollout complete", namespace, kind, name)
    return True
