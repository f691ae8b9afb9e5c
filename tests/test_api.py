"""AuthClient over real local servers: encoding, client auth, errors, cookies, cancellation."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import attrs
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from pytest_aiohttp import AiohttpRawServer

from flowengine import jsonio
from flowengine.api import TOKEN, AuthClient, make_session
from flowengine.errors import ConfigError, ProtocolError, RequestTimeout, TransportError
from flowengine.replies import (
    Association,
    Authenticator,
    Challenge,
    ErrorKind,
    ErrorReply,
    MfaRequired,
    RateLimit,
    TokenSet,
)
from tests.test_replies import (
    ALL_FIXTURES,
    EXPECTED_PROTOCOL_ERROR,
    FIXTURE_IDS,
    Fixture,
    check_reply,
    needs_fixtures,
)

TOKENS = {"access_token": "at", "token_type": "Bearer", "expires_in": 86400}


@attrs.frozen
class Seen:
    """One request as the server saw it."""

    method: str
    raw_path: str
    headers: CIMultiDictProxy[str]
    body: bytes

    def form(self) -> dict[str, str]:
        """The body as a form, one value per key."""
        return {k: v[0] for k, v in parse_qs(self.body.decode(), strict_parsing=True).items()}

    def json(self) -> Any:
        """The body as JSON."""
        return jsonio.loads(self.body)


@attrs.define
class Stub:
    """A server that records requests and answers each with the same canned reply."""

    status: int = 200
    body: bytes = jsonio.dumps(TOKENS)
    content_type: str | None = "application/json"
    headers: dict[str, str] = attrs.Factory(dict)
    seen: list[Seen] = attrs.Factory(list)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Record the request and answer it."""
        self.seen.append(
            Seen(request.method, request.raw_path, request.headers, await request.read())
        )
        headers = CIMultiDict(self.headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return web.Response(status=self.status, body=self.body, headers=headers)

    @property
    def last(self) -> Seen:
        """The last request seen."""
        return self.seen[-1]


Serve = Callable[..., Awaitable[tuple[Stub, AuthClient]]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A session made by make_session(), closed after the test."""
    async with make_session() as session:
        yield session


@pytest.fixture
def serve(aiohttp_raw_server: AiohttpRawServer, session: aiohttp.ClientSession) -> Serve:
    """Start a Stub server and return it with an AuthClient pointed at it."""

    async def start(stub: Stub | None = None, **client: Any) -> tuple[Stub, AuthClient]:
        stub = stub or Stub()
        server = await aiohttp_raw_server(stub.handle)
        options: dict[str, Any] = {"client_id": "cid", "client_secret": "csecret"} | client
        return stub, AuthClient(session, str(server.make_url("/")), **options)

    return start


# --- fixtures served over HTTP ----------------------------------------------------------------


async def call_for(client: AuthClient, fixture: Fixture) -> object:
    """Call the AuthClient method that talks to the fixture's endpoint."""
    path, endpoint = fixture.path, fixture.endpoint
    if path == "/oauth/token":
        if "recovery-code" in endpoint:
            return await client.recovery_code_grant("mfa", "CODE")
        if "mfa-" in endpoint:
            return await client.otp_grant("mfa", "123456")
        return await client.password_grant("user@example.test", "pw")
    if path == "/mfa/authenticators":
        return await client.list_authenticators("mfa")
    if path.startswith("/mfa/authenticators/"):
        return await client.delete_authenticator("at", "totp|dev_1")
    if path == "/mfa/associate":
        return await client.associate("mfa", authenticator_types=["otp"])
    if path == "/.well-known/openid-configuration":
        return await client.openid_configuration()
    return await client.challenge("mfa", challenge_type="otp")


@needs_fixtures
@pytest.mark.parametrize("fixture", ALL_FIXTURES, ids=FIXTURE_IDS)
async def test_served_fixture_gives_its_reply(serve: Serve, fixture: Fixture) -> None:
    """Each fixture served with its status and content type comes back as its reply type."""
    body = b"" if fixture.body is None else jsonio.dumps(fixture.body)
    stub, client = await serve(Stub(fixture.status, body, fixture.content_type or None))
    if fixture.name in EXPECTED_PROTOCOL_ERROR:
        with pytest.raises(ProtocolError):
            await call_for(client, fixture)
        return
    reply = await call_for(client, fixture)
    check_reply(fixture, reply)
    assert stub.last.raw_path.split("?")[0].startswith(fixture.path.split("{")[0])


# --- request encoding and client authentication ----------------------------------------------


async def test_password_grant_is_form_encoded(serve: Serve) -> None:
    """The password grant posts a form with the grant, the client and the user."""
    stub, client = await serve()
    await client.password_grant("u@example.test", "pw", audience="https://api/", scope="openid")
    assert stub.last.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert stub.last.form() == {
        "grant_type": "password",
        "client_id": "cid",
        "client_secret": "csecret",
        "username": "u@example.test",
        "password": "pw",
        "audience": "https://api/",
        "scope": "openid",
    }


async def test_form_values_are_percent_encoded(serve: Serve) -> None:
    """Reserved and non-ASCII characters in form values survive the round trip."""
    stub, client = await serve()
    password = "p&ss=w+rd ü%/?*"
    await client.password_grant("a+b@example.test", password)
    assert (stub.last.form()["password"], stub.last.form()["username"]) == (
        password,
        "a+b@example.test",
    )


async def test_password_realm_grant(serve: Serve) -> None:
    """A realm switches to the password-realm grant and is sent along."""
    stub, client = await serve()
    await client.password_grant("u", "pw", realm="Username-Password-Authentication")
    form = stub.last.form()
    assert form["grant_type"] == "http://auth0.com/oauth/grant-type/password-realm"
    assert form["realm"] == "Username-Password-Authentication"


async def test_token_body_json_option(serve: Serve) -> None:
    """token_body="json" posts token requests as JSON."""
    stub, client = await serve(token_body="json")
    await client.otp_grant("mfa", "123456")
    assert stub.last.headers["Content-Type"] == "application/json"
    assert stub.last.json() == {
        "grant_type": "http://auth0.com/oauth/grant-type/mfa-otp",
        "client_id": "cid",
        "client_secret": "csecret",
        "mfa_token": "mfa",
        "otp": "123456",
    }


@pytest.mark.parametrize(
    ("call", "grant", "fields"),
    [
        ("otp", "mfa-otp", {"mfa_token": "mfa", "otp": "123456"}),
        ("oob", "mfa-oob", {"mfa_token": "mfa", "oob_code": "oob", "binding_code": "654321"}),
        ("push", "mfa-oob", {"mfa_token": "mfa", "oob_code": "oob"}),
        ("recovery", "mfa-recovery-code", {"mfa_token": "mfa", "recovery_code": "RC"}),
    ],
)
async def test_mfa_grant_bodies(
    serve: Serve, call: str, grant: str, fields: dict[str, str]
) -> None:
    """Each MFA grant sends its grant type and exactly its own parameters."""
    stub, client = await serve()
    if call == "otp":
        await client.otp_grant("mfa", "123456")
    elif call == "oob":
        await client.oob_grant("mfa", "oob", "654321")
    elif call == "push":
        await client.oob_grant("mfa", "oob")
    else:
        await client.recovery_code_grant("mfa", "RC")
    assert stub.last.form() == {
        "grant_type": f"http://auth0.com/oauth/grant-type/{grant}",
        "client_id": "cid",
        "client_secret": "csecret",
        **fields,
    }


async def test_refresh_token_grant(serve: Serve) -> None:
    """The refresh grant sends the refresh token and the narrowed scope."""
    stub, client = await serve()
    await client.refresh_token_grant("rt", scope="openid")
    form = stub.last.form()
    assert (form["grant_type"], form["refresh_token"], form["scope"]) == (
        "refresh_token",
        "rt",
        "openid",
    )


async def test_basic_auth_header_on_password_grant(serve: Serve) -> None:
    """client_secret_basic sends the secret in an Authorization header, not in the body."""
    stub, client = await serve(auth_method="client_secret_basic")
    await client.password_grant("u", "pw")
    expected = "Basic " + base64.b64encode(b"cid:csecret").decode()
    assert stub.last.headers["Authorization"] == expected
    assert "client_secret" not in stub.last.form()


async def test_basic_client_sends_secret_in_mfa_grant_body(serve: Serve) -> None:
    """client_secret_basic also puts the secret in the body of the MFA grants (reference §1)."""
    stub, client = await serve(auth_method="client_secret_basic")
    await client.otp_grant("mfa", "123456")
    assert stub.last.form()["client_secret"] == "csecret"


async def test_post_client_sends_no_authorization_header(serve: Serve) -> None:
    """client_secret_post sends no Authorization header to the token endpoint."""
    stub, client = await serve()
    await client.password_grant("u", "pw")
    assert "Authorization" not in stub.last.headers


async def test_public_client_sends_only_client_id(serve: Serve) -> None:
    """auth method none sends the client id and never a secret."""
    stub, client = await serve(client_secret=None, auth_method="none")
    await client.otp_grant("mfa", "123456")
    form = stub.last.form()
    assert form["client_id"] == "cid"
    assert "client_secret" not in form
    assert "Authorization" not in stub.last.headers


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
async def test_challenge_is_json_with_secret(serve: Serve, method: str) -> None:
    """/mfa/challenge gets JSON with the client secret in the body, for post and basic."""
    body = jsonio.dumps({"challenge_type": "otp"})
    stub, client = await serve(Stub(body=body), auth_method=method)
    reply = await client.challenge("mfa", challenge_type="oob", authenticator_id="sms|dev_1")
    assert reply == Challenge("otp")
    assert stub.last.headers["Content-Type"] == "application/json"
    assert "Authorization" not in stub.last.headers
    assert stub.last.json() == {
        "client_id": "cid",
        "client_secret": "csecret",
        "mfa_token": "mfa",
        "challenge_type": "oob",
        "authenticator_id": "sms|dev_1",
    }


async def test_challenge_of_public_client_has_no_secret(serve: Serve) -> None:
    """A public client's challenge carries no client_secret."""
    body = jsonio.dumps({"challenge_type": "otp"})
    stub, client = await serve(Stub(body=body), client_secret=None, auth_method="none")
    await client.challenge("mfa")
    assert stub.last.json() == {"client_id": "cid", "mfa_token": "mfa"}


async def test_associate_is_json_with_bearer(serve: Serve) -> None:
    """/mfa/associate gets the mfa_token as a bearer and the enrollment as JSON."""
    body = jsonio.dumps({"authenticator_type": "oob", "oob_code": "o", "oob_channel": "sms"})
    stub, client = await serve(Stub(body=body))
    reply = await client.associate(
        "mfa", authenticator_types=["oob"], oob_channels=["sms"], phone_number="+15550100"
    )
    assert isinstance(reply, Association)
    assert stub.last.raw_path == "/mfa/associate"
    assert stub.last.headers["Authorization"] == "Bearer mfa"
    assert stub.last.json() == {
        "client_id": "cid",
        "client_secret": "csecret",
        "authenticator_types": ["oob"],
        "oob_channels": ["sms"],
        "phone_number": "+15550100",
    }


async def test_list_authenticators_with_bearer(serve: Serve) -> None:
    """GET /mfa/authenticators carries the token as a bearer."""
    body = jsonio.dumps([{"id": "totp|dev_1", "authenticator_type": "otp", "active": True}])
    stub, client = await serve(Stub(body=body))
    assert await client.list_authenticators("mfa") == [Authenticator("totp|dev_1", "otp", True)]
    assert (stub.last.method, stub.last.headers["Authorization"]) == ("GET", "Bearer mfa")


async def test_delete_percent_encodes_the_id(serve: Serve) -> None:
    """The authenticator id is percent-encoded in the DELETE path (| is %7C)."""
    stub, client = await serve(Stub(status=204, body=b"", content_type=None))
    assert await client.delete_authenticator("at", "sms|dev_a/b c") is None
    assert stub.last.method == "DELETE"
    assert stub.last.raw_path == "/mfa/authenticators/sms%7Cdev_a%2Fb%20c"
    assert stub.last.headers["Authorization"] == "Bearer at"


async def test_userinfo_returns_claims(serve: Serve) -> None:
    """GET /userinfo with a bearer returns the claims object."""
    stub, client = await serve(Stub(body=jsonio.dumps({"sub": "auth0|1"})))
    assert await client.userinfo("at") == {"sub": "auth0|1"}
    assert stub.last.headers["Authorization"] == "Bearer at"


async def test_jwks_document(serve: Serve) -> None:
    """jwks() fetches /.well-known/jwks.json."""
    stub, client = await serve(Stub(body=jsonio.dumps({"keys": []})))
    assert await client.jwks() == {"keys": []}
    assert stub.last.raw_path == "/.well-known/jwks.json"


async def test_document_error_status_is_protocol_error(serve: Serve) -> None:
    """A discovery document answered with an error status is a ProtocolError."""
    _, client = await serve(Stub(status=503, body=b"{}"))
    with pytest.raises(ProtocolError) as info:
        await client.openid_configuration()
    assert info.value.status == 503


# --- replies -------------------------------------------------------------------------------------


async def test_token_reply(serve: Serve) -> None:
    """A 200 token answer is a TokenSet."""
    _, client = await serve()
    assert await client.password_grant("u", "pw") == TokenSet("at", "Bearer", 86400)


async def test_mfa_required_reply(serve: Serve) -> None:
    """A 403 mfa_required with an mfa_token is an MfaRequired."""
    body = jsonio.dumps({"error": "mfa_required", "error_description": "", "mfa_token": "m"})
    _, client = await serve(Stub(status=403, body=body))
    assert await client.password_grant("u", "pw") == MfaRequired("m")


async def test_rate_limit_headers_on_error_reply(serve: Serve) -> None:
    """A 429 carries its rate-limit headers into the ErrorReply."""
    headers = {
        "X-RateLimit-Limit": "30",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1767225660",
        "Retry-After": "5",
    }
    body = jsonio.dumps({"error": "too_many_requests", "error_description": "slow"})
    _, client = await serve(Stub(status=429, body=body, headers=headers))
    reply = await client.password_grant("u", "pw")
    assert isinstance(reply, ErrorReply)
    assert (reply.kind, reply.rate_limit) == (
        ErrorKind.RATE_LIMITED,
        RateLimit(30, 0, 1767225660.0, 5.0),
    )
    assert reply.endpoint == TOKEN


async def test_proxy_error_page_is_server_error(serve: Serve) -> None:
    """A 502 HTML page from a proxy is an ErrorReply of kind SERVER_ERROR."""
    _, client = await serve(
        Stub(status=502, body=b"<html>Bad gateway</html>", content_type="text/html")
    )
    reply = await client.list_authenticators("mfa")
    assert isinstance(reply, ErrorReply)
    assert reply.kind is ErrorKind.SERVER_ERROR


async def test_plain_text_401_is_unauthorized(serve: Serve) -> None:
    """/userinfo's plain-text 401 is an ErrorReply of kind UNAUTHORIZED."""
    _, client = await serve(Stub(status=401, body=b"Unauthorized", content_type="text/plain"))
    reply = await client.userinfo("at")
    assert isinstance(reply, ErrorReply)
    assert reply.kind is ErrorKind.UNAUTHORIZED


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, b"<html>hi</html>", "text/html"),
        (200, jsonio.dumps(TOKENS), "text/html"),
        (200, jsonio.dumps(TOKENS), None),
        (200, b'{"access_token": "a", "tok', "application/json"),
        (200, b"\xff\xfe\x00garbage", "application/json"),
        (200, b"", "application/json"),
        (200, b"[1, 2]", "application/json"),
        (400, b"<html>Bad request</html>", "text/html"),
        (403, b'{"error_description": "no error"}', "application/json"),
        (302, b"", "text/html"),
    ],
    ids=[
        "html",
        "json-as-html",
        "no-content-type",
        "cut-json",
        "garbage",
        "empty",
        "list",
        "html-400",
        "no-error-403",
        "redirect",
    ],
)
async def test_bad_answer_is_protocol_error(
    serve: Serve, status: int, body: bytes, content_type: str | None
) -> None:
    """An answer that is not JSON of the right shape is a ProtocolError naming endpoint, status."""
    _, client = await serve(Stub(status=status, body=body, content_type=content_type))
    with pytest.raises(ProtocolError) as info:
        await client.password_grant("u", "pw")
    assert (info.value.endpoint, info.value.status) == (TOKEN, status)
    assert f"{TOKEN} answered {status}" in str(info.value)


