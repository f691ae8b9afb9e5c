"""Journeys: their users, the step catalogue and expectations, validated with key paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowengine.errors import ScenarioError
from flowengine.spec import (
    Delete,
    Enroll,
    Expectation,
    ExpireMfaToken,
    Journey,
    LatencyBound,
    ListAuthenticators,
    ListedUsers,
    Login,
    PatternUsers,
    Push,
    RecoveryCode,
    Refresh,
    Repeat,
    Step,
    Userinfo,
    UserSpec,
    Wait,
    WrongCode,
    parse_scenario,
)

SOURCE = "flows/x.yaml"
GROUP = {"count": 2, "pattern": "j{n}@example.test", "password": "J-{n}"}
SUCCESS = Expectation(outcome="success")


def journeys(*items: dict[str, Any], users: Any = None) -> tuple[Journey, ...]:
    data: dict[str, Any] = {"journeys": list(items)}
    if users is not None:
        data["users"] = users
    return parse_scenario(data, source=SOURCE, base_dir=".", env={}).journeys  # type: ignore[arg-type]


def error(*items: dict[str, Any], users: Any = None) -> str:
    with pytest.raises(ScenarioError) as info:
        journeys(*items, users=users)
    return str(info.value)


def journey(*steps: Any, **extra: Any) -> dict[str, Any]:
    return {"name": "j", "users": GROUP, "steps": list(steps), **extra}


def step(item: Any) -> Step:
    return journeys(journey(item))[0].steps[0]


def step_error(item: Any) -> str:
    return error(journey(item))


# --- the journey and its users -------------------------------------------------------------


def test_journey_fields() -> None:
    """A journey has a name, a description, users, steps and a path."""
    (parsed,) = journeys(journey("refresh", description="Renew tokens."))
    assert (parsed.name, parsed.description, parsed.path) == ("j", "Renew tokens.", "journeys[0]")
    assert parsed.users == PatternUsers(pattern="j{n}@example.test", password="J-{n}", count=2)
    assert parsed.steps == (Refresh(path="journeys[0].steps[0]", expect=SUCCESS),)


def test_journey_only_scenario_runs_without_load() -> None:
    """Journeys alone are a scenario."""
    scenario = parse_scenario(
        {"journeys": [journey("refresh")]}, source=SOURCE, base_dir=Path(), env={}
    )
    assert scenario.load is None


def test_listed_users_with_journey_password() -> None:
    """Listed names take the journey's password."""
    (parsed,) = journeys(journey("refresh", users=["a@x.test", "b@x.test"], password="pw"))
    assert list(parsed.users.iter_users()) == [
        UserSpec(username="a@x.test", password="pw"),
        UserSpec(username="b@x.test", password="pw"),
    ]


def test_listed_users_from_population_pattern() -> None:
    """A listed population user takes its password from the population."""
    (parsed,) = journeys(journey("refresh", users=["user7@example.test"]))
    assert list(parsed.users.iter_users()) == [
        UserSpec(username="user7@example.test", password="Passw0rd!7", phone="+15550000007")
    ]


def test_listed_user_not_in_population() -> None:
    """A listed stranger needs a password."""
    assert error(journey("refresh", users=["eve@x.test"])) == (
        "flows/x.yaml: journeys[0].users[0]: 'eve@x.test' is not in the population; give a password"
    )


def test_users_from_population() -> None:
    """{from: population} takes a window of the population."""
    population = {"pattern": "p{n}", "password": "x", "count": 10}
    (parsed,) = journeys(
        journey("refresh", users={"from": "population", "count": 3, "skip": 4}), users=population
    )
    assert [u.username for u in parsed.users.iter_users()] == ["p5", "p6", "p7"]


def test_users_from_population_too_many() -> None:
    """A window past the population's end is refused."""
    population = {"pattern": "p{n}", "password": "x", "count": 10}
    assert error(
        journey("refresh", users={"from": "population", "count": 8, "skip": 4}), users=population
    ) == ("flows/x.yaml: journeys[0].users.count: asks for users 5..12; the population has 10")


def test_users_from_unknown_source() -> None:
    """from: takes population only."""
    assert "journeys[0].users.from: unknown user source 'csv'" in error(
        journey("refresh", users={"from": "csv", "count": 1})
    )


def test_password_with_pattern_users_refused() -> None:
    """A journey password applies to listed users only."""
    assert error(journey("refresh", password="pw")) == (
        "flows/x.yaml: journeys[0].password: applies only to a list of users;"
        " put the password in users"
    )


