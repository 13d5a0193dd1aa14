"""CRONOS playbook "Common Issues: Pod Crash Loop", on whatever workload the alert names."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.models import Alert
from oncall.observations import probes_summary
from oncall.playbooks import PodCrashLoopConfig
from tasks.diagnosis import describe_pods, read_config, scan_logs, warning_events
from tasks.mitigations import plan_config_fix, plan_revision_rollback, plan_workload_restart
from tasks.rollback import wait_for_workload
from tasks.subjects import previous_revision, subject_config_maps
from tasks.verify import verify_pods_ready

PLAYBOOK = "pod-crash-loop"


@playbook_flow(PLAYBOOK)
def pod_crash_loop(alert: Alert, config: PodCrashLoopConfig | None = None) -> State[Any]:
    """Describe the subject's pods, read crash logs and events; fix config or roll back, verify."""
    config = config or PodCrashLoopConfig()
    # The subject first: the incident is announced in its service's channel.
    run = PlaybookRun(PLAYBOOK, alert, config, subject_first=True)
    run.acknowledge()
    subject = run.subject
    if subject is None:
        return run.default_triage()
    ns, selector = subject.namespace, subject.selector
    if not ns or not selector:  # a node, or a Service that selects nothing
        return run.escalate(f"{subject.describe()}: no pods of it to diagnose")

    # Diagnosis: get pods, describe (waiting reason, last termination), previous logs, events.
    pods = describe_pods(run.kube, ns, selector)
    # A dependency that refuses connections at start-up crash-loops its clients too.
    probing = run.probe_dependencies()
    crash_logs = scan_logs(run.kube, ns, selector, 50, previous=True)
    events = warning_events(run.kube, ns)
    # Known-good configuration: the playbook's own parameters, else the catalog entry's.
    if config.known_good:
        known_good = {config.config_map: config.known_good}
    else:
        known_good = dict(run.entry.known_good) if run.entry else {}
    maps = list(dict.fromkeys([*subject_config_maps(run.kube, subject), *known_good]))
    configs = {name: read_config(run.kube, ns, name) for name in maps}
    earlier = previous_revision(run.kube, subject)
    probes = [p.result() for p in probing]
    oom = [p["pod"] for p in pods if p["last_reason"] == "OOMKilled"]
    drift = {
        name: wrong
        for name, good in known_good.items()
        if (wrong := {k: v for k, v in good.items() if configs.get(name, {}).get(k) != v})
    }
    exits = sorted({f"{p['last_reason']}/{p['last_exit_code']}" for p in pods})
    looping = sum(1 for p in pods if p["waiting"] == "CrashLoopBackOff")
    findings = (
        f"{subject.ref}: {looping} pod(s) in CrashLoopBackOff; last exits {exits}; "
        f"config drift {drift or 'none'}; "
        f"earlier revision {earlier.describe() if earlier else 'none that differs'}; crash log: "
        f"{crash_logs['samples'][-1] if crash_logs['samples'] else 'no error lines'}; "
        "dependencies " + probes_summary(probes)
    )
    run.diagnose(
        findings,
        probes,
        subject=subject.model_dump(),
        pods=pods,
        previous_logs=crash_logs,
        events=events,
        config=configs,
        earlier_revision=earlier.__dict__ if earlier else None,
    )
    if run.read_only:
        return run.escalate(f"read-only diagnosis, nothing changed: {run.read_only}; {findings}")
    if oom:
        # "Increase resource limits" needs a person to size them.
        return run.escalate(f"OOMKilled containers ({', '.join(oom)}): raise limits; " + findings)

    if drift:
        # Solution 1: fix configuration, then restart so every pod reads it.
        undo = None
        for name, data in drift.items():
            fix = plan_config_fix(run.kube, ns, name, data)
            applied = run.mitigate(fix, findings)
            if isinstance(applied, State):
                return applied
            undo = undo or fix.inverse()
        restart = plan_workload_restart(run.kube, ns, subject.kind, subject.name)
        restarted = run.mitigate(restart, findings)
        if isinstance(restarted, State):
            return restarted
    elif earlier is not None:
        # The crashes started with a release: go back to what ran before it.
        rollback = plan_revision_rollback(run.kube, earlier)
        rolled = run.mitigate(rollback, findings)
        if isinstance(rolled, State):
            return rolled
        undo = rollback.inverse()
    else:
        return run.escalate(
            "no known configuration error or earlier release explains the crashes; " + findings
        )
    wait_for_workload(run.kube, ns, subject.kind, subject.name, config.rollout_timeout_s)
    verification = verify_pods_ready(
        run.kube,
        ns,
        subject.name,
        config.verify_checks,
        config.verify_window_s,
        config.verify_timeout_s,
        kind=subject.kind,
        analysis=config.verify_analysis,
    )
    return run.finish(verification, undo=undo)
