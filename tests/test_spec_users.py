"""User populations: patterns, CSV files and lists; lazy iteration and partitioning."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from flowengine.errors import ScenarioError
from flowengine.spec import (
    CsvUsers,
    ListedUsers,
    PatternUsers,
    Scenario,
    UserSource,
    UserSpec,
    parse_scenario,
)

SOURCE = "flows/x.yaml"
LOAD = {"users": 1, "iterations": 1}
POPULATION = {"pattern": "user{n}@example.test", "password": "Passw0rd!{n}", "count": 10}


def parse(users: Any, *, env: dict[str, str] | None = None, base_dir: Path = Path()) -> Scenario:
    data = {"users": users, "load": LOAD}
    return parse_scenario(data, source=SOURCE, base_dir=base_dir, env=env or {})


def error(users: Any, *, env: dict[str, str] | None = None, base_dir: Path = Path()) -> str:
    with pytest.raises(ScenarioError) as info:
        parse(users, env=env, base_dir=base_dir)
    return str(info.value)


def names(source: UserSource) -> list[str]:
    return [user.username for user in source.iter_users()]


# --- patterns ----------------------------------------------------------------------------


def test_pattern_users() -> None:
    """A pattern population yields user n with its password, from start."""
    users = parse({**POPULATION, "start": 5, "count": 2}).users
    assert list(users.iter_users()) == [
        UserSpec(username="user5@example.test", password="Passw0rd!5"),
        UserSpec(username="user6@example.test", password="Passw0rd!6"),
    ]


def test_pattern_count() -> None:
    """count and len() agree."""
    users = parse(POPULATION).users
    assert (users.count, len(users)) == (10, 10)


def test_pattern_phone_and_email() -> None:
    """phone and email are templates too."""
    users = parse({**POPULATION, "phone": "+1555{n:07d}", "email": "u{n}@mail.test"}).users
    first = next(users.iter_users())
    assert (first.phone, first.email) == ("+15550000001", "u1@mail.test")


def test_password_from_environment_is_literal() -> None:
    """Braces in a password from the environment are not placeholders."""
    users = parse({**POPULATION, "password": "${PW}"}, env={"PW": "a{b}c{n}"}).users
    assert next(users.iter_users()).password == "a{b}c{n}"


def test_fixed_password() -> None:
    """A password without {n} is the same for every user."""
    users = parse({**POPULATION, "password": "same"}).users
    assert {user.password for user in users.iter_users()} == {"same"}


def test_zero_padded_spec() -> None:
    """{n:05d} pads with zeros."""
    users = parse({**POPULATION, "pattern": "u{n:05d}", "start": 255, "count": 1}).users
    assert names(users) == ["u00255"]


def test_pattern_without_n_refused() -> None:
    """A username pattern needs {n}."""
    assert error({**POPULATION, "pattern": "same@example.test"}) == (
        "flows/x.yaml: users.pattern: must contain {n} exactly once (the user's number)"
    )


def test_pattern_with_two_n_refused() -> None:
    """A username pattern has {n} once, as the emulator needs."""
    assert error({**POPULATION, "pattern": "u{n}-{n}"}) == (
        "flows/x.yaml: users.pattern: must contain {n} exactly once (the user's number)"
    )


@pytest.mark.parametrize(
    "pattern", ["u{m}", "u{n!r}", "u{n.real}", "u{n[0]}", "u{0}", "u{n:999999d}", "u{n:x}"]
)
def test_unsupported_placeholders_refused(pattern: str) -> None:
    """Only {n} with a short format spec is allowed."""
    assert "users.pattern: unsupported placeholder '{" in error({**POPULATION, "pattern": pattern})


def test_unbalanced_braces_refused() -> None:
    """A lone brace is refused."""
    assert error({**POPULATION, "pattern": "u{n"}) == (
        "flows/x.yaml: users.pattern: unbalanced '{' or '}' (write {{ and }} for literal braces)"
    )


def test_bad_password_placeholder_hidden() -> None:
    """A bad placeholder in a password is not echoed."""
    message = error({**POPULATION, "password": "hunter{secret}"})
    assert message == (
        "flows/x.yaml: users.password: unsupported placeholder; use {n} or {n:07d}"
        " (write {{ and }} for literal braces)"
    )


def test_bad_phone_pattern() -> None:
    """Phones must be E.164."""
    assert error({**POPULATION, "phone": "555-{n}"}) == (
        "flows/x.yaml: users.phone: gives '555-1' for n=1;"
        " expected an E.164 number like +15550000001"
    )


def test_bad_email_pattern() -> None:
    """Emails need an @."""
    assert "users.email: gives 'u1' for n=1; expected an email address" in error(
        {**POPULATION, "email": "u{n}"}
    )


@pytest.mark.parametrize("count", [0, -1, True, "many", 1.5])
def test_bad_count(count: Any) -> None:
    """count is a positive whole number."""
    assert "users.count: expected a number of users from 1 to 1000000000" in error(
        {**POPULATION, "count": count}
    )


def test_missing_pattern_key() -> None:
    """password is required."""
    assert error({"pattern": "u{n}", "count": 3}) == (
        "flows/x.yaml: users: missing required key 'password'"
    )


def test_missing_source_of_users() -> None:
    """A mapping without pattern or csv says where users can come from."""
    assert error({"count": 3, "password": "x"}) == (
        "flows/x.yaml: users: missing 'pattern' or 'csv' (where the users come from)"
    )


def test_unknown_population_key_suggests() -> None:
    """A misspelt key gets a suggestion."""
    assert (
        error({**POPULATION, "cuont": 3})
        == "flows/x.yaml: users.cuont: unknown key; did you mean 'count'?"
    )


def test_from_population_at_top_level_refused() -> None:
    """The population cannot take users from itself."""
    assert error({"from": "population", "count": 1}) == (
        "flows/x.yaml: users.from: there is no population here to take users from"
    )


def test_huge_population_is_lazy() -> None:
    """A population of a billion is counted, iterated and split without being built."""
    users = parse({**POPULATION, "count": 1_000_000_000}).users
    assert [u.username for u in itertools.islice(users.iter_users(), 2)] == [
        "user1@example.test",
        "user2@example.test",
    ]
    last = users.partition(4)[3]
    assert (last.count, next(last.iter_users()).username) == (
        250_000_000,
        "user750000001@example.test",
    )


def test_pattern_find() -> None:
    """find recovers user n from its name."""
    users = parse({**POPULATION, "pattern": "u{n:03d}@x.test"}).users
    assert users.find("u007@x.test") == UserSpec(username="u007@x.test", password="Passw0rd!7")


def test_pattern_find_outside_range() -> None:
    """A name the pattern could make but outside the range is not found."""
    assert parse(POPULATION).users.find("user11@example.test") is None


def test_user_spec_repr_hides_password() -> None:
    """Neither a user's nor a population's repr shows passwords."""
    users = parse({**POPULATION, "password": "Hunter2-{n}"}).users
    assert "Hunter2" not in repr(users)
    assert "Hunter2" not in repr(next(users.iter_users()))


# --- partitioning ------------------------------------------------------------------------


def sources() -> list[UserSource]:
    listed = ListedUsers(users=tuple(UserSpec(username=f"l{i}", password="p") for i in range(7)))
    pattern = PatternUsers(pattern="p{n}", password="x", count=23, start=3)
    return [listed, pattern]


@pytest.mark.parametrize("shards", [1, 2, 3, 5, 7, 30])
@pytest.mark.parametrize("source", sources(), ids=["listed", "pattern"])
def test_partition_complete_and_disjoint(source: UserSource, shards: int) -> None:
    """Shards hold every user exactly once, in order, sizes within one."""
    parts = source.partition(shards)
    assert len(parts) == shards
    assert [name for part in parts for name in names(part)] == names(source)
    sizes = [part.count for part in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == [len(names(part)) for part in parts]


def test_partition_csv(tmp_path: Path) -> None:
    """CSV sources split by rows."""
    rows = "".join(f"u{i},p{i}\n" for i in range(10))
    (tmp_path / "u.csv").write_text("username,password\n" + rows)
    users = parse({"csv": "u.csv"}, base_dir=tmp_path).users
    parts = users.partition(3)
    assert [names(part) for part in parts] == [
        ["u0", "u1", "u2", "u3"],
        ["u4", "u5", "u6"],
        ["u7", "u8", "u9"],
    ]


def test_partition_needs_a_shard() -> None:
    """Zero shards is a programming error."""
    with pytest.raises(ValueError, match="n_shards must be at least 1"):
        PatternUsers(pattern="p{n}", password="x", count=3).partition(0)


def test_window_out_of_range() -> None:
    """A window beyond the end is a programming error."""
    with pytest.raises(ValueError, match="outside"):
        PatternUsers(pattern="p{n}", password="x", count=3).window(2, 2)


def test_nested_windows() -> None:
    """A window of a window counts from the window's start."""
    users = PatternUsers(pattern="p{n}", password="x", count=10).window(2, 6).window(1, 2)
    assert names(users) == ["p4", "p5"]


