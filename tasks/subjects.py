"""The playbook's first step: what the alert is about, read from the cluster."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oncall.clients.kube import KubeClient
from oncall.clients.subjects import SubjectResolver
from oncall.clients.workload_history import (
    RevisionCandidate,
    config_maps_of,
    last_different_revision,
)
from oncall.retrying import retry_if_transient
from oncall.subjects import Subject, subject_ref

read_task = task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)


@read_task
def resolve_subject(kube: KubeClient, labels: dict[str, str], relabel: dict[str, str]) -> Subject:
    """Resolve the alert's labels to the workload they name (SubjectUnresolved if none)."""
    subject = SubjectResolver(kube).resolve(subject_ref(labels, relabel))
    get_run_logger().info("Subject: %s (from %s)", subject.ref, " -> ".join(subject.chain))
    return subject


@read_task
def subject_config_maps(kube: KubeClient, subject: Subject) -> list[str]:
    """The ConfigMaps the subject's pods read (envFrom, env, volumes)."""
    if not subject.is_workload:
        return []
    return config_maps_of(kube._workload(subject.namespace, subject.kind, subject.name))


@read_task
def previous_revision(kube: KubeClient, subject: Subject) -> RevisionCandidate | None:
    """The newest earlier revision of the subject that differs from what runs now."""
    if not subject.is_workload:
        return None
    candidate = last_different_revision(kube, subject.namespace, subject.kind, subject.name)
    log = get_run_logger()
    if candidate is None:
        log.info("%s: no earlier revision differs from the current one", subject.ref)
    else:
        log.info("Earlier revision: %s", candidate.describe())
    return candidate
