"""Fuzzed scenario input gives a ScenarioError naming the file, never another exception."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowengine.errors import ScenarioError
from flowengine.spec import load_scenario, parse_scenario
from flowengine.spec.journeys import STEP_KINDS

SOURCE = "flows/fuzz-me.yaml"
SECRET = "s3cr3t-Xyzzy-9f1c"
ENV = {"SECRET": SECRET, "N": "3", "RATE": "10/s", "EMPTY": ""}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOP = [
    "credentials",
    "description",
    "emulator",
    "enrollment",
    "factors",
    "journeys",
    "load",
    "name",
    "push",
    "seed",
    "target",
    "thresholds",
    "timeouts",
    "users",
]
WORDS = [
    *TOP,
    "model",
    "users",
    "rate",
    "stages",
    "duration",
    "target",
    "iterations",
    "think_time",
    "ramp_up",
    "max_in_flight",
    "pattern",
    "password",
    "count",
    "start",
    "phone",
    "email",
    "csv",
    "from",
    "population",
    "skip",
    "base_url",
    "domain",
    "client_id",
    "client_secret",
    "auth_method",
    "ca_bundle",
    "otp",
    "sms",
    "voice",
    "push",
    "recovery-code",
    "closed",
    "open",
    "approve",
    "mode",
    "after",
    "request",
    "flow",
    "step",
    "settings",
    "steps",
    "expect",
    "outcome",
    "error",
    "latency",
    "times",
    "factor",
    "any",
    "all",
    "success",
    "failed",
    "memory",
    *STEP_KINDS,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.sampled_from(
        [
            "10/s",
            "2s",
            "0.5s..2s",
            "< 2s",
            "u{n}",
            "+1555{n:07d}",
            "${N}",
            "${MISSING}",
            "${EMPTY:-x}",
            "$${",
            "${",
            "p95(flow) < 800ms",
            "sqlite:///x.db",
            "https://t.test",
            "http://127.0.0.1:1",
            "sms|dev_1",
            "{n",
            "users.csv",
        ]
    ),
    st.text(max_size=20),
    st.binary(max_size=4),
    st.dates(),
)
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=8), st.integers(0, 3), st.none())
plain = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=30,
)
# Mappings whose keys are mostly real keys reach deeper into the validation.
shaped = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(WORDS), inner, max_size=6),
    ),
    max_leaves=40,
)
scenarios = st.dictionaries(st.sampled_from(TOP), shaped, min_size=1, max_size=8)


def error_of(call: Callable[[], object]) -> str | None:
    """The message of the ScenarioError ``call`` raises; None if it succeeds."""
    try:
        call()
    except ScenarioError as exc:  # a ConfigError; anything else fails the test
        return str(exc)
    return None


def check(data: Any) -> None:
    message = error_of(
        lambda: parse_scenario(
            data, source=SOURCE, base_dir=Path(__file__).parent / "data" / "scenarios", env=ENV
        )
    )
    if message is not None:
        assert "fuzz-me.yaml" in message or "users.csv" in message, message
        assert SECRET not in message, message


def load_text(text: str | bytes, name: str = "fuzz-me.yaml") -> tuple[Path, str | None]:
    """Write ``text`` to a fresh file and load it: (path, error message or None)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path, error_of(lambda: load_scenario(path, env=ENV))


@FUZZ
@given(plain)
def test_fuzzed_structures(data: Any) -> None:
    """Any JSON-like value parses or raises ScenarioError naming the file."""
    check(data)


@FUZZ
@given(scenarios)
def test_fuzzed_scenario_shapes(data: Any) -> None:
    """Scenario-shaped mappings parse or raise ScenarioError naming the file."""
    check(data)


