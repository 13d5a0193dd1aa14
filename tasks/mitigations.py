"""Mitigations: each one planned dry first, then applied only inside the guards."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from oncall.approval import ApprovalDecision
from oncall.clients.kube import KubeClient
from oncall.clients.service_admin import ServiceAdmin
from oncall.clients.workload_history import RevisionCandidate
from oncall.errors import UnsafeToRemediate
from oncall.guards import Guard
from oncall.models import Action, ActionKind, Incident, utcnow
from oncall.observations import ChangePlan
from oncall.retrying import retry_if_transient

# Reads retry on transient errors; the apply steps do not retry on their own: a half-done
# destructive step is re-planned by a human, not repeated blindly.
plan_task = task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)


def _publish(plan: ChangePlan) -> ChangePlan:
    create_markdown_artifact(
        key=f"plan-{plan.kind}-{plan.target.replace('/', '-')}".lower().replace("_", "-"),
        markdown=plan.as_markdown(),
        description=plan.describe(),
    )
    get_run_logger().info("Plan: %s", plan.describe())
    return plan


@plan_task
def plan_restart(kube: KubeClient, namespace: str, deployment: str) -> ChangePlan:
    """Dry-run `kubectl rollout restart`: every pod of the deployment replaced."""
    health = kube.health(namespace, deployment)
    return _publish(
        ChangePlan(
            kind=ActionKind.RESTART,
            namespace=namespace,
            target=f"deployment/{deployment}",
            before={"pods": [p.name for p in health.pods], "revision": health.revision},
            after={"pods": f"{health.replicas} new pods", "revision": health.revision + 1},
            note="rolling restart; the pod template is stamped with restartedAt",
        )
    )


@plan_task
def plan_workload_restart(kube: KubeClient, namespace: str, kind: str, name: str) -> ChangePlan:
    """Dry-run `kubectl rollout restart` of any workload: every pod replaced."""
    if kind == "deployment":
        return plan_restart.fn(kube, namespace, name)
    pods = kube.pods(namespace, _selector(kube._workload(namespace, kind, name)))
    return _publish(
        ChangePlan(
            kind=ActionKind.RESTART,
            namespace=namespace,
            target=f"{kind}/{name}",
            before={"pods": [p.name for p in pods]},
            after={"pods": f"{len(pods)} new pods"},
            note="rolling restart; the pod template is stamped with restartedAt",
        )
    )


def _selector(workload: dict[str, object]) -> dict[str, str]:
    spec = workload.get("spec")
    selector = spec.get("selector") if isinstance(spec, dict) else None
    labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    return dict(labels) if isinstance(labels, dict) else {}


@plan_task
def plan_revision_rollback(kube: KubeClient, candidate: RevisionCandidate) -> ChangePlan:
    """Dry-run `kubectl rollout undo --to-revision` to the last revision that differed."""
    ns, kind, name = candidate.namespace, candidate.kind, candidate.name
    if kind == "deployment":
        rollback = kube.plan_rollback(ns, name, candidate.revision)
        if rollback.no_op:
            raise UnsafeToRemediate(rollback.describe())
        plan = rollback.as_change()
    else:
        plan = ChangePlan(
            kind=ActionKind.ROLLBACK,
            namespace=ns,
            target=f"{kind}/{name}",
            before={"revision": candidate.current_revision, "images": candidate.current_images},
            after={"revision": candidate.revision, "images": candidate.images},
        )
    changes = "; ".join(candidate.differences)
    return _publish(plan.model_copy(update={"note": f"back to what ran before: {changes}"}))


@plan_task
def plan_scale(kube: KubeClient, namespace: str, deployment: str, replicas: int) -> ChangePlan:
    """Dry-run `kubectl scale`: current and target replica count."""
    health = kube.health(namespace, deployment)
    return _publish(
        ChangePlan(
            kind=ActionKind.SCALE,
            namespace=namespace,
            target=f"deployment/{deployment}",
            before={"replicas": health.replicas},
            after={"replicas": replicas},
        )
    )


@plan_task
def plan_set_env(
    kube: KubeClient, namespace: str, deployment: str, container: str, env: dict[str, str]
) -> ChangePlan:
    """Dry-run `kubectl set env`: each variable's current and new value."""
    dep = kube.deployment(namespace, deployment)
    containers = dep["spec"]["template"]["spec"]["containers"]
    current = next((c for c in containers if c["name"] == container), containers[0])
    values = {e["name"]: e.get("value") for e in current.get("env") or []}
    return _publish(
        ChangePlan(
            kind=ActionKind.SET_ENV,
            namespace=namespace,
            target=f"deployment/{deployment}",
            container=current["name"],
            before={f"env.{k}": values.get(k, "(unset)") for k in env},
            after={f"env.{k}": v for k, v in env.items()},
            note="a template change: the controller rolls out a new ReplicaSet",
        )
    )


