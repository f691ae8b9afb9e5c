"""Minting token sets and ``mfa_required`` answers: audience and scope rules (§3, §10).

An :class:`Authorization` is what a successful password check (or MFA grant, or refresh)
authorizes: user, client, audience and scopes. The ``mfa_token`` carries it sealed, so a
password grant that ends in ``mfa_required`` stores nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import secrets
import time
from typing import Any

import attrs

from flowengine.emulator.config import GRANT_REFRESH_TOKEN, ApiConfig, ClientConfig
from flowengine.emulator.http import OAuthError
from flowengine.emulator.store import TYPE_FIELD, EmulatorState, RefreshGrant, User
from flowengine.emulator.tokens import ExpiredToken, MalformedToken

__all__ = [
    "Authorization",
    "MFA_SCOPES",
    "OIDC_SCOPES",
    "mfa_required_error",
    "open_mfa_token",
    "resolve_authorization",
    "token_set",
    "userinfo_claims",
]

OIDC_SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access")
MFA_SCOPES = ("enroll", "read:authenticators", "remove:authenticators")
_MFA_TOKEN = "mfa_token"
_SCOPE_CACHE_SIZE = 1024


@attrs.frozen(kw_only=True)
class Authorization:
    """What a grant authorizes."""

    username: str
    """The user."""
    client_id: str
    """The client."""
    audience: str | None
    """Requested audience (None: opaque token for ``/userinfo`` only)."""
    scope: tuple[str, ...]
    """Granted scopes."""
    scope_requested: bool
    """Whether the request named a scope (then ``scope`` is echoed in the answer)."""
    session_id: str = ""
    """The MFA session (the ``mfa_token``'s identity)."""


def resolve_authorization(
    state: EmulatorState,
    base: str,
    *,
    user: User,
    client: ClientConfig,
    audience: str | None,
    scope: str | None,
) -> Authorization:
    """Apply the audience and scope rules; 403 ``access_denied`` for an unknown audience."""
    settings = state.settings
    target = audience or settings.default_audience
    wanted = scope if scope is not None else settings.default_scope
    refresh = GRANT_REFRESH_TOKEN in client.grant_types
    # The answer depends only on these (the tenant's APIs are fixed): remember it.
    key = (base, target, wanted, refresh)
    granted = state.scope_cache.get(key)
    if granted is None:
        granted = _granted_scopes(state, base, target, wanted.split(), refresh)
        if len(state.scope_cache) >= _SCOPE_CACHE_SIZE:
            state.scope_cache.clear()
        state.scope_cache[key] = granted
    return Authorization(
        username=user.username,
        client_id=client.client_id,
        audience=target,
        scope=granted,
        scope_requested=scope is not None or target is not None,
    )


def _granted_scopes(
    state: EmulatorState, base: str, target: str | None, requested: list[str], refresh: bool
) -> tuple[str, ...]:
    if target is None:
        allowed: tuple[str, ...] = ()
        offline = False
    elif target == base + "/mfa/":
        allowed = MFA_SCOPES
        offline = True
    else:
        api = state.apis.get(target)
        if api is None:
            raise OAuthError(403, "access_denied", f"Service not found: {target}")
        allowed = api.scopes
        offline = api.allow_offline_access
    offline = offline and refresh
    granted: list[str] = []
    for name in requested:
        if name in granted:
            continue
        if name == "offline_access":
            if offline:
                granted.append(name)
        elif name in OIDC_SCOPES or name in allowed:
            granted.append(name)
    if not any(name in allowed for name in requested):
        granted.extend(name for name in allowed if name not in granted)
    return tuple(granted)


def mfa_required_error(state: EmulatorState, auth: Authorization, user: User) -> OAuthError:
    """``403 mfa_required`` with a fresh sealed ``mfa_token``."""
    session_id = secrets.token_hex(8)
    now = state.clock.time()
    token = state.sealer.seal(
        _MFA_TOKEN,
        [
            auth.username,
            auth.client_id,
            auth.audience,
            list(auth.scope),
            auth.scope_requested,
            session_id,
        ],
        now + state.settings.lifetimes.mfa_token,
    )
    extra: dict[str, Any] = {"mfa_token": token}
    if state.settings.mfa_requirements:
        active = user.active_factors()
        if active:
            types = [TYPE_FIELD[a.factor] for a in active]
            if user.recovery_code is not None:
                types.append("recovery-code")
            extra["mfa_requirements"] = {"challenge": [{"type": t} for t in dict.fromkeys(types)]}
        else:
            enabled = [
                f for f in ("otp", "push", "sms", "voice", "email") if f in state.settings.factors
            ]
            types = list(dict.fromkeys(TYPE_FIELD[f] for f in enabled))
            extra["mfa_requirements"] = {"enroll": [{"type": t} for t in types]}
    return OAuthError(403, "mfa_required", "Multifactor authentication required", extra=extra)


def open_mfa_token(state: EmulatorState, token: str | None, *, status: int = 403) -> Authorization:
    """The authorization sealed in ``token``; ``Malformed mfa_token`` / ``mfa_token is expired``."""
    if not token:
        raise OAuthError(400, "invalid_request", "Missing required parameter: mfa_token")
    try:
        payload = state.sealer.unseal(_MFA_TOKEN, token, state.clock.time())
        username, client_id, audience, scope, scope_requested, session_id = payload
    except ExpiredToken:
        raise OAuthError(401, "expired_token", "mfa_token is expired") from None
    except (MalformedToken, ValueError):
        raise OAuthError(status, "invalid_grant", "Malformed mfa_token") from None
    return Authorization(
        username=username,
        client_id=client_id,
        audience=audience,
        scope=tuple(scope),
        scope_requested=scope_requested,
        session_id=session_id,
    )


def _profile_claims(user: User, scope: tuple[str, ...], now: float) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    if "profile" in scope:
        profile = user.profile
        if profile is None:
            name = user.email or user.username
            digest = hashlib.md5(name.lower().encode(), usedforsecurity=False).hexdigest()
            profile = user.profile = (
                name.partition("@")[0],
                name,
                f"https://s.gravatar.com/avatar/{digest}?s=480&r=pg&d=identicon",
            )
        claims["nickname"], claims["name"], claims["picture"] = profile
        claims["updated_at"] = _iso_ms(now)
    if "email" in scope and user.email:
        claims["email"] = user.email
        claims["email_verified"] = True
    return claims


_SECOND: list[Any] = [None, ""]


def _iso_ms(now: float) -> str:
    """``now`` as ISO 8601 UTC with milliseconds (``2026-01-01T00:00:00.000Z``), as
    ``datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")`` writes it, with
    the seconds part formatted once per second."""
    if now < 0:
        return (
            datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="milliseconds")
        ).replace("+00:00", "Z")
    fraction, whole = math.modf(now)
    second = int(whole)
    micros = round(fraction * 1e6)  # datetime rounds to the microsecond, half to even
    if micros >= 1_000_000:
        second += 1
        micros -= 1_000_000
    if _SECOND[0] != second:
        _SECOND[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND[0] = second
    return f"{_SECOND[1]}.{micros // 1000:03d}Z"


def userinfo_claims(user: User, scope: tuple[str, ...], now: float) -> dict[str, Any]:
    """The ``/userinfo`` body for ``user`` and the token's scopes."""
    return {"sub": user.user_id, **_profile_claims(user, scope, now)}


def token_set(
    state: EmulatorState,
    base: str,
    auth: Authorization,
    user: User,
    *,
    issue_refresh: bool = True,
) -> dict[str, Any]:
    """The 200 body of ``/oauth/token``: access token, id token, refresh token, scope."""
    now = state.clock.time()
    iat = int(now)
    lifetimes = state.settings.lifetimes
    scope_text = " ".join(auth.scope)
    openid = "openid" in auth.scope
    issuer = base + "/"
    body: dict[str, Any] = {}
    if auth.audience is None:
        expires_in = lifetimes.access_token
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": user.user_id,
            "aud": base + "/userinfo",
            "iat": iat,
            "exp": iat + expires_in,
            "scope": scope_text,
            "azp": auth.client_id,
        }
        body["access_token"] = state.sealer.opaque_token(claims)
    else:
        api: ApiConfig | None = state.apis.get(auth.audience)
        expires_in = api.token_lifetime if api is not None else lifetimes.mfa_api_token
        claims = {
            "iss": issuer,
            "sub": user.user_id,
            "aud": [auth.audience, base + "/userinfo"] if openid else auth.audience,
            "iat": iat,
            "exp": iat + expires_in,
            "scope": scope_text,
            "gty": "password",
            "azp": auth.client_id,
        }
        body["access_token"] = state.signer.sign(claims)
    if openid:
        id_claims = {
            "iss": issuer,
            "sub": user.user_id,
            "aud": auth.client_id,
            "iat": iat,
            "exp": iat + lifetimes.id_token,
            **_profile_claims(user, auth.scope, now),
        }
        body["id_token"] = state.signer.sign(id_claims)
    if "offline_access" in auth.scope and issue_refresh:
        refresh_token = "v1." + secrets.token_urlsafe(48)
        if len(state.refresh_tokens) >= state.settings.max_refresh_tokens:
            state.refresh_tokens.popitem(last=False)
        state.refresh_tokens[refresh_token] = RefreshGrant(
            username=user.username,
            client_id=auth.client_id,
            audience=auth.audience,
            scope=auth.scope,
            expires_at=now + lifetimes.refresh_token,
        )
        body["refresh_token"] = refresh_token
    if auth.scope_requested and scope_text:
        body["scope"] = scope_text
    body["expires_in"] = expires_in
    body["token_type"] = "Bearer"
    return body
