"""The engine against the emulator in-process: every factor, enrollment then challenge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from structlog.testing import capture_logs

from flowengine.clock import ManualClock
from flowengine.config import PushPolling
from flowengine.credentials import InMemoryCredentials, UserCredentials
from flowengine.emulator import STATE_KEY, EmulatorConfig, create_app
from flowengine.emulator.config import PopulationConfig
from flowengine.emulator.tenant import parse_tenant
from flowengine.engine import Engine
from flowengine.errors import UnknownFactor
from flowengine.factors import CallbackCodeSource, EmulatorInbox
from flowengine.result import LoginResult

CLIENT_ID, CLIENT_SECRET = "flowengine", "flowengine-secret"
SCOPE = "openid profile email offline_access"
CODE_FACTORS = ("sms", "voice", "email")


def user(n: int) -> tuple[str, str]:
    """Username and password of generated user n."""
    return f"user{n}@example.test", f"Passw0rd!{n}"


def tenant(**settings: Any) -> EmulatorConfig:
    """The default tenant with phones, the control API on and ``settings`` changed."""
    config = EmulatorConfig(
        populations=(PopulationConfig(count=20000, phone_number="+1555{n:07d}"),)
    )
    return attrs.evolve(
        config, settings=attrs.evolve(config.settings, control_api=True, **settings)
    )


@attrs.define
class Rig:
    """An emulator served in-process and an engine pointed at it, on one manual clock."""

    app: web.Application
    engine: Engine
    clock: ManualClock
    store: InMemoryCredentials

    def push_policy(self, mode: str, after_ms: int = 0) -> None:
        self.app[STATE_KEY].set_push_policy(mode, after_ms)


async def make_rig(
    aiohttp_server: AiohttpServer, config: EmulatorConfig | None = None, **engine_options: object
) -> AsyncIterator[Rig]:
    clock = ManualClock()
    app = create_app(config or tenant(), clock=clock)
    server = await aiohttp_server(app)
    store = InMemoryCredentials()
    options: dict[str, object] = {
        "scope": SCOPE,
        "push": PushPolling(interval=5.0, timeout=60.0),
        **engine_options,
    }
    async with Engine(
        domain=str(server.make_url("")),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        credentials=store,
        clock=clock,
        **options,  # type: ignore[arg-type]
    ) as engine:
        yield Rig(app, engine, clock, store)


@pytest.fixture
async def rig(aiohttp_server: AiohttpServer) -> AsyncIterator[Rig]:
    """The default rig: push answered 1 s after it is sent."""
    async for made in make_rig(aiohttp_server):
        made.push_policy("approve", 1000)
        yield made


def steps(result: LoginResult) -> list[str]:
    """The step names of a login's path."""
    return [record.step for record in result.path]


