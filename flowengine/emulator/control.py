"""The test-only control API under ``/_emulator/`` (off unless ``control_api`` is on).

Read the codes sent to a user, answer pending pushes, set the automatic push policy, look
at a user's authenticators (with OTP secrets) and move the emulator's clock forward (to
expire an ``mfa_token`` without waiting). Usernames are percent-encoded in paths.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from flowengine.clock import ManualClock, OffsetClock
from flowengine.emulator.http import STATE_KEY, OAuthError, api, json_response, read_params
from flowengine.emulator.store import PUSH_MODES

__all__ = ["add_control_routes"]

_CHANNELS = ("sms", "voice", "email")
_MAX_ADVANCE = 10 * 365 * 86400.0


def _not_found(what: str) -> OAuthError:
    return OAuthError(404, "not_found", what)


@api()
async def inbox_endpoint(request: web.Request) -> web.StreamResponse:
    """``GET /_emulator/inbox/{username}[?channel=sms|voice|email]``."""
    state = request.app[STATE_KEY]
    username = request.match_info["username"]
    channel = request.query.get("channel")
    if channel is not None and channel not in _CHANNELS:
        raise OAuthError(400, "invalid_request", "channel must be sms, voice or email")
    if state.user(username) is None:
        raise _not_found(f"Unknown user: {username}")
    messages = [m.wire() for m in state.inbox(username, channel)]
    return json_response({"messages": messages})


async def _answer(request: web.Request, *, approve: bool) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    username = request.match_info["username"]
    answered = state.approve_push(username) if approve else state.reject_push(username)
    if not answered:
        raise _not_found(f"No pending push for {username}")
    return json_response({"answered": answered})


@api()
async def approve_endpoint(request: web.Request) -> web.StreamResponse:
    """``POST /_emulator/push/{username}/approve``."""
    return await _answer(request, approve=True)


@api()
async def reject_endpoint(request: web.Request) -> web.StreamResponse:
    """``POST /_emulator/push/{username}/reject``."""
    return await _answer(request, approve=False)


@api()
async def push_policy_endpoint(request: web.Request) -> web.StreamResponse:
    """``PUT /_emulator/push-policy`` ``{"mode", "after_ms", "username"}``."""
    state = request.app[STATE_KEY]
    params = await read_params(request, allow_form=False)
    mode = params.get("mode")
    after_ms = params.get("after_ms", 0)
    username = params.get("username")
    if mode not in PUSH_MODES:
        raise OAuthError(400, "invalid_request", "mode must be one of " + ", ".join(PUSH_MODES))
    if isinstance(after_ms, bool) or not isinstance(after_ms, int) or after_ms < 0:
        raise OAuthError(400, "invalid_request", "after_ms must be an integer >= 0")
    if username is not None and not isinstance(username, str):
        raise OAuthError(400, "invalid_request", "username must be a string")
    state.set_push_policy(mode, after_ms, username)
    return json_response({"mode": mode, "after_ms": after_ms, "username": username})


@api()
async def user_endpoint(request: web.Request) -> web.StreamResponse:
    """``GET /_emulator/users/{username}``: authenticators with their secrets."""
    state = request.app[STATE_KEY]
    username = request.match_info["username"]
    user = state.user(username)
    if user is None:
        raise _not_found(f"Unknown user: {username}")
    authenticators: list[dict[str, Any]] = []
    for authenticator in user.authenticators.values():
        entry = authenticator.wire(type_field=False)
        entry["factor"] = authenticator.factor
        if authenticator.secret:
            entry["secret"] = authenticator.secret
        if authenticator.phone_number:
            entry["phone_number"] = authenticator.phone_number
        if authenticator.email:
            entry["email"] = authenticator.email
        if authenticator.twin_id:
            entry["twin_id"] = authenticator.twin_id
        authenticators.append(entry)
    body = {
        "username": user.username,
        "user_id": user.user_id,
        "email": user.email,
        "phone_number": user.phone_number,
        "recovery_code": user.recovery_code,
        "authenticators": authenticators,
    }
    return json_response(body)


@api()
async def clock_endpoint(request: web.Request) -> web.StreamResponse:
    """``GET /_emulator/clock``: the emulator's time and how far it was moved forward."""
    clock = request.app[STATE_KEY].clock
    offset = clock.offset if isinstance(clock, OffsetClock) else 0.0
    return json_response({"time": clock.time(), "offset": offset})


@api()
async def advance_clock_endpoint(request: web.Request) -> web.StreamResponse:
    """``POST /_emulator/clock/advance`` ``{"seconds": N}``: move time forward N seconds."""
    state = request.app[STATE_KEY]
    params = await read_params(request, allow_form=False)
    seconds = params.get("seconds")
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 <= seconds <= _MAX_ADVANCE
    ):
        raise OAuthError(400, "invalid_request", "seconds must be a number from 0 to 315360000")
    clock = state.clock
    if not isinstance(clock, ManualClock | OffsetClock):
        # Every reader goes through state.clock: from now on it is the real clock, moved.
        clock = state.clock = OffsetClock(clock)
    clock.advance(float(seconds))
    offset = clock.offset if isinstance(clock, OffsetClock) else 0.0
    return json_response({"time": clock.time(), "offset": offset})


def add_control_routes(app: web.Application) -> None:
    """Mount the control API on ``app``."""
    app.router.add_get("/_emulator/inbox/{username}", inbox_endpoint)
    app.router.add_post("/_emulator/push/{username}/approve", approve_endpoint)
    app.router.add_post("/_emulator/push/{username}/reject", reject_endpoint)
    app.router.add_put("/_emulator/push-policy", push_policy_endpoint)
    app.router.add_get("/_emulator/users/{username}", user_endpoint)
    app.router.add_get("/_emulator/clock", clock_endpoint)
    app.router.add_post("/_emulator/clock/advance", advance_clock_endpoint)
