"""What the engine learns about a user, and where it keeps it.

Per user: the OTP secret, the current recovery code and the authenticators it enrolled.
The engine reads a record before a login and writes it back as soon as a step learns
something, so that a crash loses nothing that a completed step obtained. ``put`` returns
only once the record is stored (durably, for a durable store).

:class:`InMemoryCredentials` is the default; the SQLite store lives in
:mod:`flowengine.credstore`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import attrs

__all__ = ["CredentialStore", "InMemoryCredentials", "StoredAuthenticator", "UserCredentials"]


@attrs.frozen(kw_only=True)
class StoredAuthenticator:
    """An authenticator the engine enrolled (or found) for a user."""

    id: str | None
    """Auth0's authenticator id, e.g. ``totp|dev_6NWz8awwC8brh2dN``; None for one this
    engine enrolled and has not seen listed yet (Auth0's enrollment answer has no id)."""
    factor: str
    """The factor strategy's name: ``otp``, ``sms``, ``voice``, ``email``, ``push``..."""
    active: bool = True
    """False while the enrollment is not confirmed."""


@attrs.frozen(kw_only=True)
class UserCredentials:
    """Everything secret the engine knows about one user. Its repr shows no secret."""

    username: str
    otp_secret: str | None = attrs.field(default=None, repr=False)
    """Base32 TOTP secret from an ``otp`` (or push) enrollment."""
    recovery_code: str | None = attrs.field(default=None, repr=False)
    """The one valid recovery code; replaced on every use."""
    authenticators: tuple[StoredAuthenticator, ...] = ()
    phone_number: str | None = None
    email: str | None = None
    last_otp_step: int | None = None
    """The last TOTP time step (epoch seconds // 30) submitted: OTP codes are single use,
    across runs too."""

    def with_authenticator(self, authenticator: StoredAuthenticator) -> UserCredentials:
        """A copy with ``authenticator`` added or replacing the one with the same id."""
        others = tuple(a for a in self.authenticators if a.id != authenticator.id)
        return attrs.evolve(self, authenticators=(*others, authenticator))

    def with_enrolled(self, factor: str) -> UserCredentials:
        """A copy noting that ``factor`` was just enrolled and confirmed (id not yet known)."""
        if any(a.factor == factor and a.active for a in self.authenticators):
            return self
        return attrs.evolve(
            self,
            authenticators=(*self.authenticators, StoredAuthenticator(id=None, factor=factor)),
        )

    def without_authenticator(self, authenticator_id: str) -> UserCredentials:
        """A copy without the authenticator ``authenticator_id``."""
        kept = tuple(a for a in self.authenticators if a.id != authenticator_id)
        return attrs.evolve(self, authenticators=kept)


class CredentialStore(Protocol):
    """Where user credentials live between steps and between runs."""

    def get(self, username: str) -> UserCredentials | None:
        """The record for ``username``, or None."""
        ...

    def put(self, record: UserCredentials) -> None:
        """Store ``record``, replacing the user's previous one; stored on return."""
        ...

    def delete(self, username: str) -> None:
        """Forget ``username`` (no error if unknown)."""
        ...

    def all(self) -> Iterator[UserCredentials]:
        """Every stored record, in username order."""
        ...

    def close(self) -> None:
        """Release resources; later calls may fail."""
        ...


class InMemoryCredentials:
    """A dict-backed store: fast, lost when the process ends."""

    def __init__(self) -> None:
        self._records: dict[str, UserCredentials] = {}

    def get(self, username: str) -> UserCredentials | None:
        return self._records.get(username)

    def put(self, record: UserCredentials) -> None:
        self._records[record.username] = record

    def delete(self, username: str) -> None:
        self._records.pop(username, None)

    def all(self) -> Iterator[UserCredentials]:
        for username in sorted(self._records):
            yield self._records[username]

    def close(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)
