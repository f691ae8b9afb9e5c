"""Read and validate a tenant file (YAML) into an :class:`EmulatorConfig`.

Every problem raises one :class:`TenantFileError` naming the file, the key path (e.g.
``users[2].factors[0].type``) and what was expected. Sections left out keep the default
tenant's clients and APIs, and no users; ``settings`` keys override defaults one by one.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import yaml

from flowengine.emulator.config import (
    ALL_GRANTS,
    DEFAULT_APIS,
    DEFAULT_CLIENTS,
    FACTORS,
    GRANT_MFA_OOB,
    GRANT_MFA_OTP,
    GRANT_MFA_RECOVERY_CODE,
    GRANT_PASSWORD,
    GRANT_PASSWORD_REALM,
    GRANT_REFRESH_TOKEN,
    ApiConfig,
    BucketLimit,
    ClientConfig,
    EmulatorConfig,
    ErrorChoices,
    FactorSeed,
    Lifetimes,
    Limits,
    PopulationConfig,
    Settings,
    UserConfig,
)
from flowengine.emulator.faults import Faults, parse_faults
from flowengine.errors import TenantFileError

__all__ = ["GRANT_ALIASES", "load_tenant", "parse_tenant"]

#: Short names accepted in ``grant_types``.
GRANT_ALIASES = {
    "password": GRANT_PASSWORD,
    "password-realm": GRANT_PASSWORD_REALM,
    "mfa-otp": GRANT_MFA_OTP,
    "mfa-oob": GRANT_MFA_OOB,
    "mfa-recovery-code": GRANT_MFA_RECOVERY_CODE,
    "refresh_token": GRANT_REFRESH_TOKEN,
}
_RECOVERY = re.compile(r"[A-Z0-9]{24}")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
T = TypeVar("T")


class _Reader:
    """Typed access to YAML nodes that reports the key path of any mistake."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, expected: str, value: Any = None) -> TenantFileError:
        got = "" if value is None else f", got {value!r}"
        return TenantFileError(f"expected {expected}{got}", source=self.source, path=path or None)

    def mapping(self, node: Any, path: str, allowed: Any) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            raise self.fail(path, "a mapping", type(node).__name__)
        for key in node:
            if key not in allowed:
                names = ", ".join(sorted(allowed))
                raise self.fail(_join(path, str(key)), f"one of the keys: {names}", None)
        return dict(node)

    def items(self, node: Any, path: str) -> list[Any]:
        if not isinstance(node, list):
            raise self.fail(path, "a list", type(node).__name__)
        return node

    def string(self, node: Any, path: str) -> str:
        if isinstance(node, bool) or not isinstance(node, str | int):
            raise self.fail(path, "a string", node)
        return str(node)

    def boolean(self, node: Any, path: str) -> bool:
        if not isinstance(node, bool):
            raise self.fail(path, "true or false", node)
        return node

    def integer(self, node: Any, path: str, minimum: int = 0) -> int:
        if isinstance(node, bool) or not isinstance(node, int) or node < minimum:
            raise self.fail(path, f"an integer >= {minimum}", node)
        return node

    def number(self, node: Any, path: str, *, positive: bool = True) -> float:
        if isinstance(node, bool) or not isinstance(node, int | float) or (positive and node <= 0):
            raise self.fail(path, "a positive number" if positive else "a number", node)
        return float(node)

    def strings(self, node: Any, path: str) -> tuple[str, ...]:
        if isinstance(node, str):
            return tuple(node.split())
        return tuple(self.string(v, f"{path}[{i}]") for i, v in enumerate(self.items(node, path)))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fields(cls: type[Any]) -> set[str]:
    return {f.alias for f in attrs.fields(cls) if f.init}


def _read_simple(
    reader: _Reader, node: Any, path: str, cls: type[T], convert: Mapping[str, Callable[..., Any]]
) -> T:
    data = reader.mapping(node, path, _fields(cls))
    values = {key: convert[key](value, _join(path, key)) for key, value in data.items()}
    return cls(**values)


