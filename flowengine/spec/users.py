"""Who logs in: a generated population, a CSV file or a list; read lazily, split into shards.

A :class:`UserSource` has a fixed order, a ``count``, and yields :class:`UserSpec` one at a
time: a population of a million users is never held in memory. ``partition(n)`` splits it
into ``n`` contiguous, disjoint sources that together hold every user once (the scale-out
work gives one to each worker).
"""

from __future__ import annotations

import abc
import contextlib
import csv
import re
import string
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import attrs

from flowengine.errors import ScenarioError
from flowengine.spec._read import Reader, describe, did_you_mean, item_path, key_path
from flowengine.spec.hooks import known_factors

__all__ = [
    "CSV_COLUMNS",
    "CsvUsers",
    "ListedUsers",
    "PatternUsers",
    "UserSource",
    "UserSpec",
    "parse_users",
]

CSV_COLUMNS = ("username", "password", "phone", "email", "factor")
"""The columns a users CSV may have; the header line names them, in any order."""
MAX_USERS = 1_000_000_000
"""The largest population accepted."""

_PHONE = re.compile(r"\+[1-9][0-9]{6,14}\Z")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\Z")
_SPEC = re.compile(r"0?[0-9]{0,2}[dxX]?\Z")


@attrs.frozen(kw_only=True, slots=True)
class UserSpec:
    """One user to log in. Its repr shows no password."""

    username: str
    password: str = attrs.field(repr=False)
    phone: str | None = None
    """E.164 number for the sms and voice factors."""
    email: str | None = None
    """Address for the email factor (None: the runner may use the username)."""
    factor_hint: str | None = None
    """The factor this user should use, overriding the scenario's mix."""


class UserSource(abc.ABC):
    """Users in a fixed order: counted, iterated lazily, windowed and split into shards."""

    @property
    @abc.abstractmethod
    def count(self) -> int:
        """How many users there are."""

    @abc.abstractmethod
    def iter_users(self) -> Iterator[UserSpec]:
        """Yield every user, in order, one at a time."""

    @abc.abstractmethod
    def window(self, skip: int, count: int) -> UserSource:
        """The ``count`` users after the first ``skip`` ones."""

    @abc.abstractmethod
    def find(self, username: str) -> UserSpec | None:
        """The user named ``username``, or None."""

    def __len__(self) -> int:
        return self.count

    def partition(self, n_shards: int) -> list[UserSource]:
        """Exactly ``n_shards`` contiguous, disjoint sources holding every user once.

        Sizes differ by at most one; some are empty when there are fewer users than shards.
        """
        if n_shards < 1:
            raise ValueError(f"n_shards must be at least 1, got {n_shards}")
        size, extra = divmod(self.count, n_shards)
        shards: list[UserSource] = []
        skip = 0
        for index in range(n_shards):
            count = size + (1 if index < extra else 0)
            shards.append(self.window(skip, count))
            skip += count
        return shards

    def _check_window(self, skip: int, count: int) -> None:
        if skip < 0 or count < 0 or skip + count > self.count:
            raise ValueError(f"window({skip}, {count}) is outside 0..{self.count}")


def _format(template: str, n: int) -> str:
    return template.format(n=n)


def _match(template: str, username: str) -> Iterator[int]:
    """The numbers ``n`` that could have produced ``username`` from ``template``."""
    regex = "".join(
        re.escape(literal) + ("" if field is None else "([0-9A-Fa-f]+)")
        for literal, field, _, _ in string.Formatter().parse(template)
    )
    found = re.fullmatch(regex, username)
    if found is None:
        return
    for base in (10, 16):
        numbers = set()
        for group in found.groups():
            try:
                numbers.add(int(group, base))
            except ValueError:
                break
        else:
            if len(numbers) == 1:
                yield numbers.pop()


