"""Reading the ``users:`` of a scenario or a journey into a :class:`UserSource`."""

from __future__ import annotations

import re
import string
from typing import Any

from flowengine.spec._read import Reader, describe, item_path, key_path
from flowengine.spec.hooks import known_factors
from flowengine.spec.users import (
    EMAIL,
    MAX_USERS,
    PHONE,
    CsvUsers,
    ListedUsers,
    PatternUsers,
    UserSource,
    UserSpec,
    csv_error,
    read_csv,
)

__all__ = ["parse_users"]

_SPEC = re.compile(r"0?[0-9]{0,2}d?\Z")
"""Format specs allowed after ``{n:``: a width and zero padding (decimal, as the emulator)."""


def _load_csv(r: Reader, value: Any, path: str) -> CsvUsers:
    file = r.file(value, path, what="a CSV file name")
    seen: dict[str, int] = {}
    for line, user in read_csv(file):
        first = seen.setdefault(user.username, line)
        if first != line:
            raise csv_error(
                file,
                f"line {line}, column 1 (username)",
                f"duplicate username (first on line {first})",
            )
    if not seen:
        raise csv_error(file, "", "no users after the header line")
    if len(seen) > MAX_USERS:
        raise csv_error(file, "", f"more than {MAX_USERS} users")
    return CsvUsers(path=file, count=len(seen))


def _template(
    r: Reader, value: Any, path: str, *, what: str, secret: bool = False
) -> tuple[str, int]:
    """A ``{n}`` template (expanded, braces from the environment escaped), and its count of n."""
    text = r.string(value, path, what=what, secret=secret, literal_braces=True)
    uses_n = 0
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        raise r.error(path, "unbalanced '{' or '}' (write {{ and }} for literal braces)") from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field != "n" or conversion is not None or not _SPEC.match(spec or ""):
            shown = "" if secret else " " + repr("{" + field + (f":{spec}" if spec else "") + "}")
            raise r.error(
                path,
                f"unsupported placeholder{shown}; use {{n}} or {{n:07d}}"
                " (write {{ and }} for literal braces)",
            )
        uses_n += 1
    return text, uses_n


_PATTERN_KEYS = ("count", "email", "password", "pattern", "phone", "start")


def _pattern_users(r: Reader, data: dict[str, Any], path: str) -> PatternUsers:
    r.check_keys(data, path, _PATTERN_KEYS, required=("pattern", "password", "count"))
    count = r.integer(
        data["count"],
        key_path(path, "count"),
        what=f"a number of users from 1 to {MAX_USERS}",
        minimum=1,
        maximum=MAX_USERS,
    )
    start = r.integer(
        data.get("start", 1),
        key_path(path, "start"),
        what="a whole number (the first user's n)",
        minimum=0,
        maximum=10**15,
    )
    pattern, uses_n = _template(
        r, data["pattern"], key_path(path, "pattern"), what="a username pattern"
    )
    if uses_n != 1:
        raise r.error(
            key_path(path, "pattern"), "must contain {n} exactly once (the user's number)"
        )
    password, _ = _template(
        r, data["password"], key_path(path, "password"), what="a password", secret=True
    )
    phone = email = None
    if data.get("phone") is not None:
        phone, _ = _template(r, data["phone"], key_path(path, "phone"), what="a phone pattern")
    if data.get("email") is not None:
        email, _ = _template(r, data["email"], key_path(path, "email"), what="an email pattern")
    users = PatternUsers(
        pattern=pattern, password=password, count=count, start=start, phone=phone, email=email
    )
    for n in {start, start + count - 1}:
        user = users.user(n)
        if not user.username.strip():
            raise r.error(key_path(path, "pattern"), f"gives an empty username for n={n}")
        if user.phone is not None and not PHONE.match(user.phone):
            raise r.error(
                key_path(path, "phone"),
                f"gives {user.phone!r} for n={n}; expected an E.164 number like +15550000001",
            )
        if user.email is not None and not EMAIL.match(user.email):
            raise r.error(
                key_path(path, "email"),
                f"gives {user.email!r} for n={n}; expected an email address",
            )
    return users


