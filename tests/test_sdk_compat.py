"""Official Auth0 SDKs complete the password grant with MFA against the emulator, changed in
nothing but the address they are given (issue 2).

auth0-python (the ``test`` extra) has no MFA methods: ``/mfa/authenticators``,
``/mfa/associate``, ``/mfa/challenge`` and the three MFA grants go through its own generic REST
methods (``AuthenticationBase.get``, ``post`` and ``authenticated_post``, which add the client's
credentials, send JSON and raise ``Auth0Error`` like its dedicated methods). Everything it has a
method for is used as is: ``GetToken.login`` (password and password-realm), ``refresh_token``,
``Users.userinfo``, ``TokenVerifier`` and ``AsyncTokenVerifier`` against the JWKS. Its
``protocol="http"`` option reaches the plain-HTTP emulator; one test keeps the default https and
trusts the emulator's self-signed certificate through ``REQUESTS_CA_BUNDLE``.

The JavaScript SDKs (node-auth0's ``AuthenticationClient`` and ``@auth0/auth0-auth-js``, whose
MFA client covers every step) come from the npm registry, pinned by ``tests/sdk/package-lock.json``;
they run only with ``FLOWENGINE_SDK_TESTS=1`` (see :func:`test_javascript_sdks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import pyotp
import pytest
import requests
from aiohttp import ClientSession, web
from auth0.authentication import GetToken, Users
from auth0.authentication.async_token_verifier import (
    AsyncAsymmetricSignatureVerifier,
    AsyncTokenVerifier,
)
from auth0.authentication.exceptions import Auth0Error
from auth0.authentication.token_verifier import AsymmetricSignatureVerifier, TokenVerifier

from flowengine.emulator import EmulatorConfig, create_app
from flowengine.emulator.config import FactorSeed, PopulationConfig, Settings, UserConfig
from tests.certificates import self_signed

CLIENT_ID = "flowengine"
CLIENT_SECRET = "flowengine-secret"
AUDIENCE = "https://api.example.test/"
SCOPE = "openid profile email offline_access"
REALM = "Username-Password-Authentication"
OTP = "http://auth0.com/oauth/grant-type/mfa-otp"
OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
RECOVERY = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
RECOVERY_CODE = "RC0000000000000000000001"
SDK_DIR = Path(__file__).parent / "sdk"

# The default tenant's clients and API, its population (enrolled by the tests) and users
# already enrolled: one per test that changes them, as the emulator is shared by the module.
TENANT = EmulatorConfig(
    users=(
        UserConfig(
            username="otp@example.test",
            password="otp-pw",
            factors=(FactorSeed(type="otp", secret=OTP_SECRET),),
        ),
        UserConfig(
            username="tokens@example.test",
            password="tokens-pw",
            factors=(FactorSeed(type="otp", secret=OTP_SECRET),),
        ),
        UserConfig(
            username="sms@example.test",
            password="sms-pw",
            phone_number="+15550100001",
            factors=(FactorSeed(type="sms"),),
        ),
        UserConfig(
            username="recovery@example.test",
            password="recovery-pw",
            factors=(FactorSeed(type="otp", secret=OTP_SECRET),),
            recovery_code=RECOVERY_CODE,
        ),
        UserConfig(
            username="opaque@example.test",
            password="opaque-pw",
            factors=(FactorSeed(type="otp", secret=OTP_SECRET),),
        ),
        UserConfig(username="nomfa@example.test", password="nomfa-pw", mfa_required=False),
        UserConfig(
            username="push@example.test", password="push-pw", factors=(FactorSeed(type="push"),)
        ),
        UserConfig(
            username="js@example.test",
            password="js-pw",
            phone_number="+15550100002",
            factors=(FactorSeed(type="sms"),),
        ),
    ),
    populations=(PopulationConfig(count=100),),
    settings=Settings(control_api=True),
)


@attrs.frozen
class Served:
    """An emulator served from a thread: the SDKs under test block."""

    base_url: str

    @property
    def domain(self) -> str:
        """``host:port``, what the SDKs take as the tenant's domain."""
        return self.base_url.partition("://")[2]

    def control(self, path: str) -> Any:
        """GET a control API path (``/_emulator/...``)."""
        response = requests.get(self.base_url + "/_emulator/" + path, timeout=5)
        response.raise_for_status()
        return response.json()

    def inbox_code(self, username: str, channel: str = "sms") -> str:
        """The last code sent to ``username`` on ``channel``."""
        messages = self.control(f"inbox/{quote(username, safe='')}?channel={channel}")["messages"]
        code: str = messages[-1]["code"]
        return code


