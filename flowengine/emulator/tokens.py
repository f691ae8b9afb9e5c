"""Everything the emulator mints: RS256 JWTs, the JWKS, and sealed opaque strings.

* :class:`Signer` holds one RSA key (made at start, shared by the apps of a process) and
  signs JWTs by hand (header cached, orjson payload) - one RSA operation per token.
* :class:`Sealer` makes Iron-like ``Fe26.2*…`` strings (8 ``*``-separated fields) for
  ``mfa_token`` and ``oob_code``: AES-CTR-encrypted payload, HMAC-SHA256 over the rest, a
  separate MAC key per purpose, expiry embedded in ms. Opaque access tokens (no audience) are
  JWE-like ``dir``/``A256GCM`` strings usable only at ``/userinfo``.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
import os
import secrets
import string
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from flowengine.jsonio import dumps, loads

__all__ = [
    "ExpiredToken",
    "MalformedToken",
    "OPENED_CACHE_SIZE",
    "Sealer",
    "Signer",
    "b64url",
    "b64url_decode",
    "device_id",
    "hotp",
    "process_signer",
    "random_recovery_code",
    "seeded_device_id",
    "totp_key",
]

_ALNUM = string.ascii_letters + string.digits
_RECOVERY_ALPHABET = string.ascii_uppercase + string.digits


class MalformedToken(ValueError):
    """Not a string this emulator sealed for this purpose (or tampered with)."""


class ExpiredToken(ValueError):
    """Sealed by this emulator, intact, but past its expiry."""


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`; raises ``ValueError`` on bad input."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def device_id() -> str:
    """A random ``dev_`` + 16 alphanumerics authenticator id suffix."""
    return "dev_" + "".join(secrets.choice(_ALNUM) for _ in range(16))


def seeded_device_id(*parts: str) -> str:
    """A stable ``dev_…`` suffix derived from ``parts`` (for pre-enrolled factors)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return "dev_" + "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:16])


def hotp(key: bytes, counter: int) -> str:
    """The 6-digit HOTP (RFC 4226, SHA-1) of ``key`` at ``counter`` (TOTP: counter = t // 30)."""
    digest = hmac.digest(key, counter.to_bytes(8, "big"), "sha1")
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def totp_key(secret: str) -> bytes:
    """The key bytes of a base32 TOTP secret."""
    return base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))


def random_recovery_code() -> str:
    """24 characters A-Z0-9."""
    return "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(24))


class Signer:
    """An RS256 key: signs JWTs, verifies them, publishes the JWKS."""

    def __init__(self, key: rsa.RSAPrivateKey | None = None) -> None:
        self._key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._key.public_key()
        cert = _self_signed(self._key)
        der = cert.public_bytes(serialization.Encoding.DER)
        self.kid = b64url(hashlib.sha256(der).digest()[:18])
        numbers = self.public_key.public_numbers()
        self._jwk = {
            "alg": "RS256",
            "kty": "RSA",
            "use": "sig",
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "kid": self.kid,
            "x5t": b64url(hashlib.sha1(der).digest()),  # noqa: S324 - x5t is SHA-1 by definition
            "x5c": [base64.b64encode(der).decode("ascii")],
        }
        self._header = b64url(dumps({"alg": "RS256", "typ": "JWT", "kid": self.kid})) + "."
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact RS256 JWS of ``claims``."""
        signing_input = self._header + b64url(dumps(claims))
        signature = self._key.sign(signing_input.encode("ascii"), self._padding, self._hash)
        return signing_input + "." + b64url(signature)

    def verify(self, token: str, *, issuer: str, now: float) -> dict[str, Any]:
        """The claims of a JWT this key signed, unexpired at ``now``.

        Raises ``jwt.ExpiredSignatureError`` or another ``jwt.InvalidTokenError``.
        """
        claims: dict[str, Any] = jwt.decode(
            token,
            self.public_key,
            algorithms=["RS256"],
            issuer=issuer,
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["exp", "iat", "sub"],
            },
        )
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise jwt.ExpiredSignatureError("Signature has expired")
        return claims

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set document."""
        return {"keys": [dict(self._jwk)]}


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flowengine emulator")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


@functools.cache
def process_signer() -> Signer:
    """The signing key of this process (generated once, on first use)."""
    return Signer()


#: How many opened sealed strings :class:`Sealer` remembers.
OPENED_CACHE_SIZE = 65536
_JWE_HEADER = b64url(dumps({"alg": "dir", "enc": "A256GCM"}))


