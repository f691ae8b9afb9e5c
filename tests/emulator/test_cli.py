"""``flowengine emulator`` as a subprocess: prints its URL, serves, stops cleanly on SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowengine.emulator.cli import emulator_command

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "flowengine", "emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_serves_and_stops_on_sigint() -> None:
    """The command prints its URL, answers requests, and exits 0 without a traceback on SIGINT."""
    port = _free_port()
    process = _start("--port", str(port))
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line == f"flowengine emulator listening on http://127.0.0.1:{port}"
        url = line.rsplit(" ", 1)[1]
        with urllib.request.urlopen(url + "/.well-known/openid-configuration", timeout=10) as reply:
            assert reply.status == 200
        with urllib.request.urlopen(
            url + "/_emulator/users/user1%40example.test", timeout=10
        ) as reply:
            assert reply.status == 200
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "Traceback" not in err
    assert "stopped" in out


def test_no_control_flag() -> None:
    """--no-control turns the control API off."""
    port = _free_port()
    process = _start(
        "--port", str(port), "--no-control", "--base-url", "https://tenant.example.test/"
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[1]
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url + "/_emulator/users/user1%40example.test", timeout=10)
        assert info.value.code == 404
        info.value.close()
        with urllib.request.urlopen(url + "/.well-known/openid-configuration", timeout=10) as reply:
            assert b'"issuer":"https://tenant.example.test/"' in reply.read()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def test_bad_tenant_file_is_one_clear_error(tmp_path: Path) -> None:
    """A bad tenant file exits 1 with the file, key and expectation, no traceback."""
    path = tmp_path / "tenant.yaml"
    path.write_text("settings:\n  mfa_required: maybe\n")
    result = CliRunner().invoke(emulator_command, ["--tenant", str(path)])
    assert result.exit_code == 1
    assert f"{path}: settings.mfa_required: expected true or false" in result.output
    assert "Traceback" not in result.output


def test_port_in_use(tmp_path: Path) -> None:
    """A busy port exits 1 with a message instead of a traceback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = CliRunner().invoke(emulator_command, ["--port", str(port)])
    assert result.exit_code == 1
    assert "cannot listen" in result.output


def test_help_mentions_control_default() -> None:
    """--help says the control API is on by default for this command."""
    result = CliRunner().invoke(emulator_command, ["--help"])
    assert result.exit_code == 0
    assert "--control / --no-control" in result.output
    assert "test tool" in result.output
