"""Hypothesis against the control API: whatever arrives, a complete answer below 500.

Requests are built from parts, most of them plausible and some hostile: methods, paths
(percent-escapes valid and not, raw Unicode, CR/LF attempts), header lines (malformed,
oversized, ``Transfer-Encoding``, browser user agents), ``Content-Length`` values (right,
wrong, huge, Unicode digits, repeated) and bodies (proxies and toxics with hostile fields,
random JSON, nesting thousands deep, huge numbers, random bytes, bodies over the limit).
Each goes over a raw socket to 127.0.0.1, is half-closed and the answer read to EOF.

Property: one complete HTTP response (status line, headers, ``Content-Length``, exactly
that body), status below 500, Toxiproxy's JSON error body on every error, nothing logged
at WARNING or above, and the server answers ``GET /version`` afterwards.

Deterministic and bounded: the examples are derived from the test itself
(``derandomize``), so every run and CI try the same ones and a failure reproduces. 600
examples run by default (about 6 s on a 2-core machine), 2,000 more under the ``slow``
marker (about 20 s; ``-m "not slow"`` leaves them out). For a longer, random hunt set
``TETHER_FUZZ_EXAMPLES``, e.g. ``TETHER_FUZZ_EXAMPLES=20000 pytest -m slow
tests/wan/test_http_fuzz.py``: the slow test then runs that many from a random seed
(``--hypothesis-seed=N`` fixes it). A failure prints the shrunk request and a
``@reproduce_failure`` line that replays it.
Listen addresses are drawn only from loopback (or are invalid), so nothing listens beyond
127.0.0.1 / ::1 and no fixed port is ever bound.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from raw_http import call, exchange, parse_response, request_bytes

from tether.wan import Emulator, Latency

EXAMPLES = 600
HUNT = os.environ.get("TETHER_FUZZ_EXAMPLES")  # a random hunt of this many, in the slow test
SLOW_EXAMPLES = int(HUNT) if HUNT else 2000
BIG = 2 << 20  # over the 1 MiB body limit


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


# -- request parts --------------------------------------------------------------------

api_methods = st.sampled_from(["GET", "POST", "PATCH", "DELETE"])
methods = st.one_of(
    api_methods,
    st.sampled_from(["HEAD", "PUT", "OPTIONS", "get", "TRACE"]),
    st.text(st.characters(codec="ascii"), max_size=8),
)
segments = st.one_of(
    st.sampled_from(["proxies", "toxics", "populate", "reset", "version", "fz", "latency_downstream"]),
    st.sampled_from(["", ".", "..", "sp ace", "%", "%zz", "%0", "%0d%0a", "%ff%fe", "%c3%a9", "%2f", "%00"]),
    st.text(max_size=12).map(lambda t: quote(t, safe="")),  # well-formed escapes of anything
    st.text(max_size=12),  # raw: spaces, CR/LF and non-ASCII go out as UTF-8 bytes
)
routes = st.sampled_from(
    ["/proxies", "/proxies/{p}", "/proxies/{p}/toxics", "/proxies/{p}/toxics/{t}", "/populate", "/reset"]
)
names_in_paths = st.one_of(st.just("fz"), st.just("latency_downstream"), st.text(max_size=12))
# The API's own routes, with names percent-encoded as clients do.
api_paths = st.tuples(routes, names_in_paths, names_in_paths).map(
    lambda t: t[0].format(p=quote(t[1], safe=""), t=quote(t[2], safe=""))
)
paths = st.one_of(
    st.tuples(routes, names_in_paths, names_in_paths).map(lambda t: t[0].format(p=t[1], t=t[2])),
    st.lists(segments, max_size=5).map(lambda s: "/" + "/".join(s)),
    st.tuples(st.lists(segments, max_size=4), st.text(max_size=10)).map(
        lambda t: "/" + "/".join(t[0]) + "?" + t[1]
    ),
    st.sampled_from(["*", "proxies", "http://127.0.0.1/version", "/proxies\\r\\nX-Injected: 1", ""]),
)
versions = st.sampled_from(["HTTP/1.1"] * 6 + ["HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1.1 x", ""])

# Listen addresses: loopback with port 0, or invalid. Never a fixed port, never beyond loopback.
listen_hosts = st.sampled_from(["127.0.0.1", "[::1]", "localhost", "", "\x00", "a..b", "x" * 70, "é"])
bad_ports = st.text(max_size=6).filter(lambda p: not re.fullmatch(r"[0-9]+", p))
listens = st.tuples(listen_hosts, st.one_of(st.just("0"), st.just("0"), bad_ports)).map(
    lambda t: f"{t[0]}:{t[1]}"
)
upstreams = st.one_of(
    st.sampled_from(["127.0.0.1:9", "localhost:9", "[::1]:9"]),
    st.sampled_from(["127.0.0.1:9", "127.0.0.1:\u00b2", "127.0.0.1:0", "127.0.0.1:65536", "h:", ":1"]),
    st.text(max_size=30),
)
names = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=12),
    st.sampled_from(["fz", "sp ace", "a?b", "é", "a\r\nb", "/", "..", "", "x" * 256, "\ud800"]),
    st.text(max_size=20),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=(1 << 63) - 2, max_value=1 << 70),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))
json_keys = st.one_of(
    st.sampled_from(["name", "upstream", "enabled", "type", "stream", "toxicity", "attributes"]),
    st.sampled_from(["latency", "jitter", "rate", "timeout", "bytes", "delay", "hold", "after_bytes"]),
    st.text(max_size=8),
).filter(lambda k: k != "listen")  # only `listens` may say where to listen
any_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=5),
    max_leaves=20,
)
attributes = st.dictionaries(
    st.sampled_from(["latency", "jitter", "rate", "timeout", "bytes", "delay", "average_size", "hold"]),
    st.one_of(numbers, scalars),
    max_size=4,
)
proxies = st.fixed_dictionaries(
    {"name": names, "upstream": upstreams},
    optional={"listen": listens, "enabled": st.one_of(st.booleans(), scalars)},
)
toxics = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["latency", "bandwidth", "timeout", "reset_peer", "down"]), names)},
    optional={
        "name": names,
        "stream": st.sampled_from(["upstream", "downstream", "both", ""]),
        "toxicity": st.one_of(numbers, scalars),
        "attributes": st.one_of(attributes, any_json),
    },
)
# Numbers json.dumps cannot write, spliced into an otherwise valid toxic.
wild_numbers = st.one_of(
    st.sampled_from(["1e400", "-1e400", "9" * 400, "NaN", "Infinity", "-0", "1e-400", "0.1e999"]),
    st.integers(min_value=1, max_value=4000).map(lambda n: "9" * n),
)
nestings = st.tuples(st.integers(1, 5000), st.sampled_from(["[]", "{}"])).map(
    lambda t: '{"a":' * t[0] + "1" + "}" * t[0] if t[1] == "{}" else "[" * t[0] + "]" * t[0]
)
bodies = st.one_of(
    st.one_of(proxies, toxics, st.lists(proxies, max_size=4), any_json).map(_json),
    wild_numbers.map(lambda n: b'{"type": "latency", "attributes": {"latency": %s}}' % n.encode()),
    wild_numbers.map(lambda n: b'{"type": "latency", "toxicity": %s}' % n.encode()),
    nestings.map(str.encode),
    st.binary(max_size=300),
    st.sampled_from([b"", b" " * BIG, b"[" * BIG]),
)
content_lengths = st.one_of(
    st.just("exact"),
    st.just("exact"),
    st.just("exact"),
    st.just("missing"),
    st.integers(min_value=0, max_value=3 << 20).map(str),
    st.sampled_from(
        ["-1", "abc", "\u00b2", "\u0663", "1e3", "0x10", "+5", "", "5, 5", "99999999999999999999"]
    ),
)
header_lines = st.just([]) | st.lists(
    st.one_of(
        st.sampled_from(
            [
                "Transfer-Encoding: chunked",
                "User-Agent: Mozilla/5.0",
                "Expect: 100-continue",
                "Content-Type: application/json",
                "Content-Length: 7",
                "NoColon",
                " folded: continuation",
                "Space Before: x",
                "X-Nul: a\x00b",
                "X-Cr: a\rb",
            ]
        ),
        st.tuples(st.text(max_size=10), st.text(max_size=30)).map(lambda t: f"{t[0]}: {t[1]}"),
        st.sampled_from([100, 9000, 70_000]).map(lambda n: "X-Big: " + "b" * n),
    ),
    max_size=4,
)


@dataclass
class Draft:
    method: str
    path: str
    version: str
    headers: list[str] = field(default_factory=list)
    content_length: str = "exact"
    body: bytes = b""

    def to_bytes(self) -> bytes:
        lines = [f"{self.method} {self.path} {self.version}".rstrip(), "Host: 127.0.0.1"]
        if self.content_length == "exact":
            lines.append(f"Content-Length: {len(self.body)}")
        elif self.content_length != "missing":
            lines.append(f"Content-Length: {self.content_length}")
        lines += self.headers
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogatepass") + self.body


# A third of the requests are well framed with any body, a third fit their route too (below),
# so that bodies and names reach the handlers; a third are framed hostilely.
framed_drafts = st.builds(Draft, method=api_methods, path=api_paths, version=st.just("HTTP/1.1"), body=bodies)
hostile_drafts = st.builds(
    Draft,
    method=methods,
    path=st.one_of(api_paths, paths),
    version=versions,
    headers=header_lines,
    content_length=content_lengths,
    body=bodies,
)
# Calls that fit their route (a proxy to /proxies, a toxic to a proxy's toxics, ...), so that
# values, not shapes, decide: more of them get past the checks and change the state.
_http11 = st.just("HTTP/1.1")
fitting_drafts = st.one_of(
    st.builds(Draft, st.just("POST"), st.just("/proxies"), _http11, body=proxies.map(_json)),
    st.builds(
        Draft, st.sampled_from(["POST", "PATCH"]), st.just("/proxies/fz"), _http11, body=proxies.map(_json)
    ),
    st.builds(Draft, st.just("POST"), st.just("/proxies/fz/toxics"), _http11, body=toxics.map(_json)),
    st.builds(
        Draft,
        st.sampled_from(["POST", "PATCH"]),
        st.just("/proxies/fz/toxics/latency_downstream"),
        _http11,
        body=toxics.map(_json),
    ),
    st.builds(
        Draft, st.just("POST"), st.just("/populate"), _http11, body=st.lists(proxies, max_size=4).map(_json)
    ),
)
drafts = st.one_of(framed_drafts, fitting_drafts, hostile_drafts)

# -- the emulator under test ----------------------------------------------------------


class LoudLogs(logging.Handler):
    """Collects WARNING and above from every logger (the emulator runs in its own thread)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def loud_logs() -> Iterator[LoudLogs]:
    handler = LoudLogs()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="module")
