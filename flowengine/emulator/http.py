"""HTTP plumbing shared by the handlers: bodies, errors, client authentication, base URL.

Handlers raise :class:`OAuthError` for every error answer; :func:`api` turns it into the
JSON body Auth0 sends (``error``, ``error_description`` and any extra members).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from aiohttp import web
from multidict import CIMultiDict

from flowengine.emulator.config import ClientConfig
from flowengine.emulator.store import EmulatorState
from flowengine.jsonio import JSONDecodeError, dumps, loads

__all__ = [
    "Handler",
    "JSON",
    "JSON_UTF8",
    "OAuthError",
    "STATE_KEY",
    "api",
    "authenticate_client",
    "base_url",
    "client_ip",
    "json_response",
    "read_params",
    "str_param",
]

#: The app's :class:`EmulatorState`.
STATE_KEY = web.AppKey("flowengine_emulator_state", EmulatorState)

JSON = "application/json"
JSON_UTF8 = "application/json; charset=utf-8"
_FORM = "application/x-www-form-urlencoded"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OAuthError(Exception):
    """An error answer: status, ``error``, ``error_description`` and extra members."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.extra = extra
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        body: dict[str, Any] = {"error": self.error, "error_description": self.description}
        if self.extra:
            body.update(self.extra)
        return body


_CONTENT_TYPES: dict[str, CIMultiDict[str]] = {}


def json_response(
    body: Any,
    status: int = 200,
    *,
    content_type: str = JSON_UTF8,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON response serialized with orjson."""
    if headers:
        all_headers = CIMultiDict(headers)
        all_headers["Content-Type"] = content_type
    else:
        all_headers = _CONTENT_TYPES.get(content_type) or _CONTENT_TYPES.setdefault(
            content_type, CIMultiDict({"Content-Type": content_type})
        )
    return web.Response(body=dumps(body), status=status, headers=all_headers)


def api(content_type: str = JSON_UTF8) -> Callable[[Handler], Handler]:
    """Decorate a handler so that :class:`OAuthError` becomes its JSON error answer."""

    def decorate(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except OAuthError as exc:
                return json_response(
                    exc.body(), exc.status, content_type=content_type, headers=exc.headers
                )

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        return wrapped

    return decorate


async def read_params(request: web.Request, *, allow_form: bool = True) -> dict[str, Any]:
    """The body as a dict: JSON object or (when allowed) form-urlencoded."""
    body = await request.read()
    content_type = request.content_type
    if content_type == JSON or content_type.endswith("+json"):
        try:
            params = loads(body) if body else {}
        except JSONDecodeError:
            raise OAuthError(400, "invalid_request", "Invalid JSON body.") from None
        if not isinstance(params, dict):
            raise OAuthError(400, "invalid_request", "The body must be a JSON object.")
        return params
    if content_type == _FORM and allow_form:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise OAuthError(400, "invalid_request", "The body is not UTF-8.") from None
        params = {}
        for key, value in _parse_form(text):
            previous = params.get(key)
            if previous is None:
                params[key] = value
            elif isinstance(previous, list):
                previous.append(value)
            else:
                params[key] = [previous, value]
        return params
    if not body:
        return {}
    accepted = "application/json" if not allow_form else "application/json or " + _FORM
    raise OAuthError(400, "invalid_request", f"Unsupported content type: use {accepted}.")


def _parse_form(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True)``, minus its generic machinery: fields
    split on ``&``, empty ones skipped, ``+`` is a space, ``%XX`` decoded as UTF-8 with
    replacement characters for bad bytes (only fields that need it go through ``unquote``)."""
    pairs = []
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "+" in name or "%" in name:
            name = _unquote_plus(name)
        if "+" in value or "%" in value:
            value = _unquote_plus(value)
        pairs.append((name, value))
    return pairs


def _unquote_plus(text: str) -> str:
    text = text.replace("+", " ")
    if "%" in text and text.isascii():
        # unquote() of ASCII text, without its split into ASCII and non-ASCII runs
        return unquote_to_bytes(text).decode("utf-8", "replace")
    return unquote(text)


def str_param(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """A string parameter (numbers accepted); 400 ``invalid_request`` when wrong or missing."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise OAuthError(400, "invalid_request", f"Missing required parameter: {name}")
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise OAuthError(400, "invalid_request", f"Parameter {name} must be a string.")


def _unauthorized() -> OAuthError:
    return OAuthError(401, "access_denied", "Unauthorized")


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthorized() from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _unauthorized()
    return unquote(client_id), unquote(secret)


def authenticate_client(
    state: EmulatorState, request: web.Request, params: dict[str, Any], *, basic: bool = True
) -> ClientConfig:
    """The client authenticated by its configured method; 401 ``access_denied`` otherwise."""
    credentials = _basic_credentials(request) if basic else None
    if credentials is not None:
        client_id, secret = credentials
        given_by = "client_secret_basic"
    else:
        client_id = str_param(params, "client_id") or ""
        secret = str_param(params, "client_secret") or ""
        given_by = "client_secret_post"
    client = state.clients.get(client_id)
    if client is None:
        raise _unauthorized()
    if client.auth_method == "none":
        return client
    if not secret or client.client_secret is None:
        raise _unauthorized()
    if basic and given_by != client.auth_method:
        raise _unauthorized()
    if not hmac.compare_digest(secret.encode(), state.client_secret_bytes[client.client_id]):
        raise _unauthorized()
    return client


_BASE_CACHE: dict[tuple[str, str], str] = {}


def base_url(request: web.Request, state: EmulatorState) -> str:
    """The public base URL (no trailing slash): the setting, or scheme://Host of the request."""
    configured = state.settings.base_url
    if configured is not None:
        return configured
    key = (request.scheme, request.host)
    url = _BASE_CACHE.get(key)
    if url is None:
        if len(_BASE_CACHE) > 1024:
            _BASE_CACHE.clear()
        url = _BASE_CACHE[key] = f"{request.scheme}://{request.host}"
    return url


def client_ip(request: web.Request, client: ClientConfig | None) -> str:
    """The end user's IP: ``auth0-forwarded-for`` of a trusted confidential client, or the peer."""
    if client is not None and client.trust_forwarded_for and client.auth_method != "none":
        forwarded = request.headers.get("auth0-forwarded-for")
        if forwarded:
            return forwarded.strip()
    return request.remote or ""
