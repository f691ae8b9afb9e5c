"""Everything the emulator mints: RS256 JWTs, the JWKS, and sealed opaque strings.

* :class:`Signer` holds one RSA key (made at start, shared by the apps of a process) and
  signs JWTs by hand (header cached, orjson payload) - one RSA operation per token.
* :class:`Sealer` makes Iron-like ``Fe26.2*…`` strings (8 ``*``-separated fields) for
  ``mfa_token`` and ``oob_code``: AES-CTR-encrypted payload, HMAC-SHA256 over the rest, a
  separate MAC key per purpose, expiry embedded in ms. Opaque access tokens (no audience) are
  JWE-like ``dir``/``A256GCM`` strings usable only at ``/userinfo``.

Every login pays for a seal and an unseal, so they keep their keyed state ready: one AES
block context whose output makes the CTR key stream (no cipher object per token), keyed
HMAC objects that are copied rather than re-keyed, and one ``os.urandom`` call per seal.
"""

from __future__ import annotations

import base64
import collections
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
    "hotp_keyed",
    "process_signer",
    "random_recovery_code",
    "seeded_device_id",
    "totp_key",
    "totp_mac",
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


def _b64url_bytes(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


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


def totp_mac(key: bytes) -> hmac.HMAC:
    """HMAC-SHA1 keyed with ``key``, for :func:`hotp_keyed` (copied per code, never updated)."""
    return hmac.new(key, digestmod=hashlib.sha1)


def hotp_keyed(mac: hmac.HMAC, counter: int) -> str:
    """:func:`hotp` with a :func:`totp_mac` of the key: no key schedule or digest lookup."""
    h = mac.copy()
    h.update(counter.to_bytes(8, "big"))
    digest = h.digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


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
        self._header = _b64url_bytes(dumps({"alg": "RS256", "typ": "JWT", "kid": self.kid})) + b"."
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact RS256 JWS of ``claims``."""
        signing_input = self._header + _b64url_bytes(dumps(claims))
        signature = self._key.sign(signing_input, self._padding, self._hash)
        return (signing_input + b"." + _b64url_bytes(signature)).decode("ascii")

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


#: How many opened sealed strings :class:`Sealer` remembers (the most recent ones: a flow
#: presents its mfa_token again within seconds).
OPENED_CACHE_SIZE = 16384
_JWE_HEADER = b64url(dumps({"alg": "dir", "enc": "A256GCM"}))
_BLOCK_MASK = (1 << 128) - 1


class Sealer:
    """Seals and opens Iron-like strings and opaque access tokens with per-process keys."""

    def __init__(self, key_id: str, master: bytes | None = None) -> None:
        master = master or os.urandom(32)
        self.key_id = key_id
        self._prefix = f"Fe26.2*{key_id}*"
        enc = hmac.new(master, b"encryption", hashlib.sha256).digest()
        # AES applied to counter blocks is the CTR key stream (NIST SP 800-38A, 6.5): one
        # long-lived block context serves every token; ECB here is only the block cipher.
        self._blocks = Cipher(algorithms.AES(enc), modes.ECB()).encryptor()  # noqa: S305
        self._macs: dict[str, Any] = {}
        self._master = master
        self._gcm = AESGCM(hmac.new(master, b"opaque-access-token", hashlib.sha256).digest())
        #: (purpose, token) -> (payload, expiry ms) of recently opened strings: a flow
        #: presents its mfa_token 3-4 times; only the first pays for HMAC and AES.
        self._opened: collections.OrderedDict[tuple[str, str], tuple[list[Any], int]] = (
            collections.OrderedDict()
        )

    def _mac(self, purpose: str, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` with the key of ``purpose`` (keyed once, then copied)."""
        keyed = self._macs.get(purpose)
        if keyed is None:
            key = hmac.new(self._master, b"mac:" + purpose.encode(), hashlib.sha256).digest()
            keyed = self._macs[purpose] = hmac.new(key, digestmod=hashlib.sha256)
        mac = keyed.copy()
        mac.update(data)
        return mac.digest()

    def _ctr(self, iv: bytes, data: bytes) -> bytes:
        """AES-CTR of ``data`` (encrypts and decrypts): the 128-bit big-endian counter
        starts at ``iv``, as in ``modes.CTR(iv)``."""
        size = len(data)
        if not size:
            return b""
        start = int.from_bytes(iv, "big")
        counters = b"".join(
            ((start + i) & _BLOCK_MASK).to_bytes(16, "big") for i in range((size + 15) // 16)
        )
        stream = self._blocks.update(counters)
        mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream[:size], "big")
        return mixed.to_bytes(size, "big")

    def seal(self, purpose: str, payload: list[Any], expires_at: float) -> str:
        """``Fe26.2*key*salt*iv*ciphertext*expiry_ms*hmac_salt*hmac`` for ``payload``."""
        rand = os.urandom(80)
        iv = rand[:16]
        ciphertext = self._ctr(iv, dumps(payload))
        base = (
            f"{self._prefix}{rand[16:48].hex()}*{b64url(iv)}*{b64url(ciphertext)}"
            f"*{int(expires_at * 1000)}"
        )
        mac_salt = rand[48:].hex()
        mac = self._mac(purpose, f"{base}*{mac_salt}".encode())
        return f"{base}*{mac_salt}*{b64url(mac)}"

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
        mac = self._mac(purpose, token[: token.rfind("*")].encode())
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
        payload = loads(self._ctr(iv, ciphertext))
        if not isinstance(payload, list):
            raise MalformedToken(purpose)
        if len(self._opened) >= OPENED_CACHE_SIZE:
            self._opened.popitem(last=False)  # O(1); a dict's first key is O(deleted) to find
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
