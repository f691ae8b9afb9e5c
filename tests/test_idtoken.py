"""ID token validation and the JWKS cache."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from flowengine.clock import ManualClock
from flowengine.errors import TokenValidationError
from flowengine.idtoken import JwksCache, parse_jwks, verify_id_token

ISSUER = "https://tenant.example.test/"
CLIENT = "client-1"
NOW = 1_767_225_600.0


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    """Two RSA signing keys, by kid."""
    return {
        kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2")
    }


def jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The public JWK of ``key``, Auth0 style."""
    data = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**data, "kid": kid, "alg": "RS256", "use": "sig"}


def jwks_of(keys: Mapping[str, rsa.RSAPrivateKey], *kids: str) -> dict[str, Any]:
    """A JWKS document with the public keys ``kids``."""
    return {"keys": [jwk(kid, keys[kid]) for kid in kids]}


def make_token(key: rsa.RSAPrivateKey, kid: str | None = "k1", **overrides: Any) -> str:
    """An RS256 id_token with Auth0's claims; ``overrides`` set or (with None) drop claims."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "auth0|1",
        "aud": CLIENT,
        "iat": int(NOW),
        "exp": int(NOW) + 36000,
        "email": "user1@example.test",
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def verify(token: str, jwks: Mapping[str, Any], now: float = NOW) -> dict[str, Any]:
    """verify_id_token with the test tenant's issuer and client."""
    return verify_id_token(token, jwks, issuer=ISSUER, audience=CLIENT, now=now)


def test_valid_token_gives_claims(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """A well-signed token for this issuer and client gives its claims."""
    claims = verify(make_token(keys["k1"]), jwks_of(keys, "k1", "k2"))
    assert (claims["sub"], claims["email"]) == ("auth0|1", "user1@example.test")


def test_token_without_kid_and_a_single_key(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """A token without kid verifies against a JWKS of exactly one key."""
    assert verify(make_token(keys["k1"], kid=None), jwks_of(keys, "k1"))["sub"] == "auth0|1"


def test_key_without_alg_is_rs256(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """A JWKS key without 'alg' (a tenant setting) is taken as RS256."""
    document = jwks_of(keys, "k1")
    del document["keys"][0]["alg"]
    assert verify(make_token(keys["k1"]), document)["aud"] == CLIENT


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"iss": "https://other.example.test/"}, "not issued by"),
        ({"aud": "someone-else"}, "not for audience"),
        ({"exp": int(NOW) - 61}, "expired"),
        ({"iat": int(NOW) + 3600}, "future"),
        ({"nbf": int(NOW) + 3600}, "not valid yet"),
        ({"sub": None}, "sub"),
        ({"aud": [CLIENT, "https://api/"]}, "azp"),
    ],
)
def test_bad_claims_are_rejected(
    keys: dict[str, rsa.RSAPrivateKey], overrides: dict[str, Any], message: str
) -> None:
    """A wrong issuer, audience, time window or a missing claim is a TokenValidationError."""
    with pytest.raises(TokenValidationError, match=message):
        verify(make_token(keys["k1"], **overrides), jwks_of(keys, "k1"))


