"""Our own account of each user's failed-code bucket, so a run never locks a user out.

Auth0 lets a user fail 10 codes, then one more every 6 minutes (reference §11), and
answers a locked user's right code like a wrong one. The engine keeps the same bucket per
user: it spends at most ``share`` of it, then stops submitting codes for that user (the
login fails as ``lockout_guard``) until the bucket has refilled; a wrong-code answer while
our bucket is empty is reported as ``locked``, not as a wrong code. Recovery codes have a
bucket of their own.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

__all__ = ["FailedCodeLedger", "LockoutPolicy"]


@attrs.frozen(kw_only=True)
class LockoutPolicy:
    """Auth0's failed-code bucket and the share of it a run may spend."""

    burst: int = attrs.field(default=10, validator=attrs.validators.gt(0))
    refill_every: float = attrs.field(default=360.0, validator=attrs.validators.gt(0))
    """Seconds for one failed attempt to be forgiven."""
    share: float = attrs.field(
        default=0.5, validator=[attrs.validators.gt(0), attrs.validators.le(1)]
    )
    """Fraction of the bucket the tool may spend (the rest is left to the real user)."""


class FailedCodeLedger:
    """Failed code attempts per (user, bucket), refilled with time."""

    def __init__(self, policy: LockoutPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self._spent: dict[tuple[str, str], tuple[float, float]] = {}
        """(user, bucket) -> (failed attempts still counted, when that was computed)."""

    def spent(self, username: str, bucket: str = "code") -> float:
        """Failed attempts of ``username`` the bucket still remembers now."""
        entry = self._spent.get((username, bucket))
        if entry is None:
            return 0.0
        count, at = entry
        count -= (self._clock() - at) / self.policy.refill_every
        if count <= 0:
            del self._spent[(username, bucket)]
            return 0.0
        return count

    def allowed(self, username: str, bucket: str = "code") -> bool:
        """Whether one more failure would stay within the share the tool may spend."""
        if not self._spent:
            return True
        return self.spent(username, bucket) + 1 <= self.policy.burst * self.policy.share

    def exhausted(self, username: str, bucket: str = "code") -> bool:
        """Whether, by our account, Auth0 has locked this user's bucket."""
        return self.spent(username, bucket) >= self.policy.burst

    def record_failure(self, username: str, bucket: str = "code") -> None:
        """A code was refused (or may have been spent without an answer)."""
        now = self._clock()
        self._spent[(username, bucket)] = (self.spent(username, bucket) + 1, now)

    def record_locked(self, username: str, bucket: str = "code") -> None:
        """Auth0 said the bucket is empty (``too_many_attempts``)."""
        self._spent[(username, bucket)] = (float(self.policy.burst), self._clock())
