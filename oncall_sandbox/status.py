"""The sandbox's own status document: workloads, Services, injected faults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from oncall_sandbox.store import Obj

if TYPE_CHECKING:
    from oncall_sandbox.server import Sandbox


def _workload(deployment: Obj) -> Obj:
    meta, spec = deployment["metadata"], deployment["spec"]
    status = deployment.get("status") or {}
    return {
        "namespace": meta["namespace"],
        "name": meta["name"],
        "ready": f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        "images": [c["image"] for c in spec["template"]["spec"]["containers"]],
        "revision": (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", ""),
    }


def status_of(sb: Sandbox, service_urls: dict[str, str]) -> Obj:
    """`GET /sandbox/v1/status`."""
    spec = sb.scenario_info
    faults = [
        {
            "scenario": name,
            "fault": text,
            "active": (
                sb.release_broken(name.removeprefix("bad-release "))
                if name.startswith("bad-release ")
                else sb.fault_active()
            ),
        }
        for name, text in sb.world.injected.items()
    ]
    return {
        "kind": "SandboxStatus",
        "apiVersion": "sandbox.oncall/v1",
        "scenario": spec.name if spec else sb.scenario.name,
        "namespace": sb.scenario.namespace,
        "timeScale": sb.time_scale,
        "apiURL": sb.api_url,
        "kubeconfig": str(sb.kubeconfig_path),
        "alert": spec.alert.alertname if spec else None,
        "remediation": spec.remediation if spec else None,
        "faults": faults,
        "workloads": [_workload(d) for d in sb.store.list("deployments")],
        "services": service_urls,
    }