def _client(r: _Reader, node: Any, path: str) -> ClientConfig:
    data = r.mapping(node, path, _fields(ClientConfig))
    if "client_id" not in data:
        raise r.fail(_join(path, "client_id"), "a client_id")
    values: dict[str, Any] = {"client_id": r.string(data["client_id"], _join(path, "client_id"))}
    if data.get("client_secret") is not None:
        values["client_secret"] = r.string(data["client_secret"], _join(path, "client_secret"))
    method = data.get(
        "auth_method", "client_secret_post" if values.get("client_secret") else "none"
    )
    if method not in ("client_secret_post", "client_secret_basic", "none"):
        raise r.fail(
            _join(path, "auth_method"), "client_secret_post, client_secret_basic or none", method
        )
    if method != "none" and not values.get("client_secret"):
        raise r.fail(_join(path, "client_secret"), f"a client_secret for auth_method {method}")
    values["auth_method"] = method
    if "grant_types" in data:
        grants: set[str] = set()
        for i, name in enumerate(r.strings(data["grant_types"], _join(path, "grant_types"))):
            if name == "all":
                grants |= ALL_GRANTS
            elif name in GRANT_ALIASES or name in ALL_GRANTS:
                grants.add(GRANT_ALIASES.get(name, name))
            else:
                raise r.fail(
                    f"{_join(path, 'grant_types')}[{i}]",
                    "all, " + ", ".join(GRANT_ALIASES) + " or a full grant type name",
                    name,
                )
        values["grant_types"] = frozenset(grants)
    if "trust_forwarded_for" in data:
        values["trust_forwarded_for"] = r.boolean(
            data["trust_forwarded_for"], _join(path, "trust_forwarded_for")
        )
    return ClientConfig(**values)


def _api(r: _Reader, node: Any, path: str) -> ApiConfig:
    data = r.mapping(node, path, _fields(ApiConfig))
    if "audience" not in data:
        raise r.fail(_join(path, "audience"), "an audience")
    return _read_simple(
        r,
        data,
        path,
        ApiConfig,
        {
            "audience": r.string,
            "scopes": r.strings,
            "allow_offline_access": r.boolean,
            "token_lifetime": lambda v, p: r.integer(v, p, 1),
        },
    )


def _factor(r: _Reader, node: Any, path: str, *, pattern: bool) -> FactorSeed:
    if isinstance(node, str):
        node = {"type": node}
    data = r.mapping(node, path, _fields(FactorSeed))
    kind = data.get("type")
    if kind not in FACTORS:
        raise r.fail(_join(path, "type"), "one of " + ", ".join(FACTORS), kind)
    seed: FactorSeed = _read_simple(
        r,
        data,
        path,
        FactorSeed,
        {"type": r.string, "secret": r.string, "phone_number": r.string, "email": r.string},
    )
    if seed.secret is not None and kind not in ("otp", "push"):
        raise r.fail(_join(path, "secret"), "no secret except for otp and push factors")
    if seed.secret is not None and not (pattern and "{" in seed.secret):
        _check_base32(r, seed.secret, _join(path, "secret"))
    return seed


def _check_base32(r: _Reader, secret: str, path: str) -> None:
    try:
        padded = secret.upper() + "=" * (-len(secret) % 8)
        if len(base64.b32decode(padded)) < 10:
            raise ValueError(secret)
    except (binascii.Error, ValueError):
        raise r.fail(path, "a base32 TOTP secret of at least 16 characters") from None


def _check_user(r: _Reader, user: UserConfig, path: str) -> None:
    if user.recovery_code is not None and not _RECOVERY.fullmatch(user.recovery_code):
        raise r.fail(_join(path, "recovery_code"), "24 characters A-Z and 0-9", user.recovery_code)
    for i, factor in enumerate(user.factors):
        where = f"{path}.factors[{i}]"
        if factor.secret is not None:
            _check_base32(r, factor.secret, _join(where, "secret"))
        if factor.type in ("sms", "voice"):
            phone = factor.phone_number or user.phone_number
            if phone is None or not _PHONE.fullmatch(phone):
                raise r.fail(
                    _join(where, "phone_number"), "an E.164 phone number (here or on the user)"
                )
        if factor.type == "email" and not (factor.email or user.email):
            raise r.fail(_join(where, "email"), "an email address (here or on the user)")


def _user(r: _Reader, node: Any, path: str) -> UserConfig:
    data = r.mapping(node, path, _fields(UserConfig))
    for key in ("username", "password"):
        if key not in data:
            raise r.fail(_join(path, key), f"a {key}")
    user: UserConfig = _read_simple(
        r,
        data,
        path,
        UserConfig,
        {
            "username": r.string,
            "password": r.string,
            "email": r.string,
            "phone_number": r.string,
            "user_id": r.string,
            "factors": lambda v, p: tuple(
                _factor(r, f, f"{p}[{i}]", pattern=False) for i, f in enumerate(r.items(v, p))
            ),
            "recovery_code": r.string,
            "mfa_required": r.boolean,
            "blocked": r.boolean,
        },
    )
    if user.email is None and "@" in user.username:
        user = attrs.evolve(user, email=user.username)
    _check_user(r, user, path)
    return user


