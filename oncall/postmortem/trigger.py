"""Starting the post-incident flow when an incident resolves."""

from __future__ import annotations

from prefect.client.schemas.objects import FlowRun

from oncall.clients.prefect_api import PrefectApi
from oncall.lifecycle import POSTMORTEM_DEPLOYMENT, POSTMORTEM_TAG, start_post_incident


def schedule_postmortem(incident_id: str, prefect: PrefectApi | None = None) -> FlowRun | None:
    """Create the incident's post-incident run, due now (None if the deployment is missing).

    Idempotent: the same incident gets the same run, whoever asks (`oncall.lifecycle`).
    """
    return start_post_incident(prefect or PrefectApi(), incident_id)


__all__ = ["POSTMORTEM_DEPLOYMENT", "POSTMORTEM_TAG", "schedule_postmortem"]
