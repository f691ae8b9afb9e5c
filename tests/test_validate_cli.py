"""``flowengine validate``: one ok line per good file, one error per bad file, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flowengine.cli import main
from flowengine.errors import FactorError
from flowengine.exitcodes import BAD_INPUT
from flowengine.spec import load_scenario
from flowengine.validate_cli import summary, validate_command

DATA = Path(__file__).parent / "data" / "scenarios"
GOOD = DATA / "journeys.yaml"
BROKEN = DATA / "broken_journey.yaml"
SECRET = "s3cr3t-Xyzzy-9f1c"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_ok_line(runner: CliRunner) -> None:
    """A good file prints its summary."""
    result = runner.invoke(validate_command, [str(GOOD)])
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        f"ok: {GOOD} (journeys, 100 users, model closed, 3 journeys)\n",
        "",
    )


def test_several_files(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file gets its line."""
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", SECRET)
    result = runner.invoke(validate_command, [str(GOOD), str(DATA / "load.yaml")])
    assert result.exit_code == 0
    assert (
        result.stdout.splitlines()[1]
        == f"ok: {DATA / 'load.yaml'} (tenant-ramp, 3 users, model open, 0 journeys)"
    )


def test_error_line_and_exit_code(runner: CliRunner) -> None:
    """A broken file prints one error on stderr and exits BAD_INPUT."""
    result = runner.invoke(validate_command, [str(BROKEN)])
    assert (result.exit_code, result.stdout) == (BAD_INPUT, "")
    assert result.stderr == (
        f"error: {BROKEN}: journeys[0].steps[3].enroll: unknown factor 'smss';"
        " expected one of email, otp, push, recovery-code, sms, voice\n"
    )


def test_bad_input_is_two(runner: CliRunner) -> None:
    """The bad-input code is 2."""
    assert runner.invoke(validate_command, [str(BROKEN)]).exit_code == 2


def test_mixed_files_check_all(runner: CliRunner) -> None:
    """Good files are still reported when another is broken."""
    result = runner.invoke(validate_command, [str(BROKEN), str(GOOD)])
    assert result.exit_code == BAD_INPUT
    assert result.stdout.startswith(f"ok: {GOOD}")
    assert result.stderr.startswith(f"error: {BROKEN}")


def test_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    """A missing file is bad input, named."""
    result = runner.invoke(validate_command, [str(tmp_path / "nope.yaml")])
    assert result.exit_code == BAD_INPUT
    assert (
        result.stderr
        == f"error: {tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory\n"
    )


def test_missing_environment_variable(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset secret is reported with its key path."""
    monkeypatch.delenv("AUTH0_CLIENT_SECRET", raising=False)
    result = runner.invoke(validate_command, [str(DATA / "load.yaml")])
    assert result.exit_code == BAD_INPUT
    assert (
        "target.client_secret: environment variable AUTH0_CLIENT_SECRET is not set" in result.stderr
    )


def test_secret_not_printed(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client secret from the environment is never printed."""
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", SECRET)
    result = runner.invoke(validate_command, [str(DATA / "load.yaml")])
    assert SECRET not in result.stdout + result.stderr


def test_needs_a_file(runner: CliRunner) -> None:
    """No argument is a usage error."""
    result = runner.invoke(validate_command, [])
    assert result.exit_code == BAD_INPUT
    assert "Missing argument" in result.stderr


def test_through_the_main_group(runner: CliRunner) -> None:
    """flowengine validate resolves lazily to this command."""
    result = runner.invoke(main, ["validate", str(GOOD)])
    assert (result.exit_code, result.stdout.startswith("ok: ")) == (0, True)


def test_broken_factor_plugin(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A factor plugin that fails to load is bad input."""

    def broken() -> list[str]:
        raise FactorError("factor entry point 'x' (x:X) failed to load: boom")

    monkeypatch.setattr("flowengine.validate_cli.load_entry_points", broken)
    result = runner.invoke(validate_command, [str(GOOD)])
    assert (result.exit_code, result.stdout) == (BAD_INPUT, "")
    assert result.stderr == "error: factor entry point 'x' (x:X) failed to load: boom\n"


def test_summary_without_load(tmp_path: Path) -> None:
    """A journeys-only scenario says so."""
    path = tmp_path / "j.yaml"
    path.write_text("journeys: [{name: j, users: [user1@example.test], steps: [refresh]}]\n")
    assert summary(load_scenario(path, env={})) == "j, 10000 users, no load, 1 journey"
