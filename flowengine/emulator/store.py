"""The emulator's state in memory: users, authenticators, challenges, inboxes, refresh tokens.

Everything here is synchronous: a handler reads, decides and writes without awaiting in
between, so thousands of concurrent flows on one event loop never interleave a
read-modify-write. Generated users are materialized on first use; expired challenges,
stale buckets, old messages and refresh tokens are swept (see :meth:`EmulatorState.sweep`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict, deque
from typing import Any

import attrs
import pyotp

from flowengine.clock import Clock
from flowengine.emulator.config import EmulatorConfig, UserConfig
from flowengine.emulator.limits import BucketMap
from flowengine.emulator.tokens import (
    Sealer,
    Signer,
    device_id,
    process_signer,
    random_recovery_code,
    seeded_device_id,
    totp_key,
    totp_mac,
)

__all__ = [
    "Authenticator",
    "Challenge",
    "EmulatorState",
    "ID_PREFIX",
    "Message",
    "PUSH_MODES",
    "PushPolicy",
    "RefreshGrant",
    "TYPE_FIELD",
    "User",
]

#: factor -> authenticator id prefix on the wire.
ID_PREFIX = {
    "otp": "totp",
    "sms": "sms",
    "voice": "voice",
    "email": "email",
    "push": "push",
    "recovery-code": "recovery-code",
}
#: factor -> the optional ``type`` field of authenticators and ``mfa_requirements``.
TYPE_FIELD = {
    "otp": "otp",
    "sms": "phone",
    "voice": "phone",
    "email": "email",
    "push": "push-notification",
    "recovery-code": "recovery-code",
}
_OOB_CHANNEL = {"sms": "sms", "voice": "voice", "email": "email", "push": "auth0"}
PUSH_MODES = ("manual", "approve", "reject", "never")
PUSH_DEVICE_NAME = "flowengine emulated device"


def _mask_phone(phone: str) -> str:
    return "X" * max(len(phone) - 4, 0) + phone[-4:]


def _mask_email(email: str) -> str:
    domain = email.partition("@")[2]
    return "****@" + domain[:4] + "*" * max(len(domain) - 4, 0)


class Authenticator:
    """One enrolled (or pending) authenticator of a user."""

    __slots__ = (
        "active",
        "email",
        "factor",
        "id",
        "implicit",
        "last_counter",
        "phone_number",
        "secret",
        "totp_key",
        "totp_mac",
        "twin_id",
    )

    def __init__(
        self,
        *,
        factor: str,
        suffix: str,
        active: bool,
        secret: str | None = None,
        phone_number: str | None = None,
        email: str | None = None,
        implicit: bool = False,
    ) -> None:
        self.id = f"{ID_PREFIX[factor]}|{suffix}"
        self.factor = factor
        self.active = active
        self.secret = secret
        self.totp_key = totp_key(secret) if secret else None
        self.totp_mac = totp_mac(self.totp_key) if self.totp_key else None
        self.phone_number = phone_number
        self.email = email
        self.implicit = implicit
        self.twin_id: str | None = None
        self.last_counter = -1

    @property
    def authenticator_type(self) -> str:
        """``otp``, ``oob`` or ``recovery-code``."""
        if self.factor in ("otp", "recovery-code"):
            return self.factor
        return "oob"

    @property
    def oob_channel(self) -> str | None:
        """``sms``, ``voice``, ``email``, ``auth0`` for oob authenticators."""
        return _OOB_CHANNEL.get(self.factor)

    def name(self) -> str | None:
        """The masked phone or email, the push device name, or None."""
        if self.factor in ("sms", "voice") and self.phone_number:
            return _mask_phone(self.phone_number)
        if self.factor == "email" and self.email:
            return _mask_email(self.email)
        if self.factor == "push" and self.active:
            return PUSH_DEVICE_NAME
        return None

    def wire(self, *, type_field: bool) -> dict[str, Any]:
        """The entry of ``GET /mfa/authenticators``."""
        entry: dict[str, Any] = {
            "id": self.id,
            "authenticator_type": self.authenticator_type,
            "active": self.active,
        }
        channel = self.oob_channel
        if channel is not None:
            entry["oob_channel"] = channel
        name = self.name()
        if name is not None:
            entry["name"] = name
        if type_field:
            entry["type"] = TYPE_FIELD[self.factor]
        return entry


class User:
    """A user of the database connection, with its MFA state."""

    __slots__ = (
        "authenticators",
        "blocked",
        "email",
        "enrolled_ever",
        "mfa_required",
        "password",
        "pending",
        "phone_number",
        "profile",
        "recovery_code",
        "user_id",
        "username",
    )

    def __init__(self, config: UserConfig) -> None:
        self.username = config.username
        self.user_id = (
            config.user_id
            or "auth0|" + hashlib.sha256(config.username.lower().encode()).hexdigest()[:24]
        )
        self.email = config.email or (config.username if "@" in config.username else None)
        self.phone_number = config.phone_number
        self.password = config.password.encode()
        self.blocked = config.blocked
        self.mfa_required = config.mfa_required
        self.authenticators: dict[str, Authenticator] = {}
        self.recovery_code: str | None = None
        self.enrolled_ever = False
        #: mfa session id -> ids of the authenticators it enrolled (not yet confirmed).
        self.pending: dict[str, list[str]] = {}
        #: (nickname, name, picture) of the profile claims, made on first use.
        self.profile: tuple[str, str, str] | None = None

    def check_password(self, password: str) -> bool:
        """Constant-time comparison with the stored password."""
        return hmac.compare_digest(self.password, password.encode())

    def add(self, authenticator: Authenticator) -> Authenticator:
        """Store ``authenticator`` (last in the list)."""
        self.authenticators[authenticator.id] = authenticator
        return authenticator

    def active_factors(self) -> list[Authenticator]:
        """Active authenticators that can be challenged (not the recovery code)."""
        return [a for a in self.authenticators.values() if a.active and a.factor != "recovery-code"]

    def recovery_authenticator(self) -> Authenticator | None:
        """The ``recovery-code|…`` authenticator, if any."""
        for authenticator in self.authenticators.values():
            if authenticator.factor == "recovery-code":
                return authenticator
        return None


class Challenge:
    """An oob_code: a code sent by SMS/voice/email, or a push transaction."""

    __slots__ = (
        "answer",
        "answer_at",
        "authenticator_id",
        "channel",
        "code",
        "enrollment",
        "expires_at",
        "id",
        "session_id",
        "state",
        "username",
    )

    def __init__(
        self,
        *,
        session_id: str,
        username: str,
        authenticator_id: str,
        channel: str,
        code: str | None,
        expires_at: float,
        enrollment: bool,
    ) -> None:
        self.id = secrets.token_hex(8)
        self.session_id = session_id
        self.username = username
        self.authenticator_id = authenticator_id
        self.channel = channel
        self.code = code
        self.expires_at = expires_at
        self.enrollment = enrollment
        self.state = "pending"  # pending | approved | rejected | used
        self.answer: str | None = None
        self.answer_at: float | None = None

    @property
    def is_push(self) -> bool:
        """Whether this is a push (``auth0`` channel) transaction."""
        return self.channel == "auth0"


@attrs.frozen(kw_only=True)
class Message:
    """A code the emulator "sent" by SMS, voice or email."""

    channel: str
    """``sms``, ``voice`` or ``email``."""
    to: str
    """Phone number or email address."""
    code: str = attrs.field(repr=False)
    """The 6-digit code."""
    sent_at: float
    """Epoch seconds."""

    def wire(self) -> dict[str, Any]:
        """As the control API shows it."""
        return {"channel": self.channel, "to": self.to, "code": self.code, "sent_at": self.sent_at}


@attrs.frozen(kw_only=True)
class PushPolicy:
    """How pushes are answered: ``manual``/``never`` wait, ``approve``/``reject`` answer."""

    mode: str = "manual"
    """One of :data:`PUSH_MODES`."""
    after_ms: int = 0
    """Delay of the automatic answer."""


@attrs.frozen(kw_only=True)
class RefreshGrant:
    """What a refresh token stands for."""

    username: str
    """Owner."""
    client_id: str
    """The client it was issued to."""
    audience: str | None
    """Audience of the original grant."""
    scope: tuple[str, ...]
    """Scopes of the original grant."""
    expires_at: float
    """Absolute expiry."""


class EmulatorState:
    """All mutable state of one emulator app (reachable in-process as ``app[STATE_KEY]``)."""

    def __init__(
        self,
        config: EmulatorConfig,
        clock: Clock,
        *,
        signer: Signer | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.config = config
        self.signer = signer or process_signer()
        self.sealer = sealer or Sealer(f"SERVER_{int(clock.time())}")
        self.clients = {client.client_id: client for client in config.clients}
        #: client_id -> its secret as bytes, ready for ``hmac.compare_digest``.
        self.client_secret_bytes = {
            c.client_id: c.client_secret.encode()
            for c in config.clients
            if c.client_secret is not None
        }
        self.apis = {api.audience: api for api in config.apis}
        #: (base, audience, scope, refresh allowed) -> granted scopes (see issue.py).
        self.scope_cache: dict[tuple[str, str | None, str, bool], tuple[str, ...]] = {}
        self.settings = config.settings
        self.clock = clock
        limits = config.settings.limits
        self._seeds = {user.username.lower(): user for user in config.users}
        self._users: dict[str, User] = {}
        self._by_id: dict[str, str] = {}
        self.challenges: dict[str, Challenge] = {}
        #: oldest first; beyond ``max_refresh_tokens`` the oldest goes (O(1) ``popitem``).
        self.refresh_tokens: OrderedDict[str, RefreshGrant] = OrderedDict()
        self._inbox: dict[str, deque[Message]] = {}
        #: username -> ids of its push challenges (pruned lazily).
        self._pushes: dict[str, list[str]] = {}
        self.push_policy = PushPolicy()
        self.user_push_policy: dict[str, PushPolicy] = {}
        self.failed_codes = BucketMap(limits.failed_codes)
        self.failed_recovery = BucketMap(limits.recovery_codes)
        self.polling = BucketMap(limits.push_polling)
        self.sms_sends = BucketMap(limits.sms_sends)
        self.email_sends = BucketMap(limits.email_sends)
        self.push_sends = BucketMap(limits.push_sends)
        self.userinfo_calls = BucketMap(limits.userinfo) if limits.userinfo else None
        #: (ip, username) -> [consecutive failures, blocked until, last failure]
        self.login_failures: dict[tuple[str, str], list[float]] = {}

    # -- users ---------------------------------------------------------------------------

    def user(self, username: str) -> User | None:
        """The user called ``username`` (case-insensitive), materialized on first use."""
        key = username.lower()
        user = self._users.get(key)
        if user is not None:
            return user
        seed = self._seeds.get(key)
        if seed is None:
            for population in self.config.populations:
                n = population.number(username)
                if n is not None:
                    seed = population.user(n)
                    break
            else:
                return None
        user = self._users[key] = self._materialize(seed)
        self._by_id[user.user_id] = key
        return user

    def user_by_id(self, user_id: str) -> User | None:
        """A materialized user by its ``sub``."""
        key = self._by_id.get(user_id)
        return None if key is None else self._users.get(key)

    def _materialize(self, seed: UserConfig) -> User:
        user = User(seed)
        enabled = self.settings.factors
        phones: set[str] = set()
        name = seed.username.lower()
        for i, factor in enumerate(seed.factors):
            suffix = seeded_device_id(name, factor.type, str(i))
            if factor.type in ("otp", "push"):
                secret = factor.secret or pyotp.random_base32(32)
                if factor.type == "push":
                    push = user.add(Authenticator(factor="push", suffix=suffix, active=True))
                    twin = user.add(
                        Authenticator(
                            factor="otp",
                            suffix=seeded_device_id(name, "push-twin", str(i)),
                            active=True,
                            secret=secret,
                        )
                    )
                    push.twin_id, twin.twin_id = twin.id, push.id
                else:
                    user.add(Authenticator(factor="otp", suffix=suffix, active=True, secret=secret))
            elif factor.type in ("sms", "voice"):
                phone = factor.phone_number or seed.phone_number or ""
                if phone in phones:
                    continue
                phones.add(phone)
                self._add_phone_pair(user, factor.type, suffix, phone, active=True)
            else:
                email = factor.email or user.email
                user.add(Authenticator(factor="email", suffix=suffix, active=True, email=email))
        if (
            self.settings.implicit_email_authenticator
            and "email" in enabled
            and user.email
            and not any(
                a.factor == "email" and a.email == user.email for a in user.authenticators.values()
            )
        ):
            user.add(
                Authenticator(
                    factor="email",
                    suffix=seeded_device_id(name, "implicit-email"),
                    active=True,
                    email=user.email,
                    implicit=True,
                )
            )
        if seed.factors or seed.recovery_code:
            user.enrolled_ever = True
            if seed.recovery_code or self.settings.recovery_codes:
                user.recovery_code = seed.recovery_code or random_recovery_code()
                user.add(
                    Authenticator(
                        factor="recovery-code",
                        suffix=seeded_device_id(name, "recovery-code"),
                        active=True,
                    )
                )
        return user

    def _add_phone_pair(
        self, user: User, factor: str, suffix: str, phone: str, *, active: bool
    ) -> Authenticator:
        main = user.add(
            Authenticator(factor=factor, suffix=suffix, active=active, phone_number=phone)
        )
        other = "voice" if factor == "sms" else "sms"
        if other in self.settings.factors:
            twin = user.add(
                Authenticator(factor=other, suffix=suffix, active=active, phone_number=phone)
            )
            main.twin_id, twin.twin_id = twin.id, main.id
        return main

    def new_authenticator(
        self, user: User, factor: str, *, phone_number: str | None = None, email: str | None = None
    ) -> Authenticator:
        """Enroll an inactive authenticator (with its twin: push/otp, sms/voice)."""
        suffix = device_id()
        if factor in ("sms", "voice"):
            return self._add_phone_pair(user, factor, suffix, phone_number or "", active=False)
        if factor == "otp":
            return user.add(
                Authenticator(
                    factor="otp", suffix=suffix, active=False, secret=pyotp.random_base32(32)
                )
            )
        if factor == "push":
            push = user.add(Authenticator(factor="push", suffix=suffix, active=False))
            twin = user.add(
                Authenticator(
                    factor="otp", suffix=device_id(), active=False, secret=pyotp.random_base32(32)
                )
            )
            push.twin_id, twin.twin_id = twin.id, push.id
            return push
        return user.add(Authenticator(factor="email", suffix=suffix, active=False, email=email))

    def new_recovery_authenticator(self, user: User) -> Authenticator:
        """The user's ``recovery-code|…`` authenticator, created inactive if missing."""
        existing = user.recovery_authenticator()
        if existing is not None:
            return existing
        return user.add(Authenticator(factor="recovery-code", suffix=device_id(), active=False))

    def activate(self, user: User, authenticator: Authenticator) -> None:
        """Confirm an enrollment: the authenticator, its twin and the recovery code."""
        authenticator.active = True
        if authenticator.twin_id and authenticator.twin_id in user.authenticators:
            user.authenticators[authenticator.twin_id].active = True
        recovery = user.recovery_authenticator()
        if recovery is not None:
            recovery.active = True
        for ids in user.pending.values():
            if authenticator.id in ids:
                ids.remove(authenticator.id)
        user.pending = {k: v for k, v in user.pending.items() if v}

    def delete_authenticator(self, user: User, authenticator_id: str) -> list[str]:
        """Delete an authenticator and its twin; returns the ids removed."""
        authenticator = user.authenticators.pop(authenticator_id)
        removed = [authenticator.id]
        if authenticator.twin_id and authenticator.twin_id in user.authenticators:
            user.authenticators.pop(authenticator.twin_id)
            removed.append(authenticator.twin_id)
        if authenticator.factor == "recovery-code":
            user.recovery_code = None
        for ids in user.pending.values():
            ids[:] = [i for i in ids if i not in removed]
        return removed

    # -- codes and push ------------------------------------------------------------------

    def deliver(self, user: User, channel: str, to: str, code: str) -> None:
        """Put a message in the user's inbox."""
        box = self._inbox.get(user.username.lower())
        if box is None:
            box = self._inbox[user.username.lower()] = deque(maxlen=self.settings.inbox_size)
        box.append(Message(channel=channel, to=to, code=code, sent_at=self.clock.time()))

    def inbox(self, username: str, channel: str | None = None) -> list[Message]:
        """Messages sent to ``username``, oldest first (optionally one channel only)."""
        box = self._inbox.get(username.lower(), ())
        return [m for m in box if channel is None or m.channel == channel]

    def add_challenge(self, challenge: Challenge) -> Challenge:
        """Register an oob challenge; a push gets the push policy in force."""
        if challenge.is_push:
            policy = self.user_push_policy.get(challenge.username.lower(), self.push_policy)
            if policy.mode in ("approve", "reject"):
                challenge.answer = "approved" if policy.mode == "approve" else "rejected"
                challenge.answer_at = self.clock.time() + policy.after_ms / 1000.0
            self._pushes.setdefault(challenge.username.lower(), []).append(challenge.id)
        self.challenges[challenge.id] = challenge
        return challenge

    def push_state(self, challenge: Challenge, now: float) -> str:
        """The push's state, after applying a due automatic answer."""
        if (
            challenge.state == "pending"
            and challenge.answer is not None
            and challenge.answer_at is not None
            and now >= challenge.answer_at
        ):
            challenge.state = challenge.answer
        return challenge.state

    def _answer_push(self, username: str, answer: str) -> int:
        now = self.clock.time()
        ids = self._pushes.get(username.lower(), [])
        ids[:] = [i for i in ids if i in self.challenges]
        answered = 0
        for challenge_id in ids:
            challenge = self.challenges[challenge_id]
            if challenge.expires_at > now and self.push_state(challenge, now) == "pending":
                challenge.state = answer
                answered += 1
        return answered

    def approve_push(self, username: str) -> int:
        """Approve every pending push (or push enrollment) of ``username``; returns how many."""
        return self._answer_push(username, "approved")

    def reject_push(self, username: str) -> int:
        """Reject every pending push of ``username``; returns how many."""
        return self._answer_push(username, "rejected")

    def set_push_policy(self, mode: str, after_ms: int = 0, username: str | None = None) -> None:
        """Answer future pushes automatically (``approve``/``reject`` after ``after_ms``)."""
        if mode not in PUSH_MODES:
            raise ValueError(f"mode must be one of {', '.join(PUSH_MODES)}")
        if after_ms < 0:
            raise ValueError("after_ms must be >= 0")
        policy = PushPolicy(mode=mode, after_ms=after_ms)
        if username is None:
            self.push_policy = policy
            self.user_push_policy.clear()
        else:
            self.user_push_policy[username.lower()] = policy

    # -- login failures (brute-force protection) -------------------------------------------

    def is_blocked(self, ip: str, username: str, now: float) -> bool:
        """Whether brute-force protection blocks ``username`` from ``ip``."""
        entry = self.login_failures.get((ip, username.lower()))
        return entry is not None and entry[1] > now

    def record_login(self, ip: str, username: str, *, success: bool, now: float) -> bool:
        """Count a login; returns True when this failure triggers the block."""
        key = (ip, username.lower())
        if success:
            self.login_failures.pop(key, None)
            return False
        limits = self.settings.limits
        entry = self.login_failures.get(key)
        if entry is None:
            entry = self.login_failures[key] = [0.0, 0.0, now]
        entry[0] += 1
        entry[2] = now
        if limits.brute_force_threshold and entry[0] >= limits.brute_force_threshold:
            entry[1] = now + limits.brute_force_block
            entry[0] = 0.0
            return True
        return False

    # -- sweeping ------------------------------------------------------------------------

    def sweep(self) -> dict[str, int]:
        """Forget expired challenges, refresh tokens, blocks, full buckets and old messages."""
        now = self.clock.time()
        expired = [k for k, c in self.challenges.items() if c.expires_at <= now]
        for key in expired:
            del self.challenges[key]
        for user_key in list(self._pushes):
            ids = [i for i in self._pushes[user_key] if i in self.challenges]
            if ids:
                self._pushes[user_key] = ids
            else:
                del self._pushes[user_key]
        dead_refresh = [k for k, g in self.refresh_tokens.items() if g.expires_at <= now]
        for key in dead_refresh:
            del self.refresh_tokens[key]
        block = self.settings.limits.brute_force_block
        stale = [k for k, e in self.login_failures.items() if e[1] <= now and e[2] + block <= now]
        for pair in stale:
            del self.login_failures[pair]
        horizon = now - max(self.settings.lifetimes.code, 3600.0)
        messages = 0
        for key in list(self._inbox):
            box = self._inbox[key]
            while box and box[0].sent_at < horizon:
                box.popleft()
                messages += 1
            if not box:
                del self._inbox[key]
        buckets = sum(
            b.sweep(now)
            for b in (
                self.failed_codes,
                self.failed_recovery,
                self.polling,
                self.sms_sends,
                self.email_sends,
                self.push_sends,
                self.userinfo_calls,
            )
            if b is not None
        )
        return {
            "challenges": len(expired),
            "refresh_tokens": len(dead_refresh),
            "login_failures": len(stale),
            "messages": messages,
            "buckets": buckets,
        }