def test_listed_user_mapping() -> None:
    """Listed users may be mappings with their own password and phone."""
    users = [{"username": "a", "password": "pa", "phone": "+15550000009", "factor": "sms"}]
    (parsed,) = journeys(journey("refresh", users=users))
    assert list(parsed.users.iter_users()) == [
        UserSpec(username="a", password="pa", phone="+15550000009", factor_hint="sms")
    ]


def test_journey_missing_steps() -> None:
    """steps is required."""
    assert (
        error({"name": "j", "users": GROUP})
        == "flows/x.yaml: journeys[0]: missing required key 'steps'"
    )


def test_journey_empty_steps() -> None:
    """An empty step list is refused."""
    assert (
        error(journey())
        == "flows/x.yaml: journeys[0].steps: expected at least one step, got an empty list"
    )


def test_journey_bad_name() -> None:
    """Names are short and plain."""
    assert error(journey("refresh", name="a b")) == (
        "flows/x.yaml: journeys[0].name: expected letters, digits, '-', '_' or '.' (at most 64)"
    )


def test_duplicate_journey_names() -> None:
    """Two journeys may not share a name."""
    other = {**journey("refresh"), "users": ["user1@example.test"]}
    assert (
        error(journey("refresh"), other)
        == "flows/x.yaml: journeys[1].name: another journey is named 'j'"
    )


def test_journeys_share_no_user() -> None:
    """Concurrent groups may not share a user."""
    second = {**journey("refresh"), "name": "k", "users": ["j2@example.test"], "password": "x"}
    assert error(journey("refresh"), second) == (
        "flows/x.yaml: journeys[1].users: 'j2@example.test' is also in journeys[0];"
        " journeys run at the same time"
    )


def test_unknown_journey_key() -> None:
    """A misspelt journey key gets a suggestion."""
    assert (
        error(journey("refresh", stpes=[]))
        == "flows/x.yaml: journeys[0].stpes: unknown key; did you mean 'steps'?"
    )


def test_journeys_must_be_a_list() -> None:
    """journeys: is a list."""
    with pytest.raises(
        ScenarioError, match=r"journeys: expected a list of journeys, got a mapping"
    ):
        parse_scenario({"journeys": {"a": 1}}, source=SOURCE, base_dir=Path(), env={})


# --- the step catalogue --------------------------------------------------------------------

P = "journeys[0].steps[0]"
FAILED = Expectation(outcome="failed")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"login": "otp"}, Login(path=P, expect=SUCCESS, factor="otp")),
        ({"login": "any"}, Login(path=P, expect=SUCCESS, factor="any")),
        ({"enroll": "recovery-code"}, Enroll(path=P, expect=SUCCESS, factor="recovery-code")),
        (
            {"wrong_code": {"factor": "sms", "times": 3}},
            WrongCode(path=P, expect=FAILED, factor="sms", times=3),
        ),
        ({"wrong_code": "otp"}, WrongCode(path=P, expect=FAILED, factor="otp", times=1)),
        ({"expire_mfa_token": {}}, ExpireMfaToken(path=P, expect=FAILED)),
        (
            {"expire_mfa_token": {"factor": "email"}},
            ExpireMfaToken(path=P, expect=FAILED, factor="email"),
        ),
        ({"recovery_code": {}}, RecoveryCode(path=P, expect=SUCCESS)),
        ({"push": "reject"}, Push(path=P, answer="reject")),
        ({"push": "manual"}, Push(path=P, answer="manual")),
        ({"list_authenticators": None}, ListAuthenticators(path=P, expect=SUCCESS)),
        ({"delete": "sms"}, Delete(path=P, expect=SUCCESS, factor="sms")),
        ({"delete": "sms|dev_abc"}, Delete(path=P, expect=SUCCESS, authenticator_id="sms|dev_abc")),
        ({"delete": "all"}, Delete(path=P, expect=SUCCESS)),
        ({"refresh": {}}, Refresh(path=P, expect=SUCCESS)),
        ({"userinfo": {}}, Userinfo(path=P, expect=SUCCESS)),
        ({"wait": "2s"}, Wait(path=P, seconds=2.0)),
        ("userinfo", Userinfo(path=P, expect=SUCCESS)),
    ],
)
def test_step_catalogue(item: Any, expected: Step) -> None:
    """Each step parses into its class with its argument and default expectation."""
    assert step(item) == expected


def test_repeat_nests_steps() -> None:
    """repeat holds its own steps, with nested key paths."""
    parsed = step({"repeat": {"times": 2, "steps": ["refresh", {"wait": "1s"}]}})
    assert parsed == Repeat(
        path=P,
        times=2,
        steps=(
            Refresh(path=f"{P}.repeat.steps[0]", expect=SUCCESS),
            Wait(path=f"{P}.repeat.steps[1]", seconds=1.0),
        ),
    )


