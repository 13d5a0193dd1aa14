"""CRONOS playbook "Common Issues: Pod Crash Loop"."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.models import Alert
from oncall.observations import probes_summary
from oncall.playbooks import PodCrashLoopConfig
from tasks.diagnosis import describe_pods, read_config, scan_logs, warning_events
from tasks.mitigations import plan_config_fix, plan_restart
from tasks.rollback import wait_for_rollout
from tasks.verify import verify_pods_ready

PLAYBOOK = "pod-crash-loop"


@playbook_flow(PLAYBOOK)
def pod_crash_loop(alert: Alert, config: PodCrashLoopConfig | None = None) -> State[Any]:
    """Describe the pods, read the crash logs and events; fix the config, restart, verify."""
    config = config or PodCrashLoopConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)
    run.acknowledge()

    # Diagnosis: get pods, describe (waiting reason, last termination), previous logs, events.
    pods = describe_pods(run.kube, config.namespace, config.selector)
    # A dependency that refuses connections at start-up crash-loops its clients too.
    probing = run.probe_dependencies()
    crash_logs = scan_logs(run.kube, config.namespace, config.selector, 50, previous=True)
    events = warning_events(run.kube, config.namespace)
    current = read_config(run.kube, config.namespace, config.config_map)
    probes = [p.result() for p in probing]
    oom = [p["pod"] for p in pods if p["last_reason"] == "OOMKilled"]
    drift = {k: v for k, v in config.known_good.items() if current.get(k) != v}
    exits = sorted({f"{p['last_reason']}/{p['last_exit_code']}" for p in pods})
    findings = (
        f"{sum(1 for p in pods if p['waiting'] == 'CrashLoopBackOff')} pod(s) in "
        f"CrashLoopBackOff; last exits {exits}; "
        f"config drift {drift or 'none'}; crash log: "
        f"{crash_logs['samples'][-1] if crash_logs['samples'] else 'no error lines'}; "
        "dependencies " + probes_summary(probes)
    )
    run.diagnose(
        findings,
        probes,
        pods=pods,
        previous_logs=crash_logs,
        events=events,
        config=current,
    )
    if oom:
        # "Increase resource limits" needs a person to size them.
        return run.escalate(f"OOMKilled containers ({', '.join(oom)}): raise limits; " + findings)
    if not drift:
        return run.escalate("no known configuration error explains the crashes; " + findings)

    # Solution 1: fix configuration, then restart so every pod reads it.
    fix = plan_config_fix(run.kube, config.namespace, config.config_map, drift)
    applied = run.mitigate(fix, findings)
    if isinstance(applied, State):
        return applied
    restarted = run.mitigate(plan_restart(run.kube, config.namespace, config.deployment), findings)
    if isinstance(restarted, State):
        return restarted
    wait_for_rollout(run.kube, config.namespace, config.deployment, config.rollout_timeout_s)
    verification = verify_pods_ready(
        run.kube,
        config.namespace,
        config.deployment,
        config.verify_checks,
        config.verify_window_s,
        config.verify_timeout_s,
    )
    return run.finish(verification, undo=fix.inverse())
