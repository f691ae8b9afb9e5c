"""Fault injection: the emulator misbehaving on purpose, as a real tenant sometimes does.

Set in the tenant file's ``faults`` section or with ``flowengine emulator --fault-...``
flags. Every Auth0 path may get a latency (fixed, uniform or log-normal), and a share of
requests is answered with a ``5xx``, a ``429`` (with ``Retry-After`` and ``X-RateLimit-*``),
a reset connection, a slow body, a truncated body or malformed JSON. The ``5xx``, ``429``
and reset faults strike *before* the request is processed; slow, truncated and malformed
answers come *after* it was (a code in it is spent), as a real outage would. ``clock_skew``
runs the emulator's wall clock ahead (or behind) the client's. The control API
(``/_emulator/``) is never faulted.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import attrs
from aiohttp import web
from aiohttp.typedefs import Middleware

from flowengine.clock import Clock
from flowengine.jsonio import dumps

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

__all__ = ["FAULT_KINDS", "Faults", "Latency", "SkewedClock", "fault_middleware", "parse_faults"]

FAULT_KINDS = ("error_5xx", "rate_limit_429", "reset", "slow_body", "truncated", "malformed_json")
"""The per-request faults, drawn in this order from one uniform number."""


@attrs.frozen(kw_only=True)
class Latency:
    """Extra time before each answer."""

    distribution: Literal["fixed", "uniform", "lognormal"] = "fixed"
    low: float = 0.0
    """fixed: the delay; uniform: the smallest delay; lognormal: the median (seconds)."""
    high: float = 0.0
    """uniform: the largest delay; lognormal: the 99th percentile (seconds)."""

    def sample(self, rng: random.Random) -> float:
        """One delay in seconds."""
        if self.distribution == "fixed":
            return self.low
        if self.distribution == "uniform":
            return rng.uniform(self.low, self.high)
        if self.low <= 0:
            return 0.0
        sigma = math.log(max(self.high, self.low) / self.low) / 2.326  # z(0.99)
        return rng.lognormvariate(math.log(self.low), sigma)


@attrs.frozen(kw_only=True)
class Faults:
    """What goes wrong, and how often (shares of requests, 0 to 1)."""

    latency: Latency = Latency()
    error_5xx: float = 0.0
    rate_limit_429: float = 0.0
    reset: float = 0.0
    slow_body: float = 0.0
    truncated: float = 0.0
    malformed_json: float = 0.0
    clock_skew: float = 0.0
    """Seconds the emulator's wall clock runs ahead of the real one (negative: behind)."""
    retry_after: int = 1
    """Seconds a faulted 429 asks the client to wait."""
    slow_body_seconds: float = 1.0
    """How long a slow body takes to arrive."""
    seed: int | None = None
    """Seed of the fault draws (None: different every run)."""

    @property
    def active(self) -> bool:
        """Whether any request fault or latency is set."""
        return (
            self.latency.high > 0
            or self.latency.low > 0
            or any(getattr(self, kind) > 0 for kind in FAULT_KINDS)
        )


class SkewedClock:
    """Another clock whose wall time is ``skew`` seconds off."""

    def __init__(self, base: Clock, skew: float) -> None:
        self._base = base
        self.skew = skew

    def time(self) -> float:
        return self._base.time() + self.skew

    def monotonic(self) -> float:
        return self._base.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)