def valid_base() -> dict[str, Any]:
    """A valid scenario whose only secrets (client secret, password) come from ${SECRET}."""
    return {
        "target": {"domain": "t.example.test", "client_id": "c", "client_secret": "${SECRET}"},
        "users": {"pattern": "u{n}", "password": "${SECRET}", "count": 20},
        "load": {"users": 2, "iterations": 4},
        "journeys": [
            {
                "name": "j",
                "users": {"from": "population", "count": 2, "skip": 5},
                "steps": ["refresh", {"login": "otp"}],
            }
        ],
    }


@FUZZ
@given(
    st.sampled_from(["target", "users", "load", "journeys"]),
    st.lists(st.one_of(st.sampled_from(WORDS), st.integers(0, 3)), max_size=4),
    shaped,
)
def test_fuzzed_mutations_of_a_valid_scenario(section: str, where: list[Any], value: Any) -> None:
    """Replacing any part of a valid scenario parses or raises ScenarioError, secrets unshown."""
    data = valid_base()
    node: Any = data
    key: Any = section
    for step in where:
        if isinstance(node, dict) and key not in node:
            break
        child = node[key]
        if isinstance(child, dict) and isinstance(step, str):
            node, key = child, step
        elif isinstance(child, list) and child and isinstance(step, int):
            node, key = child, step % len(child)
    if isinstance(node, dict | list):
        node[key] = value
    check(data)


@FUZZ
@given(st.text(max_size=200))
def test_garbage_text(text: str) -> None:
    """Any text in a file loads or raises ScenarioError naming the file."""
    path, message = load_text(text)
    assert message is None or message.startswith(str(path)), message


@FUZZ
@given(st.binary(max_size=200))
def test_garbage_bytes(raw: bytes) -> None:
    """Any bytes in a file load or raise ScenarioError naming the file."""
    path, message = load_text(raw)
    assert message is None or message.startswith(str(path)), message


@FUZZ
@given(plain)
def test_dumped_yaml_round_trip(data: Any) -> None:
    """Structures written as YAML and read back load or raise ScenarioError naming the file."""
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    path, message = load_text(text)
    assert message is None or message.startswith(str(path)), message


cells = st.one_of(
    st.sampled_from(
        [
            "username",
            "password",
            "phone",
            "email",
            "factor",
            "sms",
            "+15550000001",
            "a@b.test",
            "",
            " x",
            '"',
            "\x00",
        ]
    ),
    st.text(max_size=10),
)


@FUZZ
@given(st.lists(st.lists(cells, max_size=6), max_size=6), st.sampled_from([",", "\n", "\r\n"]))
def test_garbage_csv(rows: list[list[str]], newline: str) -> None:
    """Any CSV loads or raises ScenarioError naming the CSV file."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "users.csv").write_text(
            newline.join(",".join(row) for row in rows), encoding="utf-8"
        )
        message = error_of(
            lambda: parse_scenario(
                {"users": {"csv": "users.csv"}, "load": {"users": 1, "iterations": 1}},
                source=SOURCE,
                base_dir=Path(tmp),
                env=ENV,
            )
        )
    assert message is None or "users.csv" in message, message


secret_keys = st.sampled_from(["password", "client_secret"])


@FUZZ
@given(scenarios, st.lists(st.tuples(st.sampled_from(TOP), secret_keys), max_size=3))
def test_secrets_never_in_messages(data: dict[str, Any], plants: list[tuple[str, str]]) -> None:
    """A secret planted as a password or client secret never shows in an error."""
    for section, key in plants:
        if isinstance(data.get(section), dict):
            data[section][key] = "${SECRET}"
        else:
            data[section] = {key: "${SECRET}"}
    check(data)


def _settings_keys() -> list[str]:
    from flowengine.emulator.config import Settings

    return [field.name for field in attrs.fields(Settings)]


@FUZZ
@given(st.dictionaries(st.sampled_from(_settings_keys()), shaped, max_size=4))
def test_fuzzed_emulator_settings(settings: dict[str, Any]) -> None:
    """Any emulator settings are accepted or refused with a ScenarioError naming the file."""
    check({"load": {"users": 1, "iterations": 1}, "emulator": {"settings": settings}})