def _listed_user(
    r: Reader, value: Any, path: str, *, password: str | None, population: UserSource | None
) -> UserSpec:
    if isinstance(value, str):
        username = r.string(value, path, what="a username")
        if password is not None:
            return UserSpec(username=username, password=password)
        found = population.find(username) if population is not None else None
        if found is None:
            raise r.error(path, f"{describe(value)} is not in the population; give a password")
        return found
    data = r.mapping(value, path, what="a username or a mapping with username and password")
    r.check_keys(
        data, path, ("email", "factor", "password", "phone", "username"), required=("username",)
    )
    username = r.string(data["username"], key_path(path, "username"), what="a username")
    if "password" in data:
        password = r.string(
            data["password"], key_path(path, "password"), what="a password", secret=True
        )
    elif password is None:
        found = population.find(username) if population is not None else None
        if found is None:
            raise r.error(
                path, f"{describe(data['username'])} is not in the population; give a password"
            )
        password = found.password
    phone = r.optional_string(data.get("phone"), key_path(path, "phone"), what="a phone number")
    if phone is not None and not PHONE.match(phone):
        raise r.error(key_path(path, "phone"), "expected an E.164 phone number like +15550000001")
    email = r.optional_string(data.get("email"), key_path(path, "email"), what="an email address")
    if email is not None and not EMAIL.match(email):
        raise r.error(key_path(path, "email"), "expected an email address")
    factor = None
    if data.get("factor") is not None:
        factor = r.choice(data["factor"], key_path(path, "factor"), known_factors(), what="factor")
    return UserSpec(
        username=username, password=password, phone=phone, email=email, factor_hint=factor
    )


def parse_users(
    r: Reader,
    value: Any,
    path: str,
    *,
    population: UserSource | None = None,
    password: Any = None,
    password_path: str = "",
) -> UserSource:
    """Users from a pattern mapping, ``{csv: file}``, ``{from: population}`` or a list.

    ``population`` answers ``{from: population}`` and listed users without a password;
    ``password`` (raw, at ``password_path``) is the password of listed users.
    """
    if isinstance(value, list):
        if not value:
            raise r.error(path, "expected at least one user, got an empty list")
        fixed = None
        if password is not None:
            fixed = r.string(password, password_path, what="a password", secret=True)
        users = tuple(
            _listed_user(r, item, item_path(path, index), password=fixed, population=population)
            for index, item in enumerate(value)
        )
        seen: set[str] = set()
        for index, user in enumerate(users):
            if user.username in seen:
                item = value[index]
                raw = item.get("username") if isinstance(item, dict) else item
                raise r.error(item_path(path, index), f"{describe(raw)} is listed twice")
            seen.add(user.username)
        return ListedUsers(users=users)
    what = "a mapping (pattern, password, count), {csv: file} or a list of users"
    if population is not None:
        what = (
            "a mapping (pattern, password, count), {from: population, count: N} or a list of users"
        )
    data = r.mapping(value, path, what=what)
    if password is not None:
        raise r.error(password_path, "applies only to a list of users; put the password in users")
    if "csv" in data:
        r.check_keys(data, path, ("csv",))
        return _load_csv(r, data["csv"], key_path(path, "csv"))
    if "from" in data:
        if population is None:
            raise r.error(key_path(path, "from"), "there is no population here to take users from")
        r.check_keys(data, path, ("count", "from", "skip"), required=("count",))
        r.choice(data["from"], key_path(path, "from"), ("population",), what="user source")
        skip = r.integer(
            data.get("skip", 0),
            key_path(path, "skip"),
            what="a number of users to skip",
            minimum=0,
            maximum=MAX_USERS,
        )
        count = r.integer(
            data["count"],
            key_path(path, "count"),
            what="a positive number of users",
            minimum=1,
            maximum=MAX_USERS,
        )
        if skip + count > population.count:
            raise r.error(
                key_path(path, "count"),
                f"asks for users {skip + 1}..{skip + count}; the population has {population.count}",
            )
        return population.window(skip, count)
    if "pattern" not in data:
        extra = ("csv", "from", "skip") if population is not None else ("csv",)
        r.check_keys(data, path, (*_PATTERN_KEYS, *extra))
        sources = "'pattern', 'csv' or 'from'" if population is not None else "'pattern' or 'csv'"
        raise r.error(path, f"missing {sources} (where the users come from)")
    return _pattern_users(r, data, path)
