"""``flowengine login``: one user through the password grant and MFA, from a terminal.

Interactive (``--codes prompt``): asks for each code; at an OTP enrollment it shows the
otpauth URI and a QR code to scan, on the terminal only. Non-interactive (``--codes
emulator``): SMS, voice and email codes come from the emulator's control API, and OTP codes
from the secret stored by an earlier enrollment or given with ``--otp-secret-env`` /
``--otp-secret-file``. The password and the client secret come from the environment or a
hidden prompt, never from the command line.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import attrs
import click

from flowengine import jsonio
from flowengine.api import make_session
from flowengine.credentials import CredentialStore, UserCredentials
from flowengine.credstore import open_store
from flowengine.engine import Engine
from flowengine.errors import FlowEngineError
from flowengine.factors import CodeSource, PromptCodeSource, registered_factors
from flowengine.result import LoginResult

__all__ = ["DEFAULT_DOMAIN", "DEFAULT_STORE", "InteractiveCodes", "login_command"]

DEFAULT_DOMAIN = "http://127.0.0.1:8080"
DEFAULT_STORE = "sqlite:///.flowengine/credentials.db"
_EMULATOR_SECRET = "flowengine-secret"


def _is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url if "://" in base_url else f"https://{base_url}").hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"} or host.startswith("127.")


class InteractiveCodes:
    """Asks a person for every code; shows the QR code of a fresh OTP enrollment first."""

    def __init__(self, store: CredentialStore, issuer: str) -> None:
        self._store = store
        self._issuer = issuer
        self._prompt = PromptCodeSource()
        self._shown: set[str] = set()

    async def code(self, username: str, channel: str) -> str:
        if channel == "otp":
            record = self._store.get(username)
            if record is not None and record.otp_secret and username not in self._shown:
                self._shown.add(username)
                self._show_enrollment(username, record.otp_secret)
        return await self._prompt.code(username, channel)

    def _show_enrollment(self, username: str, secret: str) -> None:
        import qrcode

        uri = (
            f"otpauth://totp/{quote(self._issuer)}:{quote(username)}?secret={secret}"
            f"&issuer={quote(self._issuer)}&algorithm=SHA1&digits=6&period=30"
        )
        click.echo("Scan this QR code with your authenticator app:", err=True)
        qr = qrcode.QRCode(border=1)
        qr.add_data(uri)
        qr.print_ascii(out=sys.stderr, invert=True)
        click.echo(f"or enter this URI in it: {uri}", err=True)


def _secret_from(env_name: str | None, path: Path | None) -> str | None:
    if path is not None:
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise click.BadParameter(
                f"{path}: {exc.strerror}", param_hint="--otp-secret-file"
            ) from exc
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise click.BadParameter(
                f"environment variable {env_name} is not set", param_hint="--otp-secret-env"
            )
        return value.strip()
    return None


def _summary(result: LoginResult) -> str:
    lines = [f"{result.username}: {result.outcome}"]
    if result.factor:
        lines[0] += f" with {result.factor}" + (" (enrolled now)" if result.enrolled else "")
    lines[0] += f" in {result.seconds * 1000:.0f} ms"
    for step in result.path:
        mark = "" if step.outcome == "ok" else f"  [{step.outcome}]"
        lines.append(f"  {step.step:<26} {step.seconds * 1000:8.1f} ms{mark}")
    if result.tokens is not None:
        tokens = result.tokens
        issued = [
            name
            for name, value in (
                ("access_token", tokens.access_token),
                ("id_token", tokens.id_token),
                ("refresh_token", tokens.refresh_token),
            )
            if value
        ]
        lines.append(f"  issued: {', '.join(issued)} (expires in {tokens.expires_in} s)")
        lines.append("  (use --json to print the tokens themselves)")
    if result.error:
        lines.append(
            f"  error: {result.error}"
            + (f": {result.error_description}" if result.error_description else "")
        )
    return "\n".join(lines)


def _tokens_json(result: LoginResult) -> str:
    tokens = result.tokens
    assert tokens is not None
    body: dict[str, Any] = {
        key: value
        for key, value in attrs.asdict(tokens, recurse=False).items()
        if value is not None
    }
    return jsonio.dumps_text(body, indent=True)


async def _login(
    *,
    domain: str,
    client_id: str,
    client_secret: str | None,
    auth_method: str,
    audience: str | None,
    scope: str | None,
    username: str,
    password: str,
    factor: str | None,
    phone: str | None,
    email: str | None,
    codes: str,
    otp_secret: str | None,
    store: CredentialStore,
    login_timeout: float,
    ca_bundle: Path | None = None,
) -> LoginResult:
    if otp_secret is not None:
        record = store.get(username) or UserCredentials(username=username)
        store.put(attrs.evolve(record, otp_secret=otp_secret))
    base_url = domain if "://" in domain else f"https://{domain}"
    code_source: CodeSource | None = (
        InteractiveCodes(store, urlsplit(base_url).hostname or "flowengine")
        if codes == "prompt"
        else None
    )
    session = None
    if ca_bundle is not None:
        context = ssl.create_default_context(cafile=str(ca_bundle))
        session = make_session(limit=4, ssl=context)
    async with Engine(
        domain=domain,
        session=session,
        client_id=client_id,
        client_secret=client_secret,
        auth_method=auth_method,
        audience=audience,
        scope=scope,
        credentials=store,
        code_source=code_source,
        otp_codes="code_source" if codes == "prompt" else "secret",
        login_timeout=login_timeout,
        max_in_flight=1,
        connection_limit=4,
    ) as engine:
        # Without a code source the engine reads the emulator's inbox at the same address.
        try:
            return await engine.login(username, password, factor=factor, phone=phone, email=email)
        finally:
            if session is not None:
                await session.close()


@click.command("login")
@click.option(
    "--domain", default=DEFAULT_DOMAIN, show_default=True, help="Tenant domain or base URL."
)
@click.option("--client-id", default="flowengine", show_default=True)
@click.option(
    "--client-secret-env",
    default="FLOWENGINE_CLIENT_SECRET",
    show_default=True,
    help="Environment variable with the client secret (for loopback targets it defaults to the"
    " emulator's documented secret).",
)
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_post", "client_secret_basic", "none"]),
    default="client_secret_post",
    show_default=True,
)
@click.option("--audience", default=None, help="API identifier to ask a token for.")
@click.option("--scope", default="openid profile email", show_default=True)
@click.option("--username", "-u", default=None, help="Prompted for when omitted.")
@click.option(
    "--password-env",
    default="FLOWENGINE_PASSWORD",
    show_default=True,
    help="Environment variable with the password; prompted for (hidden) when unset.",
)
@click.option("--factor", type=click.Choice(list(registered_factors())), default=None)
@click.option("--phone", default=None, help="Phone number to enroll sms/voice with (E.164).")
@click.option("--email", default=None, help="Address to enroll email with.")
@click.option(
    "--codes",
    type=click.Choice(["prompt", "emulator"]),
    default=None,
    help="Where codes come from: typed at a prompt, or the emulator's control API"
    " (default: the emulator for loopback targets, else the prompt).",
)
@click.option("--otp-secret-env", default=None, help="Environment variable with an OTP secret.")
@click.option(
    "--otp-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding an OTP secret (base32).",
)
@click.option(
    "--store",
    default=DEFAULT_STORE,
    show_default=True,
    help="Credential store: 'memory' or sqlite:///PATH (remembers enrollments between runs).",
)
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="Seconds for the whole login."
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM file of CA certificates to trust for the tenant (TLS is always verified).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the token set as JSON on success.")
def login_command(
    domain: str,
    client_id: str,
    client_secret_env: str,
    auth_method: str,
    audience: str | None,
    scope: str,
    username: str | None,
    password_env: str,
    factor: str | None,
    phone: str | None,
    email: str | None,
    codes: str | None,
    otp_secret_env: str | None,
    otp_secret_file: Path | None,
    store: str,
    ca_bundle: Path | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Log one user in through the password grant and MFA."""
    loopback = _is_loopback(domain)
    client_secret = os.environ.get(client_secret_env) or None
    if client_secret is None and auth_method != "none":
        if loopback:
            client_secret = _EMULATOR_SECRET
        else:
            client_secret = click.prompt("Client secret", hide_input=True, err=True)
    if username is None:
        username = click.prompt("Username", err=True)
    password = os.environ.get(password_env) or click.prompt("Password", hide_input=True, err=True)
    otp_secret = _secret_from(otp_secret_env, otp_secret_file)
    mode = codes or ("emulator" if loopback else "prompt")
    try:
        credential_store = open_store(store)
    except FlowEngineError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        result = asyncio.run(
            _login(
                domain=domain,
                client_id=client_id,
                client_secret=client_secret,
                auth_method=auth_method,
                audience=audience,
                scope=scope or None,
                username=username,
                password=password,
                factor=factor,
                phone=phone,
                email=email,
                codes=mode,
                otp_secret=otp_secret,
                store=credential_store,
                login_timeout=timeout,
                ca_bundle=ca_bundle,
            )
        )
    except FlowEngineError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        credential_store.close()
    if as_json and result.ok:
        click.echo(_tokens_json(result))
    else:
        click.echo(_summary(result), err=as_json)
    if not result.ok:
        sys.exit(1)