async def raw_tcp_server(reply: bytes) -> tuple[asyncio.Server, str]:
    """A TCP server that reads one request head, writes ``reply`` and closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "reply",
    [
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
        b"this is not HTTP at all\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":',
    ],
    ids=["truncated", "not-http", "chunk-cut"],
)
async def test_broken_http_is_protocol_error(session: aiohttp.ClientSession, reply: bytes) -> None:
    """Truncated bodies and answers that are not HTTP are ProtocolErrors."""
    server, url = await raw_tcp_server(reply)
    async with server:
        client = AuthClient(session, url, client_id="cid", client_secret="s")
        with pytest.raises(ProtocolError) as info:
            await client.password_grant("u", "pw")
    assert info.value.endpoint == TOKEN


async def test_closed_without_answer_is_transport_error(session: aiohttp.ClientSession) -> None:
    """A server that closes without answering is a TransportError."""
    server, url = await raw_tcp_server(b"")
    async with server:
        client = AuthClient(session, url, client_id="cid", client_secret="s")
        with pytest.raises(TransportError):
            await client.password_grant("u", "pw")


async def test_connection_refused_is_transport_error(
    session: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    """Nobody listening is a TransportError naming the endpoint."""
    url = f"http://127.0.0.1:{unused_tcp_port}"
    client = AuthClient(session, url, client_id="cid", client_secret="s")
    with pytest.raises(TransportError) as info:
        await client.list_authenticators("mfa")
    assert info.value.endpoint == "GET /mfa/authenticators"


# --- time and cancellation ------------------------------------------------------------------


@attrs.define
class Stall:
    """A handler that signals arrival and then never answers."""

    arrived: asyncio.Event = attrs.Factory(asyncio.Event)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Wait forever (the server cancels the handler when the client goes)."""
        self.arrived.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_timeout_is_request_timeout(
    aiohttp_raw_server: AiohttpRawServer, session: aiohttp.ClientSession
) -> None:
    """No answer within request_timeout is a RequestTimeout naming the endpoint."""
    server = await aiohttp_raw_server(Stall().handle)
    client = AuthClient(
        session, str(server.make_url("/")), client_id="c", client_secret="s", request_timeout=0.05
    )
    with pytest.raises(RequestTimeout) as info:
        await client.challenge("mfa")
    assert info.value.endpoint == "POST /mfa/challenge"


