"""OpenID endpoints: discovery document, JWKS and ``/userinfo`` (reference §9.2-§9.4)."""

from __future__ import annotations

from aiohttp import web

from flowengine.emulator.http import STATE_KEY, OAuthError, api, base_url, json_response
from flowengine.emulator.issue import userinfo_claims
from flowengine.emulator.limits import rate_limit_headers
from flowengine.emulator.mfa import verify_access_token
from flowengine.emulator.tokens import MalformedToken

__all__ = ["jwks_endpoint", "openid_configuration_endpoint", "userinfo_endpoint"]

_SCOPES = (
    "openid profile offline_access name given_name family_name nickname email email_verified "
    "picture created_at identities phone address"
)
_CLAIMS = (
    "aud auth_time created_at email email_verified exp family_name given_name iat identities "
    "iss name nickname phone_number picture sub"
)


@api()
async def openid_configuration_endpoint(request: web.Request) -> web.StreamResponse:
    """``GET /.well-known/openid-configuration``."""
    state = request.app[STATE_KEY]
    base = base_url(request, state)
    document = {
        "issuer": base + "/",
        "authorization_endpoint": base + "/authorize",
        "token_endpoint": base + "/oauth/token",
        "device_authorization_endpoint": base + "/oauth/device/code",
        "userinfo_endpoint": base + "/userinfo",
        "mfa_challenge_endpoint": base + "/mfa/challenge",
        "jwks_uri": base + "/.well-known/jwks.json",
        "registration_endpoint": base + "/oidc/register",
        "revocation_endpoint": base + "/oauth/revoke",
        "scopes_supported": _SCOPES.split(),
        "response_types_supported": [
            "code",
            "token",
            "id_token",
            "code token",
            "code id_token",
            "token id_token",
            "code token id_token",
        ],
        "code_challenge_methods_supported": ["S256", "plain"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256", "RS256", "PS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": _CLAIMS.split(),
        "request_uri_parameter_supported": False,
        "request_parameter_supported": False,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "PS256"],
    }
    return json_response(document)


@api()
async def jwks_endpoint(request: web.Request) -> web.StreamResponse:
    """``GET /.well-known/jwks.json``."""
    return json_response(request.app[STATE_KEY].signer.jwks())


_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


@api()
async def userinfo_endpoint(request: web.Request) -> web.StreamResponse:
    """``GET|POST /userinfo`` with an access token whose audience includes ``/userinfo``."""
    state = request.app[STATE_KEY]
    base = base_url(request, state)
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token:
        raise OAuthError(401, "invalid_token", "Missing access token.", headers=_CHALLENGE)
    now = state.clock.time()
    if token.count(".") == 4:
        try:
            claims = state.sealer.open_opaque_token(token)
        except MalformedToken:
            raise OAuthError(401, "invalid_token", "Invalid token.", headers=_CHALLENGE) from None
        if claims.get("exp", 0) <= now:
            raise OAuthError(
                401, "invalid_token", "The access token has expired.", headers=_CHALLENGE
            )
        user = state.user_by_id(str(claims.get("sub")))
        if user is None:
            raise OAuthError(401, "invalid_token", "Unknown user.", headers=_CHALLENGE)
    else:
        try:
            claims, user = verify_access_token(
                state, base, token, audience=base + "/userinfo", scope=None
            )
        except OAuthError as exc:
            raise OAuthError(401, "invalid_token", exc.description, headers=_CHALLENGE) from None
    headers = None
    if state.userinfo_calls is not None:
        bucket = state.userinfo_calls.get(user.user_id, now)
        if not bucket.take(now):
            raise OAuthError(
                429,
                "too_many_requests",
                "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and "
                "X-RateLimit-Reset headers.",
                headers=rate_limit_headers(bucket, now, limited=True),
            )
        headers = rate_limit_headers(bucket, now, limited=False)
    scope = tuple(str(claims.get("scope", "")).split())
    return json_response(userinfo_claims(user, scope, now), headers=headers)
