"""Retry decisions for Prefect tasks: only transient errors are worth another try."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State, TaskRun

from oncall.errors import TransientError


def retry_if_transient(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run only for a TransientError."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False
