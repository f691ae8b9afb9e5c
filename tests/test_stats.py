"""Stats: recording, snapshots, merging across shards, JSON round trips, the time series."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from flowengine import jsonio
from flowengine.clock import ManualClock
from flowengine.errors import ConfigError
from flowengine.stats import (
    CANCELLED,
    FLOW,
    HIGHEST_US,
    OK,
    Interval,
    Stats,
    StatsSnapshot,
    StepStats,
    merge_snapshots,
)

PS = (0.0, 1.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0)


def _latencies(seed: int, n: int = 2000) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-4.0, 0.8) for _ in range(n)]


def _shard(seed: int, clock: ManualClock | None = None) -> Stats:
    clock = clock or ManualClock()
    stats = Stats(clock=clock.monotonic)
    rng = random.Random(seed)
    for seconds in _latencies(seed):
        stats.record_start()
        stats.record_step("password", seconds / 3, OK)
        stats.record_step("grant:mfa-otp", seconds / 2, rng.choice([OK, OK, "invalid_code"]))
        outcome = rng.choice([OK, OK, OK, "failed", CANCELLED])
        stats.record_flow(seconds, outcome, "timeout" if outcome == "failed" else None)
        clock.advance(0.01)
    return stats


def _hdr(values_s: list[float], digits: int = 3) -> HdrHistogram:
    histogram = HdrHistogram(1, HIGHEST_US, digits)
    for seconds in values_s:
        histogram.record_value(int(seconds * 1_000_000))
    return histogram


def _round_trip(snapshot: StatsSnapshot) -> StatsSnapshot:
    return StatsSnapshot.from_dict(jsonio.loads(jsonio.dumps(snapshot.to_dict())))


def test_inline_recording_equals_hdr_record_value() -> None:
    """The hot path's inline index arithmetic fills the same counts as record_value."""
    values = [*_latencies(1, 5000), 0.0, 1e-6, 0.0009, 0.001, 1.0, 59.9, 3599.0]
    stats = Stats(clock=ManualClock().monotonic)
    for seconds in values:
        stats.record_step("password", seconds, OK)
    step = stats.snapshot().stat("password")
    assert bytes(step.histogram.counts) == bytes(_hdr(values).counts)
    assert step.histogram.get_total_count() == len(values)


def test_started_equals_succeeded_failed_cancelled() -> None:
    """Flow counts add up: started = succeeded + failed + cancelled once all have ended."""
    snapshot = _shard(3).snapshot()
    assert snapshot.started == snapshot.succeeded + snapshot.failed + snapshot.cancelled
    assert snapshot.in_flight == 0
    assert snapshot.cancelled > 0
    assert snapshot.failed > 0


def test_in_flight_counts_started_flows_not_yet_ended() -> None:
    """A started flow without a recorded end is in flight."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_start()
    stats.record_start()
    stats.record_flow(0.1, OK)
    assert stats.snapshot().in_flight == 1


def test_cancelled_flows_are_counted_but_not_timed() -> None:
    """Cancelled flows count as cancelled, not as errors, and stay out of the histogram."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_flow(0.1, OK)
    stats.record_flow(99.0, CANCELLED)
    flow = stats.snapshot().flow
    assert (flow.count, flow.ok, flow.cancelled, flow.errors, flow.timed) == (2, 1, 1, 0, 1)
    assert flow.max == pytest.approx(0.1, rel=1e-3)


def test_success_is_counted_as_ok() -> None:
    """The engine's 'success' outcome counts as 'ok' for flows and steps."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_flow(0.1, "success")
    stats.record_step("password", 0.1, "success")
    snapshot = stats.snapshot()
    assert (snapshot.succeeded, snapshot.failed, snapshot.stat("password").ok) == (1, 0, 1)


def test_errors_are_counted_by_kind_or_outcome() -> None:
    """A failed flow counts under its error kind, or its outcome when no kind is given."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_flow(0.1, "failed", "invalid_code")
    stats.record_flow(0.1, "failed", "invalid_code")
    stats.record_flow(0.1, "timeout")
    stats.record_flow(0.1, OK)
    assert stats.snapshot().errors == {"invalid_code": 2, "timeout": 1}