async def test_cancellation_propagates_and_frees_the_connection(
    aiohttp_raw_server: AiohttpRawServer,
) -> None:
    """Cancelling a call raises CancelledError and leaves no connection checked out."""
    stall = Stall()
    stalled = await aiohttp_raw_server(stall.handle)
    answering = await aiohttp_raw_server(Stub().handle)
    async with make_session(limit=1) as session:
        client = AuthClient(session, str(stalled.make_url("/")), client_id="c", client_secret="s")
        task = asyncio.create_task(client.password_grant("u", "pw"))
        await stall.arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        other = AuthClient(session, str(answering.make_url("/")), client_id="c", client_secret="s")
        async with asyncio.timeout(5):
            assert isinstance(await other.password_grant("u", "pw"), TokenSet)
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert not session.connector._acquired


# --- the shared session -----------------------------------------------------------------------


def cookie_app() -> tuple[web.Application, list[str | None]]:
    """An app that sets a cookie for one user and records the Cookie header of each request."""
    cookies: list[str | None] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        cookies.append(request.headers.get("Cookie"))
        response = web.json_response(TOKENS)
        if form.get("username") == "alice":
            response.set_cookie("did", "alice-device")
        return response

    app = web.Application()
    app.router.add_post("/oauth/token", token)
    return app, cookies