@contextlib.contextmanager
def serve(
    config: EmulatorConfig, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> Iterator[Served]:
    """Serve ``config`` on a free loopback port from a thread with its own event loop."""
    started = threading.Event()
    found: dict[str, Any] = {}

    async def main() -> None:
        runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, 0, ssl_context=tls).start()
            found["port"] = runner.addresses[0][1]
            found["loop"] = asyncio.get_running_loop()
            found["stop"] = stop = asyncio.Event()
            started.set()
            await stop.wait()
        finally:
            # A client's last connection may still be open here (its FIN not yet read): a TLS
            # one would wait for a close_notify that never comes, past the loop's end.
            for connection in runner.server.connections if runner.server else ():
                if connection.transport is not None:
                    connection.transport.abort()
            await runner.cleanup()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            found["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="sdk-compat-emulator", daemon=True)
    thread.start()
    started.wait(10)
    if "port" not in found:
        raise RuntimeError(f"the emulator did not start: {found.get('error')!r}")
    try:
        yield Served(f"{'https' if tls else 'http'}://{host}:{found['port']}")
    finally:
        found["loop"].call_soon_threadsafe(found["stop"].set)
        thread.join(10)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Served]:
    """The test tenant over plain HTTP, shared by the module."""
    with serve(TENANT) as served:
        yield served


def get_token(served: Served) -> GetToken:
    """auth0-python's token client for the confidential client, pointed at ``served``."""
    protocol = served.base_url.partition("://")[0]
    return GetToken(served.domain, CLIENT_ID, client_secret=CLIENT_SECRET, protocol=protocol)


def mfa_token(client: GetToken, username: str, password: str, **login: Any) -> str:
    """The ``mfa_token`` of the ``mfa_required`` error ``GetToken.login`` raises."""
    login = {"realm": REALM, "scope": SCOPE, "audience": AUDIENCE, **login}
    with pytest.raises(Auth0Error) as raised:
        client.login(username, password, **login)
    assert (raised.value.status_code, raised.value.error_code) == (403, "mfa_required")
    content = raised.value.content
    assert isinstance(content, dict)
    token: str = content["mfa_token"]
    return token


def authenticators(client: GetToken, token: str) -> list[dict[str, Any]]:
    """``GET /mfa/authenticators`` through the SDK's generic ``get``."""
    url = f"{client.protocol}://{client.domain}/mfa/authenticators"
    found: list[dict[str, Any]] = client.get(url, headers={"Authorization": f"Bearer {token}"})
    return found


def associate(client: GetToken, token: str, **params: Any) -> dict[str, Any]:
    """``POST /mfa/associate`` through the SDK's generic ``post``."""
    url = f"{client.protocol}://{client.domain}/mfa/associate"
    data = {"client_id": client.client_id, **params}
    bearer = {"Authorization": f"Bearer {token}"}
    body: dict[str, Any] = client.post(url, data=data, headers=bearer)
    return body


def challenge(client: GetToken, token: str, **params: Any) -> dict[str, Any]:
    """``POST /mfa/challenge`` through the SDK's ``authenticated_post``."""
    url = f"{client.protocol}://{client.domain}/mfa/challenge"
    body: dict[str, Any] = client.authenticated_post(
        url, data={"client_id": client.client_id, "mfa_token": token, **params}
    )
    return body


def mfa_grant(client: GetToken, grant_type: str, token: str, **params: Any) -> dict[str, Any]:
    """An MFA grant at ``/oauth/token`` through the SDK's ``authenticated_post``."""
    url = f"{client.protocol}://{client.domain}/oauth/token"
    data = {"client_id": client.client_id, "grant_type": grant_type, "mfa_token": token, **params}
    body: dict[str, Any] = client.authenticated_post(url, data=data)
    return body


def otp_login(served: Served, username: str, password: str) -> Any:
    """The token set of an OTP login of an enrolled user."""
    client = get_token(served)
    token = mfa_token(client, username, password)
    return mfa_grant(client, OTP, token, otp=pyotp.TOTP(OTP_SECRET).now())


@pytest.fixture(scope="module")
def tokens(emulator: Served) -> dict[str, Any]:
    """The token set of one OTP login (openid, offline_access and the API)."""
    found: dict[str, Any] = otp_login(emulator, "tokens@example.test", "tokens-pw")
    return found


def verifier(served: Served) -> TokenVerifier:
    """auth0-python's ID token verifier for the emulator's JWKS, issuer and client."""
    signature = AsymmetricSignatureVerifier(served.base_url + "/.well-known/jwks.json")
    return TokenVerifier(signature, issuer=served.base_url + "/", audience=CLIENT_ID)


@pytest.mark.parametrize(
    "login",
    [{"grant_type": "password", "realm": None}, {}],
    ids=["password", "password-realm"],
)
def test_password_grant_raises_mfa_required(emulator: Served, login: dict[str, Any]) -> None:
    """GetToken.login raises Auth0Error 403 mfa_required whose content has the mfa_token."""
    token = mfa_token(get_token(emulator), "user1@example.test", "Passw0rd!1", **login)
    assert token.startswith("Fe26.2*")
    assert len(token.split("*")) == 8


