"""Rollback (seed step 7): plan it dry, then apply it only behind the guards."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from oncall.approval import ApprovalDecision
from oncall.clients.kube import KubeClient
from oncall.errors import UnsafeToRemediate
from oncall.observations import DeploymentHealth, RollbackPlan, RollbackResult
from oncall.retrying import retry_if_transient


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def plan_rollback(
    kube: KubeClient, namespace: str, deployment: str, to_revision: int = 0
) -> RollbackPlan:
    """Dry-run `kubectl rollout undo`: current and target revision and image, nothing changed."""
    plan = kube.plan_rollback(namespace, deployment, to_revision)
    create_markdown_artifact(
        key=f"rollback-plan-{deployment}",
        markdown=f"## Rollback plan (dry run)\n\n{plan.describe()}\n",
        description=f"Dry-run plan for {namespace}/{deployment}",
    )
    get_run_logger().info("Plan: %s", plan.describe())
    return plan


@task(cache_policy=NO_CACHE)
def rollback_deployment(
    kube: KubeClient,
    plan: RollbackPlan,
    approval: ApprovalDecision | None,
    allowed_namespaces: list[str],
    require_approval: bool = True,
    dry_run: bool = False,
) -> RollbackResult | None:
    """Roll the deployment back to the planned revision, if every guard allows it."""
    # Guards live here, not only in the flow: a caller that skips the pause still stops here.
    if plan.namespace not in allowed_namespaces:
        raise UnsafeToRemediate(
            f"namespace {plan.namespace!r} is not in the allow-list {allowed_namespaces}"
        )
    if require_approval and (approval is None or not approval.approve):
        raise UnsafeToRemediate("rollback needs an approval and has none")
    if plan.no_op:
        raise UnsafeToRemediate(plan.describe())
    log = get_run_logger()
    if dry_run:
        log.info("Dry run, nothing changed: %s", plan.describe())
        return None
    kube.rollout_undo(plan)
    log.info(
        "Rolled back %s/%s to the template of revision %d (%s)",
        plan.namespace,
        plan.deployment,
        plan.target_revision,
        ", ".join(plan.target_images),
    )
    return RollbackResult(
        namespace=plan.namespace,
        deployment=plan.deployment,
        from_revision=plan.current_revision,
        to_template_of=plan.target_revision,
        images=plan.target_images,
    )


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