def test_delete_all_flag() -> None:
    """delete: all deletes every authenticator."""
    parsed = step({"delete": "all"})
    assert isinstance(parsed, Delete)
    assert parsed.deletes_all


def test_step_name_and_label() -> None:
    """A step's label is its name, else its kind and argument."""
    assert step({"name": "first sms", "enroll": "sms"}).label == "first sms"
    assert step({"wrong_code": {"factor": "sms", "times": 3}}).label == "wrong_code sms x3"


def test_unknown_step_suggests() -> None:
    """A misspelt step gets a suggestion and its key path."""
    assert (
        step_error({"enrol": "sms"})
        == f"flows/x.yaml: {P}.enrol: unknown step; did you mean 'enroll'?"
    )


def test_unknown_step_lists_steps() -> None:
    """A step far from any lists the catalogue."""
    assert step_error({"dance": 1}).startswith(
        f"flows/x.yaml: {P}.dance: unknown step; expected one of delete, enroll"
    )


def test_unknown_factor() -> None:
    """An unknown factor lists the known ones."""
    assert step_error({"enroll": "smss"}) == (
        f"flows/x.yaml: {P}.enroll: unknown factor 'smss';"
        " expected one of email, otp, push, recovery-code, sms, voice"
    )


def test_login_any_only_for_login() -> None:
    """enroll: any makes no sense."""
    assert "unknown factor 'any'" in step_error({"enroll": "any"})


def test_two_steps_in_one_item() -> None:
    """One step per item."""
    assert (
        step_error({"login": "otp", "refresh": {}})
        == f"flows/x.yaml: {P}: one step per list item, got login and refresh"
    )


def test_missing_step() -> None:
    """A name alone is not a step."""
    assert step_error({"name": "x"}).startswith(
        f"flows/x.yaml: {P}: missing the step: one of delete"
    )


def test_bare_string_step_must_exist() -> None:
    """A bare unknown string is not a step."""
    assert step_error("dance").startswith(f"flows/x.yaml: {P}: expected a step: one of delete")


def test_step_without_argument_refuses_one() -> None:
    """refresh takes no argument."""
    assert step_error({"refresh": "now"}) == (
        f"flows/x.yaml: {P}.refresh: takes no argument; write {{}} or nothing, got 'now'"
    )


def test_wrong_code_needs_a_code_factor() -> None:
    """push has no code to get wrong."""
    assert step_error({"wrong_code": {"factor": "push"}}) == (
        f"flows/x.yaml: {P}.wrong_code.factor: push has no code to get wrong;"
        " expected one of email, otp, recovery-code, sms, voice"
    )


def test_wrong_code_times_bounded() -> None:
    """times is between 1 and 100."""
    assert step_error({"wrong_code": {"factor": "sms", "times": 0}}) == (
        f"flows/x.yaml: {P}.wrong_code.times: expected a number of wrong codes from 1 to 100, got 0"
    )


def test_unknown_push_answer() -> None:
    """push answers are approve, reject, ignore or manual."""
    assert step_error({"push": "accept"}) == (
        f"flows/x.yaml: {P}.push: unknown push answer 'accept';"
        " expected one of approve, ignore, manual, reject"
    )


def test_delete_bad_authenticator_id() -> None:
    """An id must carry a known prefix."""
    assert f"{P}.delete: expected an authenticator id starting with one of totp|" in step_error(
        {"delete": "phone|dev_1"}
    )


def test_delete_unknown_factor() -> None:
    """delete: takes a factor, an id or all."""
    assert step_error({"delete": "smss"}).startswith(
        f"flows/x.yaml: {P}.delete: unknown factor 'smss'; expected a factor"
    )


def test_bad_wait() -> None:
    """wait takes a duration."""
    assert step_error({"wait": "soon"}) == (
        f"flows/x.yaml: {P}.wait: expected a duration (like 250ms, 30s, 2m or 1h), got 'soon'"
    )


def test_repeat_needs_times() -> None:
    """repeat requires times and steps."""
    assert (
        step_error({"repeat": {"steps": ["refresh"]}})
        == f"flows/x.yaml: {P}.repeat: missing required key 'times'"
    )


def test_repeat_depth_limited() -> None:
    """repeat blocks nest at most eight deep."""
    item: Any = "refresh"
    for _ in range(10):
        item = {"repeat": {"times": 1, "steps": [item]}}
    assert "repeat blocks nest more than 8 deep" in step_error(item)


def test_error_inside_repeat_has_nested_path() -> None:
    """A bad nested step names the whole path."""
    assert step_error({"repeat": {"times": 2, "steps": ["refresh", {"login": "sm"}]}}).startswith(
        f"flows/x.yaml: {P}.repeat.steps[1].login: unknown factor 'sm'"
    )


