"""The `Sandbox` facade: API server, controllers, simulated services and traffic."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import yaml

from oncall.sandbox.admission import admit
from oncall.sandbox.api import KubernetesApi
from oncall.sandbox.controllers import DeploymentController
from oncall.sandbox.discovery import find_resource
from oncall.sandbox.events import EventRecorder
from oncall.sandbox.kubelet import EndpointsController, Kubelet
from oncall.sandbox.patches import STRATEGIC_MERGE_PATCH
from oncall.sandbox.scenarios import Scenario, scenario_named
from oncall.sandbox.services import SimulatedService
from oncall.sandbox.store import Obj, Store, now_rfc3339
from oncall.sandbox.workloads import PodLogs, SimClock

log = logging.getLogger(__name__)

_TICK_SECONDS = 0.05
_DEFAULT_REQUESTS_PER_SECOND = 5.0


def rollout_complete(deployment: Obj) -> bool:
    """`kubectl rollout status`'s test for a finished rollout."""
    spec, status = deployment["spec"], deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    return (
        int(deployment["metadata"].get("generation", 0)) <= int(status.get("observedGeneration", 0))
        and updated == desired
        and int(status.get("replicas", 0)) == updated
        and int(status.get("availableReplicas", 0)) == updated
    )


class Sandbox:
    """An in-process fake Kubernetes cluster serving the real REST API on 127.0.0.1."""

    def __init__(
        self, home: Path, time_scale: float = 1.0, scenario: str | None = "bad-deploy"
    ) -> None:
        self.home = Path(home)
        self.kubeconfig_path = self.home / "sandbox" / "kubeconfig"
        self.scenario: Scenario = scenario_named(scenario)
        self.clock = SimClock(time_scale)
        self.store = Store()
        self.logs = PodLogs()
        self._events = EventRecorder(self.store)
        self._kubelet = Kubelet(self.store, self._events, self.logs, self.clock)
        self._deployments = DeploymentController(self.store, self._events)
        self._endpoints = EndpointsController(self.store)
        self._api = KubernetesApi(self.store, self.logs)
        self._services: dict[tuple[str, str], SimulatedService] = {}
        self._services_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._stopped = False

    @property
    def api_url(self) -> str:
        """`http://127.0.0.1:PORT` of the Kubernetes API."""
        return self._api.url

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Seed the scenario, start serving and reconciling, write the kubeconfig."""
        if self._started:
            return
        if self._stopped:
            raise RuntimeError("a stopped sandbox cannot be restarted")
        self._started = True
        self._seed()
        self._api.start()
        for target, name in ((self._control_loop, "controllers"), (self._traffic_loop, "traffic")):
            thread = threading.Thread(target=target, name=f"sandbox-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._write_kubeconfig()

    def stop(self) -> None:
        """Stop every thread and server; safe to call twice."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._api.stop()
        with self._services_lock:
            for service in self._services.values():
                service.stop()
            self._services.clear()

    def service_url(self, namespace: str, service: str) -> str:
        """Base URL of a Service's simulated HTTP endpoint."""
        self._sync_services()
        with self._services_lock:
            found = self._services.get((namespace, service))
        if found is None:
            raise KeyError(f"no service {namespace}/{service}")
        return found.url

    def inject_fault(self, timeout: float | None = None) -> None:
        """Apply the scenario's fault through the REST API and wait for its rollout."""
        fault = self.scenario.fault
        if fault is None:
            raise RuntimeError(f"scenario {self.scenario.name!r} has no fault")
        url = (
            f"{self.api_url}/apis/apps/v1/namespaces/{self.scenario.namespace}"
            f"/deployments/{fault.deployment}"
        )
        with httpx.Client(headers={"Authorization": "Bearer sandbox"}) as client:
            response = client.patch(
                url, json=fault.patch(), headers={"Content-Type": STRATEGIC_MERGE_PATCH}
            )
            response.raise_for_status()
            generation = response.json()["metadata"]["generation"]
            deadline = time.monotonic() + (timeout or max(30.0, self.clock.real(600)))
            while time.monotonic() < deadline:
                deployment = client.get(url).json()
                observed = (deployment.get("status") or {}).get("observedGeneration", 0)
                if observed >= generation and rollout_complete(deployment):
                    return
                time.sleep(_TICK_SECONDS)
        raise TimeoutError(f"rollout of {fault.deployment} did not complete")

    def _reconcile(self) -> None:
        self._kubelet.reconcile()
        self._deployments.reconcile()
        self._endpoints.reconcile()

    def _settle(self) -> None:
        for _ in range(50):
            before = self.store.resource_version
            self._reconcile()
            if self.store.resource_version == before:
                return
        raise RuntimeError("sandbox seed did not settle")

    def _seed(self) -> None:
        scenario = self.scenario
        deployments = find_resource("apps", "deployments")
        services = find_resource("", "services")
        assert deployments is not None and services is not None
        for namespace in sorted({*scenario.extra_namespaces, scenario.namespace}):
            self.store.create(
                "namespaces",
                "",
                {
                    "kind": "Namespace",
                    "apiVersion": "v1",
                    "metadata": {
                        "name": namespace,
                        "labels": {"kubernetes.io/metadata.name": namespace},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
            )
        self._kubelet.instant = True  # the seeded history is already settled at start
        ns = scenario.namespace
        for workload in scenario.workloads:
            for i, image in enumerate(workload.images):
                manifest = workload.manifest(ns, image)
                if i == 0:
                    self.store.create("deployments", ns, admit(deployments, manifest, None))
                else:
                    current = self.store.get("deployments", ns, workload.name)
                    manifest["metadata"] = current["metadata"]
                    self.store.update("deployments", ns, admit(deployments, manifest, current))
                self._settle()
        for spec in scenario.services:
            manifest = admit(services, spec.manifest(ns), None)
            manifest["status"] = {"loadBalancer": {}}
            self.store.create("services", ns, manifest)
        self._settle()
        self._kubelet.instant = False
        self._sync_services()

    def _sync_services(self) -> None:
        rates = {
            (self.scenario.namespace, s.name): s.requests_per_second for s in self.scenario.services
        }
        live = {
            (s["metadata"]["namespace"], s["metadata"]["name"]) for s in self.store.list("services")
        }
        with self._services_lock:
            if self._stopping.is_set():
                return
            for key in live - set(self._services):
                service = SimulatedService(
                    self.store,
                    self.logs,
                    self.clock,
                    *key,
                    rates.get(key, _DEFAULT_REQUESTS_PER_SECOND),
                )
                service.start()
                self._services[key] = service
            for key in set(self._services) - live:
                self._services.pop(key).stop()

    def _control_loop(self) -> None:
        while not self._stopping.wait(_TICK_SECONDS):
            try:
                self._reconcile()
                self._sync_services()
            except Exception:  # one bad tick must not stop the cluster
                log.exception("sandbox controller tick failed")

    def _traffic_loop(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(_TICK_SECONDS):
            now = time.monotonic()
            with self._services_lock:
                services = list(self._services.values())
            for service in services:
                try:
                    service.simulate(now - last)
                except Exception:
                    log.exception("sandbox traffic tick failed")
            last = now

    def _write_kubeconfig(self) -> None:
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.api_url}}],
            "users": [{"name": "sandbox", "user": {"token": "sandbox"}}],
            "contexts": [
                {
                    "name": "sandbox",
                    "context": {
                        "cluster": "sandbox",
                        "user": "sandbox",
                        "namespace": self.scenario.namespace,
                    },
                }
            ],
            "current-context": "sandbox",
            "preferences": {},
        }
        self.kubeconfig_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig_path.chmod(0o600)
        log.info(
            "sandbox API at %s (kubeconfig %s, %s)",
            self.api_url,
            self.kubeconfig_path,
            now_rfc3339(),
        )
