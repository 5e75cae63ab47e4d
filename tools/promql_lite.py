"""The part of PromQL that docs/assets/grafana-tether.json uses, evaluated over scrapes in memory.

Enough to prove the dashboard's queries against a real run without a Prometheus server:
selectors with ``=`` matchers, ``rate`` and ``increase`` over a range (taken as "since the
previous scrape": a rendering compresses time), ``sum``/``max``/``min``/``avg`` with
``by (...)``, and ``histogram_quantile`` with Prometheus's interpolation inside a bucket.
Anything else is a ``SyntaxError``, so a dashboard cannot silently use more than was checked.

    scrapes = [Scrape(t, parse_exposition(text)), ...]
    series = evaluate(parse("sum by (pool) (rate(x_total[1m]))"), scrapes, index)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]
Vector = dict[Labels, float]

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<name>[a-zA-Z_:][\w:]*)|(?P<str>\"(?:[^\"\\]|\\.)*\")"
                    r"|(?P<dur>\[\d+[smhd]\])|(?P<op>[(){},=]))")
_AGGREGATIONS: dict[str, Callable[[list[float]], float]] = {
    "sum": sum, "max": max, "min": min, "avg": lambda values: sum(values) / len(values),
}


@dataclass(frozen=True, slots=True)
class Scrape:
    at_s: float
    samples: Samples


@dataclass(frozen=True, slots=True)
class Node:
    kind: str  # selector, range, call, aggregate, number
    name: str = ""
    matchers: tuple[tuple[str, str], ...] = ()
    by: tuple[str, ...] = ()
    args: tuple[Node, ...] = ()
    number: float = 0.0


def parse_exposition(text: str) -> Samples:
    """Prometheus's text format, as ``prometheus_client``'s parser reads it."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return samples


def parse(text: str) -> Node:
    tokens = _tokens(text)
    node, rest = _expression(tokens)
    if rest:
        raise SyntaxError(f"unexpected {rest[0]!r} in {text!r}")
    return node


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SyntaxError(f"cannot read {text[position:]!r}")
        tokens.append(match.group().strip())
        position = match.end()
    return tokens


def _expect(tokens: list[str], token: str) -> list[str]:
    if not tokens or tokens[0] != token:
        raise SyntaxError(f"expected {token!r}, found {tokens[:1]}")
    return tokens[1:]


def _expression(tokens: list[str]) -> tuple[Node, list[str]]:
    if not tokens:
        raise SyntaxError("unexpected end")
    head, rest = tokens[0], tokens[1:]
    if re.fullmatch(r"\d+(?:\.\d+)?", head):
        return Node("number", number=float(head)), rest
    if head in _AGGREGATIONS:
        by: tuple[str, ...] = ()
        if rest and rest[0] == "by":
            rest = _expect(rest[1:], "(")
            names = []
            while rest[0] != ")":
                names.append(rest[0])
                rest = rest[2:] if rest[1] == "," else rest[1:]
            by, rest = tuple(names), rest[1:]
        rest = _expect(rest, "(")
        inner, rest = _expression(rest)
        return Node("aggregate", name=head, by=by, args=(inner,)), _expect(rest, ")")
    if head in ("rate", "increase", "histogram_quantile"):
        rest = _expect(rest, "(")
        args = []
        while True:
            arg, rest = _expression(rest)
            args.append(arg)
            if rest[0] == ",":
                rest = rest[1:]
                continue
            break
        return Node("call", name=head, args=tuple(args)), _expect(rest, ")")
    if not re.fullmatch(r"[a-zA-Z_:][\w:]*", head):
        raise SyntaxError(f"unexpected {head!r}")
    matchers = []
    if rest and rest[0] == "{":
        rest = rest[1:]
        while rest[0] != "}":
            key, rest = rest[0], _expect(rest[1:], "=")
            matchers.append((key, rest[0][1:-1]))
            rest = rest[2:] if rest[1] == "," else rest[1:]
        rest = rest[1:]
    if rest and rest[0].startswith("["):
        return Node("range", name=head, matchers=tuple(matchers)), rest[1:]
    return Node("selector", name=head, matchers=tuple(matchers)), rest


def evaluate(node: Node, scrapes: list[Scrape], index: int) -> Vector:
    """``node``'s instant vector at scrape ``index`` (a range reaches back one scrape)."""
    if node.kind == "selector":
        return _select(node, scrapes[index].samples)
    if node.kind == "aggregate":
        groups: dict[Labels, list[float]] = {}
        for labels, value in evaluate(node.args[0], scrapes, index).items():
            key = frozenset((k, v) for k, v in labels if k in node.by)
            groups.setdefault(key, []).append(value)
        return {key: _AGGREGATIONS[node.name](values) for key, values in groups.items()}
    if node.kind == "call" and node.name in ("rate", "increase"):
        (selected,) = node.args
        if selected.kind != "range" or index == 0:
            return {} if index == 0 else _bad(node)
        now, before = _select(selected, scrapes[index].samples), _select(selected, scrapes[index - 1].samples)
        span = scrapes[index].at_s - scrapes[index - 1].at_s
        grown = {labels: value - before.get(labels, 0.0) for labels, value in now.items()}
        return grown if node.name == "increase" else {k: v / span for k, v in grown.items()}
    if node.kind == "call" and node.name == "histogram_quantile":
        q_node, inner = node.args
        return _quantiles(q_node.number, evaluate(inner, scrapes, index))
    return _bad(node)


def _bad(node: Node) -> Any:
    raise SyntaxError(f"cannot evaluate {node.kind} {node.name!r} here")


def _select(node: Node, samples: Samples) -> Vector:
    wanted = set(node.matchers)
    return {labels: value for (name, labels), value in samples.items()
            if name == node.name and wanted <= labels}


def _quantiles(q: float, buckets: Vector) -> Vector:
    """``histogram_quantile``: per label set without ``le``, interpolated inside the bucket."""
    series: dict[Labels, list[tuple[float, float]]] = {}
    for labels, value in buckets.items():
        le = dict(labels)["le"]
        key = frozenset((k, v) for k, v in labels if k != "le")
        series.setdefault(key, []).append((math.inf if le == "+Inf" else float(le), value))
    out: Vector = {}
    for key, points in series.items():
        points.sort()
        total = points[-1][1]
        if total <= 0:
            continue
        rank, lower, below = q * total, 0.0, 0.0
        for bound, seen in points:
            if seen >= rank:
                if math.isinf(bound):
                    out[key] = lower
                else:
                    inside = seen - below
                    out[key] = lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
                break
            lower, below = bound, seen
    return out
