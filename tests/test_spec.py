"""Scenario files: every top-level key, durations and rates, env expansion, YAML errors."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from flowengine.errors import ConfigError, ScenarioError
from flowengine.spec import (
    DEFAULT_CREDENTIALS,
    DEFAULT_POPULATION,
    ClosedLoad,
    FactorMix,
    OpenLoad,
    PushPolicy,
    Scenario,
    Stage,
    ThinkTime,
    TimeoutSpec,
    load_scenario,
    parse_duration,
    parse_rate,
    parse_scenario,
)

DATA = Path(__file__).parent / "data" / "scenarios"
SOURCE = "flows/x.yaml"
LOAD = {"users": 1, "iterations": 1}
TARGET = {"domain": "tenant.eu.auth0.com", "client_id": "abc", "client_secret": "${SECRET}"}
SECRET = "s3cr3t-Xyzzy-9f1c"


def parse(data: Any, *, env: dict[str, str] | None = None, base_dir: Path = DATA) -> Scenario:
    return parse_scenario(data, source=SOURCE, base_dir=base_dir, env=env or {})


def error(data: Any, *, env: dict[str, str] | None = None, base_dir: Path = DATA) -> str:
    with pytest.raises(ScenarioError) as info:
        parse(data, env=env, base_dir=base_dir)
    return str(info.value)


def with_target(**target: Any) -> dict[str, Any]:
    return {"target": {**TARGET, **target}, "users": {"csv": "users.csv"}, "load": LOAD}


ENV = {"SECRET": SECRET}


# --- durations and rates ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30),
        ("2m", 120),
        ("1h", 3600),
        ("1m30s", 90),
        ("1.5s", 1.5),
        ("10", 10),
        (5, 5),
        (0.5, 0.5),
        (" 2 m ", 120),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    """Durations take ms, s, m, h, compounds, and bare numbers of seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["fast", "-1s", "1d", "", "s", "1e400", True, None, float("nan"), "1_000"]
)
def test_parse_duration_refuses(text: Any) -> None:
    """Anything else is a ValueError."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "rate"),
    [("10/s", 10), ("600/m", 10), ("36000/h", 10), (100, 100), ("2.5", 2.5), ("5 / s", 5)],
)
def test_parse_rate(text: str | float, rate: float) -> None:
    """Rates are per second, per minute, per hour, or a bare number per second."""
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["10/ms", "fast", -1, True, "10/", "/s", float("inf")])
def test_parse_rate_refuses(text: Any) -> None:
    """Anything else is a ValueError."""
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate(text)


# --- defaults and top-level keys ---------------------------------------------------------


def test_minimal_scenario_defaults() -> None:
    """A load alone runs against the emulator with documented defaults."""
    scenario = parse({"load": LOAD})
    assert (scenario.name, scenario.description, scenario.target) == ("x", "", None)
    assert scenario.users == DEFAULT_POPULATION
    assert scenario.factors == FactorMix(weights=(("otp", 1.0),))
    assert scenario.enrollment == "enroll"
    assert scenario.push == PushPolicy(mode="approve")
    assert scenario.timeouts == TimeoutSpec(request=10.0, step=None, flow=60.0)
    assert (scenario.thresholds, scenario.credentials, scenario.seed) == (
        (),
        DEFAULT_CREDENTIALS,
        None,
    )
    assert (scenario.emulator_settings, scenario.journeys, scenario.uses_emulator) == ({}, (), True)


def test_name_and_description() -> None:
    """name and description are read as given."""
    scenario = parse({"name": "quickstart", "description": "Every factor.", "load": LOAD})
    assert (scenario.name, scenario.description) == ("quickstart", "Every factor.")


def test_name_must_be_a_string() -> None:
    """A number as name is refused with a hint to quote it."""
    assert error({"name": 12, "load": LOAD}) == (
        "flows/x.yaml: name: expected a scenario name, got 12 (quote it to make it a string)"
    )


def test_top_level_must_be_a_mapping() -> None:
    """A list at the top level is refused."""
    assert (
        error([1, 2])
        == "flows/x.yaml: expected a mapping of scenario keys at the top level, got a list"
    )


def test_unknown_top_level_key_suggests() -> None:
    """A misspelt key gets a suggestion."""
    assert error({"lod": LOAD}) == "flows/x.yaml: lod: unknown key; did you mean 'load'?"


def test_unknown_key_without_suggestion_lists_keys() -> None:
    """A key far from any gets the list of keys."""
    message = error({"load": LOAD, "zzzzzz": 1})
    assert message.startswith(
        "flows/x.yaml: zzzzzz: unknown key; expected one of credentials, description"
    )


def test_odd_keys_are_quoted_in_paths() -> None:
    """A key that is not an identifier is quoted in the key path."""
    assert error({"load": {**LOAD, "a b": 1}}).startswith("flows/x.yaml: load['a b']: unknown key")


def test_nothing_to_run() -> None:
    """A scenario without load or journeys is refused."""
    assert error({"name": "idle"}) == "flows/x.yaml: nothing to run: give load, journeys or both"


def test_errors_are_config_errors() -> None:
    """ScenarioError is a ConfigError carrying source and path."""
    with pytest.raises(ConfigError) as info:
        parse({"load": {**LOAD, "users": 0}})
    assert isinstance(info.value, ScenarioError)
    assert (info.value.source, info.value.path) == (SOURCE, "load.users")


# --- target ------------------------------------------------------------------------------


def test_target_domain_implies_https() -> None:
    """domain: becomes an https base_url."""
    target = parse(with_target(), env=ENV).target
    assert target is not None
    assert (target.base_url, target.client_id, target.client_secret) == (
        "https://tenant.eu.auth0.com",
        "abc",
        SECRET,
    )
    assert (target.host, target.is_loopback) == ("tenant.eu.auth0.com", False)


def test_target_every_key() -> None:
    """Every target key is read."""
    target = parse(
        with_target(
            auth_method="client_secret_basic",
            audience="https://api.example.test/",
            scope="openid offline_access",
            realm="Username-Password-Authentication",
        ),
        env=ENV,
    ).target
    assert target is not None
    assert (target.auth_method, target.audience, target.scope, target.realm) == (
        "client_secret_basic",
        "https://api.example.test/",
        "openid offline_access",
        "Username-Password-Authentication",
    )


def test_base_url_trailing_slash_stripped() -> None:
    """base_url loses its trailing slash."""
    data = with_target()
    data["target"] = {**TARGET, "base_url": "https://login.example.test/"}
    del data["target"]["domain"]
    target = parse(data, env=ENV).target
    assert target is not None
    assert target.base_url == "https://login.example.test"


def test_plain_http_allowed_on_loopback() -> None:
    """An emulator on 127.0.0.1 may be reached over http."""
    data = with_target()
    data["target"] = {
        "base_url": "http://127.0.0.1:8080",
        "client_id": "flowengine",
        "auth_method": "none",
    }
    target = parse(data).target
    assert target is not None
    assert (target.base_url, target.is_loopback) == (
        "http://127.0.0.1:8080",
        True,
    )


def test_plain_http_refused_elsewhere() -> None:
    """http to a remote host is refused."""
    data = with_target()
    data["target"] = {
        "base_url": "http://tenant.auth0.com",
        "client_id": "x",
        "auth_method": "none",
    }
    assert error(data) == (
        "flows/x.yaml: target.base_url: plain http is allowed only for loopback hosts"
        " (localhost, 127.0.0.1, ::1); use https"
    )


def test_base_url_and_domain_together_refused() -> None:
    """Giving both base_url and domain is an error."""
    data = with_target(base_url="https://tenant.eu.auth0.com")
    assert error(data, env=ENV) == "flows/x.yaml: target.domain: give base_url or domain, not both"


def test_base_url_with_path_refused() -> None:
    """A base_url with a path is refused."""
    data = with_target()
    data["target"] = {**TARGET, "base_url": "https://x.test/oauth/token"}
    del data["target"]["domain"]
    assert (
        "target.base_url: expected a URL like https://tenant.eu.auth0.com without a path"
        in error(data, env=ENV)
    )


def test_base_url_with_credentials_refused() -> None:
    """user:password@host in base_url is refused without echoing it."""
    data = with_target()
    data["target"] = {**TARGET, "base_url": "https://me:hunter2@x.test"}
    del data["target"]["domain"]
    message = error(data, env=ENV)
    assert "must not contain credentials" in message
    assert "hunter2" not in message


def test_domain_with_scheme_refused() -> None:
    """domain: must be bare."""
    assert "target.domain: expected a domain like" in error(
        with_target(domain="https://x.test"), env=ENV
    )


def test_missing_client_secret() -> None:
    """A confidential client needs a secret."""
    data = with_target()
    del data["target"]["client_secret"]
    assert error(data) == (
        "flows/x.yaml: target: missing 'client_secret' (needed by auth_method client_secret_post);"
        " write client_secret: ${AUTH0_CLIENT_SECRET}"
    )


def test_auth_method_none_refuses_secret() -> None:
    """auth_method none with a secret is a contradiction."""
    assert error(with_target(auth_method="none"), env=ENV) == (
        "flows/x.yaml: target.client_secret: auth_method none sends no secret; remove it"
    )


def test_unknown_auth_method() -> None:
    """auth_method is one of three."""
    assert error(with_target(auth_method="jwt"), env=ENV) == (
        "flows/x.yaml: target.auth_method: unknown auth_method 'jwt'; expected one of"
        " client_secret_basic, client_secret_post, none"
    )


def test_tls_verification_cannot_be_disabled() -> None:
    """verify: false gets a clear refusal."""
    assert "TLS verification is always on" in error(with_target(verify=False), env=ENV)


def test_ca_bundle_resolves_against_scenario_dir(tmp_path: Path) -> None:
    """ca_bundle is a file next to the scenario."""
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "users.csv").write_text("username,password\na,b\n")
    target = parse(with_target(ca_bundle="ca.pem"), env=ENV, base_dir=tmp_path).target
    assert target is not None
    assert target.ca_bundle == tmp_path / "ca.pem"


def test_ca_bundle_missing() -> None:
    """A missing ca_bundle is refused."""
    assert error(with_target(ca_bundle="nope.pem"), env=ENV).endswith(
        "nope.pem' is not a readable file"
    )


def test_target_repr_hides_secret() -> None:
    """The client secret is not in the scenario's repr."""
    assert SECRET not in repr(parse(with_target(), env=ENV))


