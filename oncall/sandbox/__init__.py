"""A local fake Kubernetes cluster speaking the real REST API, for drills and tests."""

from oncall.sandbox.server import Sandbox, rollout_complete

__all__ = ["Sandbox", "rollout_complete"]
