"""Retries and lockout awareness, against the emulator behind a fault-injecting middleware."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from flowengine.clock import ManualClock
from flowengine.credentials import InMemoryCredentials
from flowengine.emulator import EmulatorConfig, create_app
from flowengine.emulator.config import PopulationConfig
from flowengine.engine import Engine
from flowengine.factors import CallbackCodeSource
from flowengine.lockout import FailedCodeLedger, LockoutPolicy
from flowengine.result import LoginResult
from flowengine.retry import RetryPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OTP = "http://auth0.com/oauth/grant-type/mfa-otp"
OOB = "http://auth0.com/oauth/grant-type/mfa-oob"


@attrs.define
class Faults:
    """Answers chosen requests with a fault instead of passing them on."""

    clock: ManualClock
    plan: list[tuple[str, str]] = attrs.Factory(list)
    """(what, fault) pairs consumed in order; what is a path or a grant type."""
    seen: list[dict[str, str]] = attrs.Factory(list)
    """Form bodies of the /oauth/token requests that reached the emulator."""

    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        what = request.path
        form: dict[str, str] = {}
        if request.path == "/oauth/token":
            form = {k: str(v) for k, v in (await request.post()).items()}
            what = form.get("grant_type", what)
        for index, (target, fault) in enumerate(self.plan):
            if target == what:
                del self.plan[index]
                return self.fault(request, fault)
        if form:
            self.seen.append(form)
        return await handler(request)

    def fault(self, request: web.Request, fault: str) -> web.StreamResponse:
        body = {"error": "x", "error_description": "y"}
        if fault == "503":
            return web.json_response(
                {"error": "temporarily_unavailable", "error_description": "busy"}, status=503
            )
        if fault == "429-retry-after":
            return web.json_response(
                {**body, "error": "too_many_requests"}, status=429, headers={"Retry-After": "7"}
            )
        if fault == "429-reset":
            reset = str(int(self.clock.time()) + 11)
            return web.json_response(
                {**body, "error": "too_many_requests"},
                status=429,
                headers={"X-RateLimit-Reset": reset},
            )
        if fault == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        raise AssertionError(fault)


@attrs.define
class Rig:
    engine: Engine
    faults: Faults
    clock: ManualClock
    store: InMemoryCredentials


async def rig_for(aiohttp_server: AiohttpServer, **options: Any) -> AsyncIterator[Rig]:
    clock = ManualClock()
    config = EmulatorConfig(populations=(PopulationConfig(count=100, phone_number="+1555{n:07d}"),))
    config = attrs.evolve(config, settings=attrs.evolve(config.settings, control_api=True))
    app = create_app(config, clock=clock)
    faults = Faults(clock=clock)
    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await faults.middleware(request, handler)

    app.middlewares.append(inject)
    server = await aiohttp_server(app)
    store = InMemoryCredentials()
    async with Engine(
        domain=str(server.make_url("")),
        client_id="flowengine",
        client_secret="flowengine-secret",
        credentials=store,
        clock=clock,
        **options,
    ) as engine:
        engine._rng = random.Random(7)
        yield Rig(engine, faults, clock, store)


@pytest.fixture
async def rig(aiohttp_server: AiohttpServer) -> AsyncIterator[Rig]:
    """The emulator behind the fault middleware, and an engine on one manual clock."""
    async for made in rig_for(aiohttp_server):
        yield made


async def login(rig: Rig, n: int, factor: str) -> LoginResult:
    return await rig.engine.login(
        f"user{n}@example.test", f"Passw0rd!{n}", factor=factor, phone=f"+1555{n:07d}"
    )


def waits(result: LoginResult) -> list[float]:
    return [r.seconds for r in result.path if r.step == "retry_wait"]


async def test_a_server_error_on_a_safe_call_is_retried(rig: Rig) -> None:
    """A 503 on the password grant is retried after a backoff; the login succeeds."""
    rig.faults.plan.append(("password", "503"))
    result = await login(rig, 1, "otp")
    assert result.ok, result
    assert result.retries == ("password",)
    assert len(waits(result)) == 1 and 0 <= waits(result)[0] <= RetryPolicy().base


async def test_retry_after_is_honoured(rig: Rig) -> None:
    """A 429 with Retry-After: 7 is retried after exactly 7 seconds."""
    rig.faults.plan.append(("/mfa/authenticators", "429-retry-after"))
    result = await login(rig, 2, "otp")
    assert result.ok and result.retries == ("authenticators",)
    assert waits(result) == [pytest.approx(7.0)]
    listed = [r.seconds for r in result.path if r.step == "authenticators"]
    assert listed == [pytest.approx(0.0)], "the wait is its own step, not the listing's"


async def test_rate_limit_reset_is_honoured(rig: Rig) -> None:
    """A 429 with only X-RateLimit-Reset waits until that time."""
    rig.faults.plan.append(("/mfa/associate", "429-reset"))
    result = await login(rig, 3, "otp")
    assert result.ok and result.retries == ("associate",)
    assert 10.0 <= waits(result)[0] <= 11.0


async def test_a_single_use_code_is_never_sent_twice(rig: Rig) -> None:
    """A 503 on the OTP grant starts over with a new code instead of resending the old one."""
    assert (await login(rig, 4, "otp")).ok
    rig.clock.advance(30)
    rig.faults.plan.append((OTP, "503"))
    before = len(rig.faults.seen)
    result = await login(rig, 4, "otp")
    assert result.ok, result
    assert [r.step for r in result.path].count("password") == 2
    codes = [form["otp"] for form in rig.faults.seen[before:] if form.get("grant_type") == OTP]
    assert len(codes) == 1, "the code of the failed attempt never reached the server again"
    assert result.retries == ("grant:mfa-otp",)


async def test_a_rate_limited_code_grant_is_retried_with_the_same_code(rig: Rig) -> None:
    """A 429 means the code was not checked: it is sent again after the wait."""
    rig.faults.plan.append((OTP, "429-retry-after"))
    result = await login(rig, 5, "otp")
    assert result.ok and result.retries == ("grant:mfa-otp",)
    assert [r.step for r in result.path].count("password") == 1


async def test_a_connection_reset_on_a_code_grant_starts_over(rig: Rig) -> None:
    """A reset after an SMS code was sent: the code may be spent, so a new challenge follows."""
    assert (await login(rig, 6, "sms")).ok
    rig.faults.plan.append((OOB, "reset"))
    result = await login(rig, 6, "sms")
    assert result.ok, result
    assert [r.step for r in result.path].count("challenge") == 2


async def test_the_retry_budget_bounds_a_login(aiohttp_server: AiohttpServer) -> None:
    """With the budget spent, the 503 is the answer: the login fails, classified."""
    async for made in rig_for(aiohttp_server, retry=RetryPolicy(budget=2)):
        made.faults.plan.extend([("password", "503")] * 3)
        result = await login(made, 7, "otp")
        assert result.outcome == "failed" and result.error == "server_error"
        assert result.retries == ("password", "password")


async def test_wrong_codes_stop_before_the_lockout(rig: Rig) -> None:
    """After half the failed-code bucket, the engine stops submitting codes for that user."""
    assert (await login(rig, 8, "sms")).ok
    wrong = CallbackCodeSource(lambda _user, _channel: _constant("000000"))
    rig.engine._code_source = wrong
    errors = [(await login(rig, 8, "sms")).error for _ in range(7)]
    assert errors == ["invalid_code"] * 5 + ["lockout_guard"] * 2
    submitted = [f for f in rig.faults.seen if f.get("binding_code") == "000000"]
    assert len(submitted) == 5, "no code was submitted once the guard tripped"
    rig.engine._code_source = None
    await rig.engine.close()
    await rig.engine.start()  # the emulator's inbox again
    rig.clock.advance(6 * 360)
    result = await login(rig, 8, "sms")
    assert result.ok, "the emulator never locked the user"


async def test_a_spent_bucket_is_reported_as_locked(aiohttp_server: AiohttpServer) -> None:
    """Allowed to spend the whole bucket, the engine reports the user locked, not wrong."""
    async for made in rig_for(aiohttp_server, lockout=LockoutPolicy(share=1.0)):
        # email: SMS allows only 10 sends an hour, and this needs 12.
        assert (await login(made, 9, "email")).ok
        made.engine._code_source = CallbackCodeSource(lambda _u, _c: _constant("000000"))
        errors = [(await login(made, 9, "email")).error for _ in range(11)]
        assert errors == ["invalid_code"] * 10 + ["locked"]


async def test_too_many_attempts_on_the_password_is_locked(rig: Rig) -> None:
    """Brute-force protection (429 too_many_attempts) is reported as locked."""
    for _ in range(10):
        await rig.engine.login("user10@example.test", "wrong", factor="otp")
    result = await login(rig, 10, "otp")
    assert result.outcome == "failed" and result.error == "locked"
    assert result.retries == ()


def test_ledger_refills_with_time() -> None:
    """A failure is forgiven after refill_every seconds."""
    now = [0.0]
    ledger = FailedCodeLedger(LockoutPolicy(burst=2, refill_every=10, share=1.0), lambda: now[0])
    ledger.record_failure("u")
    ledger.record_failure("u")
    assert not ledger.allowed("u") and ledger.exhausted("u")
    now[0] = 10.0
    assert ledger.allowed("u") and ledger.spent("u") == pytest.approx(1.0)


def test_backoff_is_capped_and_jittered() -> None:
    """Full jitter under a doubling ceiling that stops at the cap."""
    policy = RetryPolicy(base=0.1, cap=1.0)
    rng = random.Random(1)
    draws = [policy.backoff(attempt, rng) for attempt in range(10) for _ in range(50)]
    assert max(draws) <= 1.0 and min(draws) >= 0.0
    assert len({round(d, 6) for d in draws}) > 100


async def _constant(value: str) -> str:
    return value
