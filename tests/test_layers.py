"""The layers are contracts: `lint-imports` keeps them, and fails on a back-arrow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("oncall", "oncall_sandbox", "flows", "tasks")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of the product's packages and its pyproject, to break on purpose."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_import(tree: Path, module: str, line: str) -> None:
    path = tree.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{line}  # a back-arrow\n")


def test_the_tree_keeps_its_layers(scratch: Path) -> None:
    done = _lint(scratch)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("oncall.clients.kube", "import oncall.slack.blocks", "Clients talk to one peer"),
        ("oncall.store", "import oncall_sandbox.registry", "The sandbox is above the product"),
        ("tasks.incident", "import flows.naming", "The sandbox is above the product"),
    ],
    ids=["client-to-slack", "product-to-sandbox", "task-to-flow"],
)
def test_a_back_arrow_breaks_a_contract(
    scratch: Path, module: str, line: str, contract: str
) -> None:
    _add_import(scratch, module, line)
    done = _lint(scratch)
    assert done.returncode != 0
    broken = [row for row in done.stdout.splitlines() if "BROKEN" in row]
    assert any(contract in row for row in broken), done.stdout
    assert module in done.stdout  # the report names the module that imports back