# --- CSV ---------------------------------------------------------------------------------


def csv_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "users.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def csv_error(tmp_path: Path, text: str | bytes) -> str:
    csv_file(tmp_path, text)
    return error({"csv": "users.csv"}, base_dir=tmp_path)


def test_csv_users(tmp_path: Path) -> None:
    """Every column is read; empty optional cells are None."""
    csv_file(
        tmp_path,
        'username,password,phone,email,factor\nalice,pa,+15550000001,a@x.test,sms\nbob,"p,b",,,\n',
    )
    users = parse({"csv": "users.csv"}, base_dir=tmp_path).users
    assert isinstance(users, CsvUsers)
    assert list(users.iter_users()) == [
        UserSpec(
            username="alice",
            password="pa",
            phone="+15550000001",
            email="a@x.test",
            factor_hint="sms",
        ),
        UserSpec(username="bob", password="p,b"),
    ]


def test_csv_columns_any_order(tmp_path: Path) -> None:
    """The header decides the column order."""
    csv_file(tmp_path, "Password, Username\npw,carol\n")
    users = parse({"csv": "users.csv"}, base_dir=tmp_path).users
    assert list(users.iter_users()) == [UserSpec(username="carol", password="pw")]


def test_csv_bom_and_blank_lines(tmp_path: Path) -> None:
    """A UTF-8 BOM and blank lines are tolerated."""
    csv_file(tmp_path, "\ufeffusername,password\n\na,b\n\n")
    assert names(parse({"csv": "users.csv"}, base_dir=tmp_path).users) == ["a"]


