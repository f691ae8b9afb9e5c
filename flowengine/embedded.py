"""The emulator a scenario without ``target`` runs against, started in-process.

Its tenant matches the scenario: the scenario's users (a generated population, a CSV file or
a list) and its journeys' groups, the scenario's ``emulator.settings`` overrides, and every
enrollment the credential store remembers from earlier runs, so a second run challenges the
users the first one enrolled, as a real tenant would.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from flowengine.clock import Clock
from flowengine.credentials import UserCredentials
from flowengine.emulator import STATE_KEY, EmulatorConfig, create_app
from flowengine.emulator.tenant import parse_tenant
from flowengine.spec import PatternUsers, Scenario, UserSource, UserSpec

__all__ = [
    "EMBEDDED_AUDIENCE",
    "EMBEDDED_CLIENT_ID",
    "EMBEDDED_CLIENT_SECRET",
    "EMBEDDED_SCOPE",
    "EmbeddedEmulator",
    "tenant_document",
]

EMBEDDED_CLIENT_ID = "flowengine"
EMBEDDED_CLIENT_SECRET = "flowengine-secret"
EMBEDDED_AUDIENCE = "https://api.example.test/"
EMBEDDED_SCOPE = "openid profile email offline_access"

# Factors whose twin the emulator adds by itself (reference §4): list one of each pair.
_TWINS = {"voice": "sms"}


def _population_entry(users: PatternUsers) -> dict[str, Any]:
    population: dict[str, Any] = {
        "username": users.pattern,
        "password": users.password,
        "count": users.count,
        "start": users.start,
    }
    if users.phone:
        population["phone_number"] = users.phone
    if users.email:
        population["email"] = users.email
    return population


def _covers(outer: PatternUsers, inner: PatternUsers) -> bool:
    """Whether ``inner`` (e.g. ``{from: population}``) is a window of ``outer``."""
    return (
        (outer.pattern, outer.password, outer.phone, outer.email)
        == (inner.pattern, inner.password, inner.phone, inner.email)
        and outer.start <= inner.start
        and inner.start + inner.count <= outer.start + outer.count
    )


def _sources(
    sources: Iterable[UserSource],
) -> tuple[list[PatternUsers], dict[str, UserSpec]]:
    """The generated populations, and every other user by lower-case name, without repeats."""
    populations: list[PatternUsers] = []
    listed: dict[str, UserSpec] = {}
    for source in sources:
        if isinstance(source, PatternUsers):
            if source.count and not any(_covers(p, source) for p in populations):
                populations.append(source)
            continue
        for spec in source.iter_users():
            key = spec.username.lower()
            if key not in listed and not any(p.find(spec.username) for p in populations):
                listed[key] = spec
    return populations, listed


def _user_entry(spec: UserSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"username": spec.username, "password": spec.password}
    if spec.phone:
        entry["phone_number"] = spec.phone
    if spec.email:
        entry["email"] = spec.email
    return entry


def _enrolled_entry(record: UserCredentials, spec: UserSpec) -> dict[str, Any] | None:
    """A users entry that restores what ``record`` remembers, or None if nothing is active."""
    factors: list[dict[str, Any]] = []
    seen: set[str] = set()
    active = {a.factor for a in record.authenticators if a.active}
    for factor in sorted(active):
        factor = _TWINS.get(factor, factor)
        if factor in seen:
            continue
        if factor == "otp":
            if "push" in active or not record.otp_secret:
                continue  # push brings its own otp twin; no secret: nothing to restore
            factors.append({"type": "otp", "secret": record.otp_secret})
        elif factor in {"sms", "push"} or (factor == "email" and (spec.email or record.email)):
            factors.append({"type": factor})
        else:
            continue
        seen.add(factor)
    if not factors:
        return None
    entry = _user_entry(spec)
    entry["factors"] = factors
    if record.phone_number and "phone_number" not in entry:
        entry["phone_number"] = record.phone_number
    if record.email and "email" not in entry:
        entry["email"] = record.email
    if record.recovery_code:
        entry["recovery_code"] = record.recovery_code
    return entry


def tenant_document(
    scenario: Scenario, users: UserSource, remembered: Iterable[UserCredentials] = ()
) -> dict[str, Any]:
    """The tenant (as a tenant-file document) the embedded emulator serves for ``scenario``:
    ``users`` and every journey group's users."""
    populations, listed = _sources([users, *(journey.users for journey in scenario.journeys)])
    restored: dict[str, dict[str, Any]] = {}
    for record in remembered:
        key = record.username.lower()
        spec = listed.get(key) or next(
            (found for p in populations if (found := p.find(record.username)) is not None), None
        )
        if spec is None:
            continue
        entry = _enrolled_entry(record, spec)
        if entry is not None:
            restored[key] = entry
    entries = [_user_entry(spec) for key, spec in listed.items() if key not in restored]
    settings: dict[str, Any] = {**scenario.emulator_settings, "control_api": True}
    document: dict[str, Any] = {"settings": settings, "users": [*entries, *restored.values()]}
    if populations:
        document["population"] = [_population_entry(p) for p in populations]
    if scenario.emulator_faults:
        document["faults"] = scenario.emulator_faults
    return document


class EmbeddedEmulator:
    """The emulator served on a free loopback port for the length of a run."""

    def __init__(self, config: EmulatorConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.app = create_app(config, clock=clock)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    @classmethod
    def for_scenario(
        cls,
        scenario: Scenario,
        users: UserSource,
        remembered: Iterable[UserCredentials] = (),
        *,
        clock: Clock | None = None,
    ) -> EmbeddedEmulator:
        """An emulator whose tenant matches ``scenario`` (TenantFileError names the key).

        ``clock``: the emulator's time (the runner shares an OffsetClock with its engine,
        so that moving it through the control API moves both).
        """
        document = tenant_document(scenario, users, remembered)
        config = parse_tenant(document, source=f"{scenario.source}: emulator")
        return cls(config, clock=clock)

    async def __aenter__(self) -> EmbeddedEmulator:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def set_push_policy(self, mode: str, after_seconds: float = 0.0) -> None:
        """How pushes are answered: approve, reject, never or manual."""
        self.app[STATE_KEY].set_push_policy(mode, int(after_seconds * 1000))
