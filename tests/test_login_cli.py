"""`flowengine login` against `flowengine emulator`, as a new user would run them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """A `flowengine emulator` process on a free port."""
    with subprocess.Popen(
        [sys.executable, "-m", "flowengine", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:\d+", line)
            assert match, f"no URL in {line!r}"
            yield match.group(0)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)


def run_login(url: str, store: Path, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    """Run `flowengine login` with the password in the environment."""
    env = {**os.environ, "FLOWENGINE_PASSWORD": password}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "flowengine",
            "login",
            "--domain",
            url,
            "--store",
            f"sqlite:///{store}",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_otp_login_enrolls_then_challenges(emulator_url: str, tmp_path: Path) -> None:
    """The first OTP login enrolls, the second (same store) challenges; no secret printed."""
    store = tmp_path / "creds.db"
    first = run_login(
        emulator_url,
        store,
        "-u",
        "user101@example.test",
        "--factor",
        "otp",
        password="Passw0rd!101",
    )
    assert first.returncode == 0, first.stderr
    assert "success with otp (enrolled now)" in first.stdout
    second = run_login(
        emulator_url,
        store,
        "-u",
        "user101@example.test",
        "--factor",
        "otp",
        password="Passw0rd!101",
    )
    assert second.returncode == 0, second.stderr
    assert "success with otp in" in second.stdout and "challenge" in second.stdout
    for output in (first.stdout + first.stderr, second.stdout + second.stderr):
        assert "Passw0rd!101" not in output and "eyJ" not in output and "Fe26" not in output


def test_sms_login_reads_the_code_from_the_emulator(emulator_url: str, tmp_path: Path) -> None:
    """An SMS login enrolls with --phone and gets its code from the control API."""
    result = run_login(
        emulator_url,
        tmp_path / "c.db",
        "-u",
        "user102@example.test",
        "--factor",
        "sms",
        "--phone",
        "+15550000102",
        password="Passw0rd!102",
    )
    assert result.returncode == 0, result.stderr
    assert "success with sms (enrolled now)" in result.stdout
    assert "grant:mfa-oob" in result.stdout


def test_json_prints_the_token_set(emulator_url: str, tmp_path: Path) -> None:
    """--json prints the tokens themselves, and only then."""
    result = run_login(
        emulator_url,
        tmp_path / "c.db",
        "-u",
        "user103@example.test",
        "--factor",
        "email",
        "--json",
        password="Passw0rd!103",
    )
    assert result.returncode == 0, result.stderr
    assert '"access_token": "eyJ' in result.stdout and '"token_type"' in result.stdout


def test_wrong_password_exits_non_zero(emulator_url: str, tmp_path: Path) -> None:
    """A failed login says why and exits 1."""
    result = run_login(
        emulator_url,
        tmp_path / "c.db",
        "-u",
        "user104@example.test",
        "--factor",
        "otp",
        password="wrong",
    )
    assert result.returncode == 1
    assert "invalid_credentials" in result.stdout
    assert "wrong" not in result.stdout.replace("Wrong email", "")


def test_unknown_factor_is_a_usage_error(emulator_url: str, tmp_path: Path) -> None:
    """A factor that does not exist is refused by the command line, naming the choices."""
    result = run_login(emulator_url, tmp_path / "c.db", "-u", "u", "--factor", "fax", password="x")
    assert result.returncode == 2
    assert "'fax' is not one of" in result.stderr


def test_ca_bundle_must_exist(emulator_url: str, tmp_path: Path) -> None:
    """--ca-bundle names a PEM file that must exist."""
    result = run_login(
        emulator_url,
        tmp_path / "c.db",
        "-u",
        "user105@example.test",
        "--ca-bundle",
        str(tmp_path / "missing.pem"),
        password="x",
    )
    assert result.returncode == 2 and "missing.pem" in result.stderr
