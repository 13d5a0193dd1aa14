"""The `Sandbox` facade: API server, controllers, simulated services and traffic."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from types import TracebackType

import yaml

from oncall.clients.service_urls import publish_services, services_file
from oncall_sandbox.api import KubernetesApi
from oncall_sandbox.controllers import DeploymentController, rollout_complete
from oncall_sandbox.daemonsets import DaemonSetController
from oncall_sandbox.endpoints import EndpointsController
from oncall_sandbox.events import EventRecorder
from oncall_sandbox.faults import FAULTS
from oncall_sandbox.ksm import exporter
from oncall_sandbox.kubelet import Kubelet
from oncall_sandbox.nodes import seed_nodes
from oncall_sandbox.podlogs import PodLogs
from oncall_sandbox.prometheus_standin import Collect, PrometheusStandIn, Target
from oncall_sandbox.registry import ScenarioSpec
from oncall_sandbox.scenarios import SERVICES, Scenario, scenario_named
from oncall_sandbox.seed import seed_namespaces, seed_workloads
from oncall_sandbox.services import SimulatedService
from oncall_sandbox.statefulsets import StatefulSetController
from oncall_sandbox.status import status_of
from oncall_sandbox.store import ApiError, Obj, Store, now_rfc3339
from oncall_sandbox.workloads import SimClock
from oncall_sandbox.world import World

__all__ = ["Sandbox", "rollout_complete"]

log = logging.getLogger(__name__)

_TICK_SECONDS = 0.05
_IDLE_RECONCILE_S = 0.25
_DEFAULT_REQUESTS_PER_SECOND = 5.0


class Sandbox:
    """An in-process fake Kubernetes cluster serving the real REST API on 127.0.0.1."""

    def __init__(
        self, home: Path, time_scale: float = 1.0, scenario: str | None = "bad-deploy"
    ) -> None:
        self.home = Path(home)
        self.kubeconfig_path = self.home / "sandbox" / "kubeconfig"
        self.scenario: Scenario = scenario_named(scenario)
        self.clock = SimClock(time_scale)
        self._reconciled_rv, self._reconciled_at = "", 0.0
        self.store = Store()
        self.logs = PodLogs()
        self.world: World = World(self.clock)
        self._events = EventRecorder(self.store)
        self._kubelet = Kubelet(self.store, self._events, self.logs, self.clock, self.world)
        self._deployments = DeploymentController(self.store, self._events, self.clock)
        self._statefulsets = StatefulSetController(self.store, self._events)
        self._daemonsets = DaemonSetController(self.store, self._events)
        self._endpoints = EndpointsController(self.store)
        self._api = KubernetesApi(self.store, self.logs, self._extension)
        self._services: dict[tuple[str, str], SimulatedService] = {}
        self._services_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._stopped = False
        self._prometheus: PrometheusStandIn | None = None
        self._prometheus_lock = threading.Lock()

    @property
    def api_url(self) -> str:
        """`http://127.0.0.1:PORT` of the Kubernetes API."""
        return self._api.url

    @property
    def scenario_info(self) -> ScenarioSpec | None:
        """What the scenario is: seed section, alert, probes, remediation (None: empty)."""
        return self.scenario.spec

    @property
    def time_scale(self) -> float:
        """Real seconds per simulated second."""
        return self.clock.time_scale

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
        """Seed the cluster, start serving and reconciling, write the kubeconfig."""
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
        # Where in-cluster URLs (http://svc.ns:port) really listen, for the playbooks' clients.
        publish_services(self.home, self.status()["services"])

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
        if self._prometheus is not None:
            self._prometheus.stop()
        services_file(self.home).unlink(missing_ok=True)
        with self._services_lock:
            for service in self._services.values():
                service.stop()
            self._services.clear()

    @property
    def prometheus_url(self) -> str:
        """A Prometheus query API over every simulated Service (started on first use)."""
        with self._prometheus_lock:
            if self._prometheus is None:
                self._prometheus = PrometheusStandIn(self._scrape_targets)
                self._prometheus.start()
            return self._prometheus.url

    def _scrape_targets(self) -> list[Target]:
        self._sync_services()
        with self._services_lock:
            services = list(self._services.items())

        def collect(service: SimulatedService) -> Collect:
            return lambda: [
                (s.name, dict(s.labels), s.value)
                for family in service.registry.collect()
                for s in family.samples
            ]

        return [
            ({"namespace": ns, "service": name, "job": name}, collect(service))
            for (ns, name), service in services
        ]

    def service_url(self, namespace: str, service: str) -> str:
        """Base URL of a Service's simulated HTTP endpoint."""
        found = self.simulated(namespace, service)
        if found is None:
            raise KeyError(f"no service {namespace}/{service}")
        return found.url

    def simulated(self, namespace: str, service: str) -> SimulatedService | None:
        """The simulation behind a Service (its traffic, metrics and endpoints)."""
        self._sync_services()
        with self._services_lock:
            return self._services.get((namespace, service))

    def inject_fault(self, timeout: float | None = None) -> None:
        """Inject the scenario's fault and wait until its symptom is visible."""
        spec = self.scenario.spec
        if spec is None:
            raise RuntimeError(f"scenario {self.scenario.name!r} has no fault")
        fault = FAULTS[spec.name]
        fault.inject(self)
        self.world.injected[spec.name] = spec.fault
        deadline = time.monotonic() + (timeout or max(30.0, self.clock.real(600)))
        while time.monotonic() < deadline:
            if fault.visible(self):
                return
            time.sleep(_TICK_SECONDS)
        raise TimeoutError(f"fault of {spec.name} did not show within the timeout")

    def fault_active(self) -> bool:
        """True while the injected fault's symptom is still there."""
        spec = self.scenario.spec
        return bool(spec and spec.name in self.world.injected and FAULTS[spec.name].active(self))

    def status(self) -> Obj:
        """Workloads, Services and faults, as `oncall sandbox status` shows them."""
        with self._services_lock:
            urls = {f"{ns}/{name}": s.url for (ns, name), s in self._services.items()}
        return status_of(self, urls)

    def _extension(self, method: str, path: str, body: bytes) -> Obj:
        if method == "GET" and path.rstrip("/") == "/sandbox/v1/status":
            return self.status()
        if method == "POST" and path.rstrip("/") == "/sandbox/v1/inject":
            # Lets `oncall drill --stack` fault a sandbox that runs in another process.
            if self.scenario_info is None:
                raise ApiError(409, "Conflict", "this sandbox runs no scenario")
            self.inject_fault()
            return {"injected": self.scenario_info.name, "fault": self.scenario_info.fault}
        if method == "POST" and path.rstrip("/") == "/sandbox/v1/faults/bad-release":
            # `oncall sandbox fault bad-release --target NS/KIND/NAME`: any team's workload.
            return self._bad_release(body)
        raise ApiError(404, "NotFound", f"no sandbox endpoint {method} {path}")

    def release_broken(self, target: str) -> bool:
        """True while NS/KIND/NAME still runs a build a bad-release fault broke."""
        namespace, kind, name = target.split("/")
        try:
            obj = self.store.get(f"{kind}s", namespace, name)
        except ApiError:
            return False
        images = {c["image"] for c in obj["spec"]["template"]["spec"]["containers"]}
        return bool(images & self.world.broken_images)

    def _bad_release(self, body: bytes) -> Obj:
        from oncall_sandbox.faults import bad_release

        try:
            target = str(json.loads(body or b"{}")["target"])
            namespace, kind, name = target.split("/")
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, "BadRequest", 'expected {"target": "NS/KIND/NAME"}') from exc
        try:
            image = bad_release(self, namespace, kind, name)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc
        self.world.injected[f"bad-release {target}"] = f"{target} rolled out {image}"
        return {"target": target, "image": image}

    def _reconcile(self) -> None:
        self._kubelet.reconcile()  # time-driven: container starts, probes, restarts
        # The Deployment and Endpoints controllers act on changes (and, for the progress
        # deadline, on time): a pass when the store changed, else at most every 0.25 s.
        rv, now = self.store.resource_version, time.monotonic()
        if rv == self._reconciled_rv and now - self._reconciled_at < _IDLE_RECONCILE_S:
            return
        self._reconciled_rv, self._reconciled_at = rv, now
        self._deployments.reconcile()
        self._statefulsets.reconcile()
        self._daemonsets.reconcile()
        self._endpoints.reconcile()

    def _settle(self) -> None:
        for _ in range(50):
            before = self.store.resource_version
            self._reconcile()
            if self.store.resource_version == before:
                return
        raise RuntimeError("sandbox seed did not settle")

    def _seed(self) -> None:
        seed_namespaces(self.store)
        seed_nodes(self.store)
        if self.scenario.seeded:
            self._kubelet.instant = True  # the seeded history is already settled at start
            seed_workloads(self.store, self._settle)
            self._kubelet.instant = False
        self._sync_services()

    def _run_lookup(self, uid: str) -> tuple[dict[str, str], float] | None:
        run = self._kubelet.run_of(uid)
        return (run.env, run.started) if run else None

    def _sync_services(self) -> None:
        rates = {(s.namespace, s.name): s.requests_per_second for s in SERVICES}
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
                    world=self.world,
                    runs=self._run_lookup,
                    exporter=(lambda: exporter(self.store))
                    if key[1] == "kube-state-metrics"
                    else None,
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
        # Every Service first says who is ready: a backend's first requests must not find
        # its dependencies (Ollama) "down" only because their Service has not ticked yet.
        with self._services_lock:
            first = list(self._services.values())
        for service in first:
            service.observe_ready()
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
