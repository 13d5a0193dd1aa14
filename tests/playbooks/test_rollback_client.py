"""`kubectl rollout undo` semantics of the client and the guards of the rollback task."""

from __future__ import annotations

import pytest

from oncall.errors import UnsafeToRemediate
from tests.playbooks.conftest import BLUE, NAMESPACE, FaultedCluster

GOOD, BAD, OLDEST = (
    "ghcr.io/gremlinsai/backend:1.4.2",
    "ghcr.io/gremlinsai/backend:1.5.0",
    "ghcr.io/gremlinsai/backend:1.4.1",
)


def test_undo_picks_the_previous_revision_among_three(faulted: FaultedCluster) -> None:
    kube = faulted.kube
    history = kube.rollout_history(NAMESPACE, BLUE)
    assert [(r.revision, r.images) for r in history] == [(1, [OLDEST]), (2, [GOOD]), (3, [BAD])]
    plan = kube.plan_rollback(NAMESPACE, BLUE)
    assert (plan.current_revision, plan.target_revision) == (3, 2)
    assert plan.target_images == [GOOD] and not plan.no_op
    assert plan.target_replicaset == history[1].replicaset
    kube.rollout_undo(plan)
    after = kube.wait_for_rollout(NAMESPACE, BLUE, timeout_s=30)
    assert after.rollout_complete and after.images == [GOOD] and after.revision == 4
    # The controller reuses revision 2's ReplicaSet and renumbers it, as a real cluster does.
    history = kube.rollout_history(NAMESPACE, BLUE)
    assert [(r.revision, r.images) for r in history] == [(1, [OLDEST]), (3, [BAD]), (4, [GOOD])]
    assert history[-1].replicaset == plan.target_replicaset
    assert all(p.images == [GOOD] and p.ready for p in after.pods)


def test_undo_to_an_explicit_revision(faulted: FaultedCluster) -> None:
    plan = faulted.kube.plan_rollback(NAMESPACE, BLUE, to_revision=1)
    assert plan.target_images == [OLDEST]
    faulted.kube.rollout_undo(plan)
    after = faulted.kube.wait_for_rollout(NAMESPACE, BLUE, timeout_s=30)
    assert (after.revision, after.images) == (4, [OLDEST])


def test_undo_to_a_missing_revision_is_refused(faulted: FaultedCluster) -> None:
    with pytest.raises(UnsafeToRemediate, match="no revision 9"):
        faulted.kube.plan_rollback(NAMESPACE, BLUE, to_revision=9)


def test_a_stale_plan_is_refused(faulted: FaultedCluster) -> None:
    plan = faulted.kube.plan_rollback(NAMESPACE, BLUE)
    faulted.kube.rollout_undo(plan)
    faulted.kube.wait_for_rollout(NAMESPACE, BLUE, timeout_s=30)
    with pytest.raises(UnsafeToRemediate, match="since the plan was approved"):
        faulted.kube.rollout_undo(plan)
    assert faulted.kube.health(NAMESPACE, BLUE).revision == 4
