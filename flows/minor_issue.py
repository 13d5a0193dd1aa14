"""CRONOS playbook "P3 (Medium) - Minor Issues": document, ticket, monitor, escalate if it grows."""

from __future__ import annotations

import time
from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.models import Action, Alert
from oncall.observations import Verification
from oncall.playbooks import MinorIssueConfig
from tasks.diagnosis import measure_error_rate, scan_logs

PLAYBOOK = "minor-issue"


@playbook_flow(PLAYBOOK)
def minor_issue(alert: Alert, config: MinorIssueConfig | None = None) -> State[Any]:
    """Document and ticket a P3, then watch it: resolve when it subsides, escalate if it grows."""
    config = config or MinorIssueConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)
    metrics = run.clients.readings(config)
    run.acknowledge()

    # 1. Document the issue. 3. Create a bug ticket (the incident record carries it).
    logs = scan_logs(run.kube, config.namespace, config.selector, 100)
    run.record(
        Action(
            kind="ticket",
            target=run.incident.id,
            detail={
                "severity": "P3",
                "title": alert.annotations.get("summary", alert.name),
                "logs": logs,
                "note": "investigate during business hours",
            },
        )
    )

    # 4. Monitor for escalation: watch the error rate; no change is made to the service.
    deadline = time.monotonic() + config.monitor_s
    samples: list[float] = []
    streak = 0
    while time.monotonic() < deadline:
        rate = measure_error_rate(metrics, config.verify_window_s)
        samples.append(round(rate, 4))
        if rate >= config.grows_above:
            return run.escalate(
                f"error rate grew to {rate:.1%} (>= {config.grows_above:.0%}): no longer a P3"
            )
        streak = streak + 1 if rate < config.error_rate_threshold else 0
        if streak >= config.verify_checks:
            break
    passed = streak >= config.verify_checks
    return run.finish(
        Verification(
            passed=passed,
            samples=samples,
            threshold=config.error_rate_threshold,
            detail=(
                f"error rate back under {config.error_rate_threshold:.0%} by itself"
                if passed
                else f"still intermittent after {config.monitor_s:.0f}s of monitoring"
            ),
        )
    )