def test_expiry_within_leeway_is_accepted(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """A token expired less than the leeway ago still verifies."""
    token = make_token(keys["k1"], exp=int(NOW) - 30)
    assert verify(token, jwks_of(keys, "k1"))["sub"] == "auth0|1"


def test_several_audiences_with_azp(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """Several audiences are fine when azp names the client."""
    token = make_token(keys["k1"], aud=[CLIENT, "https://api/"], azp=CLIENT)
    assert verify(token, jwks_of(keys, "k1"))["azp"] == CLIENT


def test_wrong_signature(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """A token signed by another key under the same kid fails on its signature."""
    with pytest.raises(TokenValidationError, match="signature"):
        verify(make_token(keys["k2"], kid="k1"), jwks_of(keys, "k1"))


def test_unknown_kid(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """A kid the JWKS does not have is a TokenValidationError."""
    with pytest.raises(TokenValidationError, match="no RS256 signing key"):
        verify(make_token(keys["k2"], kid="k2"), jwks_of(keys, "k1"))


def test_hs256_token_is_rejected(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """An HS256 token is rejected before any key is tried (no algorithm confusion)."""
    token = jwt.encode({"sub": "x"}, "s" * 32, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(TokenValidationError, match="RS256"):
        verify(token, jwks_of(keys, "k1"))


@pytest.mark.parametrize("token", ["not.a.jwt", "", "a.b"])
def test_not_a_jwt(keys: dict[str, rsa.RSAPrivateKey], token: str) -> None:
    """Something that is not a JWT is a TokenValidationError."""
    with pytest.raises(TokenValidationError, match="not a JWT"):
        verify(token, jwks_of(keys, "k1"))


def test_message_never_contains_the_token(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """Error messages name the problem, never the token."""
    token = make_token(keys["k1"], aud="other")
    with pytest.raises(TokenValidationError) as info:
        verify(token, jwks_of(keys, "k1"))
    assert token not in str(info.value)
    assert token.split(".")[1] not in str(info.value)


@pytest.mark.parametrize(
    "document", [{}, {"keys": "none"}, [], {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}]
)
def test_unusable_jwks(keys: dict[str, rsa.RSAPrivateKey], document: Any) -> None:
    """A JWKS without a usable RS256 key is a TokenValidationError."""
    with pytest.raises(TokenValidationError):
        verify(make_token(keys["k1"]), document)


def test_parse_jwks_skips_encryption_and_broken_keys(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """parse_jwks keeps only usable signing keys."""
    document = jwks_of(keys, "k1", "k2")
    document["keys"][1]["use"] = "enc"
    document["keys"].append({"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"})
    document["keys"].append("not a key")
    assert list(parse_jwks(document)) == ["k1"]


# --- the cache -------------------------------------------------------------------------------


class Source:
    """A JWKS endpoint stand-in that counts fetches and serves whatever document it holds."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0)
        return self.document


async def test_cache_fetches_once_for_concurrent_callers(
    keys: dict[str, rsa.RSAPrivateKey],
) -> None:
    """Ten concurrent verifications share one fetch."""
    source = Source(jwks_of(keys, "k1"))
    cache = JwksCache(source, clock=ManualClock(NOW))
    token = make_token(keys["k1"])
    results = await asyncio.gather(
        *(cache.verify(token, issuer=ISSUER, audience=CLIENT) for _ in range(10))
    )
    assert {claims["sub"] for claims in results} == {"auth0|1"}
    assert (source.calls, cache.fetches) == (1, 1)


async def test_cache_refetches_on_unknown_kid(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """A token signed with a rotated-in key makes the cache refetch and then verify."""
    clock = ManualClock(NOW)
    source = Source(jwks_of(keys, "k1"))
    cache = JwksCache(source, clock=clock, min_refetch=30)
    await cache.verify(make_token(keys["k1"]), issuer=ISSUER, audience=CLIENT)
    source.document = jwks_of(keys, "k1", "k2")
    clock.advance(31)
    claims = await cache.verify(make_token(keys["k2"], kid="k2"), issuer=ISSUER, audience=CLIENT)
    assert claims["sub"] == "auth0|1"
    assert source.calls == 2


async def test_cache_does_not_refetch_unknown_kid_too_often(
    keys: dict[str, rsa.RSAPrivateKey],
) -> None:
    """Within min_refetch of the last fetch an unknown kid fails without a new fetch."""
    clock = ManualClock(NOW)
    source = Source(jwks_of(keys, "k1"))
    cache = JwksCache(source, clock=clock, min_refetch=30)
    await cache.key("k1")
    clock.advance(5)
    with pytest.raises(TokenValidationError):
        await cache.key("forged")
    assert source.calls == 1


async def test_cache_refetches_after_ttl(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """Keys older than ttl are fetched again."""
    clock = ManualClock(NOW)
    source = Source(jwks_of(keys, "k1"))
    cache = JwksCache(source, clock=clock, ttl=600)
    await cache.key("k1")
    clock.advance(600)
    await cache.key("k1")
    assert source.calls == 2


async def test_cache_checks_expiry_with_its_clock(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    """The cache judges exp by its clock's time, not the system's."""
    clock = ManualClock(NOW)
    cache = JwksCache(Source(jwks_of(keys, "k1")), clock=clock)
    token = make_token(keys["k1"])
    clock.advance(36000 + 61)
    with pytest.raises(TokenValidationError, match="expired"):
        await cache.verify(token, issuer=ISSUER, audience=CLIENT)
