"""Recent-change detection (seed step 6): does a rollout correlate with the alert?"""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oncall.clients.kube import KubeClient
from oncall.observations import RecentChange, Revision
from oncall.retrying import retry_if_transient

# Clocks of the cluster and the alert source are not exactly in step.
_CLOCK_SKEW = timedelta(minutes=2)


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def find_recent_change(
    kube: KubeClient,
    namespace: str,
    deployments: list[str],
    alert_started: datetime,
    window_minutes: float,
) -> RecentChange | None:
    """The latest rollout among ``deployments`` shortly before the alert, if there is one."""
    log = get_run_logger()
    suspects: list[RecentChange] = []
    for name in deployments:
        history = kube.rollout_history(namespace, name)
        if not history:
            continue
        current = history[-1]
        previous = history[-2] if len(history) > 1 else None
        lead = alert_started - current.created_at
        suspicious = -_CLOCK_SKEW <= lead <= timedelta(minutes=window_minutes)
        log.info(
            "%s: revision %d (%s) rolled out %.1f min before the alert%s",
            name,
            current.revision,
            ", ".join(current.images),
            lead.total_seconds() / 60,
            " <- suspect" if suspicious else "",
        )
        suspects.append(
            RecentChange(
                deployment=name,
                revision=current.revision,
                images=current.images,
                rolled_out_at=current.created_at,
                previous_revision=previous.revision if previous else None,
                previous_images=previous.images if previous else [],
                minutes_before_alert=round(lead.total_seconds() / 60, 2),
                suspicious=suspicious,
            )
        )
    flagged = [s for s in suspects if s.suspicious and s.previous_revision is not None]
    return max(flagged, key=lambda s: s.rolled_out_at) if flagged else None


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def read_rollout_history(kube: KubeClient, namespace: str, deployment: str) -> list[Revision]:
    """`kubectl rollout history`: revisions oldest first, with their images."""
    history = kube.rollout_history(namespace, deployment)
    get_run_logger().info(
        "%s/%s history: %s",
        namespace,
        deployment,
        "; ".join(f"{r.revision}={','.join(r.images)}" for r in history),
    )
    return history
