"""A child process for tests/test_credstore.py: writes records and confirms each put.

``rotate PATH``: rotates the recovery codes of ``USERS`` users round after round and
prints ``username round`` after each ``put`` returns, until killed (bounded in count
and time). ``write PATH PREFIX COUNT``: prints ``ready``, waits for a line on stdin,
puts ``COUNT`` users named ``PREFIX-i`` and prints ``done START END``
(monotonic times, comparable across processes on Linux). The key, if any, comes
from ``FLOWENGINE_STORE_KEY``.
"""

from __future__ import annotations

import sys
import time

from flowengine.credentials import StoredAuthenticator, UserCredentials
from flowengine.credstore import SQLiteCredentials

__all__ = ["USERS", "main", "rotated"]

USERS = 10
_MAX_PUTS = 200_000
_MAX_SECONDS = 60.0


def rotated(user: int, round_: int) -> UserCredentials:
    """User ``user``'s record after ``round_`` rotations of its recovery code."""
    return UserCredentials(
        username=f"user{user}@example.test",
        otp_secret=f"SECRET{user:04d}AAAAAAAAAAAAAAAA",
        recovery_code=f"RC{user:04d}R{round_:08d}",
        authenticators=(StoredAuthenticator(id=f"totp|dev_{user}", factor="otp"),),
        email=f"user{user}@example.test",
    )


def _rotate(path: str) -> None:
    deadline = time.monotonic() + _MAX_SECONDS
    with SQLiteCredentials.from_env(path) as store:
        for n in range(_MAX_PUTS):
            if time.monotonic() > deadline:
                break
            user, round_ = n % USERS, n // USERS
            store.put(rotated(user, round_))
            print(f"user{user}@example.test {round_}", flush=True)


def _write(path: str, prefix: str, count: int) -> None:
    with SQLiteCredentials.from_env(path) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        start = time.monotonic()
        for i in range(count):
            username = f"{prefix}-{i}"
            store.put(UserCredentials(username=username, recovery_code=f"RC-{prefix}-{i}"))
            if store.get(username) is None:
                raise SystemExit(f"{username} vanished")
        print(f"done {start} {time.monotonic()}", flush=True)


def main(argv: list[str]) -> None:
    """Run the mode named by ``argv[0]``."""
    if argv[0] == "rotate":
        _rotate(argv[1])
    elif argv[0] == "write":
        _write(argv[1], argv[2], int(argv[3]))
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