async def two_users(session: aiohttp.ClientSession, url: str) -> None:
    """Alice logs in, then Bob, on the same session."""
    client = AuthClient(session, url, client_id="cid", client_secret="s")
    await client.password_grant("alice", "pw")
    await client.password_grant("bob", "pw")


async def test_default_jar_would_leak_cookies(aiohttp_server: Any) -> None:
    """Control: with aiohttp's default jar, Alice's cookie rides on Bob's request to localhost."""
    app, cookies = cookie_app()
    server = await aiohttp_server(app, host="localhost")
    async with aiohttp.ClientSession() as leaky:
        await two_users(leaky, str(server.make_url("/")))
    assert cookies == [None, "did=alice-device"]


async def test_make_session_keeps_users_apart(aiohttp_server: Any) -> None:
    """make_session()'s jar keeps Alice's cookie off Bob's request to localhost."""
    app, cookies = cookie_app()
    server = await aiohttp_server(app, host="localhost")
    assert server.make_url("/").host == "localhost"
    async with make_session() as session:
        await two_users(session, str(server.make_url("/")))
    assert cookies == [None, None]


async def test_make_session_pool() -> None:
    """make_session() builds one TCPConnector with the requested limit and a dummy jar."""
    async with make_session(limit=7) as session:
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert session.connector.limit == 7
        assert isinstance(session.cookie_jar, aiohttp.DummyCookieJar)


