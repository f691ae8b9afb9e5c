"""POST /oauth/token with the password and password-realm grants."""

from __future__ import annotations

import base64

import jwt

from flowengine.clock import ManualClock
from flowengine.emulator import EmulatorConfig
from tests.emulator.conftest import Client, MakeClient
from tests.emulator.helpers import json_of, password, state_of

REALM = "http://auth0.com/oauth/grant-type/password-realm"


async def test_mfa_required_answer(client: Client) -> None:
    """A user needing MFA gets 403 mfa_required with an Iron-like mfa_token."""
    response = await password(client, "alice@example.com", "alice-pw")
    body = await json_of(response)
    assert response.status == 403
    assert set(body) == {"error", "error_description", "mfa_token"}
    assert body["error_description"] == "Multifactor authentication required"
    assert body["mfa_token"].startswith("Fe26.2*SERVER_")
    assert len(body["mfa_token"].split("*")) == 8


async def test_mfa_token_embeds_expiry_in_ms(client: Client, clock: ManualClock) -> None:
    """The 6th field of the mfa_token is its expiry in ms (10 minutes by default)."""
    body = await json_of(await password(client, "alice@example.com", "alice-pw"))
    assert int(body["mfa_token"].split("*")[5]) == int((clock.time() + 600) * 1000)


async def test_mfa_requirements_challenge(make_client: MakeClient) -> None:
    """With mfa_requirements on, an enrolled user gets the challenge types."""
    client = await make_client(mfa_requirements=True)
    body = await json_of(await password(client, "bob@example.com", "bob-pw"))
    assert body["mfa_requirements"] == {"challenge": [{"type": "otp"}, {"type": "recovery-code"}]}


async def test_mfa_requirements_enroll(make_client: MakeClient) -> None:
    """With mfa_requirements on, a user without factors gets the enroll types."""
    client = await make_client(mfa_requirements=True, factors=frozenset({"otp", "sms"}))
    body = await json_of(await password(client, "alice@example.com", "alice-pw"))
    assert body["mfa_requirements"] == {"enroll": [{"type": "otp"}, {"type": "phone"}]}


async def test_no_mfa_gives_tokens_without_scope(client: Client) -> None:
    """Without MFA, no audience and no scope: an opaque access token and no scope member."""
    response = await password(client, "frank", "frank-pw")
    body = await json_of(response)
    assert response.status == 200
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["expires_in"] == 86400
    assert body["token_type"] == "Bearer"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"


async def test_tenant_without_mfa(make_client: MakeClient) -> None:
    """mfa_required off for the tenant: tokens straight away."""
    client = await make_client(mfa_required=False)
    response = await password(client, "alice@example.com", "alice-pw")
    assert response.status == 200


async def test_openid_scope_adds_id_token(client: Client) -> None:
    """scope openid yields an id_token and echoes the scope."""
    body = await json_of(await password(client, "frank", "frank-pw", scope="openid profile"))
    assert set(body) == {"access_token", "id_token", "scope", "expires_in", "token_type"}
    assert body["scope"] == "openid profile"


async def test_default_scope_adds_id_token_without_scope_member(make_client: MakeClient) -> None:
    """A tenant default scope of openid gives an id_token but no scope member."""
    client = await make_client(default_scope="openid")
    body = await json_of(await password(client, "frank", "frank-pw"))
    assert set(body) == {"access_token", "id_token", "expires_in", "token_type"}


async def test_api_audience_grants_all_api_scopes(client: Client) -> None:
    """An API audience without API scopes requested grants all the API's scopes."""
    body = await json_of(
        await password(client, "frank", "frank-pw", audience="https://api.test/", scope="openid")
    )
    assert body["scope"] == "openid read:data write:data"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"][0] == "https://api.test/"
    assert claims["aud"][1].endswith("/userinfo")
    assert claims["gty"] == "password"
    assert claims["azp"] == "app"


