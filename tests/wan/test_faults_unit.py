"""Faults as pure values and stages: timing arithmetic, splitting, validation, units."""

from __future__ import annotations

import dataclasses
import random

import pytest

from tether.errors import ConfigError
from tether.wan import (
    Bandwidth,
    Blackhole,
    Down,
    Fault,
    Latency,
    LimitData,
    Reset,
    Slicer,
    SlowClose,
    fault_types,
)
from tether.wan._items import Action, Chunk, Eof, Kill


def _chunk(data: bytes, at: float = 100.0) -> Chunk:
    return Chunk(data, at, at)


def test_registry_uses_toxiproxy_type_names() -> None:
    assert fault_types() == {
        "latency": Latency,
        "bandwidth": Bandwidth,
        "slicer": Slicer,
        "reset_peer": Reset,
        "timeout": Blackhole,
        "slow_close": SlowClose,
        "limit_data": LimitData,
        "down": Down,
    }


def test_latency_counts_from_arrival_and_jitter_stays_in_range() -> None:
    stage = Latency(delay_s=0.05, jitter_s=0.01).new_stage(random.Random(1))
    for _ in range(200):
        (out,) = stage.process(_chunk(b"x", at=10.0), now=10.5)
        assert 10.04 <= out.ready_at <= 10.06


def test_bandwidth_releases_at_the_rate() -> None:
    stage = Bandwidth(rate_bps=1000).new_stage(random.Random())
    out = stage.process(_chunk(b"x" * 100, at=5.0), now=5.0)
    assert b"".join(c.data for c in out if isinstance(c, Chunk)) == b"x" * 100
    assert out[-1].ready_at == pytest.approx(5.1)
    assert all(len(c.data) <= 10 for c in out if isinstance(c, Chunk))
    (eof,) = stage.process(Eof(5.0), now=5.0)
    assert eof.ready_at == pytest.approx(5.1)  # the close waits for the data


def test_bandwidth_zero_is_unlimited_as_in_toxiproxy() -> None:
    chunk = _chunk(b"x" * 10)
    assert Bandwidth(rate_bps=0).new_stage(random.Random()).process(chunk, now=0) == [chunk]


def test_slicer_sizes_and_spacing() -> None:
    stage = Slicer(average_size=10, size_variation=3, delay_s=0.001).new_stage(random.Random(2))
    out = stage.process(_chunk(bytes(range(200))), now=100.0)
    sizes = [len(c.data) for c in out if isinstance(c, Chunk)]
    assert b"".join(c.data for c in out if isinstance(c, Chunk)) == bytes(range(200))
    assert all(7 <= s <= 13 for s in sizes[:-1])
    assert out[1].ready_at - out[0].ready_at == pytest.approx(0.001)


def test_reset_after_bytes_splits_then_kills() -> None:
    stage = Reset(after_bytes=5, delay_s=0.5).new_stage(random.Random())
    assert stage.process(_chunk(b"abc"), now=1.0) == [_chunk(b"abc")]
    head, kill = stage.process(_chunk(b"defgh", at=2.0), now=2.0)
    assert isinstance(head, Chunk) and head.data == b"de"
    assert kill == Kill(Action.RESET, 2.5)
    assert stage.process(_chunk(b"more"), now=3.0) == []


def test_reset_without_after_bytes_is_a_timer() -> None:
    stage = Reset(delay_s=2.0, after_bytes=None).new_stage(random.Random())
    assert stage.start(10.0) == [Kill(Action.RESET, 12.0)]
    assert stage.process(_chunk(b"x"), now=10.0) == [_chunk(b"x")]


def test_limit_data_forwards_exactly_then_closes() -> None:
    stage = LimitData(max_bytes=4).new_stage(random.Random())
    head, kill = stage.process(_chunk(b"abcdef"), now=0)
    assert isinstance(head, Chunk) and head.data == b"abcd"
    assert isinstance(kill, Kill) and kill.action is Action.CLOSE


def test_blackhole_discards_data_but_passes_eof() -> None:
    stage = Blackhole().new_stage(random.Random())
    assert stage.process(_chunk(b"x"), now=0) == []
    assert stage.process(Eof(0), now=0) == [Eof(0)]
    assert not stage.holds
    assert Blackhole(hold=True).new_stage(random.Random()).holds
    assert Blackhole(timeout_s=1).new_stage(random.Random()).start(5.0) == [Kill(Action.CLOSE, 6.0)]


def test_slow_close_delays_only_the_eof() -> None:
    stage = SlowClose(delay_s=0.2).new_stage(random.Random())
    assert stage.process(_chunk(b"x"), now=1.0) == [_chunk(b"x")]
    (eof,) = stage.process(Eof(1.0), now=1.0)
    assert eof.ready_at == pytest.approx(1.2)


@pytest.mark.parametrize(
    "fault",
    [
        Latency(delay_s=0.25, jitter_s=0.01, toxicity=0.5),
        Bandwidth(rate_bps=100_000),
        Slicer(average_size=64, size_variation=8, delay_s=0.00001),
        Reset(delay_s=0.1, after_bytes=10),
        Reset(after_bytes=None),
        Blackhole(timeout_s=2.0, hold=True),
        SlowClose(delay_s=0.3),
        LimitData(max_bytes=99),
        Down(),
    ],
    ids=lambda f: f.type_name,
)
def test_toxiproxy_attributes_round_trip(fault: Fault) -> None:
    again = type(fault).from_attributes(fault.to_attributes(), toxicity=fault.toxicity)
    assert again == fault


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: Latency(delay_s=-0.1), "delay_s"),
        (lambda: Latency(delay_s=1e9), "delay_s"),
        (lambda: Latency(delay_s=float("nan")), "delay_s"),
        (lambda: Latency(delay_s="50ms"), "delay_s"),
        (lambda: Latency(delay_s=0.1, jitter_s=-1), "jitter_s"),
        (lambda: Latency(delay_s=0.1, toxicity=1.5), "toxicity"),
        (lambda: Latency(delay_s=0.1, toxicity=True), "toxicity"),
        (lambda: Bandwidth(rate_bps=-1), "rate_bps"),
        (lambda: Slicer(average_size=0), "average_size"),
        (lambda: Slicer(average_size=10, size_variation=10), "size_variation"),
        (lambda: Slicer(average_size=10.5), "average_size"),
        (lambda: Reset(after_bytes=-1), "after_bytes"),
        (lambda: Reset(delay_s=-1), "delay_s"),
        (lambda: Blackhole(timeout_s=-1), "timeout_s"),
        (lambda: Blackhole(hold="yes"), "hold"),
        (lambda: SlowClose(delay_s=-1), "delay_s"),
        (lambda: LimitData(max_bytes=1.5), "max_bytes"),
        (lambda: Down(toxicity=-0.1), "toxicity"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_parameter(build, key: str) -> None:
    with pytest.raises(ValueError, match=key) as info:
        build()
    assert isinstance(info.value, ConfigError)
    assert info.value.key == key


def test_faults_are_immutable_values() -> None:
    fault = Latency(delay_s=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fault.delay_s = 0.2  # type: ignore[misc]
    assert dataclasses.replace(fault, delay_s=0.2) == Latency(delay_s=0.2)
    with pytest.raises(TypeError):
        Latency(0.1)  # type: ignore[misc]  # keyword-only
