"""The emulated tenant: clients, APIs, users, a generated population and settings.

Every class is an attrs frozen, keyword-only value. :meth:`EmulatorConfig.default` is the
documented default tenant; :func:`flowengine.emulator.tenant.load_tenant` reads a YAML file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import attrs

from flowengine.emulator.faults import Faults

__all__ = [
    "ALL_GRANTS",
    "ApiConfig",
    "AuthMethod",
    "BucketLimit",
    "ClientConfig",
    "EmulatorConfig",
    "ErrorChoices",
    "FACTORS",
    "FactorSeed",
    "GRANT_MFA_OOB",
    "GRANT_MFA_OTP",
    "GRANT_MFA_RECOVERY_CODE",
    "GRANT_PASSWORD",
    "GRANT_PASSWORD_REALM",
    "GRANT_REFRESH_TOKEN",
    "Lifetimes",
    "Limits",
    "PopulationConfig",
    "Settings",
    "UserConfig",
]

GRANT_PASSWORD = "password"
GRANT_PASSWORD_REALM = "http://auth0.com/oauth/grant-type/password-realm"
GRANT_MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp"
GRANT_MFA_OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
GRANT_MFA_RECOVERY_CODE = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
GRANT_REFRESH_TOKEN = "refresh_token"
ALL_GRANTS = frozenset(
    {
        GRANT_PASSWORD,
        GRANT_PASSWORD_REALM,
        GRANT_MFA_OTP,
        GRANT_MFA_OOB,
        GRANT_MFA_RECOVERY_CODE,
        GRANT_REFRESH_TOKEN,
    }
)

#: Factors a user can enroll (recovery codes are a tenant switch, not a factor here).
FACTORS = ("otp", "sms", "voice", "email", "push")

AuthMethod = Literal["client_secret_post", "client_secret_basic", "none"]


@attrs.frozen(kw_only=True)
class BucketLimit:
    """A token bucket: ``burst`` at once, then one more every ``refill_every`` seconds."""

    burst: int
    """How many in a row when the bucket is full."""
    refill_every: float
    """Seconds to earn one more."""


@attrs.frozen(kw_only=True)
class ClientConfig:
    """An application of the tenant."""

    client_id: str
    """The ``client_id``."""
    client_secret: str | None = attrs.field(default=None, repr=False)
    """The secret; None for a public client."""
    auth_method: AuthMethod = "client_secret_post"
    """Token endpoint authentication method."""
    grant_types: frozenset[str] = ALL_GRANTS
    """Grant types (full names) this client may use."""
    trust_forwarded_for: bool = False
    """Honour ``auth0-forwarded-for`` (brute-force protection keys on that IP)."""


@attrs.frozen(kw_only=True)
class ApiConfig:
    """A resource server: an audience and its scopes."""

    audience: str
    """The API identifier requested as ``audience``."""
    scopes: tuple[str, ...] = ()
    """Scopes the API defines; all are granted when the request names none of them."""
    allow_offline_access: bool = False
    """Whether ``offline_access`` yields a refresh token."""
    token_lifetime: int = 86400
    """Access token lifetime in seconds."""


@attrs.frozen(kw_only=True)
class FactorSeed:
    """A factor a user has already enrolled (active) when the emulator starts."""

    type: str
    """``otp``, ``sms``, ``voice``, ``email`` or ``push`` (push brings its otp twin)."""
    secret: str | None = attrs.field(default=None, repr=False)
    """Base32 TOTP secret for ``otp``/``push`` (generated when absent)."""
    phone_number: str | None = None
    """Phone for ``sms``/``voice`` (default: the user's)."""
    email: str | None = None
    """Address for ``email`` (default: the user's)."""


@attrs.frozen(kw_only=True)
class UserConfig:
    """One user of the database connection."""

    username: str
    """Login identifier (a username or an email address)."""
    password: str = attrs.field(repr=False)
    """The password, as the client sends it."""
    email: str | None = None
    """Email address (default: ``username`` when it contains ``@``)."""
    phone_number: str | None = None
    """E.164 phone number."""
    user_id: str | None = None
    """``sub`` of the tokens (default: ``auth0|`` + a hash of the username)."""
    factors: tuple[FactorSeed, ...] = ()
    """Factors already enrolled."""
    recovery_code: str | None = attrs.field(default=None, repr=False)
    """A recovery code already issued (24 chars A-Z0-9)."""
    mfa_required: bool | None = None
    """Override the tenant's ``mfa_required`` for this user."""
    blocked: bool = False
    """An administrator blocked the user."""


_PLACEHOLDER = re.compile(r"\{n(?::[^{}]*)?\}")


@attrs.frozen(kw_only=True)
class PopulationConfig:
    """Generated users ``n = start .. start+count-1`` whose fields are ``str.format`` patterns."""

    username: str = "user{n}@example.test"
    """Username pattern with exactly one ``{n}`` (format spec allowed: ``{n:05d}``)."""
    password: str = attrs.field(default="Passw0rd!{n}", repr=False)
    """Password pattern."""
    count: int = 10000
    """How many users."""
    start: int = 1
    """First ``n``."""
    email: str | None = None
    """Email pattern (default: the username when it contains ``@``)."""
    phone_number: str | None = None
    """Phone pattern, e.g. ``+1555{n:07d}``."""
    factors: tuple[FactorSeed, ...] = ()
    """Factors every generated user has enrolled (secrets may be patterns too)."""
    recovery_code: str | None = attrs.field(default=None, repr=False)
    """Recovery code pattern, e.g. ``RC{n:022d}``."""
    mfa_required: bool | None = None
    """Override the tenant's ``mfa_required`` for these users."""
    _regex: re.Pattern[str] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        parts = _PLACEHOLDER.split(self.username)
        if len(parts) != 2:
            raise ValueError("the username pattern needs exactly one {n} placeholder")
        regex = re.compile(f"{re.escape(parts[0])}([0-9]+){re.escape(parts[1])}", re.IGNORECASE)
        object.__setattr__(self, "_regex", regex)

    def number(self, username: str) -> int | None:
        """The ``n`` whose generated username is ``username``, or None."""
        match = self._regex.fullmatch(username)
        if match is None:
            return None
        n = int(match.group(1))
        if not self.start <= n < self.start + self.count:
            return None
        if self.username.format(n=n).lower() != username.lower():
            return None
        return n

    def user(self, n: int) -> UserConfig:
        """The generated user number ``n``."""
        username = self.username.format(n=n)
        if self.email is not None:
            email: str | None = self.email.format(n=n)
        else:
            email = username if "@" in username else None
        return UserConfig(
            username=username,
            password=self.password.format(n=n),
            email=email,
            phone_number=self.phone_number.format(n=n) if self.phone_number else None,
            factors=tuple(
                attrs.evolve(
                    f,
                    secret=f.secret.format(n=n) if f.secret else None,
                    phone_number=f.phone_number.format(n=n) if f.phone_number else None,
                    email=f.email.format(n=n) if f.email else None,
                )
                for f in self.factors
            ),
            recovery_code=self.recovery_code.format(n=n) if self.recovery_code else None,
            mfa_required=self.mfa_required,
        )


@attrs.frozen(kw_only=True)
class Lifetimes:
    """Lifetimes in seconds."""

    mfa_token: float = 600.0
    """``mfa_token`` (reference §11: 10 min [inf], some SDKs assume 5)."""
    code: float = 300.0
    """SMS/voice/email codes and push challenges."""
    push_enrollment: float = 300.0
    """Time to scan a push enrollment QR code."""
    access_token: int = 86400
    """Access tokens without an API of their own (opaque, ``/userinfo`` only)."""
    id_token: int = 36000
    """ID tokens."""
    mfa_api_token: int = 600
    """Access tokens for the ``https://{domain}/mfa/`` audience."""
    refresh_token: float = 2592000.0
    """Refresh tokens (absolute)."""


@attrs.frozen(kw_only=True)
class Limits:
    """Per-user, per-session and global limits (reference §11)."""

    failed_codes: BucketLimit = BucketLimit(burst=10, refill_every=360.0)
    """Wrong OTP/binding codes per user."""
    recovery_codes: BucketLimit = BucketLimit(burst=10, refill_every=360.0)
    """Wrong recovery codes per user."""
    push_polling: BucketLimit = BucketLimit(burst=12, refill_every=5.0)
    """``mfa-oob`` requests per MFA session (beyond: ``slow_down``)."""
    sms_sends: BucketLimit = BucketLimit(burst=10, refill_every=3600.0)
    """SMS and voice messages per user."""
    email_sends: BucketLimit = BucketLimit(burst=20, refill_every=60.0)
    """Emails per user."""
    push_sends: BucketLimit = BucketLimit(burst=5, refill_every=12.0)
    """Push notifications per user."""
    userinfo: BucketLimit | None = BucketLimit(burst=10, refill_every=12.0)
    """``/userinfo`` calls per user (None: unlimited)."""
    brute_force_threshold: int = 10
    """Consecutive failed logins per IP and username before the block (0: off)."""
    brute_force_block: float = 2592000.0
    """How long a brute-force block lasts."""
    global_rate: BucketLimit | None = None
    """Requests per tenant over all endpoints (None: unlimited)."""
    endpoints: Mapping[str, BucketLimit] = attrs.field(factory=dict)
    """Requests per tenant for one path, e.g. ``/oauth/token``."""


@attrs.frozen(kw_only=True)
class ErrorChoices:
    """Statuses and texts the reference could not confirm ([inf]); Auth0 may differ."""

    invalid_code_status: int = 403
    """Status of ``invalid_grant`` for a wrong otp, binding code, oob_code or recovery code."""
    code_lockout_status: int = 429
    """Status once the failed-code (or recovery-code) bucket is empty."""
    code_lockout_error: str = "too_many_attempts"
    """``error`` once the failed-code bucket is empty."""
    code_lockout_description: str = "Too many failed codes. Wait for some minutes before retrying."
    """``error_description`` once the failed-code bucket is empty."""
    slow_down_status: int = 429
    """Status of ``slow_down``."""
    slow_down_description: str = "You are polling faster than allowed. Try again later."
    """``error_description`` of ``slow_down``."""
    send_limit_status: int = 429
    """Status when a user's SMS/voice/email/push sending limit is spent."""
    send_limit_error: str = "too_many_requests"
    """``error`` when a sending limit is spent."""
    send_limit_description: str = "Too many messages sent. Wait for some minutes before retrying."
    """``error_description`` when a sending limit is spent."""
    not_enrolled_error: str = "association_required"
    """``error`` of ``/mfa/challenge`` for a user without an active authenticator."""
    not_enrolled_description: str = (
        "User is not enrolled. You can use /mfa/associate endpoint to enroll the first "
        "authenticator."
    )
    """``error_description`` of ``/mfa/challenge`` for a user without an active authenticator."""
    blocked_user_status: int = 401
    """Status of ``unauthorized`` / ``user is blocked`` on the password grant."""


@attrs.frozen(kw_only=True)
class Settings:
    """Tenant-wide behaviour."""

    friendly_name: str = "flowengine emulator"
    """Tenant name shown in ``barcode_uri`` labels."""
    base_url: str | None = None
    """Advertised base URL (``iss`` is it plus ``/``); None: from the request's Host."""
    connection: str = "Username-Password-Authentication"
    """The database connection (the ``realm`` of password-realm)."""
    default_audience: str | None = None
    """Audience used when a request names none (None: opaque ``/userinfo`` token)."""
    default_scope: str = ""
    """Scope used when a request names none."""
    mfa_required: bool = True
    """Whether every login needs MFA."""
    mfa_requirements: bool = False
    """Add ``mfa_requirements`` to ``mfa_required`` answers."""
    authenticator_type_field: bool = False
    """Add the ``type`` field to authenticators (reference §12.5)."""
    factors: frozenset[str] = frozenset(FACTORS)
    """Enabled factors."""
    recovery_codes: bool = True
    """Issue a recovery code at a user's first enrollment."""
    implicit_email_authenticator: bool = False
    """List a user's email as an active ``email|`` authenticator without enrollment."""
    refresh_token_rotation: bool = False
    """Return a new refresh token from the refresh grant (the old one dies)."""
    challenge_accepts_form: bool = True
    """Accept form bodies at ``/mfa/challenge`` ([inf]: auth0.net sends them)."""
    control_api: bool = False
    """Serve the test-only control API under ``/_emulator/``."""
    max_body_bytes: int = 65536
    """Largest request body accepted."""
    sweep_interval: float = 30.0
    """Seconds between sweeps of expired state."""
    totp_window: int = 1
    """TOTP steps accepted either side of now."""
    inbox_size: int = 100
    """Messages kept per user."""
    max_refresh_tokens: int = 100000
    """Refresh tokens kept; the oldest is forgotten beyond this."""
    lifetimes: Lifetimes = Lifetimes()
    """Lifetimes."""
    limits: Limits = Limits()
    """Limits."""
    errors: ErrorChoices = ErrorChoices()
    """Choices where Auth0's answer is unknown."""


DEFAULT_CLIENTS = (
    ClientConfig(client_id="flowengine", client_secret="flowengine-secret"),
    ClientConfig(client_id="flowengine-public", auth_method="none"),
)
DEFAULT_APIS = (
    ApiConfig(
        audience="https://api.example.test/",
        scopes=("read:data", "write:data"),
        allow_offline_access=True,
    ),
)


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """A whole tenant."""

    clients: tuple[ClientConfig, ...] = DEFAULT_CLIENTS
    """Applications."""
    apis: tuple[ApiConfig, ...] = DEFAULT_APIS
    """Resource servers."""
    users: tuple[UserConfig, ...] = ()
    """Users listed one by one."""
    populations: tuple[PopulationConfig, ...] = ()
    """Generated users."""
    settings: Settings = Settings()
    """Tenant-wide behaviour."""
    faults: Faults = attrs.field(factory=Faults)
    """Injected faults (none by default)."""
    source: str | None = None
    """The tenant file it was read from."""

    @classmethod
    def default(cls) -> EmulatorConfig:
        """The documented default tenant (10,000 users ``user{n}@example.test``)."""
        return cls(populations=(PopulationConfig(),))

    @classmethod
    def from_file(cls, path: str) -> EmulatorConfig:
        """Read a tenant file (see :func:`flowengine.emulator.tenant.load_tenant`)."""
        from flowengine.emulator.tenant import load_tenant

        return load_tenant(path)
