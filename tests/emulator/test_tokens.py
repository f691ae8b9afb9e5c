"""Tokens: RS256 JWTs verified with the JWKS, discovery, /userinfo, refresh tokens, sealing."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pyotp
import pytest

from flowengine.clock import ManualClock
from flowengine.emulator.tokens import ExpiredToken, MalformedToken, Sealer, hotp, totp_key
from tests.emulator.conftest import Client, MakeClient
from tests.emulator.helpers import OTP, OTP_SECRET, grant, json_of, mfa_token, otp_now, password


async def _base(client: Client) -> str:
    return str(client.make_url("")).rstrip("/")


async def _tokens(client: Client, **params: Any) -> dict[str, Any]:
    response = await password(client, "frank", "frank-pw", **params)
    body: dict[str, Any] = await json_of(response)
    assert response.status == 200, body
    return body


async def _key(client: Client) -> Any:
    jwks = await json_of(await client.get("/.well-known/jwks.json"))
    return jwt.PyJWK.from_json(json.dumps(jwks["keys"][0])).key


async def test_jwks_document(client: Client) -> None:
    """The JWKS has one RS256 signing key with kid, x5t and x5c."""
    response = await client.get("/.well-known/jwks.json")
    body = await json_of(response)
    (key,) = body["keys"]
    assert {"alg", "kty", "use", "n", "e", "kid", "x5t", "x5c"} <= set(key)
    assert (key["alg"], key["kty"], key["use"], key["e"]) == ("RS256", "RSA", "sig", "AQAB")


async def test_openid_configuration(client: Client) -> None:
    """Discovery names the issuer with a trailing slash and the endpoints on the base URL."""
    base = await _base(client)
    body = await json_of(await client.get("/.well-known/openid-configuration"))
    assert body["issuer"] == base + "/"
    assert body["token_endpoint"] == base + "/oauth/token"
    assert body["jwks_uri"] == base + "/.well-known/jwks.json"
    assert body["mfa_challenge_endpoint"] == base + "/mfa/challenge"
    assert "grant_types_supported" not in body


async def test_configured_base_url(make_client: MakeClient) -> None:
    """base_url replaces the Host-derived base in iss and discovery."""
    client = await make_client(base_url="https://tenant.example.test")
    body = await json_of(await client.get("/.well-known/openid-configuration"))
    assert body["issuer"] == "https://tenant.example.test/"
    tokens = await _tokens(client, audience="https://api.test/")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["iss"] == "https://tenant.example.test/"


async def test_access_token_verifies_with_jwks(client: Client, clock: ManualClock) -> None:
    """The API access token verifies against the JWKS with the §10 claims."""
    base = await _base(client)
    tokens = await _tokens(client, audience="https://api.test/", scope="openid")
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "RS256"
    assert header["kid"]
    claims = jwt.decode(
        tokens["access_token"],
        await _key(client),
        algorithms=["RS256"],
        audience="https://api.test/",
        issuer=base + "/",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert set(claims) == {"iss", "sub", "aud", "iat", "exp", "scope", "gty", "azp"}
    assert claims["sub"].startswith("auth0|")
    assert claims["exp"] - claims["iat"] == 86400
    assert claims["iat"] == int(clock.time())


async def test_id_token_claims(client: Client) -> None:
    """The id_token has aud = client_id, a 10-hour lifetime and profile/email claims, no amr."""
    tokens = await _tokens(client, scope="openid profile email")
    claims = jwt.decode(
        tokens["id_token"],
        await _key(client),
        algorithms=["RS256"],
        audience="app",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["exp"] - claims["iat"] == 36000
    assert claims["email"] == "frank@example.com"
    assert claims["email_verified"] is True
    assert claims["nickname"] == "frank"
    assert claims["updated_at"].endswith("Z")
    assert "amr" not in claims


async def test_mfa_grant_tokens_keep_original_request(client: Client, clock: ManualClock) -> None:
    """Tokens after MFA carry the audience and scope of the password request."""
    token = await mfa_token(
        client, "bob@example.com", "bob-pw", audience="https://api.test/", scope="read:data"
    )
    body = await json_of(await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock)))
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://api.test/"
    assert body["scope"] == "read:data"


async def test_userinfo_with_opaque_token(client: Client) -> None:
    """/userinfo accepts the opaque access token of a request without audience."""
    tokens = await _tokens(client, scope="openid profile email")
    assert tokens["access_token"].count(".") == 4
    response = await client.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    body = await json_of(response)
    assert response.status == 200
    assert body["sub"].startswith("auth0|")
    assert body["email"] == "frank@example.com"
    assert isinstance(body["updated_at"], str)


async def test_userinfo_post_with_jwt(client: Client) -> None:
    """POST /userinfo accepts an API access token that includes the /userinfo audience."""
    tokens = await _tokens(client, audience="https://api.test/", scope="openid")
    response = await client.post(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status == 200
    assert set(await json_of(response)) == {"sub"}


async def test_userinfo_refuses_api_only_token(client: Client) -> None:
    """An access token without the /userinfo audience is 401."""
    tokens = await _tokens(client, audience="https://api.test/")
    response = await client.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status == 401


async def test_userinfo_bad_token(client: Client) -> None:
    """A garbage token is 401 with WWW-Authenticate."""
    response = await client.get("/userinfo", headers={"Authorization": "Bearer nope"})
    assert response.status == 401
    assert "WWW-Authenticate" in response.headers


async def test_userinfo_missing_token(client: Client) -> None:
    """No token is 401."""
    assert (await client.get("/userinfo")).status == 401


async def test_userinfo_expired_token(client: Client, clock: ManualClock) -> None:
    """An expired opaque token is 401."""
    tokens = await _tokens(client, scope="openid")
    clock.advance(86400)
    response = await client.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status == 401


async def test_userinfo_rate_limit(client: Client) -> None:
    """/userinfo allows a burst of 10 per user, then 429 with X-RateLimit headers."""
    tokens = await _tokens(client, scope="openid")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    for _ in range(10):
        assert (await client.get("/userinfo", headers=headers)).status == 200
    response = await client.get("/userinfo", headers=headers)
    assert response.status == 429
    assert response.headers["X-RateLimit-Limit"] == "10"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["Retry-After"]) == 12


async def test_refresh_token_grant(client: Client) -> None:
    """The refresh grant issues a new access token and keeps the refresh token (no rotation)."""
    tokens = await _tokens(client, audience="https://api.test/", scope="openid offline_access")
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "app",
            "client_secret": "app-secret",
        },
    )
    body = await json_of(response)
    assert response.status == 200
    assert set(body) == {"access_token", "id_token", "scope", "expires_in", "token_type"}


async def test_refresh_token_rotation(make_client: MakeClient) -> None:
    """With rotation the refresh grant returns a new refresh token and the old one dies."""
    client = await make_client(refresh_token_rotation=True)
    tokens = await _tokens(client, audience="https://api.test/", scope="offline_access")
    data = {"grant_type": "refresh_token", "client_id": "app", "client_secret": "app-secret"}
    first = await json_of(
        await client.post("/oauth/token", data={**data, "refresh_token": tokens["refresh_token"]})
    )
    assert first["refresh_token"] != tokens["refresh_token"]
    again = await client.post(
        "/oauth/token", data={**data, "refresh_token": tokens["refresh_token"]}
    )
    assert again.status == 403


async def test_refresh_scope_may_only_narrow(client: Client) -> None:
    """A refresh asking for a scope it was not granted is 403 invalid_scope."""
    tokens = await _tokens(client, audience="https://api.test/", scope="read:data offline_access")
    data = {"grant_type": "refresh_token", "client_id": "app", "client_secret": "app-secret"}
    narrowed = await client.post(
        "/oauth/token",
        data={**data, "refresh_token": tokens["refresh_token"], "scope": "read:data"},
    )
    assert (await json_of(narrowed))["scope"] == "read:data"
    wider = await client.post(
        "/oauth/token",
        data={**data, "refresh_token": tokens["refresh_token"], "scope": "write:data"},
    )
    assert (await json_of(wider))["error"] == "invalid_scope"


async def test_unknown_refresh_token(client: Client) -> None:
    """An unknown refresh token is 403 invalid_grant Unknown or invalid refresh token."""
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "v1.nope", "client_id": "public"},
    )
    assert response.status == 403
    assert await json_of(response) == {
        "error": "invalid_grant",
        "error_description": "Unknown or invalid refresh token.",
    }


async def test_refresh_token_of_other_client(client: Client) -> None:
    """A refresh token only works for its own client."""
    tokens = await _tokens(client, audience="https://api.test/", scope="offline_access")
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "public",
        },
    )
    assert response.status == 403


async def test_refresh_token_expires(client: Client, clock: ManualClock) -> None:
    """Refresh tokens expire after their lifetime (30 days by default)."""
    tokens = await _tokens(client, audience="https://api.test/", scope="offline_access")
    clock.advance(30 * 86400)
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "app",
            "client_secret": "app-secret",
        },
    )
    assert response.status == 403


def test_sealer_round_trip() -> None:
    """A sealed payload opens with the same sealer and purpose."""
    sealer = Sealer("SERVER_1")
    token = sealer.seal("mfa_token", ["a", 1], 100.0)
    assert sealer.unseal("mfa_token", token, 99.0) == ["a", 1]


def test_sealer_purpose_is_bound() -> None:
    """An oob_code cannot be used as an mfa_token."""
    sealer = Sealer("SERVER_1")
    token = sealer.seal("oob_code", ["a"], 100.0)
    with pytest.raises(MalformedToken):
        sealer.unseal("mfa_token", token, 0.0)


def test_sealer_expiry() -> None:
    """A sealed string past its expiry raises ExpiredToken."""
    sealer = Sealer("SERVER_1")
    token = sealer.seal("mfa_token", [], 100.0)
    with pytest.raises(ExpiredToken):
        sealer.unseal("mfa_token", token, 100.0)


def test_sealer_other_process_key() -> None:
    """Another sealer (another process) cannot open it."""
    token = Sealer("SERVER_1").seal("mfa_token", [], 100.0)
    with pytest.raises(MalformedToken):
        Sealer("SERVER_1").unseal("mfa_token", token, 0.0)


def test_sealer_ciphertext_hides_payload() -> None:
    """The payload does not appear in the sealed string."""
    token = Sealer("SERVER_1").seal("mfa_token", ["secret-username"], 100.0)
    assert "secret" not in token


def test_hotp_rfc4226_vectors() -> None:
    """hotp() matches the RFC 4226 test vectors."""
    key = b"12345678901234567890"
    assert [hotp(key, c) for c in range(3)] == ["755224", "287082", "359152"]


def test_totp_matches_pyotp() -> None:
    """hotp(totp_key(secret), t // 30) equals pyotp's TOTP code."""
    secret = pyotp.random_base32(32)
    assert hotp(totp_key(secret), 1_767_225_600 // 30) == pyotp.TOTP(secret).at(1_767_225_600)


def test_sealer_caches_opened_strings() -> None:
    """A re-presented sealed string still expires on time."""
    sealer = Sealer("SERVER_1")
    token = sealer.seal("mfa_token", ["a"], 100.0)
    assert sealer.unseal("mfa_token", token, 1.0) == ["a"]
    with pytest.raises(ExpiredToken):
        sealer.unseal("mfa_token", token, 100.0)