def test_wrong_password_is_invalid_grant(emulator: Served) -> None:
    """A wrong password is Auth0Error 403 invalid_grant 'Wrong email or password.'."""
    with pytest.raises(Auth0Error) as raised:
        get_token(emulator).login("user2@example.test", "wrong", realm=REALM)
    error = raised.value
    assert (error.status_code, error.error_code) == (403, "invalid_grant")
    assert error.message == "Wrong email or password."


def test_otp_enrollment(emulator: Served) -> None:
    """A new user enrolls OTP at /mfa/associate and the first code completes the login."""
    client = get_token(emulator)
    token = mfa_token(client, "user3@example.test", "Passw0rd!3")
    assert authenticators(client, token) == []
    enrolled = associate(client, token, authenticator_types=["otp"])
    assert enrolled["barcode_uri"].startswith("otpauth://totp/")
    assert len(enrolled["recovery_codes"]) == 1
    result = mfa_grant(client, OTP, token, otp=pyotp.TOTP(enrolled["secret"]).now())
    assert {"access_token", "id_token", "refresh_token"} <= set(result)
    listed = {a["authenticator_type"]: a["active"] for a in authenticators(client, token)}
    assert listed == {"otp": True, "recovery-code": True}


def test_sms_enrollment(emulator: Served) -> None:
    """A new user enrolls SMS at /mfa/associate and the texted code completes the login."""
    client = get_token(emulator)
    token = mfa_token(client, "user4@example.test", "Passw0rd!4")
    enrolled = associate(
        client, token, authenticator_types=["oob"], oob_channels=["sms"], phone_number="+15550104"
    )
    assert (enrolled["oob_channel"], enrolled["binding_method"]) == ("sms", "prompt")
    code = emulator.inbox_code("user4@example.test")
    result = mfa_grant(client, OOB, token, oob_code=enrolled["oob_code"], binding_code=code)
    assert result["token_type"] == "Bearer"


def test_otp_login(emulator: Served) -> None:
    """An enrolled user's active OTP authenticator is listed and its code completes the login."""
    client = get_token(emulator)
    token = mfa_token(client, "otp@example.test", "otp-pw")
    listed = authenticators(client, token)
    assert [a["id"].split("|")[0] for a in listed if a["active"]] == ["totp", "recovery-code"]
    assert challenge(client, token, challenge_type="otp") == {"challenge_type": "otp"}
    result = mfa_grant(client, OTP, token, otp=pyotp.TOTP(OTP_SECRET).now())
    assert result["scope"] == f"{SCOPE} read:data write:data"


def test_sms_login(emulator: Served) -> None:
    """An SMS challenge sends a code (read from the control API) that completes the login."""
    client = get_token(emulator)
    token = mfa_token(client, "sms@example.test", "sms-pw")
    sms = next(a for a in authenticators(client, token) if a.get("oob_channel") == "sms")
    sent = challenge(client, token, challenge_type="oob", authenticator_id=sms["id"])
    assert (sent["challenge_type"], sent["binding_method"]) == ("oob", "prompt")
    code = emulator.inbox_code("sms@example.test")
    result = mfa_grant(client, OOB, token, oob_code=sent["oob_code"], binding_code=code)
    assert "access_token" in result


def test_wrong_otp_is_invalid_grant(emulator: Served) -> None:
    """A wrong OTP code is Auth0Error 403 invalid_grant 'Invalid otp_code.'."""
    client = get_token(emulator)
    token = mfa_token(client, "otp@example.test", "otp-pw")
    totp = pyotp.TOTP(OTP_SECRET)
    valid = {totp.at(time.time() + 30 * step) for step in (-1, 0, 1)}
    wrong = next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)
    with pytest.raises(Auth0Error) as raised:
        mfa_grant(client, OTP, token, otp=wrong)
    error = raised.value
    assert (error.status_code, error.error_code, error.message) == (
        403,
        "invalid_grant",
        "Invalid otp_code.",
    )


def test_recovery_code_rotates(emulator: Served) -> None:
    """A recovery code logs in once and returns its replacement, which works next time."""
    client = get_token(emulator)
    first = mfa_grant(
        client,
        RECOVERY,
        mfa_token(client, "recovery@example.test", "recovery-pw"),
        recovery_code=RECOVERY_CODE,
    )
    replacement = first["recovery_code"]
    assert replacement != RECOVERY_CODE
    assert len(replacement) == 24
    token = mfa_token(client, "recovery@example.test", "recovery-pw")
    with pytest.raises(Auth0Error) as raised:
        mfa_grant(client, RECOVERY, token, recovery_code=RECOVERY_CODE)
    assert raised.value.error_code == "invalid_grant"
    assert "access_token" in mfa_grant(client, RECOVERY, token, recovery_code=replacement)


