"""``flowengine validate SCENARIO...``: check scenario files without running them.

Prints ``ok: FILE (name, N users, model M, J journeys)`` per valid file, and one error line
per invalid file on stderr; exits BAD_INPUT (2) if any file is invalid. Factors that other
packages ship under the ``flowengine.factors`` entry point group are loaded first.
"""

from __future__ import annotations

from pathlib import Path

import click

from flowengine.errors import FactorError, ScenarioError
from flowengine.exitcodes import BAD_INPUT
from flowengine.factors import load_entry_points
from flowengine.spec import Scenario, load_scenario

__all__ = ["summary", "validate_command"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary(scenario: Scenario) -> str:
    """``name, 500 users, model closed, 2 journeys`` for a validated scenario."""
    model = f"model {scenario.load.model}" if scenario.load is not None else "no load"
    return ", ".join(
        (
            scenario.name,
            _plural(scenario.users.count, "user"),
            model,
            _plural(len(scenario.journeys), "journey"),
        )
    )


@click.command(name="validate")
@click.argument(
    "scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.pass_context
def validate_command(ctx: click.Context, scenarios: tuple[Path, ...]) -> None:
    """Check scenario files without running them (exit 2 if one is invalid)."""
    try:
        load_entry_points()  # so that scenarios may name third-party factors
    except FactorError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(int(BAD_INPUT))
    failed = False
    for path in scenarios:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            failed = True
            click.echo(f"error: {exc}", err=True)
            continue
        click.echo(f"ok: {path} ({summary(scenario)})")
    if failed:
        ctx.exit(int(BAD_INPUT))
