"""The emulator's control API as journeys use it: push answers and the clock.

Against a real tenant there is no control API: every call answers ``None`` (a 404, or any
answer that is not the emulator's), and the caller falls back to a person (push) or to
real time (an ``mfa_token``'s expiry).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from flowengine import jsonio

__all__ = ["DEFAULT_MFA_TOKEN_LIFETIME", "EmulatorControl", "mfa_token_expiry"]

DEFAULT_MFA_TOKEN_LIFETIME = 600.0
"""Seconds an ``mfa_token`` lives when it does not say (reference §11: 10 minutes)."""


def mfa_token_expiry(mfa_token: str) -> float | None:
    """The expiry (epoch seconds) sealed in an Iron ``mfa_token`` (6th field, in ms)."""
    parts = mfa_token.split("*")
    if len(parts) != 8 or not parts[0].startswith("Fe26"):
        return None
    try:
        return int(parts[5]) / 1000.0
    except ValueError:
        return None


class EmulatorControl:
    """Calls ``/_emulator/...`` over the run's session; ``None`` means "no control API"."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, timeout: float | None = 10.0
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            async with self._session.request(
                method,
                self._base + path,
                data=jsonio.dumps(body),
                headers={"Content-Type": "application/json"},
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    return None
                decoded = jsonio.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return decoded if isinstance(decoded, dict) else None

    async def set_push(self, username: str, mode: str) -> bool:
        """Answer ``username``'s next pushes: ``approve``, ``reject``, ``never`` or ``manual``."""
        body = {"mode": mode, "after_ms": 0, "username": username}
        return await self._call("PUT", "/_emulator/push-policy", body) is not None

    async def advance_clock(self, seconds: float) -> float | None:
        """Move the emulator's clock forward; its new time, or None without a control API."""
        answer = await self._call("POST", "/_emulator/clock/advance", {"seconds": seconds})
        if answer is None or not isinstance(answer.get("time"), int | float):
            return None
        return float(answer["time"])
