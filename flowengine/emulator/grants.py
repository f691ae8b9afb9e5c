"""``POST /oauth/token``: password, password-realm, the three MFA grants and refresh_token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from flowengine.emulator.config import (
    GRANT_MFA_OOB,
    GRANT_MFA_OTP,
    GRANT_MFA_RECOVERY_CODE,
    GRANT_PASSWORD,
    GRANT_PASSWORD_REALM,
    GRANT_REFRESH_TOKEN,
    ClientConfig,
)
from flowengine.emulator.factors import verify_oob, verify_otp, verify_recovery_code
from flowengine.emulator.http import (
    JSON,
    STATE_KEY,
    OAuthError,
    api,
    authenticate_client,
    base_url,
    client_ip,
    read_params,
    str_param,
)
from flowengine.emulator.issue import (
    Authorization,
    mfa_required_error,
    open_mfa_token,
    resolve_authorization,
    token_set,
)
from flowengine.emulator.mfa import access_token_session, verify_access_token
from flowengine.emulator.store import EmulatorState, User
from flowengine.jsonio import dumps

__all__ = ["token_endpoint"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: the headers of every token answer, built once (aiohttp copies them into each response)
_TOKEN_HEADERS = CIMultiDict({**_NO_STORE, "Content-Type": JSON})
_BLOCKED_DESCRIPTION = (
    "Your account has been blocked after multiple consecutive login attempts. "
    "We've sent you an email with instructions on how to unblock it."
)
GrantHandler = Callable[
    [EmulatorState, web.Request, str, ClientConfig, dict[str, Any]], dict[str, Any]
]


def _password(
    state: EmulatorState,
    request: web.Request,
    base: str,
    client: ClientConfig,
    params: dict[str, Any],
) -> dict[str, Any]:
    if params.get("grant_type") == GRANT_PASSWORD_REALM:
        realm = str_param(params, "realm", required=True)
        if realm != state.settings.connection:
            raise OAuthError(400, "invalid_request", f"Unknown realm: {realm}")
    username = str_param(params, "username", required=True) or ""
    password = str_param(params, "password", required=True) or ""
    audience = str_param(params, "audience")
    scope = _scope_param(params)
    now = state.clock.time()
    ip = client_ip(request, client)
    if state.is_blocked(ip, username, now):
        raise OAuthError(429, "too_many_attempts", _BLOCKED_DESCRIPTION)
    user = state.user(username)
    if user is None or not user.check_password(password):
        if state.record_login(ip, username, success=False, now=now):
            raise OAuthError(429, "too_many_attempts", _BLOCKED_DESCRIPTION)
        raise OAuthError(403, "invalid_grant", "Wrong email or password.")
    if user.blocked:
        raise OAuthError(
            state.settings.errors.blocked_user_status, "unauthorized", "user is blocked"
        )
    state.record_login(ip, username, success=True, now=now)
    auth = resolve_authorization(
        state, base, user=user, client=client, audience=audience, scope=scope
    )
    mfa = state.settings.mfa_required if user.mfa_required is None else user.mfa_required
    if mfa:
        raise mfa_required_error(state, auth, user)
    return token_set(state, base, auth, user)


def _scope_param(params: dict[str, Any]) -> str | None:
    """The requested scope; None when absent or blank. An empty scope is no scope-token at all
    (RFC 6749 §3.3) and means "not given": auth0-python's ``refresh_token()`` always sends
    ``"scope": ""``, and Auth0 then keeps the refresh token's scopes."""
    scope = params.get("scope")
    if scope is None:
        return None
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
        scope = " ".join(scope)
    if not isinstance(scope, str):
        raise OAuthError(400, "invalid_scope", "Scope must be an array or a string")
    return scope if scope.strip() else None


def _mfa_context(
    state: EmulatorState, base: str, client: ClientConfig, params: dict[str, Any]
) -> tuple[Authorization, User]:
    token = str_param(params, "mfa_token")
    if token and token.startswith("eyJ"):
        # An MFA-API access token confirms enrollments made with it (reference §8, D7).
        claims, found = verify_access_token(
            state, base, token, audience=base + "/mfa/", scope="enroll"
        )
        auth = Authorization(
            username=found.username,
            client_id=str(claims.get("azp", "")),
            audience=base + "/mfa/",
            scope=tuple(str(claims.get("scope", "")).split()),
            scope_requested=True,
            session_id=access_token_session(token),
        )
    else:
        auth = open_mfa_token(state, token)
    user = state.user(auth.username)
    if auth.client_id != client.client_id or user is None:
        raise OAuthError(403, "invalid_grant", "Malformed mfa_token")
    return auth, user