@attrs.frozen(kw_only=True)
class PatternUsers(UserSource):
    """A generated population: user ``n`` for ``n`` in ``start .. start + count - 1``."""

    pattern: str
    """Username template with ``{n}``, e.g. ``user{n}@example.test`` or ``u{n:05d}``."""
    password: str = attrs.field(repr=False)
    """Password template; ``{n}`` optional (``Passw0rd!{n}``), ``{{`` for a literal brace."""
    count: int
    """How many users."""
    start: int = 1
    """The first user's number."""
    phone: str | None = None
    """Phone template, e.g. ``+1555{n:07d}``."""
    email: str | None = None
    """Email template, e.g. ``user{n}@example.test``."""

    def user(self, n: int) -> UserSpec:
        """User number ``n``."""
        return UserSpec(
            username=_format(self.pattern, n),
            password=_format(self.password, n),
            phone=None if self.phone is None else _format(self.phone, n),
            email=None if self.email is None else _format(self.email, n),
        )

    def iter_users(self) -> Iterator[UserSpec]:
        for n in range(self.start, self.start + self.count):
            yield self.user(n)

    def window(self, skip: int, count: int) -> PatternUsers:
        self._check_window(skip, count)
        return attrs.evolve(self, start=self.start + skip, count=count)

    def find(self, username: str) -> UserSpec | None:
        for n in _match(self.pattern, username):
            if self.start <= n < self.start + self.count and _format(self.pattern, n) == username:
                return self.user(n)
        return None


@attrs.frozen(kw_only=True)
class ListedUsers(UserSource):
    """Users listed one by one in the scenario file."""

    users: tuple[UserSpec, ...] = ()

    @property
    def count(self) -> int:
        return len(self.users)

    def iter_users(self) -> Iterator[UserSpec]:
        return iter(self.users)

    def window(self, skip: int, count: int) -> ListedUsers:
        self._check_window(skip, count)
        return ListedUsers(users=self.users[skip : skip + count])

    def find(self, username: str) -> UserSpec | None:
        return next((user for user in self.users if user.username == username), None)


@attrs.frozen(kw_only=True)
class CsvUsers(UserSource):
    """Users read from a CSV file with a header line; re-read on each iteration."""

    path: Path
    """The file, resolved against the scenario file's directory."""
    count: int
    """How many users this source yields."""
    skip: int = 0
    """Data rows skipped before the first one yielded."""

    def iter_users(self) -> Iterator[UserSpec]:
        if self.count == 0:
            return
        with contextlib.closing(_read_csv(self.path)) as rows:
            for index, (_, user) in enumerate(rows):
                if index >= self.skip + self.count:
                    return
                if index >= self.skip:
                    yield user

    def window(self, skip: int, count: int) -> CsvUsers:
        self._check_window(skip, count)
        return attrs.evolve(self, skip=self.skip + skip, count=count)

    def find(self, username: str) -> UserSpec | None:
        return next((user for user in self.iter_users() if user.username == username), None)


def _csv_error(path: Path, where: str, message: str) -> ScenarioError:
    return ScenarioError(message, source=str(path), path=where)


