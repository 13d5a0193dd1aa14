"""CRONOS playbook "Common Issues: Database Connection Pool Exhausted"."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.models import Alert
from oncall.observations import probes_summary
from oncall.playbooks import DbPoolExhaustedConfig
from tasks.diagnosis import read_gauges, scan_logs
from tasks.mitigations import plan_set_env
from tasks.rollback import wait_for_rollout
from tasks.verify import verify_error_rate, verify_gauge_ratio

PLAYBOOK = "db-pool-exhausted"


@playbook_flow(PLAYBOOK)
def db_pool_exhausted(alert: Alert, config: DbPoolExhaustedConfig | None = None) -> State[Any]:
    """Confirm the pool is full; restart to reset connections and raise DB_POOL_SIZE; verify."""
    config = config or DbPoolExhaustedConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)
    metrics = run.clients.readings(config)
    run.acknowledge()

    # Confirm: pool in use vs size, the pool errors in the logs, the database itself.
    pool = read_gauges(metrics, [config.in_use_metric, config.size_metric])
    logs = scan_logs(run.kube, config.namespace, config.selector, 100)
    probes = [p.result() for p in run.probe_dependencies()]
    findings = (
        f"pool {pool[config.in_use_metric]}/{pool[config.size_metric]} in use; "
        f"{logs['error_lines']} error lines; database " + probes_summary(probes)
    )
    run.diagnose(findings, probes, pool=pool, logs=logs)
    if any(p.name == "postgresql" and not p.ok for p in probes):
        return run.escalate("the database itself is down: a bigger pool will not help; " + findings)

    # Quick fix: restart pods to reset connections, and increase the pool size (temporary).
    # Raising DB_POOL_SIZE changes the template, so the rollout restarts the pods as well.
    plan = plan_set_env(
        run.kube,
        config.namespace,
        config.deployment,
        config.container,
        {config.pool_env: str(config.pool_size)},
    )
    applied = run.mitigate(plan, findings)
    if isinstance(applied, State):
        return applied
    wait_for_rollout(run.kube, config.namespace, config.deployment, config.rollout_timeout_s)
    headroom = verify_gauge_ratio(
        metrics,
        config.in_use_metric,
        config.size_metric,
        0.9,
        config.verify_checks,
        config.verify_window_s,
        config.verify_timeout_s,
        analysis=config.verify_analysis,
    )
    if not headroom.passed:
        return run.finish(headroom, undo=plan.inverse())
    errors = verify_error_rate(
        metrics,
        config.error_rate_threshold,
        config.verify_checks,
        config.verify_window_s,
        config.verify_timeout_s,
        analysis=config.verify_analysis,
    )
    return run.finish(errors, undo=plan.inverse())
