"""Generated hostile bodies against the intake, on SQLite and PostgreSQL.

Each body starts as a valid message and has one part replaced by something hostile (deep
nesting, huge numbers, lone surrogates, NUL, over-long text, timestamps out of range,
wrong types), dropped, or its bytes cut. What must hold for every body:

- never a 5xx;
- every alert left untouched is accepted, whatever happened to its neighbours;
- every refusal (a 4xx, or alerts refused inside a 202) adds exactly one dead letter.

CI runs ONCALL_FUZZ_EXAMPLES bodies per endpoint and store (default 300); a nightly-sized
run is `ONCALL_FUZZ_EXAMPLES=10000 pytest tests/intake/test_fuzz.py` (60,000 bodies, about
ten minutes on two cores).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.intake.conftest import AUTH, JSON_AUTH, AppFactory, am_alert, am_message
from tests.intake.test_http import pd_body, pd_sign

EXAMPLES = int(os.environ.get("ONCALL_FUZZ_EXAMPLES", "300"))
# Up to 100 ms a body on a loaded machine: a nightly-sized run gets the time it needs.
pytestmark = pytest.mark.timeout(max(300, EXAMPLES // 10))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE_TEXT = [
    "\ud800",
    "a\udfffb",
    "\x00",
    "nul\x00inside",
    "x" * 201,
    "y" * 1025,
    "z" * 20_000,
    "",
    " ",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+01:00",
    "2025-13-45T99:99:99Z",
    "yesterday",
    "\u202e\ufeff",
]
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**60),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(HOSTILE_TEXT),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RAW_TAILS = [
    b"[" * 5000,
    b'{"a":' * 200,
    b"9" * 6000,
    b"\xff\xfe",
    b"\x00",
    b'"\\ud800"',
    b"1e99999",
    b"NaN",
]


@dataclass
class Body:
    """A generated body and what the oracle knows about it."""

    raw: bytes
    untouched: set[int]  # indices of alerts nobody changed
    envelope_hit: bool  # the change was outside the alerts (or to the bytes)


def _set(doc: Any, path: list[Any], value: Any, drop: bool) -> None:
    for key in path[:-1]:
        doc = doc[key]
    if drop and isinstance(doc, dict):
        doc.pop(path[-1], None)
    else:
        doc[path[-1]] = value


def _paths(doc: Any, prefix: list[Any]) -> Iterator[list[Any]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield [*prefix, key]
            yield from _paths(value, [*prefix, key])
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield [*prefix, index]
            yield from _paths(value, [*prefix, index])


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@st.composite
def mutated(draw: st.DrawFn, make: Any) -> Body:
    """A valid document of ``make`` with one hostile change."""
    doc, n_alerts = make(draw)
    paths = list(_paths(doc, []))
    path = draw(st.sampled_from(paths))
    how = draw(st.sampled_from(["replace", "replace", "drop", "deep", "bytes"]))
    if how == "bytes":
        raw = json.dumps(doc).encode()
        cut = draw(st.integers(min_value=0, max_value=len(raw)))
        tail = draw(st.sampled_from(RAW_TAILS))
        return Body(raw[:cut] + tail + raw[cut:], set(), True)
    value = draw(values)
    if how == "deep":
        value = json.loads("[" * 70 + "1" + "]" * 70)
    _set(doc, path, value, drop=how == "drop")
    hit = {path[1]} if len(path) >= 2 and path[0] == "alerts" else set()
    raw = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    untouched = set() if path == ["alerts"] else set(range(n_alerts)) - hit
    # Bounds checked while the bytes are parsed refuse the whole body, wherever they are:
    # nesting past 64 levels, numbers past 40 characters, Infinity (not JSON), and bytes
    # that are not UTF-8 (a surrogate written raw rather than escaped).
    whole = how == "deep" or re.search(rb"\d{41}|Infinity", raw) is not None
    whole = whole or not _utf8(raw)
    return Body(raw, untouched, not hit or whole)


def alertmanager_doc(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    n = draw(st.integers(min_value=1, max_value=3))
    return am_message(*(am_alert(service=f"fz-{uuid.uuid4().hex[:10]}") for _ in range(n))), n


def generic_doc(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    n = draw(st.integers(min_value=1, max_value=3))
    alerts = [
        {
            "name": "FuzzAlert",
            "labels": {"service": f"fz-{uuid.uuid4().hex[:10]}", "severity": "warning"},
            "annotations": {"summary": "generated"},
            "starts_at": "2025-06-01T12:00:00Z",
        }
        for _ in range(n)
    ]
    return {"alerts": alerts}, n


def pagerduty_doc(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    doc = json.loads(pd_body(id=f"Q{uuid.uuid4().hex[:10]}"))
    doc["event"]["id"] = f"evt-{uuid.uuid4().hex}"
    return doc, 0  # one event: any change may refuse it whole


@pytest.fixture
def client(make_app: AppFactory, store_url: str) -> Iterator[TestClient]:
    with TestClient(make_app(store_url, dead_letter_limit=10**9)) as c:
        yield c


def _dead_letter_count(client: TestClient) -> int:
    """Dead letters ever kept: the newest one's id (ids count up from 1)."""
    newest = client.get("/v1/dead-letters?limit=1", headers=AUTH).json()
    return int(newest[0]["id"]) if newest else 0


class Oracle:
    """Checks one answer against what the body was; counts what it saw."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.seen: dict[int, int] = {}

    def check(self, path: str, body: Body, headers: dict[str, str]) -> None:
        before = _dead_letter_count(self.client)
        response = self.client.post(path, content=body.raw, headers=headers)
        code = response.status_code
        self.seen[code] = self.seen.get(code, 0) + 1
        assert code < 500, (code, response.text, body.raw[:300])
        letters = _dead_letter_count(self.client)
        if code == 202:
            answer = response.json()
            refused = {r["index"] for r in answer.get("rejected", [])}
            assert not refused & body.untouched, (answer, body.raw[:300])
            taken = answer["new"] + answer["attached"] + answer["deduplicated"]
            taken += answer["resolved"]
            if not answer.get("duplicate_event"):
                assert taken >= len(body.untouched), (answer, body.raw[:300])
            expected = before + (1 if refused else 0)
        else:
            assert 400 <= code < 500
            assert body.envelope_hit or not body.untouched, (code, response.text, body.raw[:300])
            expected = before + 1
        assert letters == expected, (code, response.text, body.raw[:300])


SOURCES = {
    "alertmanager": alertmanager_doc,
    "generic": generic_doc,
    "pagerduty": pagerduty_doc,
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_fuzzed_bodies(client: TestClient, source: str) -> None:
    oracle = Oracle(client)

    @FUZZ
    @given(mutated(SOURCES[source]))
    def run(body: Body) -> None:
        headers = dict(JSON_AUTH)
        if source == "pagerduty":  # signed, as PagerDuty does: the body itself is hostile
            headers["X-PagerDuty-Signature"] = pd_sign(body.raw)
        oracle.check(f"/v1/alerts/{source}", body, headers)

    run()
    assert sum(oracle.seen.values()) >= min(EXAMPLES, 100)
    assert 202 in oracle.seen and any(400 <= c < 500 for c in oracle.seen)
