"""ID token validation against the tenant's JWKS: RS256 signature, ``iss``, ``aud``, ``exp``.

:func:`verify_id_token` checks one token against a JWKS document; :class:`JwksCache` keeps
the parsed keys of one tenant, refetches them after ``ttl`` and on an unknown ``kid`` (key
rotation, reference §9.4), and reads time from a :class:`~flowengine.clock.Clock` so tests
and the emulator's manual clock agree on what "expired" means. Every failure is a
:class:`~flowengine.errors.TokenValidationError` whose message never contains the token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import jwt

from flowengine.clock import Clock, SystemClock
from flowengine.errors import TokenValidationError

__all__ = ["DEFAULT_LEEWAY", "JwksCache", "parse_jwks", "verify_id_token"]

DEFAULT_LEEWAY: Final = 60.0
"""Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat`` (as Auth0's SDKs)."""

_ALGORITHMS: Final = ("RS256",)
_REQUIRED: Final = ("exp", "iat", "iss", "aud", "sub")


def parse_jwks(jwks: Any) -> dict[str | None, jwt.PyJWK]:
    """The signing keys of a JWKS document by ``kid``; keys flowengine cannot use are skipped."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise TokenValidationError("the JWKS has no 'keys' list")
    parsed: dict[str | None, jwt.PyJWK] = {}
    for data in keys:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(data)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in _ALGORITHMS:
            parsed[key.key_id] = key
    return parsed


def _header_kid(id_token: str) -> str | None:
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise TokenValidationError(f"the id_token is not a JWT ({exc})") from None
    if header.get("alg") not in _ALGORITHMS:
        raise TokenValidationError(f"the id_token is signed with {header.get('alg')!r}, not RS256")
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def _pick(keys: Mapping[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    return keys.get(kid)


def _decode(
    id_token: str,
    key: jwt.PyJWK,
    *,
    issuer: str,
    audience: str,
    leeway: float,
    now: float,
) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=list(_ALGORITHMS),
            audience=audience,
            issuer=issuer,
            options={
                "require": list(_REQUIRED),
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise TokenValidationError("the id_token's signature does not verify") from None
    except jwt.InvalidAudienceError:
        raise TokenValidationError(f"the id_token is not for audience {audience!r}") from None
    except jwt.InvalidIssuerError:
        raise TokenValidationError(f"the id_token was not issued by {issuer!r}") from None
    except jwt.PyJWTError as exc:
        raise TokenValidationError(f"the id_token is invalid: {exc}") from None
    exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat)):
        raise TokenValidationError("the id_token's exp and iat must be numbers")
    if now > exp + leeway:
        raise TokenValidationError(f"the id_token expired {now - exp:.0f} s ago")
    if iat > now + leeway:
        raise TokenValidationError("the id_token was issued in the future")
    if isinstance(nbf, int | float) and nbf > now + leeway:
        raise TokenValidationError("the id_token is not valid yet (nbf)")
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != audience:
        raise TokenValidationError("the id_token has several audiences and azp is not the client")
    return claims


def verify_id_token(
    id_token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    leeway: float = DEFAULT_LEEWAY,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of ``id_token`` once its signature, ``iss``, ``aud`` and ``exp`` check out.

    ``issuer`` is compared exactly: Auth0's is ``https://{domain}/`` with the slash.
    ``audience`` is the client id. ``now`` defaults to the system clock.
    """
    kid = _header_kid(id_token)
    key = _pick(parse_jwks(jwks), kid)
    if key is None:
        raise TokenValidationError(f"no RS256 signing key {kid!r} in the JWKS")
    moment = time.time() if now is None else now
    return _decode(id_token, key, issuer=issuer, audience=audience, leeway=leeway, now=moment)


class JwksCache:
    """One tenant's signing keys, fetched on first use, after ``ttl``, and on an unknown kid.

    ``fetch`` returns the JWKS document (e.g. ``AuthClient.jwks``); concurrent callers share
    one fetch. An unknown ``kid`` refetches at most once per ``min_refetch`` seconds, so a
    stream of forged kids cannot hammer the tenant. Fetch errors (``ApiError``) propagate.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Mapping[str, Any]]],
        *,
        ttl: float = 600.0,
        min_refetch: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._clock: Clock = clock or SystemClock()
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._fetch_count = 0
        self._lock = asyncio.Lock()

    @property
    def fetches(self) -> int:
        """How many times the JWKS was fetched."""
        return self._fetch_count

    async def _refresh(self, *, seen_at: float | None) -> None:
        async with self._lock:
            if self._fetched_at != seen_at:
                return  # another task refreshed while this one waited
            document = await self._fetch()
            self._keys = parse_jwks(document)
            self._fetched_at = self._clock.monotonic()
            self._fetch_count += 1

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The signing key ``kid`` (None: the only key), fetching the JWKS when needed."""
        fetched_at = self._fetched_at
        now = self._clock.monotonic()
        if fetched_at is None or now - fetched_at >= self._ttl:
            await self._refresh(seen_at=fetched_at)
        key = _pick(self._keys, kid)
        last = self._fetched_at
        if key is None and last is not None and now - last >= self._min_refetch:
            await self._refresh(seen_at=last)
            key = _pick(self._keys, kid)
        if key is None:
            raise TokenValidationError(f"no RS256 signing key {kid!r} in the JWKS")
        return key

    async def verify(
        self,
        id_token: str,
        *,
        issuer: str,
        audience: str,
        leeway: float = DEFAULT_LEEWAY,
    ) -> dict[str, Any]:
        """:func:`verify_id_token` with this cache's keys and clock."""
        key = await self.key(_header_kid(id_token))
        return _decode(
            id_token,
            key,
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            now=self._clock.time(),
        )
