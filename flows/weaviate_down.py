"""GremlinsAI playbook "Critical Alert: WeaviateDown" (Weaviate unreachable for 1+ minute)."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.models import Alert
from oncall.observations import probes_summary
from oncall.playbooks import WeaviateDownConfig
from tasks.diagnosis import describe_pods, scan_logs, warning_events
from tasks.health import check_deployment_health, check_endpoints, check_pvc
from tasks.mitigations import plan_restart
from tasks.rollback import wait_for_rollout
from tasks.verify import verify_health_endpoint

PLAYBOOK = "weaviate-down"


@playbook_flow(PLAYBOOK)
def weaviate_down(alert: Alert, config: WeaviateDownConfig | None = None) -> State[Any]:
    """Check Weaviate's pods, connectivity, volume and network; restart it; verify /v1/meta."""
    config = config or WeaviateDownConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)

    # Immediate response: acknowledge; Weaviate status (get/describe pods); connectivity.
    run.acknowledge()
    health = check_deployment_health(run.kube, config.namespace, config.deployment)
    pods = describe_pods(run.kube, config.namespace, config.selector)
    probing = run.probe_dependencies({"weaviate": config.meta_url})

    # Investigation: pod issues (events, previous logs), persistent volume, network.
    events = warning_events(run.kube, config.namespace)
    logs = scan_logs(run.kube, config.namespace, config.selector, 50, previous=True)
    pvc = check_pvc(run.kube, config.namespace, config.pvc)
    endpoints = check_endpoints(run.kube, config.namespace, config.service)
    crashing = [p["pod"] for p in pods if p["waiting"] == "CrashLoopBackOff"]
    probes = [p.result() for p in probing]
    findings = (
        f"weaviate {health.ready_replicas}/{health.replicas} ready"
        f"{', crash-looping: ' + ', '.join(crashing) if crashing else ''}; "
        f"PVC {config.pvc} {pvc}; service endpoints: {len(endpoints)}; " + probes_summary(probes)
    )
    run.diagnose(
        findings,
        probes,
        pods=pods,
        events=events,
        logs=logs,
        pvc=pvc,
        endpoints=endpoints,
    )
    if pvc not in ("Bound", "Unknown"):
        # A restart cannot fix storage: the seed's "If Persistent Volume Issues" is for a human.
        return run.escalate(f"Weaviate's volume claim is {pvc}; " + findings)

    # Mitigation: "If Pod Issues: kubectl rollout restart deployment/weaviate".
    plan = plan_restart(run.kube, config.namespace, config.deployment)
    applied = run.mitigate(plan, findings)
    if isinstance(applied, State):
        return applied
    wait_for_rollout(run.kube, config.namespace, config.deployment, config.rollout_timeout_s)
    verification = verify_health_endpoint(
        config.meta_url,
        config.verify_checks,
        config.verify_window_s,
        config.verify_timeout_s,
        analysis=config.verify_analysis,
    )
    return run.finish(verification)