def test_users_required_with_target_and_load() -> None:
    """Against a real tenant the population must be given."""
    data = with_target()
    del data["users"]
    assert error(data, env=ENV) == (
        "flows/x.yaml: missing 'users' (who logs in): required with a target and a load"
    )


# --- environment ------------------------------------------------------------------------


def test_env_reference_expands() -> None:
    """${NAME} is replaced by the variable."""
    assert parse({"name": "${N}", "load": LOAD}, env={"N": "nightly"}).name == "nightly"


def test_env_default_when_unset() -> None:
    """${NAME:-default} falls back when unset."""
    assert parse({"name": "${N:-dflt}", "load": LOAD}).name == "dflt"


def test_env_default_when_empty() -> None:
    """${NAME:-default} falls back when empty, like the shell."""
    assert parse({"name": "${N:-dflt}", "load": LOAD}, env={"N": ""}).name == "dflt"


def test_env_embedded_in_text() -> None:
    """References may sit inside text, several times."""
    assert parse({"name": "a-${X}-${Y}", "load": LOAD}, env={"X": "1", "Y": "2"}).name == "a-1-2"


def test_env_escape() -> None:
    """$${ is a literal ${."""
    assert parse({"description": "cost $${X}", "load": LOAD}).description == "cost ${X}"


