"""The SQLite credential store: records, durability, sharing, encryption, export."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import select
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from flowengine.credentials import (
    CredentialStore,
    InMemoryCredentials,
    StoredAuthenticator,
    UserCredentials,
)
from flowengine.credstore import (
    ENV_KEY,
    SQLiteCredentials,
    export_credentials,
    import_credentials,
    open_store,
    record_from_dict,
)
from flowengine.errors import CredentialStoreError
from flowengine.log import MASK
from tests.credstore_child import USERS, rotated

CHILD = str(Path(__file__).with_name("credstore_child.py"))
KEY = "q3Yf1m2k0c2b9gM7uQm6v0yJ3Zp8Lr4tXc1sWn5eHa0="
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"
RECOVERY_CODE = "ZXCVBNMASDFGHJKLQWERTYUI"

FULL = UserCredentials(
    username="alice@example.test",
    otp_secret=OTP_SECRET,
    recovery_code=RECOVERY_CODE,
    authenticators=(
        StoredAuthenticator(id="totp|dev_1", factor="otp"),
        StoredAuthenticator(id="sms|dev_2", factor="sms", active=False),
    ),
    phone_number="+15550100",
    email="alice@example.test",
)


def user(
    name: str, *, otp_secret: str | None = None, recovery_code: str | None = None
) -> UserCredentials:
    """A record for ``name`` with the given secrets."""
    return UserCredentials(username=name, otp_secret=otp_secret, recovery_code=recovery_code)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A fresh store file's path."""
    return tmp_path / "creds.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteCredentials]:
    """An open, unencrypted store."""
    with SQLiteCredentials(path) as opened:
        yield opened


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain autocommit sqlite3 connection to ``path``, closed on exit."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