# --- expectations ----------------------------------------------------------------------------


def test_full_expectation() -> None:
    """Every expectation key is read."""
    parsed = step(
        {
            "login": "sms",
            "expect": {
                "outcome": "failed",
                "error": "invalid_grant",
                "latency": "< 2s",
                "recovery_code": "unchanged",
            },
        }
    )
    assert parsed.expect == Expectation(
        outcome="failed",
        error="invalid_grant",
        recovery_code="unchanged",
        latency=LatencyBound(seconds=2.0),
    )


def test_error_code_implies_failure() -> None:
    """An error code without outcome means failed."""
    parsed = step({"login": "push", "expect": {"error": "access_denied"}})
    assert parsed.expect == Expectation(outcome="failed", error="access_denied")


def test_authenticators_count() -> None:
    """list_authenticators may expect a count."""
    parsed = step({"list_authenticators": {}, "expect": {"authenticators": 2}})
    assert parsed.expect == Expectation(authenticators=2)


def test_inclusive_latency_bound() -> None:
    """<= is inclusive."""
    bound = LatencyBound(seconds=0.5, inclusive=True)
    parsed = step({"refresh": {}, "expect": {"latency": "<= 500ms"}})
    assert parsed.expect == Expectation(latency=bound)
    assert (bound.holds(0.5), LatencyBound(seconds=0.5).holds(0.5), str(bound)) == (
        True,
        False,
        "<= 0.5s",
    )


def test_bad_latency_bound() -> None:
    """A latency needs an operator."""
    assert step_error({"refresh": {}, "expect": {"latency": "2s"}}) == (
        f"flows/x.yaml: {P}.expect.latency: expected a bound like '< 2s' or '<= 500ms', got '2s'"
    )


def test_unknown_expectation_suggests() -> None:
    """A misspelt expectation gets a suggestion."""
    assert step_error({"login": "otp", "expect": {"outcom": "success"}}) == (
        f"flows/x.yaml: {P}.expect.outcom: unknown expectation; did you mean 'outcome'?"
    )


def test_expectation_not_for_this_step() -> None:
    """authenticators applies to list_authenticators only."""
    assert step_error({"login": "otp", "expect": {"authenticators": 1}}) == (
        f"flows/x.yaml: {P}.expect.authenticators: does not apply to login;"
        " expected one of error, latency, outcome, recovery_code"
    )


def test_unknown_outcome() -> None:
    """Outcomes are success, failed, locked or timeout."""
    assert step_error({"login": "otp", "expect": {"outcome": "ok"}}) == (
        f"flows/x.yaml: {P}.expect.outcome: unknown outcome 'ok';"
        " expected one of failed, locked, success, timeout"
    )


def test_misspelt_error_code() -> None:
    """An error code close to a known one is a typo."""
    assert step_error({"login": "otp", "expect": {"error": "invalid_grnat"}}) == (
        f"flows/x.yaml: {P}.expect.error: unknown error code 'invalid_grnat';"
        " did you mean 'invalid_grant'?"
    )


def test_other_error_codes_accepted() -> None:
    """An error code far from known ones is taken as given."""
    assert step({"login": "otp", "expect": {"error": "quota_exceeded"}}).expect == Expectation(
        outcome="failed", error="quota_exceeded"
    )


def test_malformed_error_code() -> None:
    """Error codes are snake_case."""
    assert (
        f"{P}.expect.error: expected an error code like invalid_grant, got 'Invalid Grant'"
        in step_error({"login": "otp", "expect": {"error": "Invalid Grant"}})
    )


def test_success_with_error_code_contradicts() -> None:
    """outcome success and an error code cannot both hold."""
    assert step_error(
        {"login": "otp", "expect": {"outcome": "success", "error": "invalid_grant"}}
    ) == (f"flows/x.yaml: {P}.expect.error: an error code contradicts outcome: success")


def test_no_expectation_on_wait() -> None:
    """wait, push and repeat take no expectation."""
    assert step_error({"wait": "1s", "expect": {"outcome": "success"}}) == (
        f"flows/x.yaml: {P}.expect: wait takes no expectation"
    )


def test_recovery_code_expectation_values() -> None:
    """recovery_code is issued or unchanged."""
    assert "unknown recovery_code expectation 'new'" in step_error(
        {"recovery_code": {}, "expect": {"recovery_code": "new"}}
    )


def test_listed_users_type() -> None:
    """Listed journey users are a ListedUsers source."""
    (parsed,) = journeys(journey("refresh", users=["a"], password="p"))
    assert isinstance(parsed.users, ListedUsers)
