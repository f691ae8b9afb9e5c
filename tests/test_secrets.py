"""No secret of a whole scenario run shows up anywhere a person or a file can see."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import structlog
from rich.console import Console

from flowengine import jsonio
from flowengine.api import AuthClient
from flowengine.credstore import SQLiteCredentials
from flowengine.log import configure_logging
from flowengine.run_cli import print_summary
from flowengine.runner import Runner
from flowengine.spec import parse_scenario

SECRET_KEYS = {
    "password",
    "client_secret",
    "mfa_token",
    "oob_code",
    "binding_code",
    "otp",
    "recovery_code",
    "recovery_codes",
    "access_token",
    "id_token",
    "refresh_token",
    "secret",
    "barcode_uri",
}


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key), item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _secrets_in(body: bytes | None, content_type: str = "") -> set[str]:
    if not body:
        return set()
    try:
        decoded: Any = jsonio.loads(body)
    except ValueError:
        decoded = dict(parse_qsl(body.decode(errors="replace")))
    found: set[str] = set()
    for key, value in _walk(decoded):
        if key in SECRET_KEYS:
            values = value if isinstance(value, list) else [value]
            found.update(str(v) for v in values if isinstance(v, str) and len(v) >= 6)
    return found


def _shows(text: str, secret: str) -> bool:
    """Whether ``secret`` appears in ``text``; a numeric code only as a number of its own
    (not inside a longer number or a timestamp's fraction of a second)."""
    if not secret.isdigit():
        return secret in text
    return re.search(rf"(?<![\d.]){secret}(?!\d)", text) is not None


def _report_files(directory: Path) -> dict[str, str]:
    """The text of every report file written under ``directory``."""
    return {
        f"{path.parent.name}/{path.name}": path.read_text() for path in directory.glob("report*/*")
    }


@pytest.fixture
def wire_secrets(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every secret that crossed the wire in either direction during the test."""
    seen: set[str] = set()
    original = AuthClient._call

    async def spy(
        self: AuthClient,
        method: str,
        url: Any,
        endpoint: str,
        headers: Mapping[str, str],
        data: bytes | None = None,
    ) -> Any:
        seen.update(_secrets_in(data))
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            seen.add(authorization.removeprefix("Bearer "))
        answer = await original(self, method, url, endpoint, headers, data)
        seen.update(_secrets_in(answer[1]))
        return answer

    monkeypatch.setattr(AuthClient, "_call", spy)
    return seen


async def test_a_whole_run_leaks_no_secret(
    tmp_path: Path, wire_secrets: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs (at debug), the summary, stdout/stderr and every report file hold no secret."""
    store = tmp_path / "creds.db"

    def scenario(factors: dict[str, int]) -> Any:
        return parse_scenario(
            {
                "users": {
                    "pattern": "user{n}@example.test",
                    "password": "Pw-${PW}-{n}",
                    "count": 40,
                    "phone": "+1555{n:07d}",
                },
                "factors": factors,
                "push": {"mode": "approve", "after": "10ms"},
                "load": {"model": "closed", "users": 10, "iterations": 40},
                "credentials": f"sqlite:///{store}",
            },
            source="secrets.yaml",
            base_dir=tmp_path,
            env={"PW": "Sup3r-S3cret"},
        )

    logs = io.StringIO()
    summary = io.StringIO()
    configure_logging("debug", stream=logs)
    try:
        # Enroll every factor, then log everyone in with the recovery code (rotation).
        enroll = {"otp": 2, "sms": 1, "voice": 1, "email": 1, "push": 1}
        for number, factors in enumerate((enroll, {"recovery-code": 1})):
            report = tmp_path / f"report{number}"
            result = await Runner(scenario(factors), report_dir=report).run()
            print_summary(result, Console(file=summary, width=200))
            assert result.snapshot.succeeded == 40
    finally:
        structlog.reset_defaults()

    with SQLiteCredentials(store) as credentials:
        for record in credentials.all():
            wire_secrets.update(s for s in (record.otp_secret, record.recovery_code) if s)
    wire_secrets.update({"flowengine-secret", *(f"Pw-Sup3r-S3cret-{n}" for n in range(1, 41))})
    kinds = {s[:4] for s in wire_secrets}
    assert "eyJh" in kinds and "Fe26" in kinds, "the spy saw tokens and mfa_tokens"
    assert len(wire_secrets) > 200

    captured = capsys.readouterr()
    places = {
        "logs": logs.getvalue(),
        "summary": summary.getvalue(),
        "stdout": captured.out,
        "stderr": captured.err,
        **_report_files(tmp_path),
    }
    assert "login.step" in places["logs"], "debug events were emitted"
    for name, text in places.items():
        leaked = sorted(secret for secret in wire_secrets if _shows(text, secret))
        assert not leaked, f"{name} shows {len(leaked)} secrets, e.g. {leaked[0][:6]}…"
