"""``flowengine emulator``: serve the emulator until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

import attrs
import click
from aiohttp import web

from flowengine.emulator.app import create_app
from flowengine.emulator.config import EmulatorConfig
from flowengine.emulator.faults import FAULT_KINDS, Faults, Latency
from flowengine.emulator.tenant import load_tenant
from flowengine.errors import TenantFileError

__all__ = ["emulator_command", "serve"]


async def serve(config: EmulatorConfig, host: str, port: int) -> None:
    """Serve ``config`` on ``host:port``, print the URL, stop on SIGINT/SIGTERM."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        server = site._server  # the bound socket tells the real port when port is 0
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"flowengine emulator listening on http://{shown}:{bound}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        click.echo("flowengine emulator stopped")
    finally:
        await runner.cleanup()


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


@click.command(name="emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--tenant",
    "tenant_file",
    type=click.Path(dir_okay=False),
    help="Tenant file (YAML); default: the built-in default tenant.",
)
@click.option(
    "--base-url", help="Advertised base URL (iss, discovery); default: from the Host header."
)
@click.option(
    "--control/--no-control",
    default=True,
    show_default=True,
    help="Serve the test-only control API under /_emulator/ (on by default here: "
    "this command is a test tool; create_app() keeps it off unless the tenant enables it).",
)
@click.option(
    "--fault-5xx", "error_5xx", type=click.FloatRange(0, 1), help="Share of requests answered 503."
)
@click.option(
    "--fault-429",
    "rate_limit_429",
    type=click.FloatRange(0, 1),
    help="Share answered 429 (Retry-After, X-RateLimit-*).",
)
@click.option(
    "--fault-reset", "reset", type=click.FloatRange(0, 1), help="Share whose connection is reset."
)
@click.option(
    "--fault-slow",
    "slow_body",
    type=click.FloatRange(0, 1),
    help="Share whose body arrives slowly.",
)
@click.option(
    "--fault-truncated",
    "truncated",
    type=click.FloatRange(0, 1),
    help="Share whose body is cut off.",
)
@click.option(
    "--fault-malformed",
    "malformed_json",
    type=click.FloatRange(0, 1),
    help="Share answered with broken JSON.",
)
@click.option(
    "--latency",
    help="Extra latency: 20ms (fixed), 5ms..50ms (uniform) or 20ms~200ms (log-normal median~p99).",
)
@click.option(
    "--clock-skew", help="Run the emulator's clock ahead (30s) or behind (-30s) the real one."
)
@click.option("--fault-seed", type=int, help="Seed of the fault draws.")
def emulator_command(
    host: str,
    port: int,
    tenant_file: str | None,
    base_url: str | None,
    control: bool,
    latency: str | None,
    clock_skew: str | None,
    fault_seed: int | None,
    **shares: float | None,
) -> None:
    """Serve the Auth0-compatible MFA emulator until Ctrl-C.

    Without --tenant: clients flowengine/flowengine-secret and flowengine-public, API
    https://api.example.test/, users user{n}@example.test with password Passw0rd!{n}
    (n = 1..10000), MFA required, every factor enabled.
    """
    try:
        config = load_tenant(tenant_file) if tenant_file else EmulatorConfig.default()
    except TenantFileError as exc:
        raise click.ClickException(str(exc)) from None
    settings = attrs.evolve(
        config.settings,
        control_api=control,
        base_url=base_url.rstrip("/") if base_url else config.settings.base_url,
    )
    faults = _faults_from_flags(config.faults, latency, clock_skew, fault_seed, shares)
    _run(serve(attrs.evolve(config, settings=settings, faults=faults), host, port))


def _seconds(text: str, flag: str) -> float:
    from flowengine.spec import parse_duration

    negative = text.startswith("-")
    try:
        value = parse_duration(text.removeprefix("-"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None
    return -value if negative else value


def _faults_from_flags(
    faults: Faults,
    latency: str | None,
    clock_skew: str | None,
    seed: int | None,
    shares: dict[str, float | None],
) -> Faults:
    """The tenant's faults with the command line's flags laid over them."""
    changes: dict[str, Any] = {k: v for k, v in shares.items() if v is not None}
    merged = {kind: float(shares.get(kind) or getattr(faults, kind)) for kind in FAULT_KINDS}
    if sum(merged.values()) > 1:
        raise click.BadParameter("the fault shares add up to more than 1", param_hint="--fault-*")
    if latency is not None:
        if "~" in latency:
            low, high = latency.split("~", 1)
            changes["latency"] = Latency(
                distribution="lognormal",
                low=_seconds(low, "--latency"),
                high=_seconds(high, "--latency"),
            )
        elif ".." in latency:
            low, high = latency.split("..", 1)
            changes["latency"] = Latency(
                distribution="uniform",
                low=_seconds(low, "--latency"),
                high=_seconds(high, "--latency"),
            )
        else:
            changes["latency"] = Latency(low=_seconds(latency, "--latency"))
    if clock_skew is not None:
        changes["clock_skew"] = _seconds(clock_skew, "--clock-skew")
    if seed is not None:
        changes["seed"] = seed
    return attrs.evolve(faults, **changes)
