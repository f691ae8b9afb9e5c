"""``create_app``: the aiohttp application, its routes, rate limits and the sweeper."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from flowengine.clock import Clock, SystemClock
from flowengine.emulator.config import EmulatorConfig
from flowengine.emulator.control import add_control_routes
from flowengine.emulator.faults import SkewedClock, fault_middleware
from flowengine.emulator.grants import token_endpoint
from flowengine.emulator.http import STATE_KEY, Handler, json_response
from flowengine.emulator.limits import TokenBucket, rate_limit_headers
from flowengine.emulator.mfa import (
    associate_endpoint,
    challenge_endpoint,
    delete_authenticator_endpoint,
    list_authenticators_endpoint,
)
from flowengine.emulator.oidc import (
    jwks_endpoint,
    openid_configuration_endpoint,
    userinfo_endpoint,
)
from flowengine.emulator.store import EmulatorState

__all__ = ["STATE_KEY", "create_app"]

_log = structlog.get_logger(__name__)
_TOO_MANY = {
    "error": "too_many_requests",
    "error_description": "Too many requests. Check the X-RateLimit-Limit, "
    "X-RateLimit-Remaining and X-RateLimit-Reset headers.",
}


def _rate_limiter(state: EmulatorState) -> Middleware | None:
    limits = state.settings.limits
    if limits.global_rate is None and not limits.endpoints:
        return None
    now = state.clock.time()
    global_bucket = TokenBucket(limits.global_rate, now) if limits.global_rate else None
    endpoint_buckets = {path: TokenBucket(b, now) for path, b in limits.endpoints.items()}

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        now = state.clock.time()
        buckets = [b for b in (global_bucket, endpoint_buckets.get(request.path)) if b is not None]
        for bucket in buckets:
            if not bucket.take(now):
                return json_response(
                    _TOO_MANY, 429, headers=rate_limit_headers(bucket, now, limited=True)
                )
        response = await handler(request)
        if buckets:
            tightest = min(buckets, key=lambda b: b.remaining(now))
            response.headers.update(rate_limit_headers(tightest, now, limited=False))
        return response

    return rate_limit


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE_KEY]
    interval = state.settings.sweep_interval

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)  # real time: a ManualClock's sleep would spin
            swept = state.sweep()
            if any(swept.values()):
                _log.debug("emulator_swept", **swept)

    task = asyncio.create_task(loop(), name="flowengine-emulator-sweeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(
    config: EmulatorConfig | None = None, *, clock: Clock | None = None
) -> web.Application:
    """The emulator as an aiohttp application; its state is ``app[STATE_KEY]``."""
    config = config or EmulatorConfig.default()
    clock = clock or SystemClock()
    faults = config.faults
    if faults.clock_skew:
        clock = SkewedClock(clock, faults.clock_skew)
    state = EmulatorState(config, clock)
    limiter = _rate_limiter(state)
    middlewares = [limiter] if limiter is not None else []
    if faults.active:
        middlewares.insert(0, fault_middleware(faults, clock))
    app = web.Application(client_max_size=config.settings.max_body_bytes, middlewares=middlewares)
    app[STATE_KEY] = state
    router = app.router
    router.add_post("/oauth/token", token_endpoint)
    router.add_get("/mfa/authenticators", list_authenticators_endpoint)
    router.add_delete("/mfa/authenticators/{authenticator_id}", delete_authenticator_endpoint)
    router.add_post("/mfa/associate", associate_endpoint)
    router.add_post("/mfa/challenge", challenge_endpoint)
    router.add_get("/.well-known/openid-configuration", openid_configuration_endpoint)
    router.add_get("/.well-known/jwks.json", jwks_endpoint)
    router.add_get("/userinfo", userinfo_endpoint)
    router.add_post("/userinfo", userinfo_endpoint)
    if config.settings.control_api:
        add_control_routes(app)
    app.cleanup_ctx.append(_sweeper)
    return app