def raw_bytes(path: Path) -> bytes:
    """The bytes of the store's file and its WAL."""
    files = [path, Path(f"{path}-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


# Records


def test_round_trip_every_field(store: SQLiteCredentials) -> None:
    """A put record comes back equal, every field included."""
    store.put(FULL)
    assert store.get(FULL.username) == FULL


def test_get_unknown_is_none(store: SQLiteCredentials) -> None:
    """An unknown user has no record."""
    assert store.get("nobody") is None


def test_put_replaces_record(store: SQLiteCredentials) -> None:
    """A second put replaces the first record entirely."""
    store.put(FULL)
    store.put(user(FULL.username, recovery_code="NEW"))
    assert store.get(FULL.username) == user(FULL.username, recovery_code="NEW")


def test_delete_forgets_user(store: SQLiteCredentials) -> None:
    """delete removes the record."""
    store.put(FULL)
    store.delete(FULL.username)
    assert (store.get(FULL.username), len(store)) == (None, 0)


def test_delete_unknown_is_quiet(store: SQLiteCredentials) -> None:
    """Deleting an unknown user is no error."""
    store.delete("nobody")


def test_all_in_username_order(store: SQLiteCredentials) -> None:
    """all() yields every record in username order, across batches."""
    names = [f"u{(i * 7919) % 1000:04d}" for i in range(1000)]
    store.import_records(user(n) for n in names)
    assert [r.username for r in store.all()] == sorted(names)


def test_persists_across_reopen(path: Path) -> None:
    """A record put before close is there after reopening."""
    with SQLiteCredentials(path) as first:
        first.put(FULL)
    with SQLiteCredentials(path) as second:
        assert second.get(FULL.username) == FULL


def test_is_a_credential_store(store: SQLiteCredentials) -> None:
    """The store satisfies the CredentialStore protocol."""
    typed: CredentialStore = store
    assert typed.get("nobody") is None


def test_uses_wal_journal(store: SQLiteCredentials, path: Path) -> None:
    """The file is in WAL mode."""
    with raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_get_sees_another_connections_write(path: Path) -> None:
    """A cached record is replaced once another connection commits a newer one."""
    with SQLiteCredentials(path) as reader, SQLiteCredentials(path) as writer:
        reader.put(user("bob", recovery_code="OLD"))
        assert reader.get("bob") == user("bob", recovery_code="OLD")
        writer.put(user("bob", recovery_code="NEW"))
        assert reader.get("bob") == user("bob", recovery_code="NEW")


def test_get_miss_sees_another_connections_insert(path: Path) -> None:
    """A cached miss is forgotten once another connection inserts the user."""
    with SQLiteCredentials(path) as reader, SQLiteCredentials(path) as writer:
        assert reader.get("carol") is None
        writer.put(user("carol"))
        assert reader.get("carol") == user("carol")


def test_shared_by_asyncio_tasks(store: SQLiteCredentials) -> None:
    """Tasks of one loop interleaving puts and gets each read their own newest record."""

    async def rotate(name: str) -> None:
        for round_ in range(50):
            store.put(user(name, recovery_code=f"RC{round_}"))
            await asyncio.sleep(0)
            assert store.get(name) == user(name, recovery_code=f"RC{round_}")

    async def main() -> None:
        await asyncio.gather(*(rotate(f"u{i}") for i in range(20)))

    asyncio.run(main())
    assert [r.recovery_code for r in store.all()] == ["RC49"] * 20


def test_shared_by_threads(store: SQLiteCredentials) -> None:
    """Threads writing their own users through one store all succeed."""

    def write(prefix: str) -> None:
        for i in range(200):
            store.put(user(f"{prefix}{i:03d}"))

    threads = [threading.Thread(target=write, args=(p,)) for p in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(store) == 800


def test_synchronous_full_stores(tmp_path: Path) -> None:
    """synchronous='FULL' stores records too."""
    with SQLiteCredentials(tmp_path / "full.db", synchronous="FULL") as full:
        full.put(FULL)
        assert full.get(FULL.username) == FULL


def test_bad_synchronous_refused(path: Path) -> None:
    """An unknown synchronous level is a ValueError."""
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteCredentials(path, synchronous="OFF")  # type: ignore[arg-type]


def test_closed_store_refuses(path: Path) -> None:
    """Calls after close raise CredentialStoreError."""
    opened = SQLiteCredentials(path)
    opened.close()
    with pytest.raises(CredentialStoreError, match="closed"):
        opened.get("bob")


def test_close_twice_is_quiet(path: Path) -> None:
    """close is idempotent."""
    opened = SQLiteCredentials(path)
    opened.close()
    opened.close()


# Errors


def test_corrupt_file_names_it(path: Path) -> None:
    """A file that is not SQLite gives an error naming it."""
    path.write_bytes(b"this is not a database, just some garbage bytes" * 100)
    with pytest.raises(CredentialStoreError, match=str(path)):
        SQLiteCredentials(path)


def test_foreign_database_refused(path: Path) -> None:
    """An SQLite file of another program is refused."""
    with raw(path) as conn:
        conn.execute("CREATE TABLE other (x)")
    with pytest.raises(CredentialStoreError, match="not a flowengine credential store"):
        SQLiteCredentials(path)


def test_newer_schema_refused(path: Path) -> None:
    """A newer schema version is refused with a clear error."""
    SQLiteCredentials(path).close()
    with raw(path) as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    with pytest.raises(CredentialStoreError, match="schema version 99 is newer"):
        SQLiteCredentials(path)


def test_missing_directory_names_file(tmp_path: Path) -> None:
    """A file in a missing directory gives an error naming it."""
    missing = tmp_path / "no" / "such" / "creds.db"
    with pytest.raises(CredentialStoreError, match=str(missing)):
        SQLiteCredentials(missing)


def test_locked_too_long_names_file(store: SQLiteCredentials, path: Path) -> None:
    """A put that waits past the busy timeout gives an error naming the file."""
    with raw(path) as conn, SQLiteCredentials(path, timeout=0.01) as impatient:
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(CredentialStoreError, match=f"{path}.*locked"):
            impatient.put(user("bob"))
        conn.execute("ROLLBACK")


def test_corrupt_record_names_user(store: SQLiteCredentials, path: Path) -> None:
    """A record that is not JSON gives an error naming the user."""
    store.put(user("bob"))
    with raw(path) as conn:
        conn.execute("UPDATE credentials SET record = 'nope' WHERE username = 'bob'")
    with pytest.raises(CredentialStoreError, match="'bob' is corrupt"):
        store.get("bob")


def test_bad_field_error_hides_value() -> None:
    """A mistyped field is named in the error, its value is not."""
    with pytest.raises(ValueError, match="otp_secret") as info:
        record_from_dict({"username": "bob", "otp_secret": [OTP_SECRET]})
    assert OTP_SECRET not in str(info.value)


# Encryption


def test_encrypted_file_hides_secrets(path: Path) -> None:
    """With a key, no secret nor contact detail is readable in the file or its WAL."""
    with SQLiteCredentials(path, key=KEY) as encrypted:
        encrypted.put(FULL)
        data = raw_bytes(path)
    assert FULL.username.encode() in data
    for secret in (OTP_SECRET, RECOVERY_CODE, "+15550100", "totp|dev_1"):
        assert secret.encode() not in data


def test_plain_file_holds_secrets(path: Path) -> None:
    """Without a key the record is plain JSON (the control for the test above)."""
    with SQLiteCredentials(path) as plain:
        plain.put(FULL)
        assert OTP_SECRET.encode() in raw_bytes(path)


def test_encrypted_round_trip_across_reopen(path: Path) -> None:
    """An encrypted store reopened with its key gives its records back."""
    with SQLiteCredentials(path, key=KEY) as first:
        first.put(FULL)
    with SQLiteCredentials(path, key=KEY) as second:
        assert list(second.all()) == [FULL]


def test_wrong_key_refused(path: Path) -> None:
    """A wrong key gives a clear error that shows no key."""
    SQLiteCredentials(path, key=KEY).close()
    wrong = SQLiteCredentials.generate_key()
    with pytest.raises(CredentialStoreError, match="wrong key") as info:
        SQLiteCredentials(path, key=wrong)
    assert wrong not in str(info.value)
    assert KEY not in str(info.value)


def test_missing_key_refused(path: Path) -> None:
    """An encrypted store opened without a key gives a clear error."""
    SQLiteCredentials(path, key=KEY).close()
    with pytest.raises(CredentialStoreError, match=f"encrypted: give its key.*{ENV_KEY}"):
        SQLiteCredentials(path)


def test_key_for_plain_store_refused(path: Path) -> None:
    """A key given for an unencrypted store is refused rather than ignored."""
    SQLiteCredentials(path).close()
    with pytest.raises(CredentialStoreError, match="not encrypted"):
        SQLiteCredentials(path, key=KEY)


def test_passphrase_key(path: Path) -> None:
    """A passphrase works as a key (stretched with scrypt)."""
    with SQLiteCredentials(path, key="correct horse battery staple") as first:
        first.put(FULL)
    with SQLiteCredentials(path, key="correct horse battery staple") as second:
        assert second.get(FULL.username) == FULL


def test_raw_bytes_key_equals_its_base64(path: Path) -> None:
    """32 raw key bytes open a store made with their base64 text."""
    key = SQLiteCredentials.generate_key()
    SQLiteCredentials(path, key=key).close()
    with SQLiteCredentials(path, key=base64.urlsafe_b64decode(key)) as again:
        assert again.encrypted


def test_swapped_ciphertexts_detected(path: Path) -> None:
    """A record moved under another username does not decrypt."""
    with SQLiteCredentials(path, key=KEY) as encrypted:
        encrypted.put(user("bob", otp_secret=OTP_SECRET))
        encrypted.put(user("eve"))
        with raw(path) as conn:
            conn.execute(
                "UPDATE credentials SET record ="
                " (SELECT record FROM credentials WHERE username = 'bob') WHERE username = 'eve'"
            )
        with pytest.raises(CredentialStoreError, match="cannot decrypt the record of 'eve'"):
            encrypted.get("eve")


def test_from_env_reads_key(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """from_env takes the key from FLOWENGINE_STORE_KEY."""
    monkeypatch.setenv(ENV_KEY, KEY)
    with SQLiteCredentials.from_env(path) as opened:
        assert opened.encrypted


def test_repr_shows_no_key_or_secret(path: Path) -> None:
    """The store's repr names the file and shows no key or secret."""
    with SQLiteCredentials(path, key=KEY) as encrypted:
        encrypted.put(FULL)
        text = repr(encrypted)
    assert str(path) in text
    for secret in (KEY, OTP_SECRET, RECOVERY_CODE):
        assert secret not in text


# Export and import


def exported(store: CredentialStore, *, include_secrets: bool) -> str:
    """The export of ``store`` as text."""
    out = io.StringIO()
    export_credentials(store, out, include_secrets=include_secrets)
    return out.getvalue()


def test_export_masks_secrets(store: SQLiteCredentials) -> None:
    """By default an export masks the OTP secret and recovery code."""
    store.put(FULL)
    text = exported(store, include_secrets=False)
    assert OTP_SECRET not in text
    assert RECOVERY_CODE not in text
    assert text.count(MASK) == 2
    assert "totp|dev_1" in text


def test_export_with_secrets(store: SQLiteCredentials) -> None:
    """include_secrets=True writes the secrets."""
    store.put(FULL)
    text = exported(store, include_secrets=True)
    assert OTP_SECRET in text
    assert RECOVERY_CODE in text


def test_export_file_is_private(store: SQLiteCredentials, tmp_path: Path) -> None:
    """An export file is readable by its owner only."""
    store.put(FULL)
    target = tmp_path / "export.jsonl"
    assert store.export(target, include_secrets=True) == 1
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_import_round_trip(store: SQLiteCredentials, tmp_path: Path) -> None:
    """An export with secrets imports into a new store unchanged."""
    store.put(FULL)
    store.put(user("bob", recovery_code="RC"))
    target = tmp_path / "export.jsonl"
    store.export(target, include_secrets=True)
    with SQLiteCredentials(tmp_path / "copy.db", key=KEY) as copy:
        assert copy.import_(target) == 2
        assert list(copy.all()) == list(store.all())


def test_import_merges(store: SQLiteCredentials) -> None:
    """Imported users replace theirs; other users stay."""
    store.put(user("bob", recovery_code="OLD"))
    store.put(user("carol"))
    source = InMemoryCredentials()
    source.put(user("bob", recovery_code="NEW"))
    store.import_(io.StringIO(exported(source, include_secrets=True)))
    assert list(store.all()) == [user("bob", recovery_code="NEW"), user("carol")]


def test_import_masked_refused(store: SQLiteCredentials) -> None:
    """Masked secrets are refused and nothing is written."""
    source = InMemoryCredentials()
    source.put(FULL)
    with pytest.raises(CredentialStoreError, match="masked otp_secret and recovery_code"):
        store.import_(io.StringIO(exported(source, include_secrets=False)))
    assert len(store) == 0


def test_import_masked_keeps_current_secrets(store: SQLiteCredentials) -> None:
    """on_masked='keep' keeps the secrets already stored and takes the rest."""
    store.put(user(FULL.username, otp_secret="KEPT", recovery_code="KEPT-RC"))
    source = InMemoryCredentials()
    source.put(FULL)
    store.import_(io.StringIO(exported(source, include_secrets=False)), on_masked="keep")
    expected = attrs.evolve(FULL, otp_secret="KEPT", recovery_code="KEPT-RC")
    assert store.get(FULL.username) == expected


def test_import_bad_line_names_line_and_writes_nothing(store: SQLiteCredentials) -> None:
    """A broken line is named (file and line) and no record is written."""
    text = '{"username": "bob"}\n{"username": "carol", "otp_secret": "S3CR3T"\n'
    with pytest.raises(CredentialStoreError, match=r"<stream>:2: not valid JSON") as info:
        store.import_(io.StringIO(text))
    assert "S3CR3T" not in str(info.value)
    assert len(store) == 0


def test_import_foreign_header_refused(store: SQLiteCredentials) -> None:
    """A header of another format is refused."""
    with pytest.raises(CredentialStoreError, match="not a flowengine credentials export"):
        store.import_(io.StringIO('{"format": "other", "version": 1}\n'))


def test_import_into_memory_store(tmp_path: Path, store: SQLiteCredentials) -> None:
    """import_credentials works on any CredentialStore."""
    store.put(FULL)
    target = tmp_path / "export.jsonl"
    store.export(target, include_secrets=True)
    memory = InMemoryCredentials()
    assert import_credentials(memory, target) == 1
    assert memory.get(FULL.username) == FULL


def test_import_missing_file_names_it(store: SQLiteCredentials, tmp_path: Path) -> None:
    """A missing import file gives an error naming it."""
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(CredentialStoreError, match=str(missing)):
        store.import_(missing)


# open_store


@pytest.mark.parametrize("spec", [None, "", "memory"])
def test_open_store_memory(spec: str | None) -> None:
    """None, '' and 'memory' give an in-memory store."""
    assert isinstance(open_store(spec), InMemoryCredentials)


@pytest.mark.parametrize("form", ["{}", "sqlite:///{}"])
def test_open_store_sqlite(form: str, path: Path) -> None:
    """A path or a sqlite:/// URL gives a SQLite store on that file."""
    opened = open_store(form.format(path))
    assert isinstance(opened, SQLiteCredentials)
    opened.close()
    assert opened.path == str(path)


def test_open_store_key_from_env(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open_store takes the key from the environment when it is set."""
    monkeypatch.setenv(ENV_KEY, KEY)
    opened = open_store(str(path))
    assert isinstance(opened, SQLiteCredentials)
    opened.close()
    assert opened.encrypted


def test_open_store_unknown_scheme() -> None:
    """An unknown URL scheme is refused."""
    with pytest.raises(CredentialStoreError, match="unknown credential store"):
        open_store("redis://localhost/0")


# Processes


class LineReader:
    """Complete lines from a child's stdout, each read bounded in time."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._pending = b""

    def _feed(self, chunk: bytes) -> list[str]:
        *done, self._pending = (self._pending + chunk).split(b"\n")
        return [line.decode() for line in done]

    def read(self, count: int, timeout: float) -> list[str]:
        """At least ``count`` lines, waiting at most ``timeout`` seconds for each chunk."""
        lines: list[str] = []
        for _ in range(100_000):
            if len(lines) >= count:
                return lines
            ready, _, _ = select.select([self._stdout], [], [], timeout)
            assert ready, f"no output from the child within {timeout} s"
            chunk = os.read(self._stdout.fileno(), 65536)
            assert chunk, f"the child exited after {len(lines)} lines"
            lines += self._feed(chunk)
        raise AssertionError("too many reads")

    def rest(self) -> list[str]:
        """The complete lines left once the child has died."""
        return self._feed(self._stdout.read())


@contextlib.contextmanager
def child(*args: str, key: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run tests/credstore_child.py with ``args``; kill and reap it on exit."""
    env = {k: v for k, v in os.environ.items() if k != ENV_KEY}
    if key is not None:
        env[ENV_KEY] = key
    proc = subprocess.Popen(
        [sys.executable, CHILD, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        bufsize=0,
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.mark.slow
@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
def test_sigkill_loses_no_confirmed_put(path: Path, key: str | None) -> None:
    """After SIGKILL every confirmed put is stored, with the newest recovery code."""
    with child("rotate", str(path), key=key) as proc:
        lines = LineReader(proc)
        confirmed = lines.read(50 * USERS, timeout=60)
        proc.kill()
        proc.wait(timeout=30)
        confirmed += lines.rest()
    assert Path(f"{path}-wal").exists(), "the child closed the store cleanly"
    newest: dict[str, int] = {}
    for line in confirmed:
        username, round_ = line.split()
        newest[username] = int(round_)
    assert len(newest) == USERS
    with SQLiteCredentials(path, key=key) as reopened:
        ahead = 0
        for u in range(USERS):
            record = reopened.get(f"user{u}@example.test")
            assert record is not None
            last = newest[record.username]
            assert record in (rotated(u, last), rotated(u, last + 1))
            ahead += record != rotated(u, last)
        assert ahead <= 1, "more than one put was lost or invented"


@pytest.mark.slow
def test_two_processes_write_concurrently(path: Path) -> None:
    """Two processes writing their own users at once both succeed in full."""
    count = 3000
    with (
        child("write", str(path), "a", str(count)) as a,
        child("write", str(path), "b", str(count)) as b,
    ):
        readers = [(proc, LineReader(proc)) for proc in (a, b)]
        for _, lines in readers:
            assert lines.read(1, timeout=60) == ["ready"]
        for proc, _ in readers:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
        windows = []
        for proc, lines in readers:
            word, start, end = lines.read(1, timeout=60)[0].split()
            assert (word, proc.wait(timeout=30)) == ("done", 0)
            windows.append((float(start), float(end)))
    (a_start, a_end), (b_start, b_end) = windows
    assert max(a_start, b_start) < min(a_end, b_end), "the writers did not overlap"
    with SQLiteCredentials(path) as reopened:
        names = {r.username for r in reopened.all()}
    assert names == {f"{p}-{i}" for p in "ab" for i in range(count)}
