"""The Kubernetes client: the only code that talks to a cluster's API.

Semantics follow kubectl 1.32 (see PROTOCOLS.md): ``rollout undo`` picks a ReplicaSet
by its revision annotation and JSON-patches the Deployment's pod template.
"""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from oncall.errors import NotFoundError, PermanentError, TransientError, UnsafeToRemediate
from oncall.observations import DeploymentHealth, PodSummary, Revision, RollbackPlan

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
# Annotations kubectl does not copy from a ReplicaSet back onto the Deployment on undo.
_SKIPPED_ANNOTATIONS = {
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "kubectl.kubernetes.io/last-applied-configuration",
}

T = TypeVar("T")
# Seconds one API call may take before it counts as a transient failure.
T_OUT = 10


def _translate(exc: ApiException, what: str) -> Exception:
    status = exc.status or 0
    if status == 404:
        return NotFoundError(f"{what}: not found")
    if status in (409, 429) or status >= 500 or status == 0:
        return TransientError(f"{what}: HTTP {status} {exc.reason}")
    return PermanentError(f"{what}: HTTP {status} {exc.reason}: {exc.body}")


def _images(template: dict[str, Any]) -> list[str]:
    return [c["image"] for c in template.get("spec", {}).get("containers", [])]


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(template)
    clean.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
    return clean


def _revision(obj: dict[str, Any]) -> int:
    return int(obj["metadata"].get("annotations", {}).get(REVISION, "0") or 0)


