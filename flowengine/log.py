"""Logging: structlog configured once by the CLI, and the redaction of secrets.

Library modules only call ``structlog.get_logger()`` and never put a secret in an event.
:func:`redact_secrets` is the second line of defence: it masks every known secret field
name and anything that looks like a bearer token or an Iron-sealed string.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["MASK", "SECRET_FIELDS", "configure_logging", "mask_secrets", "redact_secrets"]

MASK = "***"

#: Field names whose values are secrets wherever they appear (events, reports, replies).
SECRET_FIELDS = frozenset(
    {
        "password",
        "client_secret",
        "mfa_token",
        "oob_code",
        "binding_code",
        "otp",
        "code",
        "codes",
        "secret",
        "otp_secret",
        "recovery_code",
        "recovery_codes",
        "access_token",
        "refresh_token",
        "id_token",
        "authorization",
        "barcode_uri",
        "client_assertion",
        "token",
    }
)

_SECRET_PATTERNS = (
    re.compile(r"Fe26\.2\*[^\s\"',]+"),  # Iron-sealed mfa_token / oob_code
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"otpauth://[^\s\"']+"),
)


def _mask_text(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def _is_secret_item(key: Any, value: Any) -> bool:
    return str(key).lower() in SECRET_FIELDS and value not in (None, "")


def mask_secrets(value: Any) -> Any:
    """Return a copy of ``value`` (dicts, lists, strings) with every secret masked."""
    if isinstance(value, Mapping):
        return {k: MASK if _is_secret_item(k, v) else mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str):
        return _mask_text(value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret fields and secret-looking strings in an event."""
    for key, value in list(event_dict.items()):
        if key.lower() in SECRET_FIELDS and value not in (None, ""):
            event_dict[key] = MASK
        elif isinstance(value, str | Mapping | list | tuple):
            event_dict[key] = mask_secrets(value)
    return event_dict


def configure_logging(
    level: str = "warning", *, json: bool = False, stream: TextIO | None = None
) -> None:
    """Configure structlog for the command line: filtered by level, secrets redacted.

    Library users keep their own configuration; only the CLI calls this.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
    # transitions logs every transition at DEBUG (a 3x slowdown): keep it quiet.
    logging.getLogger("transitions").setLevel(logging.WARNING)