def _mfa_otp(
    state: EmulatorState,
    request: web.Request,
    base: str,
    client: ClientConfig,
    params: dict[str, Any],
) -> dict[str, Any]:
    auth, user = _mfa_context(state, base, client, params)
    otp = str_param(params, "otp", required=True) or ""
    verify_otp(state, user, auth, otp)
    return token_set(state, base, auth, user)


def _mfa_oob(
    state: EmulatorState,
    request: web.Request,
    base: str,
    client: ClientConfig,
    params: dict[str, Any],
) -> dict[str, Any]:
    auth, user = _mfa_context(state, base, client, params)
    oob_code = str_param(params, "oob_code", required=True) or ""
    verify_oob(state, user, auth, oob_code, str_param(params, "binding_code"))
    return token_set(state, base, auth, user)


def _mfa_recovery_code(
    state: EmulatorState,
    request: web.Request,
    base: str,
    client: ClientConfig,
    params: dict[str, Any],
) -> dict[str, Any]:
    auth, user = _mfa_context(state, base, client, params)
    code = str_param(params, "recovery_code", required=True) or ""
    replacement = verify_recovery_code(state, user, code)
    body = token_set(state, base, auth, user)
    body["recovery_code"] = replacement
    return body


def _refresh_token(
    state: EmulatorState,
    request: web.Request,
    base: str,
    client: ClientConfig,
    params: dict[str, Any],
) -> dict[str, Any]:
    token = str_param(params, "refresh_token", required=True) or ""
    grant = state.refresh_tokens.get(token)
    now = state.clock.time()
    if grant is None or grant.client_id != client.client_id or grant.expires_at <= now:
        raise OAuthError(403, "invalid_grant", "Unknown or invalid refresh token.")
    user = state.user(grant.username)
    if user is None:
        raise OAuthError(
            403,
            "invalid_grant",
            "The refresh_token was generated for a user who doesn't exist anymore.",
        )
    if user.blocked:
        raise OAuthError(403, "invalid_grant", "user is blocked")
    scope = _scope_param(params)
    granted = grant.scope
    if scope is not None:
        wanted = tuple(dict.fromkeys(scope.split()))
        extra = [s for s in wanted if s not in grant.scope]
        if extra:
            raise OAuthError(
                403,
                "invalid_scope",
                f"Scope(s) not granted by the refresh token: {' '.join(extra)}",
            )
        granted = wanted
    auth = Authorization(
        username=user.username,
        client_id=client.client_id,
        audience=grant.audience,
        scope=granted,
        scope_requested=True,
    )
    rotate = state.settings.refresh_token_rotation
    if rotate:
        del state.refresh_tokens[token]
    return token_set(state, base, auth, user, issue_refresh=rotate)


_GRANTS: dict[str, GrantHandler] = {
    GRANT_PASSWORD: _password,
    GRANT_PASSWORD_REALM: _password,
    GRANT_MFA_OTP: _mfa_otp,
    GRANT_MFA_OOB: _mfa_oob,
    GRANT_MFA_RECOVERY_CODE: _mfa_recovery_code,
    GRANT_REFRESH_TOKEN: _refresh_token,
}


@api(JSON)
async def token_endpoint(request: web.Request) -> web.StreamResponse:
    """``POST /oauth/token``."""
    state = request.app[STATE_KEY]
    params = await read_params(request)
    grant_type = str_param(params, "grant_type", required=True) or ""
    client = authenticate_client(state, request, params)
    handler = _GRANTS.get(grant_type)
    if handler is None:
        raise OAuthError(403, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    if grant_type not in client.grant_types:
        raise OAuthError(
            403, "unauthorized_client", f"Grant type '{grant_type}' not allowed for the client."
        )
    body = handler(state, request, base_url(request, state), client, params)
    return web.Response(body=dumps(body), headers=_TOKEN_HEADERS)
