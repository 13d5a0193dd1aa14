"""The part of PromQL the playbooks ask, evaluated as Prometheus does.

Selectors with ``=``, ``!=``, ``=~``, ``!~`` matchers; ``rate``, ``increase`` (with
Prometheus' extrapolation to the range's edges) and ``count_over_time`` over a range;
``sum``, ``avg``, ``min``, ``max``, ``count`` (optionally ``by (...)``);
``histogram_quantile`` (Prometheus' bucket interpolation); numbers; ``/``, ``*``, ``+``,
``-`` and comparisons between vectors with identical labels or a vector and a number.
Anything else is refused with the reason, as Prometheus refuses a query it cannot parse:
the stand-in never guesses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Labels = dict[str, str]
Vector = list[tuple[Labels, float]]
Samples = Sequence[tuple[float, float]]
# (metric name, matchers) -> every series with its samples (oldest first)
SeriesSource = Callable[[str, list["Matcher"]], list[tuple[Labels, Samples]]]


class PromQLError(ValueError):
    """A query the stand-in cannot parse or does not support (Prometheus' ``bad_data``)."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d+)?(?:e[-+]?\d+)?)
    | (?P<duration>\[\d+(?:ms|s|m|h)\])
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<op>=~|!~|!=|==|>=|<=|[(){},=/*+\-<>])
    | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
    )""",
    re.VERBOSE,
)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector."""

    label: str
    op: str
    value: str

    def matches(self, labels: Labels) -> bool:
        """Whether ``labels`` pass this matcher (a missing label is the empty string)."""
        got = labels.get(self.label, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        found = re.fullmatch(self.value, got) is not None
        return found if self.op == "=~" else not found


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise PromQLError(f"unexpected character at {pos}: {text[pos : pos + 10]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str, source: SeriesSource, at: float) -> None:
        self.tokens, self.i, self.source, self.at = _tokens(text), 0, source, at

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if value is not None and token[1] != value:
            raise PromQLError(f"expected {value!r}, found {token[1] or 'the end'!r}")
        self.i += 1
        return token

    def parse(self) -> Vector | float:
        result = self.expr()
        if self.peek()[0] != "end":
            raise PromQLError(f"unexpected {self.peek()[1]!r}")
        return result

    def expr(self) -> Vector | float:
        left = self.term()
        while self.peek()[1] in ("+", "-", ">", "<", ">=", "<=", "=="):
            op = self.take()[1]
            left = _binary(op, left, self.term())
        return left

    def term(self) -> Vector | float:
        left = self.atom()
        while self.peek()[1] in ("/", "*"):
            op = self.take()[1]
            left = _binary(op, left, self.atom())
        return left

    def atom(self) -> Vector | float:
        kind, value = self.peek()
        if kind == "number":
            self.take()
            return float(value)
        if value == "(":
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        if kind != "name":
            raise PromQLError(f"unexpected {value!r}")
        if value in _AGGREGATIONS:
            return self.aggregate(value)
        if value in ("rate", "increase", "count_over_time"):
            self.take()
            self.take("(")
            name, matchers = self.selector()
            kind, text = self.take()
            if kind != "duration":
                raise PromQLError(f"{value}() needs a range, found {text!r}")
            self.take(")")
            return _range_function(value, self.source(name, matchers), self.at, _seconds(text))
        if value == "histogram_quantile":
            self.take()
            self.take("(")
            q = self.expr()
            self.take(",")
            buckets = self.expr()
            self.take(")")
            if not isinstance(q, float) or isinstance(buckets, float):
                raise PromQLError("histogram_quantile(number, vector)")
            return _histogram_quantile(q, buckets)
        name, matchers = self.selector()
        return [(labels, samples[-1][1]) for labels, samples in self._latest(name, matchers)]

    def _latest(self, name: str, matchers: list[Matcher]) -> list[tuple[Labels, Samples]]:
        # An instant selector sees a series' last sample within Prometheus' 5-minute lookback.
        found: list[tuple[Labels, Samples]] = []
        for labels, samples in self.source(name, matchers):
            recent = [s for s in samples if self.at - 300 < s[0] <= self.at]
            if recent:
                found.append((labels, recent))
        return found

    def aggregate(self, op: str) -> Vector:
        self.take(op)
        by: list[str] | None = None
        if self.peek()[1] == "by":
            self.take()
            by = self.label_list()
        self.take("(")
        inner = self.expr()
        self.take(")")
        if self.peek()[1] == "by":
            self.take()
            by = self.label_list()
        if isinstance(inner, float):
            raise PromQLError(f"{op}() needs a vector")
        groups: dict[tuple[tuple[str, str], ...], list[float]] = {}
        for labels, value in inner:
            key = tuple(sorted((k, v) for k, v in labels.items() if by is not None and k in by))
            groups.setdefault(key, []).append(value)
        return [(dict(key), _AGGREGATIONS[op](values)) for key, values in groups.items()]

    def label_list(self) -> list[str]:
        self.take("(")
        names = []
        while self.peek()[1] != ")":
            kind, value = self.take()
            if kind != "name":
                raise PromQLError(f"expected a label name, found {value!r}")
            names.append(value)
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        return names

    def selector(self) -> tuple[str, list[Matcher]]:
        kind, name = self.take()
        if kind != "name":
            raise PromQLError(f"expected a metric name, found {name!r}")
        matchers: list[Matcher] = []
        if self.peek()[1] == "{":
            self.take()
            while self.peek()[1] != "}":
                kind, label = self.take()
                if kind != "name":
                    raise PromQLError(f"expected a label name, found {label!r}")
                op = self.take()[1]
                if op not in ("=", "!=", "=~", "!~"):
                    raise PromQLError(f"unknown matcher {op!r}")
                kind, quoted = self.take()
                if kind != "string":
                    raise PromQLError(f"expected a quoted value, found {quoted!r}")
                value = quoted[1:-1].encode().decode("unicode_escape")
                matchers.append(Matcher(label, op, value))
                if self.peek()[1] == ",":
                    self.take()
            self.take("}")
        return name, matchers


_AGGREGATIONS: dict[str, Callable[[list[float]], float]] = {
    "sum": lambda values: float(sum(values)),
    "avg": lambda values: sum(values) / len(values),
    "min": lambda values: min(values),
    "max": lambda values: max(values),
    "count": lambda values: float(len(values)),
}


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"\[(\d+)(ms|s|m|h)\]", duration)
    if match is None:
        raise PromQLError(f"bad range {duration!r}")
    return int(match[1]) * _UNITS[match[2]]


def _range_function(
    name: str, series: list[tuple[Labels, Samples]], at: float, range_s: float
) -> Vector:
    out: Vector = []
    for labels, samples in series:
        inside = [s for s in samples if at - range_s < s[0] <= at]
        if name == "count_over_time":
            if inside:
                out.append((labels, float(len(inside))))
            continue
        if len(inside) < 2:
            continue
        value = _extrapolated(inside, at - range_s, at, is_rate=name == "rate")
        out.append(({k: v for k, v in labels.items() if k != "__name__"}, value))
    return out


def _extrapolated(samples: Samples, start: float, end: float, *, is_rate: bool) -> float:
    """Prometheus' ``extrapolatedRate`` for counters (promql/functions.go)."""
    first_t, first_v = samples[0]
    last_t, last_v = samples[-1]
    result = last_v - first_v
    previous = first_v
    for _, value in samples[1:]:
        if value < previous:  # a counter reset: the pod restarted
            result += previous
        previous = value
    duration_to_start, duration_to_end = first_t - start, end - last_t
    sampled = last_t - first_t
    average = sampled / (len(samples) - 1)
    if result > 0 and first_v >= 0:
        duration_to_zero = sampled * (first_v / result)
        duration_to_start = min(duration_to_start, duration_to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += duration_to_start if duration_to_start < threshold else average / 2
    interval += duration_to_end if duration_to_end < threshold else average / 2
    result *= interval / sampled
    return result / (end - start) if is_rate else result


def _histogram_quantile(q: float, buckets: Vector) -> Vector:
    """Prometheus' ``bucketQuantile``, per group of labels other than ``le``."""
    groups: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for labels, count in buckets:
        if "le" not in labels:
            continue
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        groups.setdefault(key, []).append((float(labels["le"]), count))
    out: Vector = []
    for key, found in groups.items():
        out.append((dict(key), _bucket_quantile(q, sorted(found))))
    return out


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not buckets or buckets[-1][0] != math.inf or len(buckets) < 2:
        return math.nan
    counts = [c for _, c in buckets]
    for i in range(1, len(counts)):  # monotonic, as Prometheus forces it
        counts[i] = max(counts[i], counts[i - 1])
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start = 0.0 if b == 0 else buckets[b - 1][0]
    count = counts[b] - (counts[b - 1] if b else 0.0)
    rank -= counts[b - 1] if b else 0.0
    return start + (buckets[b][0] - start) * (rank / count if count else 1.0)


def _binary(op: str, left: Vector | float, right: Vector | float) -> Vector | float:
    def apply(a: float, b: float) -> float | None:
        if op == "/":
            return a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a))
        if op == "*":
            return a * b
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        keep = {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b, "==": a == b}[op]
        return a if keep else None  # a comparison filters, as in an alerting rule

    if isinstance(left, float) and isinstance(right, float):
        found = apply(left, right)
        return math.nan if found is None else found
    if isinstance(right, float):
        return [(ls, v) for ls, x in left if (v := apply(x, right)) is not None]  # type: ignore[union-attr]
    if isinstance(left, float):
        return [(ls, v) for ls, x in right if (v := apply(left, x)) is not None]
    by_labels = {tuple(sorted(ls.items())): x for ls, x in right}
    out: Vector = []
    for labels, x in left:
        other = by_labels.get(tuple(sorted(labels.items())))
        if other is not None and (v := apply(x, other)) is not None:
            out.append((labels, v))
    return out


def evaluate(query: str, source: SeriesSource, at: float) -> Vector | float:
    """The value of ``query`` at unix time ``at``: an instant vector or a scalar."""
    if not query.strip():
        raise PromQLError("empty query")
    return _Parser(query, source, at).parse()