def test_env_missing_variable() -> None:
    """A missing variable names the key path and the variable."""
    assert error(with_target()) == (
        "flows/x.yaml: target.client_secret: environment variable SECRET is not set"
        " (write ${SECRET:-default} to give a default)"
    )


def test_env_malformed_reference() -> None:
    """${not a name} is refused."""
    assert "malformed environment reference '${a b}'" in error({"name": "${a b}", "load": LOAD})


def test_env_unterminated_reference() -> None:
    """A lone ${ is refused."""
    assert "unterminated '${'" in error({"name": "x${", "load": LOAD})


def test_env_numbers() -> None:
    """A number may come from the environment."""
    scenario = parse({"load": {"users": "${VUS}", "duration": "${D}"}}, env={"VUS": "7", "D": "5s"})
    assert isinstance(scenario.load, ClosedLoad)
    assert (
        scenario.load.users,
        scenario.load.duration,
    ) == (7, 5)


def test_env_value_not_shown_in_errors() -> None:
    """A bad value from the environment is shown as its reference, not its value."""
    message = error({"load": {"rate": "${RATE}", "duration": "1s"}}, env={"RATE": SECRET})
    assert message == (
        "flows/x.yaml: load.rate: expected a positive number of flows per second"
        " (like 100/s, 600/m or 100), got '${RATE}' (the environment's value is not shown)"
    )


