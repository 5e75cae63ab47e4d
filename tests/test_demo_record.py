"""The demo's recording (pure: a hand-driven clock) and its fault schedule."""

from __future__ import annotations

import math

import pytest

from tether._demo import FAULTS, fault_schedule
from tether._demo_record import Fault, PoolRecord, Recording, percentile_ms


class Clock:
    def __init__(self) -> None:
        self.now = 100.0  # monotonic clocks do not start at zero

    def __call__(self) -> float:
        return self.now


def test_percentile_is_nearest_rank_in_milliseconds() -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    assert percentile_ms(latencies, 0.5) == pytest.approx(51.0)
    assert percentile_ms(latencies, 0.99) == pytest.approx(100.0)
    assert math.isnan(percentile_ms([], 0.5))


def test_buckets_count_operations_where_they_ended() -> None:
    record = PoolRecord()
    for at in (0.1, 0.2, 0.7, 1.6):
        record.ok(at_s=at, latency_s=0.03)
    record.failed(at_s=0.8, kind="AdminShutdown")
    buckets = record.buckets(width_s=0.5, until_s=2.0)
    assert [b.start_s for b in buckets] == [0.0, 0.5, 1.0, 1.5]
    assert [b.ops for b in buckets] == [2, 1, 0, 1]
    assert [b.errors for b in buckets] == [0, 1, 0, 0]
    assert buckets[0].latencies_s == (0.03, 0.03)


def test_an_operation_that_ends_after_the_run_counts_in_the_last_bucket() -> None:
    record = PoolRecord()
    record.ok(at_s=2.3, latency_s=0.5)  # still running when the workload stopped at 2.0
    buckets = record.buckets(width_s=0.5, until_s=2.0)
    assert len(buckets) == 4 and buckets[-1].ops == 1


def test_snapshot_totals_everything_and_latency_only_the_window() -> None:
    record = PoolRecord()
    record.ok(at_s=1.0, latency_s=0.900)  # slow, but long ago
    record.ok(at_s=9.0, latency_s=0.030)
    record.ok(at_s=9.5, latency_s=0.040)
    record.failed(at_s=9.2, kind="OperationalError")
    record.failed(at_s=3.0, kind="AdminShutdown")
    recent = record.snapshot(now_s=10.0, window_s=2.0)
    assert recent.ops == 3 and recent.error_count == 2
    assert list(recent.errors) == ["AdminShutdown", "OperationalError"]  # sorted by kind
    assert recent.p99_ms == pytest.approx(40.0)
    assert record.snapshot(now_s=10.0, window_s=None).p99_ms == pytest.approx(900.0)


def test_a_fault_is_visible_while_it_runs_and_notes_when_it_ended() -> None:
    clock = Clock()
    recording = Recording(["a"], clock=clock)
    clock.now += 3.0
    with recording.fault("restart", "restart the server"):
        assert recording.faults == [Fault(3.0, "restart", "restart the server")]
        clock.now += 1.5
    assert recording.faults == [Fault(3.0, "restart", "restart the server", until_s=4.5)]


def test_a_fault_whose_action_raised_still_ends() -> None:
    clock = Clock()
    recording = Recording(["a"], clock=clock)
    with pytest.raises(RuntimeError), recording.fault("terminate", "terminate every backend"):
        clock.now += 0.25
        raise RuntimeError("server already gone")
    assert recording.faults[0].until_s == pytest.approx(0.25)


def test_finish_fixes_the_duration() -> None:
    clock = Clock()
    recording = Recording(["a", "b"], clock=clock)
    assert recording.duration_s is None and list(recording.pools) == ["a", "b"]
    clock.now += 30.0
    recording.finish()
    clock.now += 5.0
    assert recording.duration_s == pytest.approx(30.0)


@pytest.mark.parametrize("seconds", [5.0, 9.9])
def test_a_short_run_has_one_fault_of_each_kind_before_its_end(seconds: float) -> None:
    schedule = fault_schedule(seconds)
    assert sorted(kind for _, kind in schedule) == sorted(FAULTS)
    assert all(0 < at < seconds - 1 for at, _ in schedule)


def test_the_default_run_terminates_every_four_seconds_resets_twice_restarts_once() -> None:
    schedule = fault_schedule(30.0)
    assert [at for at, kind in schedule if kind == "terminate"] == [3.0, 7.0, 11.0, 15.0, 19.0, 23.0, 27.0]
    assert [at for at, kind in schedule if kind == "reset"] == [9.0, 24.0]
    assert [at for at, kind in schedule if kind == "restart"] == [16.0]
    assert schedule == sorted(schedule)
