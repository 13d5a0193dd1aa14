"""A local fake Kubernetes cluster speaking the real REST API, for drills and tests."""

from oncall_sandbox.registry import SCENARIOS, AlertSpec, Endpoint, ScenarioSpec
from oncall_sandbox.server import Sandbox, rollout_complete

__all__ = ["SCENARIOS", "AlertSpec", "Endpoint", "Sandbox", "ScenarioSpec", "rollout_complete"]