def test_csv_find(tmp_path: Path) -> None:
    """find scans the file."""
    csv_file(tmp_path, "username,password\na,1\nb,2\n")
    users = parse({"csv": "users.csv"}, base_dir=tmp_path).users
    assert users.find("b") == UserSpec(username="b", password="2")


def test_csv_missing_file(tmp_path: Path) -> None:
    """A missing CSV names the key path."""
    assert error({"csv": "nope.csv"}, base_dir=tmp_path) == (
        f"flows/x.yaml: users.csv: '{tmp_path / 'nope.csv'}' is not a readable file"
    )


def test_csv_wrong_column_count(tmp_path: Path) -> None:
    """A short line names the file and the line."""
    assert csv_error(tmp_path, "username,password\na,b\nc\n") == (
        f"{tmp_path / 'users.csv'}: line 3: expected 2 columns (username,password), got 1"
    )


def test_csv_empty_password(tmp_path: Path) -> None:
    """An empty password names line and column."""
    assert csv_error(tmp_path, "username,password\na,\n") == (
        f"{tmp_path / 'users.csv'}: line 2, column 2 (password): empty password"
    )


def test_csv_bad_phone(tmp_path: Path) -> None:
    """A bad phone names line and column."""
    assert csv_error(tmp_path, "username,password,phone\na,b,+15550000001\nc,d,555-1234\n") == (
        f"{tmp_path / 'users.csv'}:"
        " line 3, column 3 (phone): expected an E.164 phone number like +15550000001"
    )


