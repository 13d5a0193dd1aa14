"""GremlinsAI playbook "Critical Alert: HighLLMLatency" (LLM p99 > 10 s for 3+ minutes)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.models import ActionKind, Alert
from oncall.observations import ChangePlan, probes_summary
from oncall.playbooks import HighLLMLatencyConfig
from tasks.diagnosis import describe_pods, measure_latency, scan_logs
from tasks.health import check_deployment_health
from tasks.mitigations import plan_restart, plan_scale, plan_set_env
from tasks.rollback import wait_for_rollout
from tasks.verify import verify_latency

PLAYBOOK = "high-llm-latency"


@playbook_flow(PLAYBOOK)
def high_llm_latency(alert: Alert, config: HighLLMLatencyConfig | None = None) -> State[Any]:
    """Check Ollama, then restart it, scale it, or switch to the fallback LLM until p99 drops."""
    config = config or HighLLMLatencyConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)
    metrics = run.clients.readings(config)

    # Immediate response: acknowledge; how slow is it now?
    run.acknowledge()
    p99 = measure_latency(
        metrics, config.latency_histogram, config.quantile, config.verify_window_s
    )

    # Investigation: Ollama health and connectivity; resource use (pods, restarts); its logs.
    probing = run.probe_dependencies({"ollama": f"{config.ollama_url}/api/tags"})
    ollama = check_deployment_health(run.kube, config.namespace, config.ollama_deployment)
    pods = describe_pods(run.kube, config.namespace, config.ollama_selector)
    logs = scan_logs(run.kube, config.namespace, config.ollama_selector, 50)
    probes = [p.result() for p in probing]
    findings = (
        f"LLM p{round(config.quantile * 100)} {p99 if p99 is not None else 'n/a'} s; ollama "
        f"{ollama.ready_replicas}/{ollama.replicas} ready; dependencies " + probes_summary(probes)
    )
    run.diagnose(findings, probes, p99_s=p99, pods=pods, logs=logs)

    # Mitigation, in the seed's order: restart Ollama, scale it up, switch provider.
    # Each step is planned only when the one before it did not bring the latency down.
    steps: list[Callable[[], ChangePlan]] = [
        lambda: plan_restart(run.kube, config.namespace, config.ollama_deployment),
        lambda: plan_scale(run.kube, config.namespace, config.ollama_deployment, config.scale_to),
        *(partial(_fallback_plan, run, config, name) for name in config.backend_deployments),
    ]
    verification = None
    for step in steps:
        plan = step()
        applied = run.mitigate(plan, findings)
        if isinstance(applied, State):
            return applied
        deployment = plan.target.split("/", 1)[1]
        wait_for_rollout(run.kube, config.namespace, deployment, config.rollout_timeout_s)
        verification = verify_latency(
            metrics,
            config.latency_histogram,
            config.quantile,
            config.threshold_s,
            config.verify_checks,
            config.verify_window_s,
            config.verify_timeout_s,
            analysis=config.verify_analysis,
        )
        if verification.passed:
            return run.finish(verification)
    assert verification is not None
    return run.finish(verification)


def _fallback_plan(run: PlaybookRun, config: HighLLMLatencyConfig, deployment: str) -> ChangePlan:
    plan = plan_set_env(
        run.kube, config.namespace, deployment, config.backend_container, config.fallback_env
    )
    return plan.model_copy(update={"kind": ActionKind.FALLBACK})