def _population(r: _Reader, node: Any, path: str) -> PopulationConfig:
    data = r.mapping(node, path, _fields(PopulationConfig))

    def factors(value: Any, p: str) -> tuple[FactorSeed, ...]:
        return tuple(
            _factor(r, f, f"{p}[{i}]", pattern=True) for i, f in enumerate(r.items(value, p))
        )

    conv: dict[str, Callable[..., Any]] = {
        "username": r.string,
        "password": r.string,
        "email": r.string,
        "phone_number": r.string,
        "recovery_code": r.string,
        "count": r.integer,
        "start": r.integer,
        "mfa_required": r.boolean,
        "factors": factors,
    }
    values = {key: conv[key](value, _join(path, key)) for key, value in data.items()}
    try:
        population = PopulationConfig(**values)
    except ValueError as exc:
        raise r.fail(
            _join(path, "username"), "a pattern with exactly one {n}", data.get("username")
        ) from exc
    if population.count:
        try:
            sample = population.user(population.start)
        except (KeyError, IndexError, ValueError) as exc:
            raise r.fail(path, f"patterns that format with {{n}} only ({exc})") from None
        _check_user(r, sample, f"{path} (user {sample.username})")
    return population


def _bucket(r: _Reader, node: Any, path: str) -> BucketLimit:
    data = r.mapping(node, path, {"burst", "refill_every"})
    if set(data) != {"burst", "refill_every"}:
        raise r.fail(path, "both burst and refill_every")
    return BucketLimit(
        burst=r.integer(data["burst"], _join(path, "burst"), 1),
        refill_every=r.number(data["refill_every"], _join(path, "refill_every")),
    )


def _optional_bucket(r: _Reader, node: Any, path: str) -> BucketLimit | None:
    return None if node is None else _bucket(r, node, path)


def _settings(r: _Reader, node: Any, path: str) -> Settings:
    data = r.mapping(node, path, _fields(Settings))

    def factors(value: Any, p: str) -> frozenset[str]:
        names = r.strings(value, p)
        for i, name in enumerate(names):
            if name not in FACTORS:
                raise r.fail(f"{p}[{i}]", "one of " + ", ".join(FACTORS), name)
        return frozenset(names)

    def optional_string(value: Any, p: str) -> str | None:
        return None if value is None else r.string(value, p)

    def base_url(value: Any, p: str) -> str | None:
        if value is None:
            return None
        text = r.string(value, p).rstrip("/")
        if not re.fullmatch(r"https?://[^/\s]+(/[^\s]*)?", text):
            raise r.fail(p, "an http(s) URL such as https://tenant.example.test", value)
        return text

    def lifetimes(value: Any, p: str) -> Lifetimes:
        conv = {
            f.name: (lambda v, q: r.integer(v, q, 1))
            if f.type in ("int", int)
            else (lambda v, q: r.number(v, q))
            for f in attrs.fields(Lifetimes)
        }
        return _read_simple(r, value, p, Lifetimes, conv)

    def endpoints(value: Any, p: str) -> dict[str, BucketLimit]:
        if not isinstance(value, Mapping):
            raise r.fail(p, "a mapping of path to {burst, refill_every}")
        out = {}
        for key, bucket in value.items():
            name = r.string(key, p)
            if not name.startswith("/"):
                raise r.fail(_join(p, name), "a path starting with /", name)
            out[name] = _bucket(r, bucket, _join(p, name))
        return out

    def limits(value: Any, p: str) -> Limits:
        conv: dict[str, Callable[..., Any]] = {
            "failed_codes": lambda v, q: _bucket(r, v, q),
            "recovery_codes": lambda v, q: _bucket(r, v, q),
            "push_polling": lambda v, q: _bucket(r, v, q),
            "sms_sends": lambda v, q: _bucket(r, v, q),
            "email_sends": lambda v, q: _bucket(r, v, q),
            "push_sends": lambda v, q: _bucket(r, v, q),
            "userinfo": lambda v, q: _optional_bucket(r, v, q),
            "global_rate": lambda v, q: _optional_bucket(r, v, q),
            "brute_force_threshold": r.integer,
            "brute_force_block": lambda v, q: r.number(v, q),
            "endpoints": endpoints,
        }
        return _read_simple(r, value, p, Limits, conv)

    def errors(value: Any, p: str) -> ErrorChoices:
        conv: dict[str, Callable[..., Any]] = {
            f.name: (lambda v, q: _status(r, v, q)) if f.name.endswith("_status") else r.string
            for f in attrs.fields(ErrorChoices)
        }
        return _read_simple(r, value, p, ErrorChoices, conv)

    conv: dict[str, Callable[..., Any]] = {
        "friendly_name": r.string,
        "base_url": base_url,
        "connection": r.string,
        "default_audience": optional_string,
        "default_scope": r.string,
        "mfa_required": r.boolean,
        "mfa_requirements": r.boolean,
        "authenticator_type_field": r.boolean,
        "factors": factors,
        "recovery_codes": r.boolean,
        "implicit_email_authenticator": r.boolean,
        "refresh_token_rotation": r.boolean,
        "challenge_accepts_form": r.boolean,
        "control_api": r.boolean,
        "max_body_bytes": lambda v, q: r.integer(v, q, 1024),
        "sweep_interval": lambda v, q: r.number(v, q),
        "totp_window": r.integer,
        "inbox_size": lambda v, q: r.integer(v, q, 1),
        "max_refresh_tokens": lambda v, q: r.integer(v, q, 1),
        "lifetimes": lifetimes,
        "limits": limits,
        "errors": errors,
    }
    return _read_simple(r, data, path, Settings, conv)