class Sealer:
    """Seals and opens Iron-like strings and opaque access tokens with per-process keys."""

    def __init__(self, key_id: str, master: bytes | None = None) -> None:
        master = master or os.urandom(32)
        self.key_id = key_id
        self._enc = hmac.new(master, b"encryption", hashlib.sha256).digest()
        self._macs: dict[str, bytes] = {}
        self._master = master
        self._gcm = AESGCM(hmac.new(master, b"opaque-access-token", hashlib.sha256).digest())
        #: (purpose, token) -> (payload, expiry ms) of recently opened strings: a flow
        #: presents its mfa_token 3-4 times; only the first pays for HMAC and AES.
        self._opened: dict[tuple[str, str], tuple[list[Any], int]] = {}

    def _mac_key(self, purpose: str) -> bytes:
        key = self._macs.get(purpose)
        if key is None:
            key = self._macs[purpose] = hmac.new(
                self._master, b"mac:" + purpose.encode(), hashlib.sha256
            ).digest()
        return key

    def seal(self, purpose: str, payload: list[Any], expires_at: float) -> str:
        """``Fe26.2*key*salt*iv*ciphertext*expiry_ms*hmac_salt*hmac`` for ``payload``."""
        iv = os.urandom(16)
        encryptor = Cipher(algorithms.AES(self._enc), modes.CTR(iv)).encryptor()
        ciphertext = encryptor.update(dumps(payload)) + encryptor.finalize()
        base = (
            f"Fe26.2*{self.key_id}*{os.urandom(32).hex()}*{b64url(iv)}*{b64url(ciphertext)}"
            f"*{int(expires_at * 1000)}"
        )
        mac_salt = os.urandom(32).hex()
        mac = hmac.new(self._mac_key(purpose), f"{base}*{mac_salt}".encode(), hashlib.sha256)
        return f"{base}*{mac_salt}*{b64url(mac.digest())}"

    def unseal(self, purpose: str, token: str, now: float) -> list[Any]:
        """The payload; raises :class:`MalformedToken` or :class:`ExpiredToken`."""
        cached = self._opened.get((purpose, token))
        if cached is not None:
            if now * 1000 >= cached[1]:
                raise ExpiredToken(purpose)
            return cached[0]
        parts = token.split("*")
        if len(parts) != 8 or parts[0] != "Fe26.2" or parts[1] != self.key_id:
            raise MalformedToken(purpose)
        base = token[: token.rfind("*")]
        mac = hmac.new(self._mac_key(purpose), base.encode(), hashlib.sha256).digest()
        try:
            given = b64url_decode(parts[7])
            iv = b64url_decode(parts[3])
            ciphertext = b64url_decode(parts[4])
            expiry_ms = int(parts[5])
        except ValueError:
            raise MalformedToken(purpose) from None
        if not hmac.compare_digest(mac, given) or len(iv) != 16:
            raise MalformedToken(purpose)
        if now * 1000 >= expiry_ms:
            raise ExpiredToken(purpose)
        decryptor = Cipher(algorithms.AES(self._enc), modes.CTR(iv)).decryptor()
        payload = loads(decryptor.update(ciphertext) + decryptor.finalize())
        if not isinstance(payload, list):
            raise MalformedToken(purpose)
        if len(self._opened) >= OPENED_CACHE_SIZE:
            del self._opened[next(iter(self._opened))]
        self._opened[(purpose, token)] = (payload, expiry_ms)
        return payload

    def opaque_token(self, claims: dict[str, Any]) -> str:
        """A JWE-like opaque access token carrying ``claims`` (only we can read it)."""
        iv = os.urandom(12)
        sealed = self._gcm.encrypt(iv, dumps(claims), _JWE_HEADER.encode("ascii"))
        return f"{_JWE_HEADER}..{b64url(iv)}.{b64url(sealed[:-16])}.{b64url(sealed[-16:])}"

    def open_opaque_token(self, token: str) -> dict[str, Any]:
        """The claims of :meth:`opaque_token`; raises :class:`MalformedToken`."""
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != _JWE_HEADER or parts[1]:
            raise MalformedToken("access_token")
        try:
            iv = b64url_decode(parts[2])
            sealed = b64url_decode(parts[3]) + b64url_decode(parts[4])
            claims = loads(self._gcm.decrypt(iv, sealed, _JWE_HEADER.encode("ascii")))
        except (ValueError, InvalidTag):
            raise MalformedToken("access_token") from None
        if not isinstance(claims, dict):
            raise MalformedToken("access_token")
        return claims