async def test_api_scopes_are_narrowed_to_known_ones(client: Client) -> None:
    """Requested API scopes are kept, unknown scopes dropped, and aud is a string without openid."""
    body = await json_of(
        await password(
            client, "frank", "frank-pw", audience="https://api.test/", scope="read:data bogus"
        )
    )
    assert body["scope"] == "read:data"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://api.test/"


async def test_offline_access_gives_refresh_token(client: Client) -> None:
    """offline_access on an API that allows it yields a refresh token."""
    body = await json_of(
        await password(
            client, "frank", "frank-pw", audience="https://api.test/", scope="openid offline_access"
        )
    )
    assert body["refresh_token"].startswith("v1.")


async def test_offline_access_dropped_when_api_disallows(client: Client) -> None:
    """offline_access is dropped for an API without offline access."""
    body = await json_of(
        await password(
            client, "frank", "frank-pw", audience="https://closed.test/", scope="offline_access"
        )
    )
    assert "refresh_token" not in body
    assert body["scope"] == "read:closed"


async def test_unknown_audience(client: Client) -> None:
    """An unknown audience is 403 access_denied Service not found."""
    response = await password(client, "frank", "frank-pw", audience="https://nope.test/")
    body = await json_of(response)
    assert response.status == 403
    assert body == {
        "error": "access_denied",
        "error_description": "Service not found: https://nope.test/",
    }


async def test_scope_as_array(client: Client) -> None:
    """A JSON scope array is accepted."""
    body = await json_of(await password(client, "frank", "frank-pw", scope=["openid", "email"]))
    assert body["scope"] == "openid email"


async def test_scope_of_wrong_type(client: Client) -> None:
    """A scope that is neither string nor array is 400 invalid_scope."""
    response = await password(client, "frank", "frank-pw", scope=5)
    assert (await json_of(response))["error"] == "invalid_scope"


async def test_wrong_password(client: Client) -> None:
    """A wrong password is 403 invalid_grant Wrong email or password."""
    response = await password(client, "alice@example.com", "nope")
    assert response.status == 403
    assert await json_of(response) == {
        "error": "invalid_grant",
        "error_description": "Wrong email or password.",
    }


async def test_unknown_user(client: Client) -> None:
    """An unknown user gets the same answer as a wrong password."""
    response = await password(client, "nobody@example.com", "x")
    assert (await json_of(response))["error_description"] == "Wrong email or password."


async def test_username_is_case_insensitive(client: Client) -> None:
    """Usernames match case-insensitively."""
    response = await password(client, "ALICE@example.com", "alice-pw")
    assert response.status == 403
    assert (await json_of(response))["error"] == "mfa_required"


async def test_population_user(client: Client) -> None:
    """A generated user logs in with its patterned password."""
    response = await password(client, "user42@example.test", "Passw0rd!42")
    assert (await json_of(response))["error"] == "mfa_required"


async def test_population_user_out_of_range(client: Client) -> None:
    """A username past the population's count is unknown."""
    response = await password(client, "user101@example.test", "Passw0rd!101")
    assert (await json_of(response))["error"] == "invalid_grant"


async def test_blocked_user(client: Client) -> None:
    """An administrator-blocked user gets 401 unauthorized user is blocked."""
    response = await password(client, "blocked@example.com", "blocked-pw")
    assert response.status == 401
    assert await json_of(response) == {
        "error": "unauthorized",
        "error_description": "user is blocked",
    }


async def test_brute_force_blocks_after_threshold(client: Client) -> None:
    """The 10th consecutive failure blocks: 429 too_many_attempts, even with the right password."""
    for _ in range(9):
        assert (await password(client, "alice@example.com", "bad")).status == 403
    response = await password(client, "alice@example.com", "bad")
    assert response.status == 429
    assert (await json_of(response))["error"] == "too_many_attempts"
    again = await password(client, "alice@example.com", "alice-pw")
    assert again.status == 429