@plan_task
def plan_service_switch(
    kube: KubeClient, namespace: str, service: str, selector: dict[str, str]
) -> ChangePlan:
    """Dry-run the blue/green switch: the Service's selector before and after."""
    current = kube.service(namespace, service)["spec"].get("selector") or {}
    return _publish(
        ChangePlan(
            kind=ActionKind.SWITCH,
            namespace=namespace,
            target=f"service/{service}",
            before={f"selector.{k}": current.get(k, "(none)") for k in selector},
            after={f"selector.{k}": v for k, v in selector.items()},
            note="traffic moves to the pods the new selector matches",
        )
    )


@plan_task
def plan_config_fix(
    kube: KubeClient, namespace: str, config_map: str, data: dict[str, str]
) -> ChangePlan:
    """Dry-run a ConfigMap fix: each key's current and corrected value."""
    current = kube.config_map(namespace, config_map)
    return _publish(
        ChangePlan(
            kind=ActionKind.CONFIG,
            namespace=namespace,
            target=f"configmap/{config_map}",
            before={f"data.{k}": current.get(k, "(unset)") for k in data},
            after={f"data.{k}": v for k, v in data.items()},
            note="pods read the ConfigMap when their containers start",
        )
    )


@plan_task
def plan_warm_cache(namespace: str, service: str, url: str) -> ChangePlan:
    """Dry-run a cache warm-up through the service's admin endpoint."""
    return _publish(
        ChangePlan(
            kind=ActionKind.WARM_CACHE,
            namespace=namespace,
            target=f"service/{service}",
            before={},
            after={"POST": url},
            note="reloads the hot keys; no restart",
        )
    )


