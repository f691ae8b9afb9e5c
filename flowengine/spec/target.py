"""The ``target:`` of a scenario: an Auth0 tenant, or an emulator reached over the network."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from flowengine.spec._read import Reader, describe, key_path

__all__ = ["Target", "parse_target"]

_TARGET_KEYS = (
    "audience",
    "auth_method",
    "base_url",
    "ca_bundle",
    "client_id",
    "client_secret",
    "domain",
    "realm",
    "scope",
)
_AUTH_METHODS: tuple[Literal["client_secret_post", "client_secret_basic", "none"], ...] = (
    "client_secret_basic",
    "client_secret_post",
    "none",
)
_NO_VERIFY_KEYS = frozenset(
    {"insecure", "ssl_verify", "tls_verify", "verify", "verify_ssl", "verify_tls"}
)


@attrs.frozen(kw_only=True)
class Target:
    """An Auth0 tenant (or an emulator reached over the network). Its repr shows no secret."""

    base_url: str
    """``https://tenant.eu.auth0.com`` (no trailing slash); plain http only for loopback hosts."""
    client_id: str
    client_secret: str | None = attrs.field(default=None, repr=False)
    auth_method: Literal["client_secret_post", "client_secret_basic", "none"] = "client_secret_post"
    audience: str | None = None
    scope: str | None = None
    """Space-separated scopes; None: none sent (the tenant's defaults)."""
    realm: str | None = None
    """A connection name: use the password-realm grant."""
    ca_bundle: Path | None = None
    """Extra CA certificates (PEM) to trust; TLS verification is always on."""

    @property
    def host(self) -> str:
        """The host name or address in ``base_url``."""
        return urlsplit(self.base_url).hostname or ""

    @property
    def is_loopback(self) -> bool:
        """Whether the target is on this machine (localhost, 127.0.0.0/8, ::1)."""
        return _is_loopback(self.host)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_url(r: Reader, data: dict[str, Any], path: str) -> str:
    if "base_url" in data and "domain" in data:
        raise r.error(key_path(path, "domain"), "give base_url or domain, not both")
    if "base_url" not in data and "domain" not in data:
        raise r.error(path, "missing 'base_url' (https://tenant.eu.auth0.com) or 'domain'")
    key = "base_url" if "base_url" in data else "domain"
    where = key_path(path, key)
    what = (
        "a URL like https://tenant.eu.auth0.com"
        if key == "base_url"
        else "a domain like tenant.eu.auth0.com"
    )
    text = r.string(data[key], where, what=what)
    if key == "domain":
        if "/" in text or "@" in text:
            raise r.error(
                where,
                f"expected {what} (no scheme or path; or use base_url), got {describe(data[key])}",
            )
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise r.error(where, f"expected {what}, got {describe(data[key])}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise r.error(where, f"expected {what}, got {describe(data[key])}")
    if "@" in parts.netloc:
        raise r.error(where, "must not contain credentials; give client_id and client_secret")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise r.error(where, f"expected {what} without a path, query or fragment")
    if parts.scheme == "http" and not _is_loopback(host):
        raise r.error(
            where,
            "plain http is allowed only for loopback hosts (localhost, 127.0.0.1, ::1); use https",
        )
    return f"{parts.scheme}://{parts.netloc}"


def parse_target(r: Reader, value: Any, path: str) -> Target:
    data = r.mapping(
        value, path, what="a mapping (base_url or domain, client_id, client_secret...)"
    )
    for key in data:
        if key in _NO_VERIFY_KEYS:
            raise r.error(
                key_path(path, key),
                "TLS verification is always on and cannot be turned off;"
                " give ca_bundle to trust a private CA",
            )
    r.check_keys(data, path, _TARGET_KEYS, required=("client_id",))
    base_url = _base_url(r, data, path)
    client_id = r.string(data["client_id"], key_path(path, "client_id"), what="a client id")
    auth_method = r.choice(
        data.get("auth_method", "client_secret_post"),
        key_path(path, "auth_method"),
        _AUTH_METHODS,
        what="auth_method",
    )
    secret = r.optional_string(
        data.get("client_secret"),
        key_path(path, "client_secret"),
        what="a client secret (e.g. ${AUTH0_CLIENT_SECRET})",
        secret=True,
    )
    if auth_method == "none" and secret is not None:
        raise r.error(
            key_path(path, "client_secret"), "auth_method none sends no secret; remove it"
        )
    if auth_method != "none" and secret is None:
        raise r.error(
            path,
            f"missing 'client_secret' (needed by auth_method {auth_method});"
            " write client_secret: ${AUTH0_CLIENT_SECRET}",
        )
    ca_bundle = None
    if data.get("ca_bundle") is not None:
        ca_bundle = r.file(data["ca_bundle"], key_path(path, "ca_bundle"), what="a PEM file name")
    optional = {
        key: r.optional_string(data.get(key), key_path(path, key), what=what)
        for key, what in (
            ("audience", "an API identifier"),
            ("scope", "space-separated scopes"),
            ("realm", "a connection name"),
        )
    }
    return Target(
        base_url=base_url,
        client_id=client_id,
        client_secret=secret,
        auth_method=auth_method,
        ca_bundle=ca_bundle,
        **optional,
    )
