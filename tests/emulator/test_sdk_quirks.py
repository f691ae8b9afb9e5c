"""What official SDKs send that the emulator must read as Auth0 does (tests/test_sdk_compat.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.conftest import Client
from tests.emulator.helpers import json_of, password

_APP = {"client_id": "app", "client_secret": "app-secret"}


async def _refresh_token(client: Client) -> str:
    response = await password(
        client, "frank", "frank-pw", audience="https://api.test/", scope="openid offline_access"
    )
    body: dict[str, Any] = await json_of(response)
    assert response.status == 200, body
    token: str = body["refresh_token"]
    return token


@pytest.mark.parametrize("scope", ["", " "])
async def test_blank_refresh_scope_keeps_the_granted_scopes(client: Client, scope: str) -> None:
    """A blank scope at the refresh grant (auth0-python always sends one) narrows nothing."""
    token = await _refresh_token(client)
    response = await client.post(
        "/oauth/token",
        json={"grant_type": "refresh_token", "refresh_token": token, "scope": scope, **_APP},
    )
    body = await json_of(response)
    assert response.status == 200, body
    assert body["scope"] == "openid offline_access read:data write:data"
    assert "id_token" in body


async def test_blank_password_scope_is_no_scope(client: Client) -> None:
    """A blank scope at the password grant is the same as none: the API's scopes are granted."""
    response = await password(client, "frank", "frank-pw", audience="https://api.test/", scope="")
    body = await json_of(response)
    assert response.status == 200, body
    assert body["scope"] == "read:data write:data"