def test_retries_are_counted_per_step() -> None:
    """record_retry counts per step, also for a step with no completed attempt yet."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_retry("password")
    stats.record_retry("password")
    stats.record_retry("challenge")
    snapshot = stats.snapshot()
    assert snapshot.stat("password").retries == 2
    assert snapshot.retries == 3


def test_missed_starts_are_counted() -> None:
    """Starts the open model could not make are counted apart from started flows."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_missed_start()
    stats.record_start()
    snapshot = stats.snapshot()
    assert (snapshot.started, snapshot.missed_starts) == (1, 1)


def test_latencies_are_clamped_to_the_histogram_range() -> None:
    """A latency over an hour counts as an hour, a negative one as zero; none is dropped."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_step("push_wait", 7200.0, "timeout")
    stats.record_step("push_wait", -1.0, OK)
    step = stats.snapshot().stat("push_wait")
    assert step.timed == 2
    assert step.max == pytest.approx(3600.0, rel=1e-3)
    assert step.min == 0.0


def test_flow_is_not_a_step_name() -> None:
    """'flow' names whole flows, so recording it as a step is refused."""
    stats = Stats(clock=ManualClock().monotonic)
    with pytest.raises(ValueError, match="flow"):
        stats.record_step(FLOW, 0.1, OK)


def test_step_figures_match_an_hdr_histogram_of_the_same_values() -> None:
    """Step percentiles, min and max are HDR's; the mean is exact."""
    values = _latencies(5)
    stats = Stats(clock=ManualClock().monotonic)
    for seconds in values:
        stats.record_step("challenge", seconds, OK)
    step = stats.snapshot().stat("challenge")
    reference = _hdr(values)
    for p in PS:
        assert step.percentile(p) == reference.get_value_at_percentile(p) / 1e6
    assert step.min == reference.get_min_value() / 1e6
    assert step.max == reference.get_max_value() / 1e6
    exact_mean = sum(int(v * 1e6) for v in values) / len(values) / 1e6
    assert step.mean == pytest.approx(exact_mean)


def test_percentile_outside_0_to_100_is_refused() -> None:
    """A percentile above 100 raises ValueError."""
    with pytest.raises(ValueError, match="between 0 and 100"):
        _shard(1).snapshot().flow.percentile(101)


def test_empty_step_has_no_latency_figures() -> None:
    """Nothing timed gives None for percentiles, mean, min and max."""
    step = StepStats.empty("password")
    assert (step.percentile(50), step.mean, step.min, step.max, step.error_rate) == (None,) * 5


def test_snapshot_does_not_change_when_recording_goes_on() -> None:
    """A snapshot is a copy: later records do not show in it."""
    stats = _shard(2)
    snapshot = stats.snapshot()
    before = snapshot.to_dict()
    stats.record_flow(0.5, OK)
    stats.record_step("password", 0.5, OK)
    assert snapshot.to_dict() == before


def test_round_trip_through_json_gives_an_equal_snapshot() -> None:
    """to_dict -> JSON -> from_dict gives back an equal snapshot."""
    snapshot = _shard(4).snapshot()
    again = _round_trip(snapshot)
    assert again == snapshot
    assert again.percentile("grant:mfa-otp", 99) == snapshot.percentile("grant:mfa-otp", 99)


def test_merge_sums_counts() -> None:
    """Merging sums flows, outcomes, errors, retries and missed starts."""
    a, b = _shard(1), _shard(2)
    a.record_missed_start()
    b.record_retry("password")
    sa, sb = a.snapshot(), b.snapshot()
    merged = sa.merge(sb)
    assert merged.started == sa.started + sb.started
    assert merged.succeeded == sa.succeeded + sb.succeeded
    assert merged.failed == sa.failed + sb.failed
    assert merged.missed_starts == 1
    assert merged.retries == 1
    assert merged.errors["timeout"] == sa.errors["timeout"] + sb.errors["timeout"]
    assert merged.count("grant:mfa-otp") == sa.count("grant:mfa-otp") + sb.count("grant:mfa-otp")