def test_secret_not_shown_when_wrong_type() -> None:
    """A secret of the wrong type is described without its value."""
    message = error(with_target(client_secret=918273645))
    assert "expected a client secret" in message
    assert "918273645" not in message


# --- load --------------------------------------------------------------------------------


def test_closed_load_every_key() -> None:
    """A closed load reads users, ramp_up, duration, iterations and think_time."""
    load = parse(
        {
            "load": {
                "model": "closed",
                "users": 50,
                "ramp_up": "25/s",
                "duration": "30s",
                "iterations": 500,
                "think_time": "0.5s..2s",
            }
        }
    ).load
    assert load == ClosedLoad(
        users=50,
        ramp_up=25.0,
        duration=30.0,
        iterations=500,
        think_time=ThinkTime(low=0.5, high=2.0),
    )


def test_think_time_constant() -> None:
    """A single think time is a degenerate range."""
    load = parse({"load": {**LOAD, "think_time": "250ms"}}).load
    assert isinstance(load, ClosedLoad)
    assert load.think_time == ThinkTime(low=0.25, high=0.25)


def test_think_time_sample_in_range() -> None:
    """A sampled pause lies within the range."""
    rng = random.Random(1)
    assert all(0.5 <= ThinkTime(low=0.5, high=2.0).sample(rng) <= 2.0 for _ in range(100))


def test_think_time_inverted_range() -> None:
    """low above high is refused."""
    assert "load.think_time: the range's low end is above its high end" in error(
        {"load": {**LOAD, "think_time": "2s..1s"}}
    )


def test_open_load_constant_rate() -> None:
    """An open load with a rate and a duration."""
    load = parse(
        {"load": {"model": "open", "rate": 100, "duration": "1m", "max_in_flight": 2000}}
    ).load
    assert load == OpenLoad(rate=100.0, max_in_flight=2000, duration=60.0)


def test_open_model_inferred_from_rate() -> None:
    """rate without model means open."""
    assert isinstance(parse({"load": {"rate": "600/m", "iterations": 10}}).load, OpenLoad)


def test_open_load_stages_set_duration() -> None:
    """Stages ramp from rate and sum to the duration."""
    load = parse(
        {
            "load": {
                "stages": [
                    {"duration": "10s", "target": "200/s"},
                    {"duration": "20s", "target": "200/s"},
                ]
            }
        }
    ).load
    assert load == OpenLoad(
        rate=0.0,
        stages=(Stage(duration=10, target=200), Stage(duration=20, target=200)),
        duration=30.0,
    )


def test_rate_at_follows_stages() -> None:
    """rate_at interpolates linearly and holds the last target."""
    load = OpenLoad(rate=10, stages=(Stage(duration=10, target=110), Stage(duration=10, target=0)))
    assert [load.rate_at(t) for t in (0, 5, 10, 15, 20, 99)] == [10, 60, 110, 55, 0, 0]


def test_stages_and_duration_refused() -> None:
    """Stages already set the duration."""
    assert error({"load": {"stages": [{"duration": 1, "target": 1}], "duration": 5}}) == (
        "flows/x.yaml: load.duration: the stages set the duration; remove duration"
    )


def test_stage_error_has_index_path() -> None:
    """A bad stage names its index."""
    message = error(
        {"load": {"stages": [{"duration": "1s", "target": 1}, {"duration": "soon", "target": 1}]}}
    )
    assert message.startswith("flows/x.yaml: load.stages[1].duration: expected a positive duration")


def test_stages_never_above_zero() -> None:
    """A ramp that stays at zero is refused."""
    assert "the rate never rises above zero" in error(
        {"load": {"stages": [{"duration": 1, "target": 0}]}}
    )


def test_bad_rate_message() -> None:
    """The rate error says what a rate looks like."""
    assert error({"load": {"rate": "fast", "duration": "1s"}}) == (
        "flows/x.yaml: load.rate: expected a positive number of flows per second"
        " (like 100/s, 600/m or 100), got 'fast'"
    )