def _status(r: _Reader, value: Any, path: str) -> int:
    status = r.integer(value, path, 400)
    if status > 599:
        raise r.fail(path, "an HTTP error status (400-599)", value)
    return status


def parse_tenant(document: Any, source: str = "<tenant>") -> EmulatorConfig:
    """Validate a parsed YAML document; raises :class:`TenantFileError`."""
    r = _Reader(source)
    if document is None:
        document = {}
    data = r.mapping(document, "", {"clients", "apis", "users", "population", "settings", "faults"})
    clients = (
        tuple(
            _client(r, c, f"clients[{i}]")
            for i, c in enumerate(r.items(data["clients"], "clients"))
        )
        if "clients" in data
        else DEFAULT_CLIENTS
    )
    apis = (
        tuple(_api(r, a, f"apis[{i}]") for i, a in enumerate(r.items(data["apis"], "apis")))
        if "apis" in data
        else DEFAULT_APIS
    )
    users = tuple(
        _user(r, u, f"users[{i}]") for i, u in enumerate(r.items(data.get("users", []), "users"))
    )
    population_node = data.get("population", [])
    if isinstance(population_node, Mapping):
        populations: tuple[PopulationConfig, ...] = (_population(r, population_node, "population"),)
    else:
        populations = tuple(
            _population(r, p, f"population[{i}]")
            for i, p in enumerate(r.items(population_node, "population"))
        )
    settings = _settings(r, data["settings"], "settings") if "settings" in data else Settings()
    faults = parse_faults(data["faults"], r.fail) if data.get("faults") is not None else Faults()
    _check_unique(r, clients, users, settings)
    return EmulatorConfig(
        clients=clients,
        apis=apis,
        users=users,
        populations=populations,
        settings=settings,
        faults=faults,
        source=source,
    )


def _check_unique(
    r: _Reader, clients: tuple[ClientConfig, ...], users: tuple[UserConfig, ...], settings: Settings
) -> None:
    seen: set[str] = set()
    for i, client in enumerate(clients):
        if client.client_id in seen:
            raise r.fail(f"clients[{i}].client_id", "a unique client_id", client.client_id)
        seen.add(client.client_id)
    seen = set()
    for i, user in enumerate(users):
        if user.username.lower() in seen:
            raise r.fail(f"users[{i}].username", "a unique username", user.username)
        seen.add(user.username.lower())
    if settings.default_audience is not None and not settings.default_audience:
        raise r.fail("settings.default_audience", "an API audience or null")


def load_tenant(path: str | Path) -> EmulatorConfig:
    """Read the tenant file at ``path``; raises :class:`TenantFileError`."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TenantFileError(f"cannot read the file ({exc.strerror})", source=source) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise TenantFileError(f"not valid YAML ({exc})", source=source, path=where) from None
    return parse_tenant(document, source)
