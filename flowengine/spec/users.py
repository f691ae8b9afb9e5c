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

import attrs

from flowengine.errors import ScenarioError
from flowengine.spec._read import describe, did_you_mean
from flowengine.spec.hooks import known_factors

__all__ = [
    "CSV_COLUMNS",
    "CsvUsers",
    "EMAIL",
    "ListedUsers",
    "MAX_USERS",
    "PHONE",
    "PatternUsers",
    "UserSource",
    "UserSpec",
    "csv_error",
    "read_csv",
]

CSV_COLUMNS = ("username", "password", "phone", "email", "factor")
"""The columns a users CSV may have; the header line names them, in any order."""
MAX_USERS = 1_000_000_000
"""The largest population accepted."""

PHONE = re.compile(r"\+[1-9][0-9]{6,14}\Z")
"""An E.164 phone number."""
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\Z")
"""Something that looks like an email address."""


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


def _match(template: str, username: str) -> int | None:
    """The number ``n`` that could have produced ``username`` from ``template``, or None."""
    regex = "".join(
        re.escape(literal) + ("" if field is None else "([0-9]+)")
        for literal, field, _, _ in string.Formatter().parse(template)
    )
    found = re.fullmatch(regex, username)
    return None if found is None else int(found.group(1))


@attrs.frozen(kw_only=True)
class PatternUsers(UserSource):
    """A generated population: user ``n`` for ``n`` in ``start .. start + count - 1``."""

    pattern: str
    """Username template with ``{n}`` once, e.g. ``user{n}@example.test`` or ``u{n:05d}``."""
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
        n = _match(self.pattern, username)
        if n is None or not self.start <= n < self.start + self.count:
            return None
        return self.user(n) if _format(self.pattern, n) == username else None


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
        with contextlib.closing(read_csv(self.path)) as rows:
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


def csv_error(path: Path, where: str, message: str) -> ScenarioError:
    """An error in the CSV file ``path`` at ``where`` (``line 4, column 2 (password)``)."""
    return ScenarioError(message, source=str(path), path=where)


def read_csv(path: Path) -> Generator[tuple[int, UserSpec], None, None]:
    """Yield (line, user) for each data row; ScenarioError names the file, line and column."""
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
                raise csv_error(
                    path,
                    "line 1",
                    "empty file; expected a header line such as 'username,password,phone'",
                )
    except OSError as exc:
        raise csv_error(path, "", f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise csv_error(path, f"line {line + 1}", "not UTF-8 text") from None
    except csv.Error as exc:
        raise csv_error(path, f"line {line + 1}", f"malformed CSV: {exc}") from None


def _header(path: Path, line: int, row: list[str]) -> list[str]:
    header = [cell.strip().lower() for cell in row]
    for column, name in enumerate(header, 1):
        if name not in CSV_COLUMNS:
            hint = did_you_mean(name, CSV_COLUMNS)
            if column == 1 and not hint:
                # Not a header at all: the line may hold a password, so show none of it.
                raise csv_error(
                    path,
                    f"line {line}",
                    "expected a header line naming the columns, such as 'username,password,phone'",
                )
            hint = hint or f"; expected {', '.join(CSV_COLUMNS)}"
            raise csv_error(
                path, f"line {line}, column {column}", f"unknown column {describe(name)}{hint}"
            )
        if header.index(name) != column - 1:
            raise csv_error(path, f"line {line}, column {column}", f"column {name!r} appears twice")
    for name in ("username", "password"):
        if name not in header:
            raise csv_error(path, f"line {line}", f"the header has no {name!r} column")
    return header


def _row(
    path: Path, line: int, header: list[str], row: list[str], factors: tuple[str, ...]
) -> UserSpec:
    if len(row) != len(header):
        raise csv_error(
            path,
            f"line {line}",
            f"expected {len(header)} columns ({','.join(header)}), got {len(row)}",
        )
    cells = dict(zip(header, row, strict=True))

    def where(name: str) -> str:
        return f"line {line}, column {header.index(name) + 1} ({name})"

    username = cells["username"]
    if not username.strip():
        raise csv_error(path, where("username"), "empty username")
    if username != username.strip():
        raise csv_error(path, where("username"), "the username has spaces around it")
    if not cells["password"]:
        raise csv_error(path, where("password"), "empty password")
    phone = cells.get("phone", "").strip() or None
    if phone is not None and not PHONE.match(phone):
        raise csv_error(path, where("phone"), "expected an E.164 phone number like +15550000001")
    email = cells.get("email", "").strip() or None
    if email is not None and not EMAIL.match(email):
        raise csv_error(path, where("email"), "expected an email address")
    factor = cells.get("factor", "").strip() or None
    if factor is not None and factor not in factors:
        raise csv_error(
            path,
            where("factor"),
            f"unknown factor {describe(factor)}; expected one of {', '.join(factors)}",
        )
    return UserSpec(
        username=username, password=cells["password"], phone=phone, email=email, factor_hint=factor
    )
