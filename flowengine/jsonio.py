"""Fast JSON in and out (orjson), in one place."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "dumps_text", "loads"]

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: Any) -> bytes:
    """Serialize ``value`` to compact UTF-8 JSON bytes."""
    return orjson.dumps(value)


def dumps_text(value: Any, *, indent: bool = False) -> str:
    """Serialize ``value`` to a JSON string, optionally indented for people."""
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(value, option=option).decode()


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises :data:`JSONDecodeError` (a ``ValueError``) on bad input."""
    return orjson.loads(data)