def test_key_of_other_model_refused() -> None:
    """users in an open load is refused."""
    assert error({"load": {"model": "open", "rate": 1, "users": 5, "duration": 1}}) == (
        "flows/x.yaml: load.users: belongs to the closed model, and this load is open"
    )


def test_unbounded_load_refused() -> None:
    """A load needs duration or iterations."""
    assert error({"load": {"users": 5}}) == (
        "flows/x.yaml: load: give duration, iterations or both, so that the run ends"
    )


def test_unknown_model() -> None:
    """model is closed or open."""
    assert "load.model: unknown load model 'ramp'; expected one of closed, open" in error(
        {"load": {**LOAD, "model": "ramp"}}
    )


def test_boolean_is_not_a_number() -> None:
    """users: true is refused."""
    assert error({"load": {"users": True, "iterations": 1}}) == (
        "flows/x.yaml: load.users: expected a positive number of virtual users, got true"
    )


def test_more_virtual_users_than_population() -> None:
    """Each virtual user needs its own users."""
    data = {
        "users": {"pattern": "u{n}", "password": "p", "count": 3},
        "load": {"users": 5, "iterations": 1},
    }
    assert error(data) == (
        "flows/x.yaml: load.users: 5 virtual users need at least as many users;"
        " the population has 3"
    )


# --- factors, enrollment, push --------------------------------------------------------------


def test_factor_weights() -> None:
    """A mapping gives weights."""
    mix = parse({"load": LOAD, "factors": {"otp": 3, "sms": 1, "push": 0}}).factors
    assert mix.weights == (("otp", 3.0), ("sms", 1.0), ("push", 0.0))
    assert (mix.names, mix.share("otp")) == (("otp", "sms"), 0.75)


def test_factor_list_equal_weights() -> None:
    """A list gives equal weights."""
    assert parse({"load": LOAD, "factors": ["otp", "email"]}).factors.weights == (
        ("otp", 1.0),
        ("email", 1.0),
    )


def test_factor_single_name() -> None:
    """One name is one factor."""
    assert parse({"load": LOAD, "factors": "sms"}).factors.names == ("sms",)


def test_factor_choose_follows_weights() -> None:
    """choose never picks a zero weight and is repeatable with a seed."""
    mix = FactorMix(weights=(("otp", 1.0), ("sms", 0.0), ("push", 1.0)))
    picks = [mix.choose(random.Random(7)) for _ in range(3)]
    assert len(set(picks)) == 1
    assert "sms" not in {mix.choose(random.Random(i)) for i in range(200)}


def test_unknown_factor_weight_key() -> None:
    """A misspelt factor in the weights gets a suggestion."""
    assert error({"load": LOAD, "factors": {"smss": 1}}) == (
        "flows/x.yaml: factors.smss: unknown key; did you mean 'sms'?"
    )


def test_unknown_factor_in_list() -> None:
    """A misspelt factor in a list names its index."""
    assert error({"load": LOAD, "factors": ["otp", "totp"]}) == (
        "flows/x.yaml: factors[1]: unknown factor 'totp'; expected one of"
        " email, otp, push, recovery-code, sms, voice"
    )


def test_negative_weight() -> None:
    """Weights are not negative."""
    assert error({"load": LOAD, "factors": {"otp": -1}}) == (
        "flows/x.yaml: factors.otp: expected a weight (a number, 0 or more), got -1"
    )


def test_all_zero_weights() -> None:
    """At least one weight is positive."""
    assert error({"load": LOAD, "factors": {"otp": 0}}).endswith(
        "at least one factor needs a positive weight"
    )


def test_duplicate_factor_in_list() -> None:
    """A factor listed twice is refused."""
    assert (
        error({"load": LOAD, "factors": ["otp", "otp"]})
        == "flows/x.yaml: factors[1]: otp is listed twice"
    )


def test_enrollment_policy() -> None:
    """enrollment is enroll or require-enrolled."""
    assert parse({"load": LOAD, "enrollment": "require-enrolled"}).enrollment == "require-enrolled"


def test_unknown_enrollment_policy() -> None:
    """Other policies are refused."""
    assert "enrollment: unknown enrollment policy 'lazy'" in error(
        {"load": LOAD, "enrollment": "lazy"}
    )


