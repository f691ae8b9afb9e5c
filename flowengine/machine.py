"""The login flow as a declarative state machine.

The flow is declared once, as data (:data:`STATES`, :data:`TRANSITIONS`, in transitions'
own keys). At import, :func:`build_machine` hands it to the ``transitions`` library, which
checks it and can draw it; :func:`compile_table` then reads the transitions that library
built into a plain ``{(state, trigger): dest}`` table, and that table is what each login
runs. Measured here (reference/measurements.md): an ``AsyncMachine`` per login, or one
shared machine with ``add_model``, multiplies the client's CPU per flow by 2.2-2.5 and
swallows cancellation; a dict lookup costs ~1.6 µs per flow. So the library validates and
draws, and the hot path looks up.

The runner (:mod:`flowengine.engine`) awaits all I/O between triggers; nothing here does I/O.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import click
from transitions import Machine

from flowengine.errors import ConfigError, FlowError

__all__ = [
    "FINAL_STATES",
    "FlowRun",
    "INITIAL_STATE",
    "STATES",
    "TABLE",
    "TRANSITIONS",
    "build_machine",
    "compile_table",
    "graph_command",
    "mermaid",
    "next_state",
    "validate_flow",
]

STATES: Final[tuple[str, ...]] = (
    "password",
    "mfa_required",
    "authenticators",
    "associate",
    "challenge",
    "verify",
    "token",
    "failed",
)
"""Every state of a login. ``token`` and ``failed`` are final."""

INITIAL_STATE: Final = "password"
FINAL_STATES: Final[frozenset[str]] = frozenset({"token", "failed"})

_MFA_STATES = ["mfa_required", "authenticators", "associate", "challenge", "verify"]

TRANSITIONS: Final[tuple[Mapping[str, Any], ...]] = (
    # The password grant either issues tokens or asks for MFA.
    {"trigger": "tokens_issued", "source": ["password", "verify"], "dest": "token"},
    {"trigger": "mfa_required", "source": ["password", "verify"], "dest": "mfa_required"},
    # With an mfa_token, list what the user has enrolled.
    {"trigger": "list_authenticators", "source": "mfa_required", "dest": "authenticators"},
    # Nothing active: enroll. Something active: challenge it, or verify directly
    # (a recovery code needs no challenge).
    {"trigger": "enroll", "source": "authenticators", "dest": "associate"},
    {"trigger": "challenge", "source": "authenticators", "dest": "challenge"},
    {"trigger": "verify", "source": ["authenticators", "associate", "challenge"], "dest": "verify"},
    # Push pending, slow_down, or the next OTP window: try the grant again.
    {"trigger": "retry", "source": "verify", "dest": "verify"},
    # An expired mfa_token: start over from the password grant (bounded by the engine).
    {"trigger": "restart", "source": _MFA_STATES, "dest": "password"},
    {"trigger": "fail", "source": ["password", *_MFA_STATES], "dest": "failed"},
)
"""The flow, in transitions' keys: ``trigger``, ``source``, ``dest``."""


def validate_flow(
    states: Sequence[str], transitions: Sequence[Mapping[str, Any]], *, initial: str
) -> None:
    """Check names eagerly (transitions checks them lazily) and that every state is live.

    Raises :class:`ConfigError` naming the transition index and the bad name.
    """
    known = set(states)
    if initial not in known:
        raise ConfigError(f"initial state {initial!r} is not a state", path="initial")
    exits: dict[str, int] = dict.fromkeys(states, 0)
    reached = {initial}
    for index, transition in enumerate(transitions):
        where = f"transitions[{index}]"
        for key in ("trigger", "source", "dest"):
            if key not in transition:
                raise ConfigError(f"missing {key!r}", path=where)
        sources = transition["source"]
        for source in [sources] if isinstance(sources, str) else sources:
            if source not in known:
                raise ConfigError(f"unknown source state {source!r}", path=f"{where}.source")
            exits[source] += 1
        if transition["dest"] not in known:
            raise ConfigError(f"unknown dest state {transition['dest']!r}", path=f"{where}.dest")
        reached.add(transition["dest"])
    for state in states:
        if state not in reached:
            raise ConfigError(f"state {state!r} cannot be reached", path="states")
        if state not in FINAL_STATES and exits[state] == 0:
            raise ConfigError(f"state {state!r} has no way out", path="states")


