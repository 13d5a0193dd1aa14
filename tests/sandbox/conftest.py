"""Fixtures: a real Sandbox per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_cluster import Cluster

from oncall_sandbox import Sandbox


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A started bad-deploy sandbox at a hundredth of real time."""
    with Sandbox(tmp_path, time_scale=0.01) as sb:
        yield Cluster(sb)
