"""Fixtures for rotation tests: the shipped example rotation and the fake Slack server."""

from __future__ import annotations

import pytest

from oncall.rotation import Rotation, load_rotation
from oncall.rotation.settings import EXAMPLE_ROTATION
from tests.fakes.slack_server import fake_slack

__all__ = ["fake_slack"]


@pytest.fixture(scope="session")
def example() -> Rotation:
    """The seed's four-week rotation as shipped in examples/rotation.yaml."""
    return load_rotation(EXAMPLE_ROTATION)
