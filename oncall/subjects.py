"""What an alert is about: from its labels to a typed subject in the cluster.

Alerts name their subject with the label conventions of kube-prometheus-stack and Robusta
(`deployment`, `statefulset`, `daemonset`, `job_name`, `pod`, `service`, `node`,
`instance`, with `namespace`). `subject_ref` reads those labels (after a relabel map for
alerts that use other names); `oncall.clients.subjects` resolves the reference against the
cluster, following ownerReferences up to the workload that owns the pods.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from pydantic import BaseModel, Field


class SubjectKind(enum.StrEnum):
    """The kinds of object an alert can be about."""

    DEPLOYMENT = "deployment"
    STATEFULSET = "statefulset"
    DAEMONSET = "daemonset"
    JOB = "job"
    POD = "pod"
    SERVICE = "service"
    NODE = "node"


# The workloads a playbook may act on (restart, scale, roll back).
WORKLOAD_KINDS = frozenset({SubjectKind.DEPLOYMENT, SubjectKind.STATEFULSET, SubjectKind.DAEMONSET})

# Label -> kind, most specific first: a kube-state-metrics alert about a pod also carries
# `service`/`instance` labels of the exporter that was scraped, so `pod` must win over those.
STANDARD_LABELS: tuple[tuple[str, SubjectKind], ...] = (
    ("deployment", SubjectKind.DEPLOYMENT),
    ("statefulset", SubjectKind.STATEFULSET),
    ("daemonset", SubjectKind.DAEMONSET),
    ("job_name", SubjectKind.JOB),
    ("pod", SubjectKind.POD),
    ("service", SubjectKind.SERVICE),
    ("node", SubjectKind.NODE),
    ("instance", SubjectKind.NODE),
)


class SubjectUnresolved(Exception):
    """The alert names no subject, or the object it names is not in the cluster."""


class SubjectRef(BaseModel):
    """What an alert's labels name, before the cluster is asked."""

    kind: SubjectKind
    name: str
    namespace: str = Field(default="", description="Empty for cluster-scoped kinds (nodes).")
    label: str = Field(description="The label the name was read from.")

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{where}{self.kind}/{self.name}"


def relabeled(labels: Mapping[str, str], relabel: Mapping[str, str]) -> dict[str, str]:
    """The labels with ``relabel``'s sources copied to their standard names (a label the
    alert already has under the standard name wins)."""
    out = dict(labels)
    for source, standard in relabel.items():
        if source in labels and standard not in labels:
            out[standard] = labels[source]
    return out


def subject_ref(labels: Mapping[str, str], relabel: Mapping[str, str] | None = None) -> SubjectRef:
    """The subject ``labels`` name; SubjectUnresolved when they name none."""
    labels = relabeled(labels, relabel or {})
    namespace = labels.get("namespace", "") or labels.get("exported_namespace", "")
    for label, kind in STANDARD_LABELS:
        value = labels.get(label, "").strip()
        if not value:
            continue
        if kind == SubjectKind.NODE:
            # `instance` is host:port of a scrape target; the node is the host.
            value = value.rsplit(":", 1)[0] if label == "instance" else value
            return SubjectRef(kind=kind, name=value, label=label)
        if not namespace:
            raise SubjectUnresolved(f"label {label}={value!r} but no namespace label")
        return SubjectRef(kind=kind, name=value, namespace=namespace, label=label)
    names = ", ".join(label for label, _ in STANDARD_LABELS)
    raise SubjectUnresolved(f"the alert has none of the labels {names}")


class Subject(BaseModel):
    """The object an alert is about, resolved against the cluster."""

    kind: SubjectKind = Field(description="The owning workload's kind (or pod/node/service).")
    name: str
    namespace: str = ""
    named: str = Field(description="What the alert named, e.g. pod/ledger-7d9f-x2x.")
    chain: list[str] = Field(
        default_factory=list, description="The ownerReferences followed, named object first."
    )
    selector: dict[str, str] = Field(default_factory=dict, description="Its pods' labels.")
    pods: list[str] = Field(default_factory=list)
    service: str | None = Field(default=None, description="The Service selecting its pods.")
    catalog_service: str | None = Field(
        default=None, description="The catalog entry that owns it; None: in no entry."
    )

    @property
    def ref(self) -> str:
        """`namespace/kind/name` of the workload."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{where}{self.kind}/{self.name}"

    @property
    def target(self) -> str:
        """`kind/name`, as a plan names what it changes."""
        return f"{self.kind}/{self.name}"

    @property
    def is_workload(self) -> bool:
        """True when it is a Deployment, StatefulSet or DaemonSet a playbook could act on."""
        return self.kind in WORKLOAD_KINDS

    def describe(self) -> str:
        """One line for Slack, the approval form and the postmortem."""
        via = " -> ".join(self.chain) if len(self.chain) > 1 else self.named
        owner = f"; service {self.catalog_service}" if self.catalog_service else "; in no catalog"
        pods = f"; {len(self.pods)} pod(s)" if self.pods else ""
        return f"{self.ref} (from {via}{pods}{owner})"
