"""The emulator a scenario without ``target`` runs against, started in-process.

Its tenant matches the scenario: the scenario's users (a generated population, a CSV file or
a list), the scenario's ``emulator.settings`` overrides, and every enrollment the credential
store remembers from earlier runs, so a second run challenges the users the first one
enrolled, as a real tenant would.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

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


def _user_entries(users: UserSource) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(population, users) sections for ``users``."""
    if isinstance(users, PatternUsers):
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
        return [population], []
    return [], [_user_entry(spec) for spec in users.iter_users()]


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
    """The tenant (as a tenant-file document) the embedded emulator serves for ``scenario``."""
    population, listed = _user_entries(users)
    restored: dict[str, dict[str, Any]] = {}
    for record in remembered:
        spec = users.find(record.username)
        if spec is None:
            continue
        entry = _enrolled_entry(record, spec)
        if entry is not None:
            restored[record.username.lower()] = entry
    listed = [e for e in listed if e["username"].lower() not in restored]
    settings: dict[str, Any] = dict(scenario.emulator_settings.get("settings", {}))
    settings["control_api"] = True
    document: dict[str, Any] = {"settings": settings, "users": [*listed, *restored.values()]}
    if population:
        document["population"] = population
    for key in ("clients", "apis"):
        if key in scenario.emulator_settings:
            document[key] = scenario.emulator_settings[key]
    return document


class EmbeddedEmulator:
    """The emulator served on a free loopback port for the length of a run."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.app = create_app(config)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    @classmethod
    def for_scenario(
        cls, scenario: Scenario, users: UserSource, remembered: Iterable[UserCredentials] = ()
    ) -> EmbeddedEmulator:
        """An emulator whose tenant matches ``scenario`` (TenantFileError names the key)."""
        document = tenant_document(scenario, users, remembered)
        config = parse_tenant(document, source=f"{scenario.source}: emulator")
        return cls(config)

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