def _error(
    status: int, error: str, description: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps({"error": error, "error_description": description}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def _slow(request: web.Request, response: web.Response, seconds: float) -> web.StreamResponse:
    body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    pieces = 4
    step = max(1, math.ceil(len(body) / pieces))
    for start in range(0, len(body), step):
        await asyncio.sleep(seconds / pieces)
        await stream.write(body[start : start + step])
    await stream.write_eof()
    return stream


async def _truncated(request: web.Request, response: web.Response) -> web.StreamResponse:
    body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body) + 16  # promise more than is sent
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return stream


def fault_middleware(faults: Faults, clock: Clock) -> Middleware:
    """The aiohttp middleware that injects ``faults`` (outermost, before rate limits)."""
    rng = random.Random(faults.seed)
    latency = faults.latency
    thresholds: list[tuple[float, str]] = []
    total = 0.0
    for kind in FAULT_KINDS:
        share = float(getattr(faults, kind))
        if share > 0:
            total += share
            thresholds.append((total, kind))

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        delay = latency.sample(rng)
        if delay > 0:
            await asyncio.sleep(delay)
        draw = rng.random()
        kind = next((k for limit, k in thresholds if draw < limit), None)
        if kind is None:
            return await handler(request)
        if kind == "error_5xx":
            return _error(503, "temporarily_unavailable", "The service is temporarily unavailable.")
        if kind == "rate_limit_429":
            reset = int(clock.time()) + faults.retry_after
            return _error(
                429,
                "too_many_requests",
                "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and"
                " X-RateLimit-Reset headers.",
                {
                    "Retry-After": str(faults.retry_after),
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                },
            )
        if kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never sent: the connection is gone
        response = await handler(request)
        if not isinstance(response, web.Response):
            return response
        if kind == "malformed_json":
            body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b"{}"
            response.body = body[: max(1, len(body) // 2)] + b"\x00"
            return response
        if kind == "truncated":
            return await _truncated(request, response)
        return await _slow(request, response, faults.slow_body_seconds)

    return inject


def parse_faults(data: Any, fail: Any, path: str = "faults") -> Faults:
    """``Faults`` from a tenant file's ``faults`` mapping; ``fail(path, expected, value)``
    builds the error to raise for a bad value."""
    if not isinstance(data, Mapping):
        raise fail(path, "a mapping of fault shares", type(data).__name__)
    allowed = {*FAULT_KINDS, "latency", "clock_skew", "retry_after", "slow_body_seconds", "seed"}
    for key in data:
        if key not in allowed:
            raise fail(f"{path}.{key}", f"one of {', '.join(sorted(allowed))}", key)
    found: dict[str, Any] = {}
    for kind in FAULT_KINDS:
        if kind in data:
            value = data[kind]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise fail(f"{path}.{kind}", "a share of requests between 0 and 1", value)
            found[kind] = float(value)
    if sum(found.values()) > 1:
        raise fail(path, "shares of requests that add up to at most 1", sum(found.values()))
    for key in ("clock_skew", "slow_body_seconds"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail(f"{path}.{key}", "a number of seconds", value)
            found[key] = float(value)
    for key in ("retry_after", "seed"):
        if key in data and data[key] is not None:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise fail(f"{path}.{key}", "a whole number of at least 0", value)
            found[key] = value
    if "latency" in data:
        found["latency"] = _latency(data["latency"], fail, f"{path}.latency")
    return Faults(**found)


def _latency(value: Any, fail: Any, path: str) -> Latency:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise fail(path, "a delay of at least 0 seconds", value)
        return Latency(distribution="fixed", low=float(value))
    if not isinstance(value, Mapping):
        raise fail(path, "seconds, or {distribution, low, high}", value)
    distribution = value.get("distribution", "uniform")
    if distribution not in ("fixed", "uniform", "lognormal"):
        raise fail(f"{path}.distribution", "fixed, uniform or lognormal", distribution)
    numbers = {}
    for key in ("low", "high"):
        item = value.get(key, 0.0)
        if isinstance(item, bool) or not isinstance(item, int | float) or item < 0:
            raise fail(f"{path}.{key}", "a number of seconds, at least 0", item)
        numbers[key] = float(item)
    if distribution != "fixed" and numbers["high"] < numbers["low"]:
        raise fail(f"{path}.high", f"at least low ({numbers['low']:g})", numbers["high"])
    return Latency(distribution=distribution, **numbers)
