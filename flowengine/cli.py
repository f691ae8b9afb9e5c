"""The ``flowengine`` command: each subcommand lives in the module that owns it.

Commands are imported lazily, so ``flowengine emulator`` does not pay for the engine's
imports, and a broken optional module breaks only its own command.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = ["COMMANDS", "main"]

#: command name -> "module:attribute" of a ``click.Command``.
COMMANDS: dict[str, str] = {
    "emulator": "flowengine.emulator.cli:emulator_command",
    "login": "flowengine.login_cli:login_command",
    "run": "flowengine.run_cli:run_command",
    "validate": "flowengine.validate_cli:validate_command",
    "graph": "flowengine.machine:graph_command",
    "store": "flowengine.store_cli:store_command",
}

_HELP: dict[str, str] = {
    "emulator": "Serve the Auth0-compatible MFA emulator.",
    "login": "Log one user in through the password grant and MFA.",
    "run": "Run a scenario file (load or journeys).",
    "validate": "Check a scenario file without running it.",
    "graph": "Print the login flow's state machine (Mermaid, SVG or PNG).",
    "store": "List, export and import the credential store.",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("flowengine"):
                return _unavailable(cmd_name)
            raise
        command = getattr(module, attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: Any) -> None:
        rows = [(name, _HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str) -> click.Command:
    @click.command(name=name, help=_HELP.get(name, ""))
    def command() -> None:
        raise click.ClickException(f"'flowengine {name}' is not available in this build yet")

    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flowengine")
def main() -> None:
    """flowengine: drive Auth0's password grant with MFA, for one user or thousands."""