def test_refresh_token(emulator: Served, tokens: dict[str, Any]) -> None:
    """GetToken.refresh_token returns a new access token and ID token with the same scope."""
    refreshed = get_token(emulator).refresh_token(tokens["refresh_token"])
    assert refreshed["scope"] == tokens["scope"]
    assert {"access_token", "id_token", "expires_in", "token_type"} <= set(refreshed)


def test_userinfo(emulator: Served, tokens: dict[str, Any]) -> None:
    """Users.userinfo returns the profile of the access token's user."""
    profile = Users(emulator.domain, protocol="http").userinfo(tokens["access_token"])
    assert profile["email"] == "tokens@example.test"
    assert profile["sub"].startswith("auth0|")


def test_userinfo_with_an_opaque_access_token(emulator: Served) -> None:
    """Users.userinfo takes the opaque access token of a login that named no audience."""
    client = get_token(emulator)
    token = mfa_token(
        client, "opaque@example.test", "opaque-pw", audience=None, scope="openid email"
    )
    result = mfa_grant(client, OTP, token, otp=pyotp.TOTP(OTP_SECRET).now())
    assert result["access_token"].count(".") == 4
    profile = Users(emulator.domain, protocol="http").userinfo(result["access_token"])
    assert profile["email"] == "opaque@example.test"


def test_token_verifier(emulator: Served, tokens: dict[str, Any]) -> None:
    """TokenVerifier accepts the ID token: RS256 key from the JWKS, iss, aud, exp, iat."""
    claims = verifier(emulator).verify(tokens["id_token"])
    assert claims["aud"] == CLIENT_ID
    assert claims["email"] == "tokens@example.test"


async def test_async_token_verifier(emulator: Served, tokens: dict[str, Any]) -> None:
    """AsyncTokenVerifier (aiohttp) accepts the ID token too."""
    signature = AsyncAsymmetricSignatureVerifier(emulator.base_url + "/.well-known/jwks.json")
    check = AsyncTokenVerifier(signature, issuer=emulator.base_url + "/", audience=CLIENT_ID)
    async with ClientSession() as session:
        check.set_session(session)
        claims = await check.verify(tokens["id_token"])
    assert claims["sub"].startswith("auth0|")


def test_default_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With its default https, trusting the emulator's certificate by REQUESTS_CA_BUNDLE."""
    cert, context = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with serve(TENANT, tls=context, host="localhost") as served:
        client = GetToken(served.domain, CLIENT_ID, client_secret=CLIENT_SECRET)
        token = mfa_token(client, "otp@example.test", "otp-pw")
        result = mfa_grant(client, OTP, token, otp=pyotp.TOTP(OTP_SECRET).now())
        claims = verifier(served).verify(result["id_token"])
        profile = Users(served.domain).userinfo(result["access_token"])
    assert claims["iss"] == f"https://{served.domain}/"
    assert profile["sub"] == claims["sub"]


def _node_sdks() -> Path:
    """A directory with tests/sdk's packages installed (``npm ci``, once per lock file)."""
    if os.environ.get("FLOWENGINE_SDK_TESTS") != "1":
        pytest.skip("the JavaScript SDKs come from the npm registry: set FLOWENGINE_SDK_TESTS=1")
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip("node and npm are needed for the JavaScript SDKs")
    lock = (SDK_DIR / "package-lock.json").read_bytes()
    default_cache = Path.home() / ".cache" / "flowengine" / "sdk-node"
    cache = Path(os.environ.get("FLOWENGINE_SDK_CACHE", default_cache))
    directory = cache / hashlib.sha256(lock).hexdigest()[:16]
    if not (directory / "node_modules" / ".package-lock.json").exists():
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(SDK_DIR / name, directory / name)
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            check=True,
            timeout=300,
        )
    shutil.copyfile(SDK_DIR / "flows.mjs", directory / "flows.mjs")
    return directory


def test_javascript_sdks(tmp_path: Path) -> None:
    """@auth0/auth0-auth-js and node-auth0 complete every step over https (opt-in)."""
    directory = _node_sdks()
    cert, context = self_signed(tmp_path)
    with serve(TENANT, tls=context, host="localhost") as served:
        config = {
            "domain": served.domain,
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "audience": AUDIENCE,
            "scope": SCOPE,
            "users": {
                "new": {"username": "user50@example.test", "password": "Passw0rd!50"},
                "sms": {"username": "js@example.test", "password": "js-pw"},
                "noMfa": {"username": "nomfa@example.test", "password": "nomfa-pw"},
                "push": {"username": "push@example.test", "password": "push-pw"},
            },
        }
        env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(cert)}
        done = subprocess.run(
            ["node", "flows.mjs", json.dumps(config)],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert len(report["steps"]) == 11, report