def _read_csv(path: Path) -> Generator[tuple[int, UserSpec], None, None]:
    """(line, user) for each data row; ScenarioError names the file, line and column."""
    factors = known_factors()
    line = 0
    try:
        with path.open(encoding="utf-8-sig", errors="strict", newline="") as text:
            reader = csv.reader(text, strict=True)
            header: list[str] | None = None
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header = _header(path, line, row)
                    continue
                yield line, _row(path, line, header, row, factors)
            if header is None:
                raise _csv_error(
                    path,
                    "line 1",
                    "empty file; expected a header line such as 'username,password,phone'",
                )
    except OSError as exc:
        raise _csv_error(path, "", f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _csv_error(path, f"line {line + 1}", "not UTF-8 text") from None
    except csv.Error as exc:
        raise _csv_error(path, f"line {line + 1}", f"malformed CSV: {exc}") from None


def _header(path: Path, line: int, row: list[str]) -> list[str]:
    header = [cell.strip().lower() for cell in row]
    for column, name in enumerate(header, 1):
        if name not in CSV_COLUMNS:
            hint = did_you_mean(name, CSV_COLUMNS)
            if column == 1 and not hint:
                # Not a header at all: the line may hold a password, so show none of it.
                raise _csv_error(
                    path,
                    f"line {line}",
                    "expected a header line naming the columns, such as 'username,password,phone'",
                )
            hint = hint or f"; expected {', '.join(CSV_COLUMNS)}"
            raise _csv_error(
                path, f"line {line}, column {column}", f"unknown column {describe(name)}{hint}"
            )
        if header.index(name) != column - 1:
            raise _csv_error(
                path, f"line {line}, column {column}", f"column {name!r} appears twice"
            )
    for name in ("username", "password"):
        if name not in header:
            raise _csv_error(path, f"line {line}", f"the header has no {name!r} column")
    return header


def _row(
    path: Path, line: int, header: list[str], row: list[str], factors: tuple[str, ...]
) -> UserSpec:
    if len(row) != len(header):
        raise _csv_error(
            path,
            f"line {line}",
            f"expected {len(header)} columns ({','.join(header)}), got {len(row)}",
        )
    cells = dict(zip(header, row, strict=True))

    def where(name: str) -> str:
        return f"line {line}, column {header.index(name) + 1} ({name})"

    username = cells["username"]
    if not username.strip():
        raise _csv_error(path, where("username"), "empty username")
    if username != username.strip():
        raise _csv_error(path, where("username"), "the username has spaces around it")
    if not cells["password"]:
        raise _csv_error(path, where("password"), "empty password")
    phone = cells.get("phone", "").strip() or None
    if phone is not None and not _PHONE.match(phone):
        raise _csv_error(path, where("phone"), "expected an E.164 phone number like +15550000001")
    email = cells.get("email", "").strip() or None
    if email is not None and not _EMAIL.match(email):
        raise _csv_error(path, where("email"), "expected an email address")
    factor = cells.get("factor", "").strip() or None
    if factor is not None and factor not in factors:
        raise _csv_error(
            path,
            where("factor"),
            f"unknown factor {describe(factor)}; expected one of {', '.join(factors)}",
        )
    return UserSpec(
        username=username, password=cells["password"], phone=phone, email=email, factor_hint=factor
    )


def _load_csv(r: Reader, value: Any, path: str) -> CsvUsers:
    file = r.file(value, path, what="a CSV file name")
    seen: dict[str, int] = {}
    for line, user in _read_csv(file):
        first = seen.setdefault(user.username, line)
        if first != line:
            raise _csv_error(
                file,
                f"line {line}, column 1 (username)",
                f"duplicate username (first on line {first})",
            )
    if not seen:
        raise _csv_error(file, "", "no users after the header line")
    if len(seen) > MAX_USERS:
        raise _csv_error(file, "", f"more than {MAX_USERS} users")
    return CsvUsers(path=file, count=len(seen))


def _template(
    r: Reader, value: Any, path: str, *, what: str, secret: bool = False
) -> tuple[str, bool]:
    """A ``{n}`` template (expanded, braces from the environment escaped), and whether it uses n."""
    text = r.string(value, path, what=what, secret=secret, literal_braces=True)
    uses_n = False
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        raise r.error(path, "unbalanced '{' or '}' (write {{ and }} for literal braces)") from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field != "n" or conversion is not None or not _SPEC.match(spec or ""):
            shown = (
                "a placeholder"
                if secret
                else repr("{" + field + (f":{spec}" if spec else "") + "}")
            )
            raise r.error(
                path,
                f"unsupported {shown}; use {{n}}, {{n:07d}} or {{n:x}}"
                " (write {{ and }} for literal braces)",
            )
        uses_n = True
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
    if count > 1 and not uses_n:
        raise r.error(
            key_path(path, "pattern"), "must contain {n}, or every user would have the same name"
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
        if user.phone is not None and not _PHONE.match(user.phone):
            raise r.error(
                key_path(path, "phone"),
                f"gives {user.phone!r} for n={n}; expected an E.164 number like +15550000001",
            )
        if user.email is not None and not _EMAIL.match(user.email):
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
    if phone is not None and not _PHONE.match(phone):
        raise r.error(key_path(path, "phone"), "expected an E.164 phone number like +15550000001")
    email = r.optional_string(data.get("email"), key_path(path, "email"), what="an email address")
    if email is not None and not _EMAIL.match(email):
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
        keys = ("count", "csv", "from", "password", "pattern", "phone", "start")
        r.check_keys(data, path, keys if population is not None else (*_PATTERN_KEYS, "csv"))
        raise r.error(path, f"expected {what}")
    return _pattern_users(r, data, path)