def test_push_mapping() -> None:
    """push: {mode, after}."""
    push = parse({"load": LOAD, "push": {"mode": "reject", "after": "200ms"}}).push
    assert push == PushPolicy(mode="reject", after=0.2)


def test_push_string() -> None:
    """push: never is a mode."""
    assert parse({"load": LOAD, "push": "never"}).push == PushPolicy(mode="never")


def test_push_after_needs_automatic_mode() -> None:
    """after makes no sense for manual answers."""
    assert error({"load": LOAD, "push": {"mode": "manual", "after": "1s"}}) == (
        "flows/x.yaml: push.after: applies to approve and reject only, not manual"
    )


def test_push_defaults_to_manual_with_target() -> None:
    """Against a real tenant nobody answers pushes automatically."""
    assert parse(with_target(), env=ENV).push == PushPolicy(mode="manual")


# --- timeouts, thresholds, credentials, seed, emulator ------------------------------------


def test_timeouts() -> None:
    """request, step and flow are durations."""
    timeouts = parse(
        {"load": LOAD, "timeouts": {"request": "5s", "step": "20s", "flow": "1m"}}
    ).timeouts
    assert timeouts == TimeoutSpec(request=5, step=20, flow=60)


def test_timeout_longer_than_flow() -> None:
    """A request may not outlast its flow."""
    assert error({"load": LOAD, "timeouts": {"request": "2m"}}) == (
        "flows/x.yaml: timeouts.request: is longer than the flow timeout (60s)"
    )


def test_zero_timeout_refused() -> None:
    """Timeouts are positive."""
    assert "timeouts.flow: expected a positive duration" in error(
        {"load": LOAD, "timeouts": {"flow": 0}}
    )


def test_thresholds_kept_as_text() -> None:
    """Thresholds stay strings."""
    scenario = parse({"load": LOAD, "thresholds": ["p95(flow) < 800ms", "error_rate < 1%"]})
    assert scenario.thresholds == ("p95(flow) < 800ms", "error_rate < 1%")


def test_single_threshold_string() -> None:
    """One threshold may be written without a list."""
    assert parse({"load": LOAD, "thresholds": "error_rate < 1%"}).thresholds == ("error_rate < 1%",)


def test_bad_threshold_names_its_index() -> None:
    """An invalid threshold is caught with its key path."""
    message = error({"load": LOAD, "thresholds": ["error_rate < 1%", "p95(flow) < fast"]})
    assert message.startswith("flows/x.yaml: thresholds[1]: threshold 'p95(flow) < fast'")


@pytest.mark.parametrize("spec", ["memory", "sqlite:///.flowengine/c.db", "sqlite:////tmp/c.db"])
def test_credentials(spec: str) -> None:
    """memory and sqlite:/// URLs are kept for open_store."""
    assert parse({"load": LOAD, "credentials": spec}).credentials == spec


def test_bad_credentials() -> None:
    """Other stores are refused."""
    assert error({"load": LOAD, "credentials": "redis://x"}).startswith(
        "flows/x.yaml: credentials: expected memory or sqlite:///path"
    )


def test_seed() -> None:
    """seed is an integer."""
    assert parse({"load": LOAD, "seed": 42}).seed == 42


def test_seed_not_a_float() -> None:
    """A fractional seed is refused."""
    assert (
        error({"load": LOAD, "seed": 4.2}) == "flows/x.yaml: seed: expected a whole number, got 4.2"
    )


def test_emulator_settings_pass_through_expanded() -> None:
    """emulator.settings is passed through, with ${ENV} expanded."""
    settings = {"friendly_name": "${K}", "factors": ["otp", "sms"], "mfa_required": True}
    scenario = parse({"load": LOAD, "emulator": {"settings": settings}}, env={"K": "v"})
    assert scenario.emulator_settings == {
        "friendly_name": "v",
        "factors": ["otp", "sms"],
        "mfa_required": True,
    }


def test_emulator_settings_checked_by_the_emulator() -> None:
    """A setting the emulator refuses is reported with its key path."""
    message = error({"load": LOAD, "emulator": {"settings": {"mfa_required": "yes"}}})
    assert (
        message == "flows/x.yaml: emulator.settings.mfa_required: expected true or false, got 'yes'"
    )


