"""The warm runner replaces a private hook of one Prefect release: it refuses any other."""

from __future__ import annotations

import tomllib
from pathlib import Path

import prefect
import pytest
from packaging.requirements import Requirement

from oncall.errors import PermanentError
from oncall.suspension import PREFECT_MINOR, SharedSuspensionObserver, check_prefect_version

ROOT = Path(__file__).resolve().parents[2]


def _prefect_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (found,) = [Requirement(r) for r in project["dependencies"] if r.startswith("prefect")]
    return found


def test_the_pin_is_the_release_the_hook_was_written_for() -> None:
    spec = _prefect_requirement().specifier
    major, minor = PREFECT_MINOR
    assert spec.contains(f"{major}.{minor}.0") and spec.contains(f"{major}.{minor}.99")
    assert not spec.contains(f"{major}.{minor + 1}.0")
    assert spec.contains(prefect.__version__)  # what is installed here is what is pinned


@pytest.mark.parametrize("version", ["3.10.0", "3.8.2", "4.0.0", "dev"])
def test_another_prefect_is_refused_loudly(version: str) -> None:
    with pytest.raises(PermanentError, match=rf"prefect {version} is installed.*prefect==3\.9"):
        check_prefect_version(version)


def test_the_runner_refuses_to_install_on_another_prefect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prefect, "__version__", "3.10.1")
    observer = SharedSuspensionObserver()
    with pytest.raises(PermanentError, match=r"3\.10\.1"):
        observer.install()
    check_prefect_version("3.9.1")  # while any 3.9 is taken