class KubeClient:
    """Reads workload state and applies guarded changes through the Kubernetes API."""

    def __init__(self, kubeconfig: Path, context: str | None = None) -> None:
        if not Path(kubeconfig).exists():
            raise PermanentError(f"kubeconfig {kubeconfig} does not exist")
        self.api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), context=context
        )
        self.api_client.configuration.retries = False
        self.apps = client.AppsV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    def close(self) -> None:
        """Release the connection pool."""
        self.api_client.close()

    def _call(self, what: str, thunk: Callable[[], T]) -> T:
        try:
            return thunk()
        except ApiException as exc:
            raise _translate(exc, what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"{what}: cluster unreachable: {exc}") from exc

    def _raw(self, what: str, thunk: Callable[[], Any]) -> dict[str, Any]:
        """Call an API method and return the plain JSON dict, as kubectl sees it."""
        obj = self._call(what, thunk)
        result: dict[str, Any] = self.api_client.sanitize_for_serialization(obj)
        return result

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        """The Deployment object as JSON."""
        return self._raw(
            f"get deployment {namespace}/{name}",
            lambda: self.apps.read_namespaced_deployment(name, namespace, _request_timeout=T_OUT),
        )

    def replicasets_of(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        """ReplicaSets the Deployment controls (selector match and controller ownerRef)."""
        meta = deployment["metadata"]
        labels = deployment["spec"]["selector"].get("matchLabels", {})
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        listing = self._raw(
            f"list replicasets of {meta['namespace']}/{meta['name']}",
            lambda: self.apps.list_namespaced_replica_set(
                meta["namespace"], label_selector=selector, _request_timeout=T_OUT
            ),
        )
        owned = []
        for rs in listing.get("items", []):
            refs = rs["metadata"].get("ownerReferences") or []
            if any(r.get("controller") and r.get("uid") == meta["uid"] for r in refs):
                owned.append(rs)
        return sorted(owned, key=_revision)

    def pods(self, namespace: str, selector: dict[str, str]) -> list[PodSummary]:
        """Pods matching a label selector, summarised as `kubectl get pods` would."""
        label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
        listing = self._raw(
            f"list pods in {namespace}",
            lambda: self.core.list_namespaced_pod(
                namespace, label_selector=label_selector, _request_timeout=T_OUT
            ),
        )
        result = []
        for pod in listing.get("items", []):
            statuses = pod.get("status", {}).get("containerStatuses") or []
            waiting = next(
                (
                    s["state"]["waiting"].get("reason")
                    for s in statuses
                    if s.get("state", {}).get("waiting")
                ),
                None,
            )
            result.append(
                PodSummary(
                    name=pod["metadata"]["name"],
                    phase=pod.get("status", {}).get("phase", "Unknown"),
                    ready=bool(statuses) and all(s.get("ready") for s in statuses),
                    restarts=sum(int(s.get("restartCount", 0)) for s in statuses),
                    images=[c["image"] for c in pod["spec"]["containers"]],
                    waiting_reason=waiting,
                )
            )
        return result

    def health(self, namespace: str, name: str) -> DeploymentHealth:
        """Rollout state and pod health of a deployment (`rollout status` rules)."""
        dep = self.deployment(namespace, name)
        spec, status = dep["spec"], dep.get("status", {})
        want = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas", 0))
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        progressing = conditions.get("Progressing", {})
        complete = (
            dep["metadata"].get("generation", 0) <= status.get("observedGeneration", 0)
            and updated == want
            and int(status.get("replicas", 0)) == updated
            and int(status.get("availableReplicas", 0)) == updated
        )
        return DeploymentHealth(
            namespace=namespace,
            name=name,
            revision=_revision(dep),
            images=_images(spec["template"]),
            replicas=want,
            ready_replicas=int(status.get("readyReplicas", 0)),
            updated_replicas=updated,
            available_replicas=int(status.get("availableReplicas", 0)),
            rollout_complete=complete,
            rollout_failed=progressing.get("reason") == "ProgressDeadlineExceeded",
            pods=self.pods(namespace, spec["selector"].get("matchLabels", {})),
        )

    def rollout_history(self, namespace: str, name: str) -> list[Revision]:
        """Revisions of a deployment, oldest first, as `kubectl rollout history` lists them."""
        dep = self.deployment(namespace, name)
        return [
            Revision(
                revision=_revision(rs),
                replicaset=rs["metadata"]["name"],
                images=_images(rs["spec"]["template"]),
                created_at=datetime.fromisoformat(rs["metadata"]["creationTimestamp"]),
                change_cause=rs["metadata"]
                .get("annotations", {})
                .get("kubernetes.io/change-cause", ""),
            )
            for rs in self.replicasets_of(dep)
        ]

    def plan_rollback(self, namespace: str, name: str, to_revision: int = 0) -> RollbackPlan:
        """Work out what `kubectl rollout undo [--to-revision]` would do, changing nothing."""
        dep = self.deployment(namespace, name)
        if dep["spec"].get("paused"):
            raise UnsafeToRemediate(f"deployment {namespace}/{name} is paused; undo refused")
        owned = self.replicasets_of(dep)
        by_revision = {_revision(rs): rs for rs in owned}
        if to_revision == 0:
            # kubectl's default: the second highest revision, i.e. the previous one.
            revisions = sorted(by_revision)
            if len(revisions) < 2:
                raise UnsafeToRemediate(f"{namespace}/{name} has no previous revision")
            to_revision = revisions[-2]
        target = by_revision.get(to_revision)
        if target is None:
            raise UnsafeToRemediate(f"{namespace}/{name} has no revision {to_revision}")
        template = _without_hash(target["spec"]["template"])
        current = _without_hash(dep["spec"]["template"])
        return RollbackPlan(
            namespace=namespace,
            deployment=name,
            current_revision=_revision(dep),
            current_images=_images(current),
            target_revision=to_revision,
            target_images=_images(template),
            target_replicaset=target["metadata"]["name"],
            replicas=int(dep["spec"].get("replicas", 1)),
            no_op=template == current,
            template=template,
        )

    def rollout_undo(self, plan: RollbackPlan) -> dict[str, Any]:
        """Apply a rollback plan with kubectl's JSON patch of /spec/template."""
        dep = self.deployment(plan.namespace, plan.deployment)
        if _revision(dep) != plan.current_revision:
            raise UnsafeToRemediate(
                f"{plan.namespace}/{plan.deployment} moved to revision {_revision(dep)} "
                f"since the plan was approved (planned from {plan.current_revision})"
            )
        target = next(
            rs for rs in self.replicasets_of(dep) if _revision(rs) == plan.target_revision
        )
        annotations = dict(dep["metadata"].get("annotations") or {})
        for key, value in (target["metadata"].get("annotations") or {}).items():
            if key not in _SKIPPED_ANNOTATIONS:
                annotations[key] = value
        patch = [
            {"op": "replace", "path": "/spec/template", "value": plan.template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ]
        return self._raw(
            f"roll back {plan.namespace}/{plan.deployment}",
            lambda: self.apps.patch_namespaced_deployment(
                plan.deployment, plan.namespace, patch, _request_timeout=T_OUT
            ),
        )

    def wait_for_rollout(
        self, namespace: str, name: str, timeout_s: float, poll_s: float = 0.2
    ) -> DeploymentHealth:
        """Poll until the rollout completes (like `kubectl rollout status`), fails or times out."""
        deadline = time.monotonic() + timeout_s
        while True:
            health = self.health(namespace, name)
            if health.rollout_complete or health.rollout_failed:
                return health
            if time.monotonic() > deadline:
                return health
            time.sleep(poll_s)

    def pod_logs(
        self,
        namespace: str,
        pod: str,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        previous: bool = False,
    ) -> str:
        """A pod's log, like `kubectl logs`."""
        kwargs: dict[str, Any] = {"previous": previous, "_request_timeout": T_OUT}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if since_seconds is not None:
            kwargs["since_seconds"] = since_seconds
        text: str = self._call(
            f"logs of {namespace}/{pod}",
            lambda: self.core.read_namespaced_pod_log(pod, namespace, **kwargs),
        )
        return text

    def events(self, namespace: str, involved_name: str | None = None) -> list[dict[str, Any]]:
        """Events in a namespace (optionally of one object), oldest first by lastTimestamp."""
        kwargs: dict[str, Any] = {"_request_timeout": T_OUT}
        if involved_name:
            kwargs["field_selector"] = f"involvedObject.name={involved_name}"
        listing = self._raw(
            f"list events in {namespace}",
            lambda: self.core.list_namespaced_event(namespace, **kwargs),
        )
        items: list[dict[str, Any]] = listing.get("items", [])
        epoch = datetime.min.replace(tzinfo=UTC).isoformat()
        return sorted(items, key=lambda e: e.get("lastTimestamp") or epoch)

    # --- mitigations other than rollback (kubectl's own requests) -------------------------

    def restart(self, namespace: str, name: str, at: datetime) -> dict[str, Any]:
        """`kubectl rollout restart`: stamp the pod template so every pod is replaced."""
        patch = {
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {
                            "kubectl.kubernetes.io/restartedAt": at.isoformat(timespec="seconds")
                        }
                    }
                }
            }
        }
        return self._raw(
            f"restart {namespace}/{name}",
            lambda: self.apps.patch_namespaced_deployment(
                name, namespace, patch, _request_timeout=T_OUT
            ),
        )

    def scale(self, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        """`kubectl scale`: merge-patch the deployment's scale subresource."""
        return self._raw(
            f"scale {namespace}/{name} to {replicas}",
            lambda: self.apps.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}, _request_timeout=T_OUT
            ),
        )

    def set_env(
        self, namespace: str, name: str, container: str, env: dict[str, str]
    ) -> dict[str, Any]:
        """`kubectl set env`: strategic-merge the container's env (merged by variable name)."""
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": container,
                                "env": [{"name": k, "value": v} for k, v in env.items()],
                            }
                        ]
                    }
                }
            }
        }
        return self._raw(
            f"set env on {namespace}/{name}",
            lambda: self.apps.patch_namespaced_deployment(
                name, namespace, patch, _request_timeout=T_OUT
            ),
        )

    def service(self, namespace: str, name: str) -> dict[str, Any]:
        """The Service object as JSON."""
        return self._raw(
            f"get service {namespace}/{name}",
            lambda: self.core.read_namespaced_service(name, namespace, _request_timeout=T_OUT),
        )

    def patch_service_selector(
        self, namespace: str, name: str, selector: dict[str, str]
    ) -> dict[str, Any]:
        """`kubectl patch service -p '{"spec":{"selector":...}}'` (blue/green switch)."""
        return self._raw(
            f"patch service {namespace}/{name}",
            lambda: self.core.patch_namespaced_service(
                name, namespace, {"spec": {"selector": selector}}, _request_timeout=T_OUT
            ),
        )

    def endpoints(self, namespace: str, name: str) -> list[str]:
        """Ready addresses behind a Service, as its Endpoints list them.

        Derived from the Service's selector and the pods' readiness, so the remediation Role
        needs no read access to Endpoints (PROTOCOLS.md: services get, pods list).
        """
        selector = self.service(namespace, name)["spec"].get("selector") or {}
        if not selector:
            return []
        return [
            pod["status"].get("podIP", "")
            for pod in self.pod_objects(namespace, selector)
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in pod.get("status", {}).get("conditions") or []
            )
        ]

    def config_map(self, namespace: str, name: str) -> dict[str, str]:
        """A ConfigMap's data."""
        obj = self._raw(
            f"get configmap {namespace}/{name}",
            lambda: self.core.read_namespaced_config_map(name, namespace, _request_timeout=T_OUT),
        )
        data: dict[str, str] = obj.get("data") or {}
        return data

    def patch_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Merge keys into a ConfigMap's data."""
        self._call(
            f"patch configmap {namespace}/{name}",
            lambda: self.core.patch_namespaced_config_map(
                name, namespace, {"data": data}, _request_timeout=T_OUT
            ),
        )

    def pod_objects(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        """Full pod objects matching a label selector (for `describe`-like diagnosis)."""
        label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
        listing = self._raw(
            f"list pods in {namespace}",
            lambda: self.core.list_namespaced_pod(
                namespace, label_selector=label_selector, _request_timeout=T_OUT
            ),
        )
        items: list[dict[str, Any]] = listing.get("items", [])
        return items

    def pvc_phase(self, namespace: str, name: str) -> str:
        """Phase of a PersistentVolumeClaim (`kubectl get pvc`), e.g. Bound or Pending."""
        obj = self._raw(
            f"get pvc {namespace}/{name}",
            lambda: self.core.read_namespaced_persistent_volume_claim(
                name, namespace, _request_timeout=T_OUT
            ),
        )
        phase: str = obj.get("status", {}).get("phase", "Unknown")
        return phase

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret, decoded (never logged); NotFoundError when it has none."""
        secret = self._raw(
            f"get secret {namespace}/{name}",
            lambda: self.core.read_namespaced_secret(name, namespace, _request_timeout=T_OUT),
        )
        value = (secret.get("data") or {}).get(key)
        if value is None:
            raise NotFoundError(f"secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(value).decode()

    # StatefulSets and DaemonSets

    def statefulset(self, namespace: str, name: str) -> dict[str, Any]:
        """The StatefulSet object as JSON."""
        return self._raw(
            f"get statefulset {namespace}/{name}",
            lambda: self.apps.read_namespaced_stateful_set(name, namespace, _request_timeout=T_OUT),
        )

    def daemonset(self, namespace: str, name: str) -> dict[str, Any]:
        """The DaemonSet object as JSON."""
        return self._raw(
            f"get daemonset {namespace}/{name}",
            lambda: self.apps.read_namespaced_daemon_set(name, namespace, _request_timeout=T_OUT),
        )

    def _workload(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
        readers = {
            "deployment": self.deployment,
            "statefulset": self.statefulset,
            "daemonset": self.daemonset,
        }
        if kind not in readers:
            raise PermanentError(f"{kind}/{name}: not a deployment, statefulset or daemonset")
        return readers[kind](namespace, name)

    def _patch_workload(
        self, namespace: str, kind: str, name: str, patch: Any, what: str
    ) -> dict[str, Any]:
        """A strategic merge patch (a JSON patch when `patch` is a list) of a workload."""
        patchers: dict[str, Callable[..., Any]] = {
            "deployment": self.apps.patch_namespaced_deployment,
            "statefulset": self.apps.patch_namespaced_stateful_set,
            "daemonset": self.apps.patch_namespaced_daemon_set,
        }
        return self._raw(
            f"{what} {kind} {namespace}/{name}",
            lambda: patchers[kind](name, namespace, patch, _request_timeout=T_OUT),
        )

    def restart_workload(
        self, namespace: str, kind: str, name: str, at: datetime
    ) -> dict[str, Any]:
        """`kubectl rollout restart`: stamp the pod template's restartedAt annotation."""
        workload = self._workload(namespace, kind, name)
        if kind == "deployment" and workload["spec"].get("paused"):
            raise UnsafeToRemediate(
                f"deployment {namespace}/{name} is paused; can't restart paused deployment"
            )
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: _rfc3339(at)}}}}}
        return self._patch_workload(namespace, kind, name, patch, "restart")

    def scale_statefulset(self, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        """`kubectl scale statefulset`: merge-patch the scale subresource."""
        return self._raw(
            f"scale statefulset {namespace}/{name} to {replicas}",
            lambda: self.apps.patch_namespaced_stateful_set_scale(
                name,
                namespace,
                {"spec": {"replicas": replicas}},
                _content_type="application/merge-patch+json",
                _request_timeout=T_OUT,
            ),
        )

    def controller_revisions(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """The ControllerRevisions a StatefulSet or DaemonSet controls, oldest revision first."""
        if kind not in ("statefulset", "daemonset"):
            raise PermanentError(f"{kind}/{name}: only statefulsets and daemonsets have revisions")
        workload = self._workload(namespace, kind, name)
        labels = (workload["spec"].get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        listing = self._raw(
            f"list controllerrevisions of {kind} {namespace}/{name}",
            lambda: self.apps.list_namespaced_controller_revision(
                namespace, label_selector=selector, _request_timeout=T_OUT
            ),
        )
        uid = workload["metadata"]["uid"]
        owned = [
            r
            for r in listing.get("items", [])
            if any(
                o.get("controller") and o.get("uid") == uid
                for o in r["metadata"].get("ownerReferences") or []
            )
        ]
        return sorted(owned, key=lambda r: int(r.get("revision", 0)))

    def rollout_undo_workload(
        self, namespace: str, kind: str, name: str, to_revision: int = 0
    ) -> WorkloadUndo:
        """`kubectl rollout undo [--to-revision]` of a statefulset or daemonset (or deployment).

        As kubectl: the chosen ControllerRevision (default: the second highest) is sent back as
        the strategic merge patch it holds, unless the template already matches it.
        """
        if kind == "deployment":
            plan = self.plan_rollback(namespace, name, to_revision)
            if plan.no_op:
                return WorkloadUndo(kind, name, plan.target_revision, True, {})
            return WorkloadUndo(kind, name, plan.target_revision, False, self.rollout_undo(plan))
        history = self.controller_revisions(namespace, kind, name)
        if to_revision < 0 or (to_revision == 0 and len(history) <= 1):
            raise UnsafeToRemediate(f"{kind} {namespace}/{name}: no last revision to roll back to")
        target = (
            history[-2]
            if to_revision == 0
            else next((r for r in history if int(r.get("revision", 0)) == to_revision), None)
        )
        if target is None:
            raise UnsafeToRemediate(
                f"{kind} {namespace}/{name}: unable to find specified revision {to_revision} "
                "in history"
            )
        revision = int(target.get("revision", 0))
        workload = self._workload(namespace, kind, name)
        wanted = dict(target["data"]["spec"]["template"])
        wanted.pop("$patch", None)
        if _without_nulls(wanted) == _without_nulls(workload["spec"]["template"]):
            return WorkloadUndo(kind, name, revision, True, workload)
        patched = self._patch_workload(namespace, kind, name, target["data"], "roll back")
        return WorkloadUndo(kind, name, revision, False, patched)

    def workload_ready(self, namespace: str, kind: str, name: str) -> bool:
        """True when `kubectl rollout status` would call the rollout of this workload done."""
        obj = self._workload(namespace, kind, name)
        spec, status = obj["spec"], obj.get("status") or {}
        generation = int(obj["metadata"].get("generation", 0))
        observed = int(status.get("observedGeneration", 0))
        if kind == "deployment":
            return _deployment_done(obj)
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            raise PermanentError(
                f"{kind} {namespace}/{name}: rollout status is only available for RollingUpdate "
                "strategy type"
            )
        if kind == "daemonset":
            desired = int(status.get("desiredNumberScheduled", 0))
            return (
                generation <= observed
                and int(status.get("updatedNumberScheduled", 0)) >= desired
                and int(status.get("numberAvailable", 0)) >= desired
            )
        if observed == 0 or generation > observed:
            return False
        replicas = spec.get("replicas")
        if replicas is not None and int(status.get("readyReplicas", 0)) < int(replicas):
            return False
        rolling = strategy.get("rollingUpdate")
        if rolling is not None:
            partition = rolling.get("partition")
            if replicas is not None and partition is not None:
                return int(status.get("updatedReplicas", 0)) >= int(replicas) - int(partition)
            return True
        return bool(status.get("updateRevision") == status.get("currentRevision"))


RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@dataclass(frozen=True)
class WorkloadUndo:
    """What `rollout undo` did: the revision rolled back to, or that it was already current."""

    kind: str
    name: str
    revision: int
    skipped: bool  # the template already matched the revision: nothing was changed
    workload: dict[str, Any]


def _rfc3339(at: datetime) -> str:
    """A time as Go's RFC 3339 layout writes it (`Z` for UTC), as kubectl stamps restarts."""
    text = at.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _deployment_done(dep: dict[str, Any]) -> bool:
    spec, status = dep["spec"], dep.get("status") or {}
    updated = int(status.get("updatedReplicas", 0))
    return (
        int(dep["metadata"].get("generation", 0)) <= int(status.get("observedGeneration", 0))
        and updated == int(spec.get("replicas", 1))
        and int(status.get("replicas", 0)) == updated
        and int(status.get("availableReplicas", 0)) == updated
    )
