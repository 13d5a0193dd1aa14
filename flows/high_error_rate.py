"""CRONOS playbook "Common Issues: High Error Rate"."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.models import Alert
from oncall.observations import probes_summary
from oncall.playbooks import HighErrorRateConfig
from tasks.changes import read_rollout_history
from tasks.diagnosis import measure_error_rate, scan_logs
from tasks.mitigations import plan_restart, plan_scale
from tasks.rollback import wait_for_rollout
from tasks.verify import verify_error_rate

PLAYBOOK = "high-error-rate"


@playbook_flow(PLAYBOOK)
def high_error_rate(alert: Alert, config: HighErrorRateConfig | None = None) -> State[Any]:
    """Error distribution and dependencies; restart affected pods, then scale; verify."""
    config = config or HighErrorRateConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)
    metrics = run.clients.readings(config)
    run.acknowledge()

    # Quick checks: error distribution, specific error types; dependency health; changes.
    logs = scan_logs(run.kube, config.namespace, config.selector, 200)
    rate = measure_error_rate(metrics, config.verify_window_s)
    probes = [p.result() for p in run.probe_dependencies()]
    history = read_rollout_history(run.kube, config.namespace, config.deployment)
    findings = (
        f"5xx {rate:.1%}; {logs['error_lines']} error lines {logs['status_codes']}; "
        f"revision {history[-1].revision if history else '?'}; dependencies: "
        + probes_summary(probes)
    )
    run.diagnose(findings, probes, error_rate=rate, logs=logs)

    # Solutions, in the seed's order: 1. restart affected pods, 2. scale up.
    for plan in (
        plan_restart(run.kube, config.namespace, config.deployment),
        plan_scale(run.kube, config.namespace, config.deployment, config.scale_to),
    ):
        applied = run.mitigate(plan, findings)
        if isinstance(applied, State):
            return applied
        wait_for_rollout(run.kube, config.namespace, config.deployment, config.rollout_timeout_s)
        verification = verify_error_rate(
            metrics,
            config.error_rate_threshold,
            config.verify_checks,
            config.verify_window_s,
            config.verify_timeout_s,
            analysis=config.verify_analysis,
        )
        if verification.passed:
            return run.finish(verification)
    return run.finish(verification)