def test_merged_snapshot_percentiles_equal_merged_histograms() -> None:
    """Percentiles of snapshots merged from shards equal those of the merged raw histograms."""
    seeds = (11, 12, 13)
    shards = [_round_trip(_shard(seed).snapshot()) for seed in seeds]
    merged = merge_snapshots(shards)
    reference = HdrHistogram(1, HIGHEST_US, 3)
    for seed in seeds:
        reference.add(_hdr([s / 3 for s in _latencies(seed)]))
    for p in PS:
        assert merged.percentile("password", p) == reference.get_value_at_percentile(p) / 1e6
    assert merged.stat("password").min == reference.get_min_value() / 1e6
    assert merged.stat("password").max == reference.get_max_value() / 1e6


def test_merging_many_at_once_equals_merging_pairwise() -> None:
    """merge_snapshots over several shards equals a chain of pairwise merges."""
    shards = [_shard(seed).snapshot() for seed in (1, 2, 3)]
    assert merge_snapshots(shards) == shards[0].merge(shards[1]).merge(shards[2])


def test_merge_with_an_empty_shard_keeps_the_minimum() -> None:
    """An empty shard does not turn the merged minimum into zero (an hdrh pitfall)."""
    snapshot = _shard(1).snapshot()
    merged = snapshot.merge(StatsSnapshot.empty())
    assert merged.stat("password").min == snapshot.stat("password").min
    assert merged.flow.min == snapshot.flow.min


def test_merge_refuses_different_intervals() -> None:
    """Series cut into different intervals cannot be merged."""
    with pytest.raises(ValueError, match="intervals"):
        StatsSnapshot.empty(interval=1.0).merge(StatsSnapshot.empty(interval=5.0))


def test_merged_elapsed_is_the_longest_shard() -> None:
    """Shards run side by side: the merged elapsed time is the longest, not the sum."""
    clock_a, clock_b = ManualClock(), ManualClock()
    a, b = Stats(clock=clock_a.monotonic), Stats(clock=clock_b.monotonic)
    clock_a.advance(10.0)
    clock_b.advance(12.0)
    assert a.snapshot().merge(b.snapshot()).elapsed == 12.0


def test_flows_per_second_and_error_rate() -> None:
    """Throughput is completed flows per elapsed second; error rate is failed / completed."""
    clock = ManualClock()
    stats = Stats(clock=clock.monotonic)
    for outcome in (OK, OK, OK, "failed", CANCELLED):
        stats.record_flow(0.1, outcome)
    clock.advance(2.0)
    snapshot = stats.snapshot()
    assert snapshot.flows_per_second == 2.0
    assert snapshot.error_rate == 0.25


def test_series_buckets_flows_by_the_injected_clock() -> None:
    """Each flow lands in the interval of the clock's time when it was recorded."""
    clock = ManualClock()
    stats = Stats(clock=clock.monotonic, interval=1.0)
    stats.record_start()
    clock.advance(0.5)
    stats.record_flow(0.2, OK)
    clock.advance(0.6)  # 1.1 s
    stats.record_flow(0.3, "failed")
    stats.record_missed_start()
    clock.advance(2.5)  # 3.6 s
    stats.record_flow(0.4, CANCELLED)
    series = stats.snapshot().series
    rows = [
        (i.index, i.started, i.succeeded, i.failed, i.cancelled, i.missed_starts) for i in series
    ]
    assert rows == [(0, 1, 1, 0, 0, 0), (1, 0, 0, 1, 0, 1), (3, 0, 0, 0, 1, 0)]


def test_dense_series_fills_quiet_intervals() -> None:
    """dense_series gives every interval from 0 to the last, empty ones included."""
    clock = ManualClock()
    stats = Stats(clock=clock.monotonic)
    stats.record_flow(0.1, OK)
    clock.advance(3.2)
    stats.record_flow(0.1, OK)
    dense = stats.snapshot().dense_series()
    assert [(i.index, i.succeeded) for i in dense] == [(0, 1), (1, 0), (2, 0), (3, 1)]


def test_last_interval_covers_only_the_elapsed_part() -> None:
    """The open interval's length is what has elapsed of it, for per-second rates."""
    clock = ManualClock()
    stats = Stats(clock=clock.monotonic, interval=1.0)
    clock.advance(2.25)
    stats.record_flow(0.1, OK)
    snapshot = stats.snapshot()
    assert snapshot.interval_seconds(snapshot.series[-1]) == pytest.approx(0.25)


