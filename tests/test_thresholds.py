"""Thresholds: parsing k6-style expressions, clear errors, evaluation; exit codes."""

from __future__ import annotations

import pytest

from flowengine import exitcodes
from flowengine.clock import ManualClock
from flowengine.errors import ConfigError, ScenarioError
from flowengine.stats import CANCELLED, OK, Stats, StatsSnapshot
from flowengine.thresholds import Threshold, evaluate, parse_threshold, parse_thresholds


def _snapshot() -> StatsSnapshot:
    """201 flows over 2 s: 198 ok, 2 failed (10-209 ms), 1 cancelled; 1 password error."""
    clock = ManualClock()
    stats = Stats(clock=clock.monotonic)
    for n in range(200):
        stats.record_start()
        stats.record_step("password", 0.005, OK if n else "invalid_credentials")
        stats.record_step("grant:mfa-otp", 0.001 * (n + 1), OK)
        stats.record_flow(0.010 + 0.001 * n, OK if n % 100 else "failed", "timeout")
    stats.record_retry("password")
    stats.record_missed_start()
    stats.record_start()
    stats.record_flow(1.0, CANCELLED)
    clock.advance(2.0)
    return stats.snapshot()


@pytest.mark.parametrize(
    ("text", "metric", "target", "op", "limit", "kind"),
    [
        ("p95(flow) < 800ms", "p95", "flow", "<", 0.8, "latency"),
        ("p99(grant:mfa-otp) <= 1s", "p99", "grant:mfa-otp", "<=", 1.0, "latency"),
        ("p99.9(password)<250us", "p99.9", "password", "<", 0.00025, "latency"),
        ("max(push_wait) < 2m", "max", "push_wait", "<", 120.0, "latency"),
        ("avg(flow) < 300", "avg", "flow", "<", 0.3, "latency"),
        ("error_rate < 1%", "error_rate", None, "<", 0.01, "ratio"),
        ("error_rate(password) < 0.5%", "error_rate", "password", "<", 0.005, "ratio"),
        ("error_rate <= 0.02", "error_rate", None, "<=", 0.02, "ratio"),
        ("flows_per_second > 100", "flows_per_second", None, ">", 100.0, "rate"),
        ("missed_starts == 0", "missed_starts", None, "==", 0.0, "count"),
        ("retries(password) != 3", "retries", "password", "!=", 3.0, "count"),
    ],
)
def test_parse_good_thresholds(
    text: str, metric: str, target: str | None, op: str, limit: float, kind: str
) -> None:
    """Each supported form parses into metric, target, operator, limit and kind."""
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.target, threshold.op, threshold.kind) == (
        metric,
        target,
        op,
        kind,
    )
    assert threshold.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p95(flow) 800ms", "expected METRIC OP VALUE"),
        ("p95(flow) < fast", "expected a duration like 800ms"),
        ("p95(flow) < 800kg", "expected a duration like 800ms"),
        ("p101(flow) < 1s", "between p0 and p100"),
        ("error_rat < 1%", "unknown metric 'error_rat'"),
        ("error_rate < 5ms", "expected a percentage like 1%"),
        ("error_rate < 2", "write 2%"),
        ("flows_per_second(password) > 1", "takes no step name"),
        ("missed_starts(password) == 0", "takes no step name"),
        ("missed_starts == 0.5", "expected a whole number"),
        ("missed_starts = 0", "use '=='"),
        ("p95(flow) <", "expected a value after '<'"),
        ("p95(my step) < 1s", "expected a step name"),
    ],
)
def test_parse_bad_threshold_names_it_and_what_was_expected(text: str, expected: str) -> None:
    """Bad input raises ScenarioError (a ConfigError) quoting the expression and the fix."""
    with pytest.raises(ScenarioError) as info:
        parse_threshold(text)
    assert repr(text) in str(info.value)
    assert expected in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_parse_thresholds_names_the_position_in_the_scenario() -> None:
    """An error in a list names the file and the index of the bad entry."""
    with pytest.raises(ScenarioError) as info:
        parse_thresholds(["error_rate < 1%", "nonsense"], source="flows/x.yaml")
    assert info.value.path == "thresholds[1]"
    assert str(info.value).startswith("flows/x.yaml: thresholds[1]: threshold 'nonsense'")