def test_emulator_settings_refuse_odd_values() -> None:
    """Binary data is not a plain setting."""
    message = error({"load": LOAD, "emulator": {"settings": {"a": [b"x"]}}})
    assert message == (
        "flows/x.yaml: emulator.settings.a[0]: expected strings, numbers, booleans, lists or"
        " mappings, got binary data"
    )


def test_emulator_with_target_refused() -> None:
    """Emulator settings are meaningless against a real tenant."""
    data = {**with_target(), "emulator": {"settings": {}}}
    assert error(data, env=ENV) == (
        "flows/x.yaml: emulator: applies to the embedded emulator only; remove it or the target"
    )


def test_emulator_settings_bomb_refused() -> None:
    """A YAML alias bomb is refused rather than expanded."""
    layer: Any = ["x"] * 10
    for _ in range(6):
        layer = [layer] * 10
    assert "too large or too deeply nested" in error(
        {"load": LOAD, "emulator": {"settings": {"a": layer}}}
    )


# --- files -------------------------------------------------------------------------------


def test_load_good_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example file loads, with CSV users next to it."""
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", SECRET)
    scenario = load_scenario(DATA / "load.yaml")
    assert (scenario.name, scenario.users.count, scenario.load and scenario.load.model) == (
        "tenant-ramp",
        3,
        "open",
    )


def test_load_file_env_injected() -> None:
    """load_scenario takes an injected environment."""
    scenario = load_scenario(DATA / "load.yaml", env={"AUTH0_CLIENT_SECRET": SECRET})
    assert scenario.target is not None
    assert scenario.target.client_secret == SECRET


def test_broken_file_error() -> None:
    """The broken example fails with one clear error."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(DATA / "broken_journey.yaml", env={})
    assert str(info.value) == (
        f"{DATA / 'broken_journey.yaml'}: journeys[0].steps[3].enroll: unknown factor 'smss';"
        " expected one of email, otp, push, recovery-code, sms, voice"
    )


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "s.yaml"
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, env={})
    return str(info.value)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    """A syntax error names the line and column."""
    path = write(tmp_path, "load:\n  users: 1\n iterations: [1\n")
    assert load_error(path).startswith(f"{path}: line 3, column 2: invalid YAML:")


def test_yaml_error_does_not_quote_the_line(tmp_path: Path) -> None:
    """The offending line (which may hold a secret) is not echoed."""
    path = write(tmp_path, 'target: {client_secret: "hunter2\n')
    assert "hunter2" not in load_error(path)


def test_duplicate_key_refused(tmp_path: Path) -> None:
    """A key given twice is an error, not a silent override."""
    path = write(tmp_path, "load:\n  users: 1\n  users: 2\n  iterations: 1\n")
    assert load_error(path) == f"{path}: line 3, column 3: invalid YAML: duplicate key 'users'"


def test_merge_keys_allowed(tmp_path: Path) -> None:
    """YAML merge keys may be overridden."""
    text = "load:\n  <<: {users: 1, iterations: 1}\n  users: 2\n"
    path = write(tmp_path, text + "users: {pattern: 'u{n}', password: p, count: 2}\n")
    scenario = load_scenario(path, env={})
    assert isinstance(scenario.load, ClosedLoad)
    assert scenario.load.users == 2


def test_python_tags_refused(tmp_path: Path) -> None:
    """Tags that would run code are refused."""
    path = write(tmp_path, "name: !!python/object/apply:os.system ['true']\n")
    assert "invalid YAML: could not determine a constructor" in load_error(path)


def test_not_utf8(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are refused with their offset."""
    assert (
        load_error(write(tmp_path, b"name: \xff\n"))
        == f"{tmp_path / 's.yaml'}: not UTF-8 text (byte 6)"
    )


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a ScenarioError naming it."""
    assert (
        load_error(tmp_path / "nope.yaml")
        == f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory"
    )


def test_empty_file(tmp_path: Path) -> None:
    """An empty file is not a scenario."""
    assert load_error(write(tmp_path, "")).endswith(
        "expected a mapping of scenario keys at the top level, got nothing (null)"
    )


def test_bad_date_value(tmp_path: Path) -> None:
    """A YAML timestamp that is not a date is a ScenarioError."""
    assert "invalid YAML value" in load_error(write(tmp_path, "name: 2024-13-45\n"))