def test_origin_in_the_past_starts_at_the_right_interval() -> None:
    """A shared origin earlier than creation puts the first record in a later interval."""
    clock = ManualClock()
    clock.advance(5.5)
    stats = Stats(clock=clock.monotonic, origin=0.0)
    stats.record_flow(0.1, OK)
    assert stats.snapshot().series[0].index == 5


def test_interval_percentiles_equal_a_two_digit_hdr_histogram() -> None:
    """An interval's latency percentiles follow HDR's rule at 2 significant digits."""
    values = _latencies(8, 3000)
    stats = Stats(clock=ManualClock().monotonic)
    for seconds in values:
        stats.record_flow(seconds, OK)
    (interval,) = stats.snapshot().series
    reference = _hdr(values, digits=2)
    found = interval.percentiles(PS)
    for p in PS:
        assert found[p] == reference.get_value_at_percentile(p) / 1e6


def test_merged_interval_percentiles_equal_merged_histograms() -> None:
    """Intervals from two shards merge by index; percentiles equal the merged histogram's."""
    a, b = Stats(clock=ManualClock().monotonic), Stats(clock=ManualClock().monotonic)
    for seconds in _latencies(1):
        a.record_flow(seconds, OK)
    for seconds in _latencies(2):
        b.record_flow(seconds, "failed")
    (merged,) = _round_trip(a.snapshot()).merge(_round_trip(b.snapshot())).series
    reference = _hdr(_latencies(1) + _latencies(2), digits=2)
    assert (merged.succeeded, merged.failed) == (2000, 2000)
    assert merged.percentile(99) == reference.get_value_at_percentile(99) / 1e6


def test_snapshot_can_leave_the_series_out() -> None:
    """snapshot(series=False) has the totals and no intervals."""
    snapshot = _shard(1).snapshot(series=False)
    assert snapshot.series == ()
    assert snapshot.started == 2000


def test_interval_must_be_positive() -> None:
    """A zero interval is refused."""
    with pytest.raises(ValueError, match="interval"):
        Stats(interval=0)


def test_interval_merge_refuses_other_index() -> None:
    """Two different intervals cannot be merged."""
    with pytest.raises(ValueError, match="interval 1"):
        Interval(0).merge(Interval(1))


def test_ordered_steps_follow_the_login_order() -> None:
    """Known steps come in login order, unknown ones after them by name."""
    stats = Stats(clock=ManualClock().monotonic)
    for step in ("zeta", "grant:mfa-otp", "password", "alpha", "challenge"):
        stats.record_step(step, 0.1, OK)
    names = [s.name for s in stats.snapshot().ordered_steps()]
    assert names == ["password", "challenge", "grant:mfa-otp", "alpha", "zeta"]


def test_from_dict_refuses_a_histogram_of_another_layout() -> None:
    """A histogram with another range or precision cannot be merged, so it is refused."""
    data = _shard(1).snapshot().to_dict()
    other = HdrHistogram(1, 60_000_000, 2)
    other.record_value(1000)
    data["flow"]["histogram"] = other.encode().decode()
    with pytest.raises(ConfigError, match="layout differs"):
        StatsSnapshot.from_dict(data)


def _corrupt(data: dict[str, Any], where: str) -> None:
    if where == "format":
        data["format"] = "other/9"
    elif where == "started":
        data["started"] = -1
    elif where == "flow.histogram":
        data["flow"]["histogram"] = "not-hdr"
    elif where == "steps.password.outcomes.ok":
        data["steps"]["password"]["outcomes"]["ok"] = "many"
    elif where == "series[0].latency_us":
        data["series"][0]["latency_us"] = [[1, 2, 3]]


@pytest.mark.parametrize(
    "where",
    ["format", "started", "flow.histogram", "steps.password.outcomes.ok", "series[0].latency_us"],
)
def test_from_dict_names_the_bad_key(where: str) -> None:
    """A damaged snapshot dict raises ConfigError naming the key path."""
    data = _shard(1).snapshot().to_dict()
    _corrupt(data, where)
    with pytest.raises(ConfigError) as info:
        StatsSnapshot.from_dict(data)
    assert info.value.path == where
