"""Fixtures: a drill of the HighApiErrorRate playbook, approved, with evidence preserved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.high_api_error_rate import high_api_error_rate
from flows.naming import incident_run_name_for
from oncall.models import Incident
from oncall.postmortem.bundle import save_snapshot
from oncall.postmortem.workloads import snapshot
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.playbooks.conftest import FaultedCluster, Human, faulted  # noqa: F401  (fixture)

APPROVER, REASON = "jane.doe", "bad release 1.5.0"


class PreservingHuman(Human):
    """Before approving, preserves the evidence as the playbook will (seed: Preserve Evidence).

    The pods of the bad release disappear with the rollback, so their logs must be kept
    before it; the playbook's call of `preserve_workload_evidence` is not wired yet.
    """

    def __init__(self, cluster: FaultedCluster, api_url: str, home: Path) -> None:
        answer = {"approve": True, "approver": APPROVER, "reason": REASON}
        super().__init__(api_url, incident_run_name_for(cluster.alert), answer)
        self.cluster, self.home = cluster, home

    def run(self) -> None:
        try:
            paused = self.prefect.wait_for_pause(self.run_name, timeout_s=60)
            store = IncidentStore(OncallSettings().store_url)
            incident = store.get(Incident.id_for(self.cluster.alert))
            save_snapshot(self.home, incident.id, snapshot(self.cluster.kube, incident))
            self.prefect.resume(paused.id, self.answer)
        except Exception as exc:
            self.error = exc


@dataclass
class Drill:
    """A finished drill: the incident as recorded and the cluster it ran against."""

    incident: Incident
    faulted: FaultedCluster
    state: Any


@pytest.fixture
def resolved_drill(faulted: FaultedCluster, prefect_api: str, oncall_home: Path) -> Drill:  # noqa: F811
    """The playbook run to resolution with an approval, evidence preserved before rollback."""
    human = PreservingHuman(faulted, prefect_api, oncall_home)
    human.start()
    state = high_api_error_rate(alert=faulted.alert, config=faulted.config, return_state=True)
    human.join(5)
    assert human.error is None, human.error
    assert state.name == "Resolved", state.message
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(faulted.alert))
    return Drill(incident, faulted, state)