async def login(rig: Rig, n: int, factor: str | None, **kwargs: object) -> LoginResult:
    """Log generated user n in (with its phone for sms/voice)."""
    username, password = user(n)
    return await rig.engine.login(
        username,
        password,
        factor=factor,
        phone=f"+1555{n:07d}",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("factor", ["otp", "push", *CODE_FACTORS])
async def test_first_login_enrolls_the_factor(rig: Rig, factor: str) -> None:
    """A user with nothing enrolled enrolls the asked factor and gets tokens."""
    result = await login(rig, 1, factor)
    assert result.outcome == "success", result
    assert result.enrolled and result.factor == factor
    assert "associate" in steps(result) and "challenge" not in steps(result)
    assert result.tokens is not None and result.tokens.access_token


@pytest.mark.parametrize("factor", ["otp", "push", *CODE_FACTORS])
async def test_second_login_challenges_the_enrolled_factor(rig: Rig, factor: str) -> None:
    """Once enrolled, the next login lists, challenges and verifies: no new enrollment."""
    assert (await login(rig, 2, factor)).ok
    rig.clock.advance(31)
    result = await login(rig, 2, factor)
    assert result.outcome == "success", result
    assert not result.enrolled
    assert steps(result)[:4] == ["queue", "password", "authenticators", "challenge"]
    assert "associate" not in steps(result)


async def test_enrollment_stores_the_secret_and_the_recovery_code(rig: Rig) -> None:
    """The OTP secret and the first recovery code are kept in the credential store."""
    assert (await login(rig, 3, "otp")).ok
    record = rig.store.get(user(3)[0])
    assert record is not None
    assert record.otp_secret and record.recovery_code and len(record.recovery_code) == 24


async def test_recovery_code_works_twice_in_a_row(rig: Rig) -> None:
    """Each recovery-code login uses the stored code and stores its replacement."""
    assert (await login(rig, 4, "otp")).ok
    seen = []
    for _ in range(2):
        before = rig.store.get(user(4)[0])
        assert before is not None and before.recovery_code
        seen.append(before.recovery_code)
        result = await login(rig, 4, "recovery-code")
        assert result.outcome == "success", result
        assert "grant:mfa-recovery-code" in steps(result)
    after = rig.store.get(user(4)[0])
    assert after is not None and after.recovery_code not in seen
    assert len(set(seen)) == 2


async def test_push_rejected_is_final(rig: Rig) -> None:
    """A rejected push fails the login with access_denied, without polling on."""
    assert (await login(rig, 5, "push")).ok
    rig.push_policy("reject", 1000)
    result = await login(rig, 5, "push")
    assert result.outcome == "failed"
    assert result.error == "access_denied"
    assert steps(result).count("grant:mfa-oob") <= 2


async def test_push_never_answered_times_out(rig: Rig) -> None:
    """An unanswered push ends as a timeout after the push timeout, having polled."""
    assert (await login(rig, 6, "push")).ok
    rig.push_policy("never")
    result = await login(rig, 6, "push")
    assert result.outcome == "timeout"
    assert result.error == "factor_timeout"
    assert steps(result).count("push_wait") >= 5


async def test_push_polls_at_the_configured_interval(rig: Rig) -> None:
    """Pending pushes are polled every interval (5 s), never faster than Auth0 allows."""
    assert (await login(rig, 7, "push")).ok
    rig.push_policy("approve", 12_000)
    result = await login(rig, 7, "push")
    assert result.ok, result
    waits = [r.seconds for r in result.path if r.step == "push_wait"]
    assert waits and all(w == pytest.approx(5.0) for w in waits)
    assert "slow_down" not in {r.outcome for r in result.path}


async def test_expired_mfa_token_restarts_from_the_password(
    aiohttp_server: AiohttpServer,
) -> None:
    """A code that arrives after the mfa_token expired sends the login back to the password."""
    calls = 0
    rig_holder: list[Rig] = []

    async def slow_then_fast(username: str, channel: str) -> str:
        nonlocal calls
        calls += 1
        made = rig_holder[0]
        if calls == 2:
            made.clock.advance(601)  # the mfa_token lives 600 s
        inbox = EmulatorInbox(made.engine.session, made.engine.config.base_url)
        return await inbox.code(username, channel)

    async for made in make_rig(aiohttp_server, code_source=CallbackCodeSource(slow_then_fast)):
        rig_holder.append(made)
        assert (await login(made, 8, "sms")).ok
        result = await login(made, 8, "sms")
        assert result.outcome == "success", result
        assert steps(result).count("password") == 2
        assert "expired_token" in {r.outcome for r in result.path}


async def test_otp_code_is_never_submitted_twice(rig: Rig) -> None:
    """Two logins in one 30-second window: the second waits for the next window."""
    assert (await login(rig, 9, "otp")).ok
    result = await login(rig, 9, "otp")
    assert result.outcome == "success", result
    assert "otp_wait" in steps(result)


async def test_automatic_factor_choice_uses_what_is_enrolled(rig: Rig) -> None:
    """Without a factor, an enrolled user logs in with the first usable enrolled factor."""
    assert (await login(rig, 10, "email")).ok
    result = await login(rig, 10, None)
    assert result.ok and result.factor == "email"


async def test_asking_for_a_factor_the_user_lacks_fails_clearly(rig: Rig) -> None:
    """An enrolled user asked to use a factor it has not enrolled fails, saying so."""
    assert (await login(rig, 11, "otp")).ok
    rig.clock.advance(31)
    result = await login(rig, 11, "sms")
    assert result.outcome == "failed"
    assert result.error == "factor_not_enrolled"
    assert result.state == "authenticators"


async def test_without_enrollment_policy_a_new_user_fails(aiohttp_server: AiohttpServer) -> None:
    """With enroll=False, a user with nothing enrolled is reported, not enrolled."""
    async for made in make_rig(aiohttp_server, enroll=False):
        result = await login(made, 12, "otp")
        assert result.outcome == "failed" and result.error == "not_enrolled"


async def test_wrong_password_fails_at_the_password_step(rig: Rig) -> None:
    """Wrong credentials end the login in the password state."""
    result = await rig.engine.login(user(13)[0], "not-the-password", factor="otp")
    assert result.outcome == "failed"
    assert result.error == "invalid_credentials" and result.state == "password"
    with pytest.raises(Exception, match="invalid_credentials"):
        result.raise_for_outcome()


async def test_id_token_is_validated_against_the_jwks(rig: Rig) -> None:
    """A login that gets an id_token checks it (an id_token step is on the path)."""
    result = await login(rig, 14, "otp")
    assert result.ok and result.tokens is not None and result.tokens.id_token
    assert ("id_token", "ok") in [(r.step, r.outcome) for r in result.path]


async def test_id_token_from_another_issuer_fails(aiohttp_server: AiohttpServer) -> None:
    """An id_token whose iss is not the tenant's fails the login."""
    config = tenant(base_url="https://elsewhere.example.test")
    async for made in make_rig(aiohttp_server, config):
        result = await login(made, 15, "otp")
        assert result.outcome == "failed"
        assert result.error == "invalid_id_token"


async def test_unknown_factor_is_refused_before_any_request(rig: Rig) -> None:
    """A factor name nobody registered is an UnknownFactor naming the known ones."""
    with pytest.raises(UnknownFactor, match="known factors: email, otp"):
        await rig.engine.login(*user(16), factor="carrier-pigeon")


async def test_login_timeout_ends_the_login(rig: Rig) -> None:
    """A login past its own deadline ends as flow_timeout."""
    assert (await login(rig, 17, "push")).ok
    rig.push_policy("never")
    started = asyncio.get_running_loop().time()
    result = await login(rig, 17, "push", timeout=0.05)
    assert result.outcome == "timeout" and result.error in {"flow_timeout", "factor_timeout"}
    assert asyncio.get_running_loop().time() - started < 5


async def test_cancelling_a_login_leaves_nothing_behind(rig: Rig) -> None:
    """A cancelled login frees its gate slot and its connection, and starts no task."""
    assert (await login(rig, 18, "push")).ok
    rig.push_policy("never")
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(login(rig, 18, "push"))
    for _ in range(50):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert rig.engine.gate.in_use == 0 and rig.engine.gate.waiting == 0
    connector = rig.engine.session.connector
    assert connector is not None and not connector._acquired
    assert asyncio.all_tasks() - before == set()


async def test_step_events_carry_no_secret(rig: Rig) -> None:
    """Each step logs an event bound to the flow and user, and none carries a secret."""
    with capture_logs() as events:
        result = await login(rig, 19, "otp")
    assert result.ok
    step_events = [e for e in events if e["event"] == "login.step"]
    assert {e["step"] for e in step_events} >= {"password", "authenticators", "associate"}
    assert all(e["user"] == user(19)[0] and e["flow_id"] for e in step_events)
    record = rig.store.get(user(19)[0])
    assert record is not None and result.tokens is not None
    secrets = [user(19)[1], record.otp_secret, record.recovery_code, result.tokens.access_token]
    text = repr(events) + repr(result)
    assert not [s for s in secrets if s and s in text]


async def test_otp_step_is_remembered_across_engines(aiohttp_server: AiohttpServer) -> None:
    """A second engine on the same store does not reuse the first one's OTP window."""
    async for made in make_rig(aiohttp_server):
        assert (await login(made, 20, "otp")).ok
        async with Engine(
            domain=made.engine.config.base_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            credentials=made.store,
            clock=made.clock,
            scope=SCOPE,
        ) as other:
            result = await other.login(*user(20), factor="otp")
        assert result.ok, result
        assert "otp_wait" in steps(result)


async def test_chained_mfa_continues_with_another_factor(aiohttp_server: AiohttpServer) -> None:
    """An MFA grant answering mfa_required again (chained MFA) goes on with a second factor."""
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    config = parse_tenant(
        {
            "users": [
                {
                    "username": "carol@example.test",
                    "password": "carol-pw",
                    "phone_number": "+15550100003",
                    "factors": [{"type": "otp", "secret": secret}, "sms"],
                }
            ],
            "settings": {"control_api": True},
        }
    )
    app = create_app(config, clock=ManualClock())
    chained: list[str] = []

    @web.middleware
    async def second_factor_policy(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The tenant asks for a second factor after the OTP grant (as an Action could)."""
        response = await handler(request)
        form = dict(await request.post()) if request.path == "/oauth/token" else {}
        grant = str(form.get("grant_type", ""))
        if grant.endswith("mfa-otp") and response.status == 200 and not chained:
            chained.append("otp")
            body = {
                "error": "mfa_required",
                "error_description": "Multifactor authentication required",
                "mfa_token": str(form["mfa_token"]),
            }
            return web.json_response(body, status=403)
        return response

    app.middlewares.append(second_factor_policy)
    server = await aiohttp_server(app)
    store = InMemoryCredentials()
    store.put(UserCredentials(username="carol@example.test", otp_secret=secret))
    async with Engine(
        domain=str(server.make_url("")),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        credentials=store,
        clock=ManualClock(),
    ) as engine:
        result = await engine.login("carol@example.test", "carol-pw", factor="otp")
    assert result.ok, result
    assert chained == ["otp"]
    grants = [r.step for r in result.path if r.step.startswith("grant:")]
    assert grants == ["grant:mfa-otp", "grant:mfa-oob"]
    assert result.factor == "sms"
