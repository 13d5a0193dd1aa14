"""Starting the post-incident flow when an incident resolves."""

from __future__ import annotations

from prefect.client.schemas.objects import FlowRun

from oncall.clients.prefect_api import PrefectApi
from oncall.models import utcnow

POSTMORTEM_DEPLOYMENT = "post-incident/default"
POSTMORTEM_TAG = "postmortem"


def schedule_postmortem(incident_id: str, prefect: PrefectApi | None = None) -> FlowRun | None:
    """Create the incident's post-incident run, due now (None if the deployment is missing).

    Idempotent: the same incident gets the same run. Its tags deliberately omit
    ``incident:<id>``: resolving cancels every scheduled run with that tag.
    """
    return (prefect or PrefectApi()).schedule_run(
        POSTMORTEM_DEPLOYMENT,
        parameters={"incident_id": incident_id},
        at=utcnow(),
        idempotency_key=f"{incident_id}:postmortem",
        tags=[POSTMORTEM_TAG, f"postmortem:{incident_id}"],
    )