async def test_brute_force_block_expires(client: Client, clock: ManualClock) -> None:
    """The brute-force block lifts after its duration."""
    for _ in range(10):
        await password(client, "alice@example.com", "bad")
    clock.advance(30 * 86400)
    response = await password(client, "alice@example.com", "alice-pw")
    assert response.status == 403
    assert (await json_of(response))["error"] == "mfa_required"


async def test_success_resets_failure_count(client: Client) -> None:
    """A successful login resets the consecutive failure count."""
    for _ in range(9):
        await password(client, "alice@example.com", "bad")
    await password(client, "alice@example.com", "alice-pw")
    response = await password(client, "alice@example.com", "bad")
    assert response.status == 403


async def test_brute_force_keys_on_forwarded_ip_of_trusted_client(client: Client) -> None:
    """A trusted client's auth0-forwarded-for separates end users' failure counts."""
    creds = {"client_id": "proxy", "client_secret": "proxy-secret"}
    for i in range(10):
        body = {
            "grant_type": "password",
            "username": "alice@example.com",
            "password": "bad",
            **creds,
        }
        await client.post("/oauth/token", json=body, headers={"auth0-forwarded-for": f"10.0.0.{i}"})
    body = {
        "grant_type": "password",
        "username": "alice@example.com",
        "password": "alice-pw",
        **creds,
    }
    response = await client.post(
        "/oauth/token", json=body, headers={"auth0-forwarded-for": "10.0.0.99"}
    )
    assert response.status == 403