# --- construction -----------------------------------------------------------------------------


async def test_bare_domain_gets_https(session: aiohttp.ClientSession) -> None:
    """A bare domain becomes an https base URL."""
    client = AuthClient(session, "tenant.example.test/", client_id="c", client_secret="s")
    assert client.base_url == "https://tenant.example.test"


@pytest.mark.parametrize(
    "options",
    [
        {"client_id": "c"},
        {"client_id": "", "client_secret": "s"},
        {"client_id": "c", "client_secret": "s", "auth_method": "private_key_jwt"},
        {"client_id": "c", "client_secret": "s", "request_timeout": 0},
        {"client_id": "c", "client_secret": "s", "token_body": "xml"},
    ],
)
async def test_bad_configuration(session: aiohttp.ClientSession, options: dict[str, Any]) -> None:
    """A missing secret, an unknown auth method or a bad option is a ConfigError."""
    with pytest.raises(ConfigError):
        AuthClient(session, "http://127.0.0.1:1", **options)


@pytest.mark.parametrize("url", ["ftp://tenant.example.test", "https://", "https://t.test/?a=1"])
async def test_bad_base_url(session: aiohttp.ClientSession, url: str) -> None:
    """A base URL that is not http(s) with a host is a ConfigError."""
    with pytest.raises(ConfigError):
        AuthClient(session, url, client_id="c", client_secret="s")


