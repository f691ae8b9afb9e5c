"""The Authentication API calls of the password grant with MFA, over one shared pool.

One :class:`aiohttp.ClientSession` over one :class:`aiohttp.TCPConnector` carries every
flow (:func:`make_session`); its cookie jar is a :class:`aiohttp.DummyCookieJar`, because a
shared jar carries one simulated user's cookies into another user's requests
(reference/measurements.md). :class:`AuthClient` is the hot path of a load tool: URLs, header
dicts and the constant part of every body are built once, a request is one
``session.request`` with bytes, one ``read()`` and one ``orjson.loads``.

Expected error answers come back as :class:`~flowengine.replies.ErrorReply` outcomes. The
client raises only :class:`~flowengine.errors.TransportError` (no HTTP answer),
:class:`~flowengine.errors.RequestTimeout` and :class:`~flowengine.errors.ProtocolError`
(an answer that is not JSON, is truncated, has the wrong content type or the wrong shape),
each naming the endpoint (and the status when there was one). Cancellation propagates.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Coroutine, Mapping, Sequence
from ssl import SSLContext
from typing import Any, Final, Literal
from urllib.parse import quote, quote_plus

import aiohttp
import orjson
from yarl import URL

from flowengine.errors import ConfigError, ProtocolError, RequestTimeout, TransportError
from flowengine.gate import Deadlines
from flowengine.replies import (
    Association,
    Authenticator,
    Challenge,
    ErrorReply,
    MfaRequired,
    TokenSet,
    parse_association,
    parse_authenticators,
    parse_challenge,
    parse_error,
    parse_rate_limit,
    parse_token_reply,
    parse_token_set,
)

__all__ = [
    "ASSOCIATE",
    "AUTHENTICATORS",
    "AuthClient",
    "AuthMethod",
    "CHALLENGE",
    "DELETE_AUTHENTICATOR",
    "GRANT_MFA_OOB",
    "GRANT_MFA_OTP",
    "GRANT_MFA_RECOVERY_CODE",
    "GRANT_PASSWORD",
    "GRANT_PASSWORD_REALM",
    "GRANT_REFRESH_TOKEN",
    "JWKS",
    "OPENID_CONFIGURATION",
    "TOKEN",
    "USERINFO",
    "make_session",
]

AuthMethod = Literal["client_secret_post", "client_secret_basic", "none"]
"""How the client authenticates at the token endpoint."""

# Endpoint names, as errors and error replies carry them.
TOKEN: Final = "POST /oauth/token"
AUTHENTICATORS: Final = "GET /mfa/authenticators"
ASSOCIATE: Final = "POST /mfa/associate"
CHALLENGE: Final = "POST /mfa/challenge"
DELETE_AUTHENTICATOR: Final = "DELETE /mfa/authenticators/{id}"
USERINFO: Final = "GET /userinfo"
OPENID_CONFIGURATION: Final = "GET /.well-known/openid-configuration"
JWKS: Final = "GET /.well-known/jwks.json"

GRANT_PASSWORD: Final = "password"
GRANT_PASSWORD_REALM: Final = "http://auth0.com/oauth/grant-type/password-realm"
GRANT_MFA_OTP: Final = "http://auth0.com/oauth/grant-type/mfa-otp"
GRANT_MFA_OOB: Final = "http://auth0.com/oauth/grant-type/mfa-oob"
GRANT_MFA_RECOVERY_CODE: Final = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
GRANT_REFRESH_TOKEN: Final = "refresh_token"

_NO_LIMIT: Final = contextlib.nullcontext()
_FORM: Final = "application/x-www-form-urlencoded"
_JSON: Final = "application/json"
_AUTH_METHODS: Final = frozenset({"client_secret_post", "client_secret_basic", "none"})


def make_session(
    *, limit: int = 100, ssl: SSLContext | bool | None = None
) -> aiohttp.ClientSession:
    """One session over one connector of ``limit`` sockets, with a jar that keeps no cookie.

    ``ssl``: None or True verifies certificates, False does not, or a context of your own.
    Call it inside a running event loop; close the session when done.
    """
    connector = aiohttp.TCPConnector(limit=limit, ssl=True if ssl is None else ssl)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


def _base_url(base_url: str) -> str:
    text = base_url.strip()
    if "://" not in text:
        text = f"https://{text}"
    try:
        url = URL(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"not a URL: {base_url!r}", path="base_url") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"not an http(s) URL with a host: {base_url!r}", path="base_url")
    if url.query_string or url.fragment:
        raise ConfigError(f"no query or fragment allowed: {base_url!r}", path="base_url")
    return str(url).rstrip("/")


def _is_json(content_type: str) -> bool:
    known = _JSON_TYPES.get(content_type)
    if known is None:
        media = content_type.partition(";")[0].strip().lower()
        known = media == _JSON or (media.startswith("application/") and media.endswith("+json"))
        if len(_JSON_TYPES) >= 64:
            _JSON_TYPES.clear()
        _JSON_TYPES[content_type] = known
    return known


_JSON_TYPES: dict[str, bool] = {}
"""Content types seen, and whether they are JSON (a server sends one or two)."""


_FORM_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.~-]")
_FORM_ESCAPES: Final = {
    chr(i): "+" if i == 32 else f"%{i:02X}" for i in range(128) if _FORM_UNSAFE.match(chr(i))
}


def _form_escape(match: re.Match[str]) -> str:
    return _FORM_ESCAPES[match.group()]


def form_quote(value: str) -> str:
    """``urllib.parse.quote_plus(value)``: the same text, 3-6x faster for ASCII.

    quote_plus escapes byte by byte in Python once one character needs it (~14 µs for an
    Iron-sealed mfa_token, whose ``*`` do); a regular expression finds the few that do.
    """
    if value.isascii():
        return _FORM_UNSAFE.sub(_form_escape, value)
    return quote_plus(value)


def _form_prefix(grant: str, client: Mapping[str, str]) -> str:
    fields = [f"grant_type={form_quote(grant)}"]
    fields.extend(f"{key}={form_quote(value)}" for key, value in client.items())
    return "&".join(fields)


_TOKEN_GRANTS: Final = (GRANT_PASSWORD, GRANT_PASSWORD_REALM, GRANT_REFRESH_TOKEN)
_MFA_GRANTS: Final = (GRANT_MFA_OTP, GRANT_MFA_OOB, GRANT_MFA_RECOVERY_CODE)


class AuthClient:
    """The Authentication API of one tenant and one application, over a shared session.

    ``base_url`` is ``https://tenant.auth0.com`` or ``http://127.0.0.1:8080``; a bare domain
    gets ``https://``. ``auth_method`` says how the token endpoint authenticates the
    application; with ``client_secret_post`` and ``client_secret_basic`` the secret also goes
    in the body of ``/mfa/challenge``, ``/mfa/associate`` and the MFA grants (reference §1).
    ``request_timeout`` bounds each request, from sending to the last byte (None: no bound).
    ``token_body`` encodes ``/oauth/token`` requests as a form (default, as most SDKs) or as
    JSON. The client does not own the session.
    """

    __slots__ = (
        "_associate_url",
        "_authenticators_prefix",
        "_authenticators_url",
        "_challenge_url",
        "_deadlines",
        "_grant_client",
        "_grant_form",
        "_json_headers",
        "_jwks_url",
        "_mfa_client",
        "_oidc_url",
        "_request_timeout",
        "_session",
        "_timeout",
        "_token_headers",
        "_token_json",
        "_token_url",
        "_userinfo_url",
        "base_url",
        "client_id",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        auth_method: AuthMethod = "client_secret_post",
        request_timeout: float | None = 30.0,
        token_body: Literal["form", "json"] = "form",
    ) -> None:
        if auth_method not in _AUTH_METHODS:
            raise ConfigError(
                f"unknown auth method {auth_method!r}: use client_secret_post, "
                "client_secret_basic or none",
                path="auth_method",
            )
        if not client_id:
            raise ConfigError("a client id is required", path="client_id")
        if auth_method != "none" and not client_secret:
            raise ConfigError(f"{auth_method} needs a client secret", path="client_secret")
        if token_body not in ("form", "json"):
            raise ConfigError(f"'form' or 'json', not {token_body!r}", path="token_body")
        if request_timeout is not None and request_timeout <= 0:
            raise ConfigError("must be positive or None", path="request_timeout")
        self._session = session
        self.base_url = _base_url(base_url)
        self.client_id = client_id
        base = self.base_url
        self._token_url = URL(f"{base}/oauth/token", encoded=True)
        self._authenticators_prefix = f"{base}/mfa/authenticators/"
        self._authenticators_url = URL(f"{base}/mfa/authenticators", encoded=True)
        self._associate_url = URL(f"{base}/mfa/associate", encoded=True)
        self._challenge_url = URL(f"{base}/mfa/challenge", encoded=True)
        self._userinfo_url = URL(f"{base}/userinfo", encoded=True)
        self._oidc_url = URL(f"{base}/.well-known/openid-configuration", encoded=True)
        self._jwks_url = URL(f"{base}/.well-known/jwks.json", encoded=True)
        # Each request is bounded by one of our deadlines, on one loop timer for every
        # request in flight, instead of a timer per request (aiohttp's timeouts); aiohttp is
        # told not to time it out (total=None), whatever the session's own settings.
        self._request_timeout = request_timeout
        self._deadlines = Deadlines()
        self._timeout = aiohttp.ClientTimeout(total=None)

        secret = client_secret if auth_method != "none" else None
        # The secret goes in the body of the password/refresh grants only for Post...
        plain: dict[str, str] = {"client_id": client_id}
        if auth_method == "client_secret_post" and secret:
            plain["client_secret"] = secret
        # ... and for Post or Basic in /mfa/challenge, /mfa/associate, the MFA grants (§1).
        mfa: dict[str, str] = {"client_id": client_id}
        if secret:
            mfa["client_secret"] = secret
        self._mfa_client = mfa
        self._grant_client = dict.fromkeys(_TOKEN_GRANTS, plain) | dict.fromkeys(_MFA_GRANTS, mfa)
        self._grant_form = {g: _form_prefix(g, c) for g, c in self._grant_client.items()}
        self._token_json = token_body == "json"
        headers = {"Content-Type": _JSON if self._token_json else _FORM}
        if auth_method == "client_secret_basic" and secret:
            pair = f"{client_id}:{secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        self._token_headers = headers
        self._json_headers = {"Content-Type": _JSON}

    def __repr__(self) -> str:
        return f"AuthClient({self.base_url!r}, client_id={self.client_id!r})"

    # --- the wire ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        url: URL,
        endpoint: str,
        headers: Mapping[str, str],
        data: bytes | None = None,
    ) -> tuple[int, bytes, str, Mapping[str, str]]:
        """Send one request; return the status, body, content type and headers."""
        status: int | None = None
        limit = self._request_timeout
        try:
            with _NO_LIMIT if limit is None else self._deadlines.timeout(limit):
                async with self._session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as resp:
                    status = resp.status
                    body = await resp.read()
                    return status, body, resp.headers.get("Content-Type", ""), resp.headers
        except TimeoutError as exc:
            raise RequestTimeout(
                f"{endpoint}: no complete answer within {limit} s",
                endpoint=endpoint,
                status=status,
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise ProtocolError(
                f"{endpoint} answered {status} with a truncated or undecodable body",
                endpoint=endpoint,
                status=status,
            ) from exc
        except aiohttp.ClientResponseError as exc:
            raise ProtocolError(
                f"{endpoint}: the answer is not valid HTTP ({exc.message})",
                endpoint=endpoint,
                status=status,
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            if status is not None:
                raise ProtocolError(
                    f"{endpoint} answered {status}, then the body broke off ({type(exc).__name__})",
                    endpoint=endpoint,
                    status=status,
                ) from exc
            raise TransportError(
                f"{endpoint}: {type(exc).__name__}: {exc}",
                endpoint=endpoint,
                sent=not isinstance(exc, aiohttp.ClientConnectorError),
                lasting=isinstance(exc, aiohttp.ClientConnectorCertificateError),
            ) from exc

    @staticmethod
    def _json(endpoint: str, status: int, body: bytes, content_type: str) -> Any:
        """The decoded JSON body, or a ProtocolError."""
        if not _is_json(content_type):
            media = content_type.partition(";")[0].strip() or "no content type"
            raise ProtocolError(
                f"{endpoint} answered {status} with {media} instead of JSON",
                endpoint=endpoint,
                status=status,
            )
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(
                f"{endpoint} answered {status} with a body that is not valid JSON",
                endpoint=endpoint,
                status=status,
            ) from exc

    @classmethod
    def _error_body(cls, endpoint: str, status: int, body: bytes, content_type: str) -> Any:
        """The decoded body of an error answer; None for an unreadable 401/404/429/5xx."""
        if status < 200 or 300 <= status < 400:
            raise ProtocolError(f"{endpoint} answered {status}", endpoint=endpoint, status=status)
        try:
            return cls._json(endpoint, status, body, content_type)
        except ProtocolError:
            # Proxies answer these with bodies of their own; the status says what happened.
            if status in (401, 404, 429) or status >= 500:
                return None
            raise

    @classmethod
    def _error(
        cls, endpoint: str, status: int, body: bytes, content_type: str, headers: Mapping[str, str]
    ) -> ErrorReply:
        decoded = cls._error_body(endpoint, status, body, content_type)
        return parse_error(
            decoded, endpoint=endpoint, status=status, rate_limit=parse_rate_limit(headers)
        )

    async def _token(
        self, grant: str, params: Mapping[str, str | None]
    ) -> TokenSet | MfaRequired | ErrorReply:
        if self._token_json:
            payload = {"grant_type": grant, **self._grant_client[grant]}
            payload.update((k, v) for k, v in params.items() if v is not None)
            data = orjson.dumps(payload)
        else:
            form = self._grant_form[grant]
            extra = "".join(f"&{k}={form_quote(v)}" for k, v in params.items() if v is not None)
            data = (form + extra).encode()
        status, body, ctype, headers = await self._call(
            "POST", self._token_url, TOKEN, self._token_headers, data
        )
        if 200 <= status < 300:
            return parse_token_set(
                self._json(TOKEN, status, body, ctype), endpoint=TOKEN, status=status
            )
        decoded = self._error_body(TOKEN, status, body, ctype)
        return parse_token_reply(
            decoded, endpoint=TOKEN, status=status, rate_limit=parse_rate_limit(headers)
        )

    # --- the calls ---------------------------------------------------------------------------

    def password_grant(
        self,
        username: str,
        password: str,
        *,
        audience: str | None = None,
        scope: str | None = None,
        realm: str | None = None,
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """``grant_type=password``, or ``password-realm`` when a ``realm`` is given."""
        params = {
            "username": username,
            "password": password,
            "audience": audience,
            "scope": scope,
            "realm": realm,
        }
        return self._token(GRANT_PASSWORD if realm is None else GRANT_PASSWORD_REALM, params)

    def otp_grant(
        self, mfa_token: str, otp: str
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """The ``mfa-otp`` grant with a TOTP code."""
        return self._token(GRANT_MFA_OTP, {"mfa_token": mfa_token, "otp": otp})

    def oob_grant(
        self, mfa_token: str, oob_code: str, binding_code: str | None = None
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """The ``mfa-oob`` grant: with the code sent to the user, or without (push polling)."""
        params = {"mfa_token": mfa_token, "oob_code": oob_code, "binding_code": binding_code}
        return self._token(GRANT_MFA_OOB, params)

    def recovery_code_grant(
        self, mfa_token: str, recovery_code: str
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """The ``mfa-recovery-code`` grant; the tokens carry the replacement code."""
        params = {"mfa_token": mfa_token, "recovery_code": recovery_code}
        return self._token(GRANT_MFA_RECOVERY_CODE, params)

    def refresh_token_grant(
        self, refresh_token: str, *, scope: str | None = None
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """The ``refresh_token`` grant (``scope`` may only narrow)."""
        return self._token(GRANT_REFRESH_TOKEN, {"refresh_token": refresh_token, "scope": scope})

    async def list_authenticators(self, token: str) -> list[Authenticator] | ErrorReply:
        """``GET /mfa/authenticators`` with an mfa_token or an MFA-API access token."""
        status, body, ctype, headers = await self._call(
            "GET", self._authenticators_url, AUTHENTICATORS, {"Authorization": f"Bearer {token}"}
        )
        if 200 <= status < 300:
            decoded = self._json(AUTHENTICATORS, status, body, ctype)
            return parse_authenticators(decoded, endpoint=AUTHENTICATORS, status=status)
        return self._error(AUTHENTICATORS, status, body, ctype, headers)

    async def associate(
        self,
        token: str,
        *,
        authenticator_types: Sequence[str],
        oob_channels: Sequence[str] | None = None,
        phone_number: str | None = None,
        email: str | None = None,
    ) -> Association | ErrorReply:
        """``POST /mfa/associate``: enroll an ``otp`` or an ``oob`` authenticator."""
        payload: dict[str, Any] = {
            **self._mfa_client,
            "authenticator_types": list(authenticator_types),
        }
        if oob_channels is not None:
            payload["oob_channels"] = list(oob_channels)
        if phone_number is not None:
            payload["phone_number"] = phone_number
        if email is not None:
            payload["email"] = email
        headers = {"Content-Type": _JSON, "Authorization": f"Bearer {token}"}
        status, body, ctype, rheaders = await self._call(
            "POST", self._associate_url, ASSOCIATE, headers, orjson.dumps(payload)
        )
        if 200 <= status < 300:
            decoded = self._json(ASSOCIATE, status, body, ctype)
            return parse_association(decoded, endpoint=ASSOCIATE, status=status)
        return self._error(ASSOCIATE, status, body, ctype, rheaders)

    async def challenge(
        self,
        mfa_token: str,
        *,
        challenge_type: str | None = None,
        authenticator_id: str | None = None,
    ) -> Challenge | ErrorReply:
        """``POST /mfa/challenge``: ask for a code to be sent, or a push, or an OTP prompt."""
        payload = {**self._mfa_client, "mfa_token": mfa_token}
        if challenge_type is not None:
            payload["challenge_type"] = challenge_type
        if authenticator_id is not None:
            payload["authenticator_id"] = authenticator_id
        status, body, ctype, headers = await self._call(
            "POST", self._challenge_url, CHALLENGE, self._json_headers, orjson.dumps(payload)
        )
        if 200 <= status < 300:
            decoded = self._json(CHALLENGE, status, body, ctype)
            return parse_challenge(decoded, endpoint=CHALLENGE, status=status)
        return self._error(CHALLENGE, status, body, ctype, headers)

    async def delete_authenticator(
        self, access_token: str, authenticator_id: str
    ) -> ErrorReply | None:
        """``DELETE /mfa/authenticators/{id}`` (the id is percent-encoded: ``|`` is ``%7C``)."""
        url = URL(self._authenticators_prefix + quote(authenticator_id, safe=""), encoded=True)
        status, body, ctype, headers = await self._call(
            "DELETE", url, DELETE_AUTHENTICATOR, {"Authorization": f"Bearer {access_token}"}
        )
        if 200 <= status < 300:
            return None
        return self._error(DELETE_AUTHENTICATOR, status, body, ctype, headers)

    async def userinfo(self, access_token: str) -> dict[str, Any] | ErrorReply:
        """``GET /userinfo``: the claims the access token may read."""
        status, body, ctype, headers = await self._call(
            "GET", self._userinfo_url, USERINFO, {"Authorization": f"Bearer {access_token}"}
        )
        if 200 <= status < 300:
            return self._object(USERINFO, status, self._json(USERINFO, status, body, ctype))
        return self._error(USERINFO, status, body, ctype, headers)

    async def openid_configuration(self) -> dict[str, Any]:
        """The discovery document; any answer but a 2xx JSON object is a ProtocolError."""
        return await self._document(self._oidc_url, OPENID_CONFIGURATION)

    async def jwks(self) -> dict[str, Any]:
        """The tenant's JSON Web Key Set; any answer but a 2xx JSON object is a ProtocolError."""
        return await self._document(self._jwks_url, JWKS)

    async def _document(self, url: URL, endpoint: str) -> dict[str, Any]:
        status, body, ctype, _headers = await self._call("GET", url, endpoint, {})
        if not 200 <= status < 300:
            raise ProtocolError(f"{endpoint} answered {status}", endpoint=endpoint, status=status)
        return self._object(endpoint, status, self._json(endpoint, status, body, ctype))

    @staticmethod
    def _object(endpoint: str, status: int, decoded: Any) -> dict[str, Any]:
        if not isinstance(decoded, dict):
            raise ProtocolError(
                f"{endpoint} answered {status} with a JSON {type(decoded).__name__} "
                "where an object was expected",
                endpoint=endpoint,
                status=status,
            )
        return decoded