def emulator(loud_logs: LoudLogs) -> Iterator[Emulator]:
    with Emulator(api_port=0) as emu:
        yield emu


def _fresh_state(emulator: Emulator) -> None:
    """Only the proxy ``fz`` with one toxic, so paths that name them reach the handlers."""
    for link in emulator.links():
        emulator.remove(link.name)
    link = emulator.create(upstream=("127.0.0.1", 9), name="fz")
    link.add(Latency(delay_s=0.001))


_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


def _assert_answered_below_500(emulator: Emulator, loud_logs: LoudLogs, draft: Draft) -> None:
    assert emulator.api_address is not None
    _fresh_state(emulator)
    raw = exchange(emulator.api_address, draft.to_bytes())
    head = draft.method.upper() == "HEAD"
    response = parse_response(raw, head=head)
    event(f"status {response.status}")  # the spread shows with --hypothesis-show-statistics
    assert 200 <= response.status < 500, response
    if response.status >= 400 and not (head and not response.body):
        error = response.json()
        assert set(error) == {"error", "status"} and error["status"] == response.status, error
    assert call(emulator.api_address, request_bytes("GET", "/version")).status == 200
    assert not loud_logs.records, [r.getMessage() for r in loud_logs.records]


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
@given(draft=drafts)
def test_every_request_gets_a_complete_answer_below_500(
    emulator: Emulator, loud_logs: LoudLogs, draft: Draft
) -> None:
    _assert_answered_below_500(emulator, loud_logs, draft)


@pytest.mark.slow
@settings(
    max_examples=SLOW_EXAMPLES,
    derandomize=not HUNT,  # another function, so other examples than the test above
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
@given(draft=drafts)
def test_every_request_gets_a_complete_answer_below_500_at_length(
    emulator: Emulator, loud_logs: LoudLogs, draft: Draft
) -> None:
    _assert_answered_below_500(emulator, loud_logs, draft)