async def test_repr_hides_secret(session: aiohttp.ClientSession) -> None:
    """The client's repr shows no secret."""
    client = AuthClient(session, "t.example.test", client_id="c", client_secret="TOPSECRET")
    assert "TOPSECRET" not in repr(client)


# --- hypothesis: malformed answers on the wire ------------------------------------------------


@attrs.define
class Scripted:
    """A TCP server that answers each request with the next scripted bytes, then closes."""

    reply: bytes = b""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one request (head and body), write ``reply``, close."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    await reader.readexactly(int(value))
            writer.write(self.reply)
            await writer.drain()
        writer.close()


def http_answer(status: int, content_type: str, body: bytes, cut: int) -> bytes:
    """An HTTP/1.1 answer whose body is cut short by ``cut`` bytes."""
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + body[: max(0, len(body) - cut)]


json_bodies = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "access_token",
                    "token_type",
                    "expires_in",
                    "error",
                    "error_description",
                    "mfa_token",
                    "mfa_requirements",
                    "id",
                    "authenticator_type",
                    "active",
                    "oob_channel",
                    "oob_code",
                    "secret",
                    "challenge_type",
                    "code",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=10,
).map(lambda value: jsonio.dumps(value))

answers = st.one_of(
    st.builds(
        http_answer,
        st.integers(200, 599),
        st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "text/html", "text/plain", ""]
        ),
        json_bodies | st.binary(max_size=40),
        st.sampled_from([0, 0, 0, 1, 5]),
    ),
    st.binary(max_size=60),
)

CALLS: dict[str, Callable[[AuthClient], Awaitable[object]]] = {
    "password": lambda c: c.password_grant("u", "pw"),
    "otp": lambda c: c.otp_grant("m", "123456"),
    "list": lambda c: c.list_authenticators("m"),
    "associate": lambda c: c.associate("m", authenticator_types=["otp"]),
    "challenge": lambda c: c.challenge("m"),
    "delete": lambda c: c.delete_authenticator("at", "totp|dev_1"),
    "userinfo": lambda c: c.userinfo("at"),
    "jwks": lambda c: c.jwks(),
}

REPLY_TYPES = (TokenSet, MfaRequired, ErrorReply, list, Association, Challenge, dict, type(None))


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[Scripted, AuthClient]]:
    """A Scripted server and a client on a pool that never reuses a connection."""
    script = Scripted()
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connector = aiohttp.TCPConnector(force_close=True)
    async with server, aiohttp.ClientSession(connector=connector) as session:
        url = f"http://127.0.0.1:{port}"
        yield script, AuthClient(session, url, client_id="c", client_secret="s", request_timeout=5)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(answer=answers, call=st.sampled_from(sorted(CALLS)))
async def test_malformed_answers_raise_only_typed_errors(
    scripted: tuple[Scripted, AuthClient], answer: bytes, call: str
) -> None:
    """Any answer bytes give a reply, an ErrorReply or a ProtocolError/TransportError."""
    script, client = scripted
    script.reply = answer
    outcome: object
    try:
        outcome = await CALLS[call](client)
    except (ProtocolError, TransportError) as exc:
        outcome = exc
    assert isinstance(outcome, (*REPLY_TYPES, ProtocolError, TransportError))
