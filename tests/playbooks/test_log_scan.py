"""What the diagnosis counts as an error line: the seeds' `grep ERROR`, and structured logs."""

from __future__ import annotations

import pytest

from tasks.diagnosis import ERROR_LINE


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-25T03:00:00Z ERROR upstream returned 503",
        "requests.exceptions.ConnectionError: connection refused",
        "Traceback (most recent call last):",
        "panic: runtime error: invalid memory address",
        '{"action":"cluster_join","level":"error","msg":"memberlist: failed to join"}',
        '{"action":"startup","level":"fatal","msg":"could not join the cluster"}',
        'time=2026-11-25T03:00:00Z level=error msg="pool exhausted"',
        "LEVEL: CRITICAL disk full",
    ],
)
def test_error_lines_are_found(line: str) -> None:
    assert ERROR_LINE.search(line)


@pytest.mark.parametrize(
    "line",
    [
        '{"action":"startup","level":"info","msg":"Starting weaviate v1.24.1"}',
        'level=info msg="served 200" error_rate=0.01',
        "GET /health 200 OK",
    ],
)
def test_other_lines_are_not(line: str) -> None:
    assert not ERROR_LINE.search(line)