def test_csv_unknown_factor(tmp_path: Path) -> None:
    """An unknown factor hint is refused."""
    assert csv_error(tmp_path, "username,password,factor\na,b,smss\n").endswith(
        "line 2, column 3 (factor): unknown factor 'smss'; expected one of"
        " email, otp, push, recovery-code, sms, voice"
    )


def test_csv_bad_email(tmp_path: Path) -> None:
    """An email needs an @."""
    assert csv_error(tmp_path, "email,username,password\nnope,a,b\n").endswith(
        "line 2, column 1 (email): expected an email address"
    )


def test_csv_username_with_spaces(tmp_path: Path) -> None:
    """Spaces around a username are refused."""
    assert csv_error(tmp_path, "username,password\n a,b\n").endswith(
        "line 2, column 1 (username): the username has spaces around it"
    )


def test_csv_duplicate_username(tmp_path: Path) -> None:
    """A username given twice names both lines."""
    assert csv_error(tmp_path, "username,password\na,1\nb,2\na,3\n") == (
        f"{tmp_path / 'users.csv'}:"
        " line 4, column 1 (username): duplicate username (first on line 2)"
    )


def test_csv_unknown_column_suggests(tmp_path: Path) -> None:
    """A misspelt column gets a suggestion."""
    assert csv_error(tmp_path, "username,password,phon\n").endswith(
        "line 1, column 3: unknown column 'phon'; did you mean 'phone'?"
    )


def test_csv_without_header_hides_line(tmp_path: Path) -> None:
    """A file without a header is refused without echoing its first line."""
    message = csv_error(tmp_path, "alice@example.test,Hunter2-secret\n")
    assert message == (
        f"{tmp_path / 'users.csv'}: line 1: expected a header line naming the columns,"
        " such as 'username,password,phone'"
    )


def test_csv_header_needs_password(tmp_path: Path) -> None:
    """The password column is required."""
    assert csv_error(tmp_path, "username,phone\n").endswith(
        "line 1: the header has no 'password' column"
    )


def test_csv_duplicate_column(tmp_path: Path) -> None:
    """A column named twice is refused."""
    assert csv_error(tmp_path, "username,password,username\n").endswith(
        "line 1, column 3: column 'username' appears twice"
    )


def test_csv_empty_file(tmp_path: Path) -> None:
    """An empty file has no header."""
    assert csv_error(tmp_path, "").endswith(
        "users.csv: line 1: empty file; expected a header line such as 'username,password,phone'"
    )


def test_csv_header_only(tmp_path: Path) -> None:
    """A header without rows is no population."""
    assert csv_error(tmp_path, "username,password\n") == (
        f"{tmp_path / 'users.csv'}: no users after the header line"
    )


def test_csv_not_utf8(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 name the line."""
    assert csv_error(tmp_path, b"username,password\na,\xff\xfe\n").startswith(
        f"{tmp_path / 'users.csv'}: line"
    )


def test_csv_malformed_quotes(tmp_path: Path) -> None:
    """A broken quote is a CSV error with a line."""
    assert "malformed CSV" in csv_error(tmp_path, 'username,password\n"a"x,b\n')


# --- listed users ------------------------------------------------------------------------


def test_listed_users_with_passwords() -> None:
    """A list of mappings is a population."""
    users = parse(
        [{"username": "a", "password": "${PA}", "phone": "+15550000001"}], env={"PA": "x"}
    ).users
    assert list(users.iter_users()) == [UserSpec(username="a", password="x", phone="+15550000001")]


def test_listed_user_needs_password_at_top_level() -> None:
    """Without a population, a listed name needs a password."""
    assert (
        error(["alice"])
        == "flows/x.yaml: users[0]: 'alice' is not in the population; give a password"
    )


def test_listed_user_twice() -> None:
    """A user listed twice is refused."""
    users = [{"username": "a", "password": "x"}, {"username": "a", "password": "y"}]
    assert error(users) == "flows/x.yaml: users[1]: 'a' is listed twice"


def test_empty_list_refused() -> None:
    """An empty list is no population."""
    assert error([]) == "flows/x.yaml: users: expected at least one user, got an empty list"
