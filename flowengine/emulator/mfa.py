"""The MFA API: ``GET /mfa/authenticators``, ``POST /mfa/associate``, ``POST /mfa/challenge``,
``DELETE /mfa/authenticators/{id}``, with the reference's bearer rules (§4, §5, §8).

A bearer is either an ``mfa_token`` (list; associate while nothing is active) or an access
token for ``https://{domain}/mfa/`` with the needed scope (list, associate, delete).
"""

from __future__ import annotations

import hashlib

import jwt
from aiohttp import web

from flowengine.emulator.factors import associate, challenge
from flowengine.emulator.http import (
    STATE_KEY,
    OAuthError,
    api,
    authenticate_client,
    base_url,
    json_response,
    read_params,
    str_param,
)
from flowengine.emulator.issue import Authorization, open_mfa_token
from flowengine.emulator.store import EmulatorState, User

__all__ = [
    "access_token_session",
    "associate_endpoint",
    "challenge_endpoint",
    "delete_authenticator_endpoint",
    "list_authenticators_endpoint",
    "verify_access_token",
]

_INVALID_MFA_TOKEN = "The mfa_token provided is invalid. Try getting a new token."


def verify_access_token(
    state: EmulatorState, base: str, token: str, *, audience: str, scope: str | None
) -> tuple[dict[str, object], User]:
    """Claims and user of a JWT access token for ``audience`` holding ``scope``."""
    try:
        claims = state.signer.verify(token, issuer=base + "/", now=state.clock.time())
    except jwt.ExpiredSignatureError:
        raise OAuthError(401, "invalid_token", "The access token has expired.") from None
    except jwt.InvalidTokenError:
        raise OAuthError(401, "invalid_token", "Invalid token.") from None
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise OAuthError(401, "invalid_token", f"The token's audience is not {audience}")
    granted = str(claims.get("scope", "")).split()
    if scope is not None and scope not in granted:
        raise OAuthError(403, "insufficient_scope", f"Insufficient scope, expected: {scope}")
    user = state.user_by_id(str(claims["sub"]))
    if user is None:
        raise OAuthError(401, "invalid_token", "Unknown user.")
    return claims, user


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer " or not header[7:].strip():
        raise OAuthError(
            401, "unauthorized", "Authorization header with a Bearer token is required."
        )
    return header[7:].strip()


def _is_mfa_token(token: str) -> bool:
    return token.startswith("Fe26.2*")


def _open_bearer_mfa_token(state: EmulatorState, token: str) -> tuple[Authorization, User]:
    try:
        auth = open_mfa_token(state, token, status=401)
    except OAuthError as exc:
        if exc.error == "expired_token":
            raise
        raise OAuthError(401, "invalid_grant", _INVALID_MFA_TOKEN) from None
    user = state.user(auth.username)
    if user is None:
        raise OAuthError(401, "invalid_grant", _INVALID_MFA_TOKEN)
    return auth, user


def access_token_session(token: str) -> str:
    """The MFA session id of enrollments made with an MFA-API access token."""
    return "at:" + hashlib.sha256(token.encode()).hexdigest()[:16]


@api()
async def list_authenticators_endpoint(request: web.Request) -> web.StreamResponse:
    """``GET /mfa/authenticators``."""
    state = request.app[STATE_KEY]
    token = _bearer(request)
    if _is_mfa_token(token):
        _auth, user = _open_bearer_mfa_token(state, token)
    else:
        base = base_url(request, state)
        _claims, user = verify_access_token(
            state, base, token, audience=base + "/mfa/", scope="read:authenticators"
        )
    type_field = state.settings.authenticator_type_field
    body = [a.wire(type_field=type_field) for a in user.authenticators.values()]
    return json_response(body)


@api()
async def associate_endpoint(request: web.Request) -> web.StreamResponse:
    """``POST /mfa/associate``."""
    state = request.app[STATE_KEY]
    token = _bearer(request)
    params = await read_params(request)
    base = base_url(request, state)
    if _is_mfa_token(token):
        auth, user = _open_bearer_mfa_token(state, token)
        if user.active_factors():
            raise OAuthError(403, "access_denied", "User is already enrolled.")
        session_id = auth.session_id
    else:
        _claims, user = verify_access_token(
            state, base, token, audience=base + "/mfa/", scope="enroll"
        )
        session_id = access_token_session(token)
    return json_response(associate(state, base, user, session_id, params))


@api()
async def challenge_endpoint(request: web.Request) -> web.StreamResponse:
    """``POST /mfa/challenge``."""
    state = request.app[STATE_KEY]
    params = await read_params(request, allow_form=state.settings.challenge_accepts_form)
    str_param(params, "client_id", required=True)
    client = authenticate_client(state, request, params, basic=False)
    auth = open_mfa_token(state, str_param(params, "mfa_token"))
    user = state.user(auth.username)
    if auth.client_id != client.client_id or user is None:
        raise OAuthError(403, "invalid_grant", "Malformed mfa_token")
    return json_response(challenge(state, user, auth, params))


@api()
async def delete_authenticator_endpoint(request: web.Request) -> web.StreamResponse:
    """``DELETE /mfa/authenticators/{id}`` (the id arrives percent-encoded)."""
    state = request.app[STATE_KEY]
    token = _bearer(request)
    if _is_mfa_token(token):
        raise OAuthError(
            401,
            "invalid_token",
            "An mfa_token cannot delete authenticators: use an access token for the MFA API.",
        )
    base = base_url(request, state)
    _claims, user = verify_access_token(
        state, base, token, audience=base + "/mfa/", scope="remove:authenticators"
    )
    authenticator_id = request.match_info["authenticator_id"]
    authenticator = user.authenticators.get(authenticator_id)
    if authenticator is None:
        raise OAuthError(404, "invalid_authenticator", "Authenticator not found")
    if authenticator.implicit:
        raise OAuthError(
            400, "invalid_request", "The verified email authenticator cannot be deleted."
        )
    state.delete_authenticator(user, authenticator_id)
    response = web.Response(status=204)
    response.headers["Content-Type"] = "application/json"
    return response
