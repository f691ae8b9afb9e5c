"""The login flow declared as data, checked and drawn by transitions, run as a table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowengine import machine
from flowengine.errors import ConfigError, FlowError


def test_table_comes_from_the_transitions_machine() -> None:
    """Every edge of the compiled table is an edge transitions built from TRANSITIONS."""
    built = machine.build_machine()
    for (source, trigger), dest in machine.TABLE.items():
        transitions = built.events[trigger].transitions[source]
        assert [t.dest for t in transitions] == [dest]


def test_every_declared_transition_is_in_the_table() -> None:
    """Each (source, trigger) of the declaration has exactly one compiled destination."""
    for transition in machine.TRANSITIONS:
        sources = transition["source"]
        for source in [sources] if isinstance(sources, str) else sources:
            assert machine.TABLE[(source, transition["trigger"])] == transition["dest"]


def test_the_flow_has_the_documented_states() -> None:
    """The states are the ones the brief names, with token and failed final."""
    assert set(machine.STATES) == {
        "password",
        "mfa_required",
        "authenticators",
        "associate",
        "challenge",
        "verify",
        "token",
        "failed",
    }
    assert {"token", "failed"} == machine.FINAL_STATES


def test_final_states_have_no_way_out() -> None:
    """Nothing leaves token or failed."""
    assert not [key for key in machine.TABLE if key[0] in machine.FINAL_STATES]


def test_next_state_rejects_an_edge_the_flow_lacks() -> None:
    """A trigger that is not declared from a state is a FlowError naming both."""
    with pytest.raises(FlowError, match="'enroll' from 'password'"):
        machine.next_state("password", "enroll")


@pytest.mark.parametrize(
    ("transitions", "message"),
    [
        ([{"trigger": "go", "source": "a", "dest": "nowhere"}], "unknown dest state 'nowhere'"),
        ([{"trigger": "go", "source": "zzz", "dest": "b"}], "unknown source state 'zzz'"),
        ([{"trigger": "go", "source": "a"}], "missing 'dest'"),
        ([{"trigger": "go", "source": "a", "dest": "a"}], "state 'b' cannot be reached"),
    ],
)
def test_validate_flow_names_the_bad_entry(transitions: list[dict[str, str]], message: str) -> None:
    """A wrong state name is caught at load, with the transition's index."""
    with pytest.raises(ConfigError, match=message):
        machine.validate_flow(["a", "b", "token"], transitions, initial="a")


def test_validate_flow_finds_a_dead_end() -> None:
    """A non-final state without an exit is rejected."""
    with pytest.raises(ConfigError, match="'b' has no way out"):
        machine.validate_flow(
            ["a", "b", "token"],
            [
                {"trigger": "go", "source": "a", "dest": "b"},
                {"trigger": "x", "source": "a", "dest": "token"},
            ],
            initial="a",
        )


def test_mermaid_draws_every_edge() -> None:
    """The Mermaid diagram has a line per compiled edge."""
    text = machine.mermaid()
    assert text.count("-->") >= len(machine.TABLE)
    assert "password --> mfa_required: mfa_required" in text
    assert "[*] --> password" in text


def test_graph_command_prints_mermaid() -> None:
    """`flowengine graph` prints the diagram."""
    result = CliRunner().invoke(machine.graph_command, [])
    assert result.exit_code == 0
    assert "stateDiagram-v2" in result.output


def test_graph_command_rejects_other_suffixes(tmp_path: Path) -> None:
    """Only .svg and .png are drawn."""
    result = CliRunner().invoke(machine.graph_command, ["-o", str(tmp_path / "flow.pdf")])
    assert result.exit_code != 0
    assert "use a .svg or .png" in result.output


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz ('dot') is not installed")
def test_graph_command_writes_svg(tmp_path: Path) -> None:
    """With Graphviz present, an SVG of the flow is written."""
    pytest.importorskip("graphviz")
    target = tmp_path / "flow.svg"
    result = CliRunner().invoke(machine.graph_command, ["-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "<svg" in target.read_text()