async def test_form_body_with_charset(client: Client) -> None:
    """A form body whose content type has a charset parameter is accepted."""
    data = (
        "grant_type=password&username=frank&password=frank-pw"
        "&client_id=app&client_secret=app-secret"
    )
    response = await client.post(
        "/oauth/token",
        data=data,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert response.status == 200


async def test_json_body_with_charset(client: Client) -> None:
    """A JSON body whose content type has a charset parameter is accepted."""
    data = (
        b'{"grant_type":"password","username":"frank","password":"frank-pw","client_id":"public"}'
    )
    response = await client.post(
        "/oauth/token", data=data, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert response.status == 200


async def test_unsupported_content_type(client: Client) -> None:
    """A text/plain body is 400 invalid_request."""
    response = await client.post("/oauth/token", data="x", headers={"Content-Type": "text/plain"})
    assert response.status == 400
    assert (await json_of(response))["error"] == "invalid_request"


async def test_invalid_json(client: Client) -> None:
    """Broken JSON is 400 invalid_request."""
    response = await client.post(
        "/oauth/token", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert (await json_of(response))["error"] == "invalid_request"


async def test_body_size_is_capped(make_client: MakeClient) -> None:
    """A body over max_body_bytes is refused with 413."""
    client = await make_client(max_body_bytes=2048)
    response = await client.post(
        "/oauth/token", data=b"x" * 4096, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413


async def test_missing_username(client: Client) -> None:
    """A missing username is 400 invalid_request naming it."""
    response = await client.post(
        "/oauth/token", json={"grant_type": "password", "password": "x", "client_id": "public"}
    )
    assert response.status == 400
    assert (await json_of(response))["error_description"] == "Missing required parameter: username"


async def test_missing_grant_type(client: Client) -> None:
    """A missing grant_type is 400 invalid_request."""
    response = await client.post("/oauth/token", json={"client_id": "public"})
    assert response.status == 400


async def test_unsupported_grant_type(client: Client) -> None:
    """An unknown grant type is 403 unsupported_grant_type."""
    response = await client.post(
        "/oauth/token", json={"grant_type": "magic", "client_id": "public"}
    )
    assert (await json_of(response))["error"] == "unsupported_grant_type"


async def test_grant_not_allowed_for_client(client: Client) -> None:
    """A grant the client lacks is 403 unauthorized_client with Auth0's text."""
    response = await client.post(
        "/oauth/token",
        json={
            "grant_type": REALM,
            "username": "frank",
            "password": "frank-pw",
            "realm": "Username-Password-Authentication",
            "client_id": "narrow",
            "client_secret": "narrow-secret",
        },
    )
    assert response.status == 403
    assert await json_of(response) == {
        "error": "unauthorized_client",
        "error_description": f"Grant type '{REALM}' not allowed for the client.",
    }


async def test_password_realm(client: Client) -> None:
    """password-realm with the tenant's connection works like password."""
    response = await client.post(
        "/oauth/token",
        json={
            "grant_type": REALM,
            "username": "frank",
            "password": "frank-pw",
            "realm": "Username-Password-Authentication",
            "client_id": "public",
        },
    )
    assert response.status == 200


async def test_password_realm_unknown_realm(client: Client) -> None:
    """password-realm with another realm is 400 invalid_request."""
    response = await client.post(
        "/oauth/token",
        json={
            "grant_type": REALM,
            "username": "frank",
            "password": "frank-pw",
            "realm": "x",
            "client_id": "public",
        },
    )
    assert response.status == 400


async def test_password_realm_requires_realm(client: Client) -> None:
    """password-realm without realm is 400 invalid_request."""
    response = await client.post(
        "/oauth/token",
        json={
            "grant_type": REALM,
            "username": "frank",
            "password": "frank-pw",
            "client_id": "public",
        },
    )
    assert (await json_of(response))["error_description"] == "Missing required parameter: realm"


async def test_wrong_client_secret(client: Client) -> None:
    """A wrong client secret is 401 access_denied Unauthorized."""
    response = await password(client, "frank", "frank-pw", client_secret="wrong")
    assert response.status == 401
    assert await json_of(response) == {
        "error": "access_denied",
        "error_description": "Unauthorized",
    }


async def test_unknown_client(client: Client) -> None:
    """An unknown client is 401 access_denied."""
    response = await password(client, "frank", "frank-pw", client_id="ghost")
    assert response.status == 401


async def test_missing_secret_for_confidential_client(client: Client) -> None:
    """A confidential client without its secret is 401."""
    response = await client.post(
        "/oauth/token",
        json={
            "grant_type": "password",
            "username": "frank",
            "password": "frank-pw",
            "client_id": "app",
        },
    )
    assert response.status == 401


async def test_client_secret_basic(client: Client) -> None:
    """A Basic client authenticates with the Authorization header."""
    header = "Basic " + base64.b64encode(b"basic:basic-secret").decode()
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "frank", "password": "frank-pw"},
        headers={"Authorization": header},
    )
    assert response.status == 200


async def test_basic_client_must_use_header(client: Client) -> None:
    """A Basic client sending its secret in the body is 401."""
    response = await password(
        client, "frank", "frank-pw", client_id="basic", client_secret="basic-secret"
    )
    assert response.status == 401


async def test_basic_header_wrong_secret(client: Client) -> None:
    """A wrong secret in the Basic header is 401."""
    header = "Basic " + base64.b64encode(b"basic:nope").decode()
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "frank", "password": "frank-pw"},
        headers={"Authorization": header},
    )
    assert response.status == 401


async def test_malformed_basic_header(client: Client) -> None:
    """A Basic header that is not base64 is 401."""
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "frank", "password": "frank-pw"},
        headers={"Authorization": "Basic %%%"},
    )
    assert response.status == 401


async def test_public_client_needs_no_secret(client: Client) -> None:
    """A public client authenticates with its client_id alone."""
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "frank",
            "password": "frank-pw",
            "client_id": "public",
        },
    )
    assert response.status == 200


async def test_generated_users_materialize_lazily(make_client: MakeClient) -> None:
    """A 10,000-user population costs nothing until a user logs in."""
    client = await make_client(EmulatorConfig.default())
    assert state_of(client)._users == {}
    await password(
        client,
        "user9999@example.test",
        "Passw0rd!9999",
        client_id="flowengine",
        client_secret="flowengine-secret",
    )
    assert list(state_of(client)._users) == ["user9999@example.test"]
