"""``flowengine store``: look into, export and import the credential store.

Exports are JSON lines; OTP secrets and recovery codes are masked unless
``--include-secrets`` is given (the file is then created readable by its owner only).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flowengine.credstore import export_credentials, import_credentials, open_store
from flowengine.errors import CredentialStoreError
from flowengine.exitcodes import ExitCode

__all__ = ["store_command"]

_STORE = click.option(
    "--store",
    default="sqlite:///.flowengine/credentials.db",
    show_default=True,
    help="The credential store: sqlite:///PATH (key from FLOWENGINE_STORE_KEY if encrypted).",
)


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(ExitCode.BAD_INPUT)


@click.group("store")
def store_command() -> None:
    """Look into, export and import the credential store."""


@store_command.command("list")
@_STORE
def list_command(store: str) -> None:
    """One line per user: the factors enrolled, and what is kept (never the secrets)."""
    try:
        credentials = open_store(store)
    except CredentialStoreError as exc:
        _fail(exc)
        return
    try:
        for record in credentials.all():
            factors = ",".join(sorted({a.factor for a in record.authenticators if a.active}))
            kept = [
                name
                for name, value in (
                    ("otp-secret", record.otp_secret),
                    ("recovery-code", record.recovery_code),
                )
                if value
            ]
            click.echo(f"{record.username}\t{factors or '-'}\t{' '.join(kept) or '-'}")
    finally:
        credentials.close()


@store_command.command("export")
@_STORE
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--include-secrets", is_flag=True, help="Write OTP secrets and recovery codes.")
def export_command(store: str, target: Path, include_secrets: bool) -> None:
    """Write every record to TARGET (JSON lines), secrets masked unless asked."""
    try:
        credentials = open_store(store)
        try:
            count = export_credentials(credentials, target, include_secrets=include_secrets)
        finally:
            credentials.close()
    except CredentialStoreError as exc:
        _fail(exc)
        return
    masked = "" if include_secrets else " (secrets masked)"
    click.echo(f"exported {count} users to {target}{masked}", err=True)


@store_command.command("import")
@_STORE
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--keep-masked",
    is_flag=True,
    help="Accept an export with masked secrets, keeping the store's current ones.",
)
def import_command(store: str, source: Path, keep_masked: bool) -> None:
    """Merge SOURCE (an export) into the store; each user's record is replaced."""
    try:
        credentials = open_store(store)
        try:
            count = import_credentials(
                credentials, source, on_masked="keep" if keep_masked else "error"
            )
        finally:
            credentials.close()
    except CredentialStoreError as exc:
        _fail(exc)
        return
    click.echo(f"imported {count} users from {source}", err=True)