class FlowRun:
    """The model transitions drives when drawing; the engine's runs carry only a state."""

    state: str


def build_machine(
    model: object | None = None,
    *,
    graph_engine: Literal["mermaid", "graphviz"] | None = None,
    title: str = "login",
) -> Machine:
    """The transitions machine for :data:`STATES`/:data:`TRANSITIONS`.

    With ``graph_engine`` (``"mermaid"`` or ``"graphviz"``) it is a ``GraphMachine``.
    """
    validate_flow(STATES, TRANSITIONS, initial=INITIAL_STATE)
    kwargs: dict[str, Any] = {
        "model": model if model is not None else FlowRun(),
        "states": list(STATES),
        "transitions": [dict(t) for t in TRANSITIONS],
        "initial": INITIAL_STATE,
        "auto_transitions": False,
    }
    if graph_engine is None:
        return Machine(**kwargs)
    from transitions.extensions import GraphMachine

    return GraphMachine(**kwargs, graph_engine=graph_engine, title=title, show_conditions=False)


def compile_table(machine: Machine) -> dict[tuple[str, str], str]:
    """Read the machine's transitions into a ``{(state, trigger): dest}`` table."""
    table: dict[tuple[str, str], str] = {}
    for trigger, event in machine.events.items():
        for source, transitions in event.transitions.items():
            if len(transitions) != 1:
                raise ConfigError(
                    f"trigger {trigger!r} from {source!r} has {len(transitions)} destinations;"
                    " the flow must be deterministic"
                )
            dest = transitions[0].dest
            if dest is None:
                raise ConfigError(f"trigger {trigger!r} from {source!r} has no destination")
            table[(source, trigger)] = dest
    return table


TABLE: Final[Mapping[tuple[str, str], str]] = compile_table(build_machine())
"""The compiled flow every login runs."""


def next_state(state: str, trigger: str) -> str:
    """The state after ``trigger`` fires in ``state``; FlowError if the flow has no such edge."""
    try:
        return TABLE[(state, trigger)]
    except KeyError:
        message = f"the flow has no transition {trigger!r} from {state!r}"
        raise FlowError(message, state=state) from None


def mermaid() -> str:
    """The flow as a Mermaid state diagram, drawn by transitions."""
    model = FlowRun()
    build_machine(model, graph_engine="mermaid")
    graph: Any = model.get_graph()  # type: ignore[attr-defined]
    return str(graph.draw(None))


@click.command("graph")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write SVG or PNG (by the file's suffix; needs Graphviz) instead of printing Mermaid.",
)
def graph_command(output: Path | None) -> None:
    """Print the login flow's state machine as Mermaid, or draw it to SVG/PNG with Graphviz."""
    if output is None:
        click.echo(mermaid())
        return
    suffix = output.suffix.lower().lstrip(".")
    if suffix not in {"svg", "png"}:
        raise click.BadParameter(f"{output}: use a .svg or .png file name", param_hint="--output")
    if shutil.which("dot") is None:
        raise click.ClickException(
            "drawing SVG/PNG needs Graphviz ('dot' was not found): install it"
            " (e.g. apt-get install graphviz) or omit --output to print Mermaid"
        )
    try:
        import graphviz  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "drawing SVG/PNG needs the 'graphviz' Python package: pip install graphviz"
        ) from None
    model = FlowRun()
    build_machine(model, graph_engine="graphviz")
    graph: Any = model.get_graph()  # type: ignore[attr-defined]
    graph.draw(str(output), format=suffix, prog="dot")
    click.echo(f"wrote {output}")