@pytest.mark.parametrize(
    ("text", "observed", "passed"),
    [
        ("p50(grant:mfa-otp) < 150ms", 0.1001, True),
        ("p99(flow) <= 100ms", 0.2071, False),
        ("max(flow) < 1s", 0.2091, True),
        ("min(password) >= 5ms", 0.005, True),
        ("error_rate < 1%", 0.01, False),
        ("error_rate <= 1%", 0.01, True),
        ("error_rate(password) < 0.5%", 0.005, False),
        ("flows_per_second > 99", 100.0, True),
        ("missed_starts == 0", 1.0, False),
        ("retries(password) == 1", 1.0, True),
        ("retries < 1", 1.0, False),
        ("started == 201", 201.0, True),
        ("cancelled == 1", 1.0, True),
        ("count(password) == 200", 200.0, True),
        ("errors(password) == 1", 1.0, True),
    ],
)
def test_evaluate_reports_observed_value_and_outcome(
    text: str, observed: float, passed: bool
) -> None:
    """evaluate gives the observed value in base units and whether the threshold held."""
    (result,) = evaluate([text], _snapshot())
    assert result.observed == pytest.approx(observed, rel=2e-3)
    assert result.passed is passed
    assert result.expression == text


def test_threshold_on_a_step_that_never_ran_fails_with_no_data() -> None:
    """A misspelt or absent step has no data, and that fails rather than passes."""
    (result,) = evaluate(["p95(pasword) < 1s"], _snapshot())
    assert (result.observed, result.passed) == (None, False)
    assert result.describe() == "p95(pasword) < 1s: no data, failed"


def test_error_rate_without_finished_flows_has_no_data() -> None:
    """With no finished flow the error rate is unknown, so its threshold fails."""
    (result,) = evaluate(["error_rate < 1%"], StatsSnapshot.empty())
    assert result.passed is False


def test_result_to_dict_uses_display_units() -> None:
    """to_dict shows latencies in ms and ratios in percent, with their unit."""
    latency, ratio = evaluate(["p99(flow) < 800ms", "error_rate < 1%"], _snapshot())
    assert latency.to_dict()["limit"] == 800.0
    assert latency.to_dict()["unit"] == "ms"
    assert ratio.to_dict() == {
        "expression": "error_rate < 1%",
        "metric": "error_rate",
        "target": None,
        "op": "<",
        "limit": 1.0,
        "observed": 1.0,
        "unit": "%",
        "passed": False,
    }


def test_counts_are_reported_as_whole_numbers() -> None:
    """A count threshold shows its observed value and limit as ints."""
    (result,) = evaluate(["missed_starts == 0"], _snapshot())
    assert (result.to_dict()["observed"], result.to_dict()["limit"]) == (1, 0)
    assert result.describe() == "missed_starts == 0: 1, failed"


def test_describe_is_one_readable_line() -> None:
    """describe() shows the expression, the observed value with its unit, and the verdict."""
    (result,) = evaluate([parse_threshold("flows_per_second > 99")], _snapshot())
    assert result.describe() == "flows_per_second > 99: 100 flows/s, passed"


def test_threshold_is_immutable() -> None:
    """Parsed thresholds are frozen."""
    threshold = parse_threshold("error_rate < 1%")
    assert isinstance(threshold, Threshold)
    with pytest.raises(AttributeError):
        threshold.limit = 0.5  # type: ignore[misc]


def test_exit_codes_are_distinct() -> None:
    """Every exit code has its own value, and OK is zero."""
    codes = [code.value for code in exitcodes.ExitCode]
    assert len(set(codes)) == len(codes)
    assert exitcodes.OK == 0
    assert exitcodes.THRESHOLDS_FAILED == 99