@task(cache_policy=NO_CACHE)
def apply_plan(
    kube: KubeClient,
    guard: Guard,
    incident: Incident,
    plan: ChangePlan,
    approval: ApprovalDecision | None,
) -> Action:
    """Apply a planned mitigation if the guards allow it; dry runs change nothing."""
    kind, name = plan.target.split("/", 1)
    _check_kind(plan, kind)
    log = get_run_logger()
    with guard.remediation(
        service=incident.service,
        namespace=plan.namespace,
        target=plan.target,
        kind=plan.kind,
        incident_id=incident.id,
        approval=approval,
    ) as act:
        if plan.kind == ActionKind.SCALE:
            guard.check_replicas(int(plan.after["replicas"]))
        if not act:
            log.info("Dry run, nothing changed: %s", plan.describe())
            return Action(
                kind=plan.kind, target=plan.target, detail=plan.model_dump(), dry_run=True
            )
        if plan.kind == ActionKind.RESTART and kind == "deployment":
            kube.restart(plan.namespace, name, utcnow())
        elif plan.kind == ActionKind.RESTART:
            kube.restart_workload(plan.namespace, kind, name, utcnow())
        elif plan.kind == ActionKind.SCALE and kind == "statefulset":
            kube.scale_statefulset(plan.namespace, name, int(plan.after["replicas"]))
        elif plan.kind == ActionKind.SCALE:
            kube.scale(plan.namespace, name, int(plan.after["replicas"]))
        elif plan.kind in (ActionKind.SET_ENV, ActionKind.FALLBACK):
            env = {k.removeprefix("env."): str(v) for k, v in plan.after.items()}
            kube.set_env(plan.namespace, name, plan.container, env)
        elif plan.kind == ActionKind.ROLLBACK:
            _roll_back(kube, plan, name)
        elif plan.kind == ActionKind.CONFIG:
            data = {k.removeprefix("data."): str(v) for k, v in plan.after.items()}
            kube.patch_config_map(plan.namespace, name, data)
        elif plan.kind == ActionKind.WARM_CACHE:
            url = str(plan.after["POST"])
            base, _, path = url.partition("/admin")
            ServiceAdmin(base).warm_cache("/admin" + path)
        elif plan.kind == ActionKind.SWITCH:
            selector = {k.removeprefix("selector."): str(v) for k, v in plan.after.items()}
            current = kube.service(plan.namespace, name)["spec"].get("selector") or {}
            kube.patch_service_selector(plan.namespace, name, {**current, **selector})
        else:
            raise ValueError(f"apply_plan cannot apply a {plan.kind!r} plan")
    log.info("Applied: %s", plan.describe())
    return Action(
        kind=plan.kind, target=f"{plan.namespace}/{plan.target}", detail=plan.model_dump()
    )


# The object kinds each action kind can change; anything else is refused before the call,
# so a plan can never reach an object of another kind that happens to share its name.
_TARGET_KINDS: dict[ActionKind, frozenset[str]] = {
    ActionKind.RESTART: frozenset({"deployment", "statefulset", "daemonset"}),
    ActionKind.ROLLBACK: frozenset({"deployment", "statefulset", "daemonset"}),
    ActionKind.SCALE: frozenset({"deployment", "statefulset"}),  # a DaemonSet has no replicas
    ActionKind.SET_ENV: frozenset({"deployment"}),
    ActionKind.FALLBACK: frozenset({"deployment"}),
    ActionKind.CONFIG: frozenset({"configmap"}),
    ActionKind.SWITCH: frozenset({"service"}),
    ActionKind.WARM_CACHE: frozenset({"service"}),
}


def _check_kind(plan: ChangePlan, kind: str) -> None:
    allowed = _TARGET_KINDS.get(plan.kind, frozenset())
    if kind not in allowed:
        raise UnsafeToRemediate(
            f"a {plan.kind} cannot change {plan.target} (only {', '.join(sorted(allowed))})"
        )


def _roll_back(kube: KubeClient, plan: ChangePlan, name: str) -> None:
    """`kubectl rollout undo --to-revision`, refused if the cluster moved since the plan."""
    kind = plan.target.split("/", 1)[0]
    if kind != "deployment":
        # ControllerRevisions: the newest is the current one.
        history = kube.controller_revisions(plan.namespace, kind, name)
        current = max((int(r.get("revision", 0)) for r in history), default=0)
        if current != int(plan.before["revision"]):
            raise UnsafeToRemediate(
                f"{plan.namespace}/{plan.target} moved to revision {current} since the plan "
                f"was approved (planned from {plan.before['revision']})"
            )
        undo = kube.rollout_undo_workload(plan.namespace, kind, name, int(plan.after["revision"]))
        if undo.skipped:
            raise UnsafeToRemediate(
                f"{plan.namespace}/{plan.target} already runs revision {undo.revision}"
            )
        return
    rollback = kube.plan_rollback(plan.namespace, name, int(plan.after["revision"]))
    if rollback.current_revision != int(plan.before["revision"]):
        raise UnsafeToRemediate(
            f"{plan.namespace}/{name} moved to revision {rollback.current_revision} since the "
            f"plan was approved (planned from {plan.before['revision']})"
        )
    if rollback.no_op:
        raise UnsafeToRemediate(rollback.describe())
    kube.rollout_undo(rollback)
