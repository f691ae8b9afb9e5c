"""The factor registry, third-party factors from entry points, and code sources."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from flowengine.errors import FactorError, UnknownFactor
from flowengine.factors import (
    CallbackCodeSource,
    FactorStrategy,
    PromptCodeSource,
    get_strategy,
    load_entry_points,
    register,
    registered_factors,
    totp_code,
)
from flowengine.factors import base as factors_base

BUILT_IN = {"otp", "sms", "voice", "email", "push", "recovery-code"}


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Restore the registry after a test that registers factors."""
    saved = dict(factors_base._REGISTRY)
    yield
    factors_base._REGISTRY.clear()
    factors_base._REGISTRY.update(saved)


def test_every_built_in_factor_is_registered() -> None:
    """The six factors of the brief are found by name."""
    assert set(registered_factors()) >= BUILT_IN
    for name in BUILT_IN:
        assert get_strategy(name).name == name


@pytest.mark.parametrize(
    ("name", "kind", "channel"),
    [
        ("otp", "otp", None),
        ("sms", "oob", "sms"),
        ("voice", "oob", "voice"),
        ("email", "oob", "email"),
        ("push", "oob", "auth0"),
        ("recovery-code", "recovery-code", None),
    ],
)
def test_strategies_match_their_wire_names(name: str, kind: str, channel: str | None) -> None:
    """Each strategy declares the authenticator_type and oob_channel Auth0 lists it under."""
    strategy = get_strategy(name)
    assert (strategy.authenticator_type, strategy.oob_channel) == (kind, channel)


def test_unknown_factor_names_the_known_ones() -> None:
    """Asking for an unregistered factor is an UnknownFactor listing the registry."""
    with pytest.raises(UnknownFactor, match="'fax'; known factors: email, otp, push"):
        get_strategy("fax")


def test_register_refuses_a_class_without_a_name(clean_registry: None) -> None:
    """A strategy must say its name."""

    class Nameless(FactorStrategy):
        authenticator_type = "otp"
        grant = "mfa-otp"

        async def verify(self, ctx, pending):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    with pytest.raises(TypeError, match="needs a non-empty 'name'"):
        register(Nameless)


def test_register_refuses_what_is_not_a_strategy(clean_registry: None) -> None:
    """Only FactorStrategy subclasses can be registered."""
    with pytest.raises(TypeError, match="is not a FactorStrategy subclass"):
        register(dict)  # type: ignore[type-var]


def _install_plugin(tmp_path: Path, body: str, target: str) -> None:
    (tmp_path / "acme_factor.py").write_text(body)
    dist = tmp_path / "acme_factor-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-factor\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[flowengine.factors]\nacme = {target}\n")


PLUGIN = """
from flowengine.factors import FactorStrategy

class AcmeToken(FactorStrategy):
    name = "acme-token"
    authenticator_type = "oob"
    oob_channel = "acme"
    grant = "mfa-oob"

    async def verify(self, ctx, pending):
        raise NotImplementedError
"""


def test_third_party_factor_loads_from_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    """A package declaring a flowengine.factors entry point adds its strategy by name."""
    _install_plugin(tmp_path, PLUGIN, "acme_factor:AcmeToken")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_entry_points() == ["acme-token"]
        assert get_strategy("acme-token").oob_channel == "acme"
    finally:
        sys.modules.pop("acme_factor", None)


def test_an_entry_point_that_is_not_a_strategy_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    """An entry point naming something else fails with its name and target."""
    _install_plugin(tmp_path, "class NotAFactor: pass\n", "acme_factor:NotAFactor")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(FactorError, match="'acme' \\(acme_factor:NotAFactor\\) is not a"):
            load_entry_points()
    finally:
        sys.modules.pop("acme_factor", None)


def test_totp_code_follows_rfc_6238() -> None:
    """The RFC 6238 SHA1 test vector: 94287082 at t=59 (6 digits: 287082)."""
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    assert totp_code(secret, 59) == "287082"
    assert totp_code(secret, 1111111109) == "081804"


async def test_callback_code_source_returns_the_callback_code() -> None:
    """A caller's async function supplies the code."""

    async def callback(username: str, channel: str) -> str:
        return f" 12345{len(channel)} "

    assert await CallbackCodeSource(callback).code("alice", "sms") == "123453"


async def test_callback_code_source_rejects_an_empty_code() -> None:
    """An empty answer from the callback is a FactorError."""

    async def callback(username: str, channel: str) -> str:
        return " "

    with pytest.raises(FactorError, match="returned no code"):
        await CallbackCodeSource(callback).code("alice", "sms")


async def test_prompt_code_source_asks_with_hidden_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """The terminal prompt names the channel and the user and hides what is typed."""
    asked: dict[str, object] = {}

    def fake_prompt(text: str, **kwargs: object) -> str:
        asked.update(text=text, **kwargs)
        return "654321\n"

    monkeypatch.setattr(click, "prompt", fake_prompt)
    assert await PromptCodeSource().code("bob@example.test", "voice") == "654321"
    assert asked["text"] == "Code sent by voice to bob@example.test"
    assert asked["hide_input"] is True
