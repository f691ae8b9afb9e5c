"""Where the codes of SMS, voice and email factors come from.

A :class:`CodeSource` returns the code a user just received on a channel. Three ship here:
the emulator's control API (:class:`EmulatorInbox`, for tests and load runs), a caller's
async function (:class:`CallbackCodeSource`), and a person at a terminal
(:class:`PromptCodeSource`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import quote

import aiohttp
import click

from flowengine import jsonio
from flowengine.errors import FactorError

__all__ = ["CallbackCodeSource", "CodeSource", "EmulatorInbox", "PromptCodeSource"]


class CodeSource(Protocol):
    """Gives the code that was just sent to a user."""

    async def code(self, username: str, channel: str) -> str:
        """The newest code sent to ``username`` on ``channel`` (``sms``, ``voice``, ``email``)."""
        ...


class EmulatorInbox:
    """Reads codes from the flowengine emulator's control API (``/_emulator/inbox``)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")

    async def code(self, username: str, channel: str) -> str:
        url = f"{self._base}/_emulator/inbox/{quote(username, safe='')}"
        try:
            async with self._session.get(url, params={"channel": channel}) as response:
                body = await response.read()
                status = response.status
        except aiohttp.ClientError as exc:
            raise FactorError(f"emulator inbox unreachable: {exc}", factor=channel) from exc
        if status != 200:
            raise FactorError(
                f"emulator inbox answered {status} (is its control API enabled?)", factor=channel
            )
        try:
            messages = jsonio.loads(body)["messages"]
            return str(messages[-1]["code"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise FactorError(
                f"emulator inbox has no {channel} code for this user", factor=channel
            ) from exc


class CallbackCodeSource:
    """Asks a caller's async function ``(username, channel) -> code``."""

    def __init__(self, callback: Callable[[str, str], Awaitable[str]]) -> None:
        self._callback = callback

    async def code(self, username: str, channel: str) -> str:
        value: object = await self._callback(username, channel)
        if not isinstance(value, str) or not value.strip():
            raise FactorError("the code callback returned no code", factor=channel)
        return value.strip()


class PromptCodeSource:
    """Asks a person at the terminal (input hidden)."""

    async def code(self, username: str, channel: str) -> str:
        prompt = f"Code sent by {channel} to {username}"
        value: str = await asyncio.to_thread(click.prompt, prompt, hide_input=True, err=True)
        return value.strip()
