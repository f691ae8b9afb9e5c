"""`flowengine store`: list, export (masked or not) and import."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from flowengine.credentials import StoredAuthenticator, UserCredentials
from flowengine.credstore import SQLiteCredentials
from flowengine.store_cli import store_command

SECRET, CODE = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "ABCDEFGHJKLMNPQRSTUVWXYZ"


def _store(tmp_path: Path) -> str:
    with SQLiteCredentials(tmp_path / "c.db") as store:
        store.put(
            UserCredentials(
                username="alice@example.test",
                otp_secret=SECRET,
                recovery_code=CODE,
                authenticators=(StoredAuthenticator(id="totp|dev_1", factor="otp"),),
            )
        )
    return f"sqlite:///{tmp_path / 'c.db'}"


def test_list_shows_factors_but_no_secret(tmp_path: Path) -> None:
    """A line per user naming what is kept, never the values."""
    result = CliRunner().invoke(store_command, ["list", "--store", _store(tmp_path)])
    assert result.exit_code == 0
    assert result.output == "alice@example.test\totp\totp-secret recovery-code\n"


def test_export_masks_secrets_unless_asked(tmp_path: Path) -> None:
    """The default export holds no secret; --include-secrets does."""
    spec = _store(tmp_path)
    masked, full = tmp_path / "masked.jsonl", tmp_path / "full.jsonl"
    assert (
        CliRunner().invoke(store_command, ["export", "--store", spec, str(masked)]).exit_code == 0
    )
    args = ["export", "--store", spec, "--include-secrets", str(full)]
    assert CliRunner().invoke(store_command, args).exit_code == 0
    assert SECRET not in masked.read_text() and CODE not in masked.read_text()
    assert SECRET in full.read_text()
    assert oct(full.stat().st_mode & 0o777) == "0o600"


def test_import_restores_an_export_into_another_store(tmp_path: Path) -> None:
    """An export with secrets imports into a fresh store, record for record."""
    spec = _store(tmp_path)
    full = tmp_path / "full.jsonl"
    CliRunner().invoke(store_command, ["export", "--store", spec, "--include-secrets", str(full)])
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = CliRunner().invoke(store_command, ["import", "--store", other, str(full)])
    assert result.exit_code == 0, result.output
    with SQLiteCredentials(tmp_path / "other.db") as store:
        record = store.get("alice@example.test")
    assert record is not None and record.otp_secret == SECRET and record.recovery_code == CODE


def test_importing_a_masked_export_is_refused(tmp_path: Path) -> None:
    """Masked secrets cannot become secrets: exit 2 with the file named."""
    spec = _store(tmp_path)
    masked = tmp_path / "masked.jsonl"
    CliRunner().invoke(store_command, ["export", "--store", spec, str(masked)])
    result = CliRunner().invoke(store_command, ["import", "--store", spec, str(masked)])
    assert result.exit_code == 2
    assert "masked.jsonl" in result.output
    header = json.loads(masked.read_text().splitlines()[0])
    assert header["secrets"] is False
