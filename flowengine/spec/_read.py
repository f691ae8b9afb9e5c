"""Reading raw YAML values: key paths, typed accessors, ``${ENV}`` expansion, one clear error.

Every accessor takes the raw value and its key path and either returns a checked Python value
or raises one :class:`ScenarioError` that names the file, the key path and what was expected.
Messages show what the file says, never what the environment supplied: a value written as
``${NAME}`` is shown as ``'${NAME}'``, so an expanded secret cannot leak into an error.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from flowengine.errors import ScenarioError
from flowengine.spec.units import parse_duration, parse_rate

__all__ = ["Reader", "describe", "did_you_mean", "item_path", "key_path", "one_of"]

_S = TypeVar("_S", bound=str)
_SHOWN = 40
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_INT = re.compile(r"\s*[+-]?[0-9]{1,18}\s*\Z")
_FLOAT = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?\s*\Z")


def _short(text: str, limit: int = _SHOWN) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def key_path(parent: str, key: str) -> str:
    """``load`` + ``rate`` -> ``load.rate``; odd keys are quoted: ``x["a b"]``."""
    if _IDENT.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{_short(key)}]"


def item_path(parent: str, index: int) -> str:
    """``load.stages`` + 1 -> ``load.stages[1]``."""
    return f"{parent}[{index}]"


def one_of(choices: Iterable[str]) -> str:
    """``a, b, c`` in sorted order."""
    return ", ".join(sorted(choices))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'rate'?`` when a choice is close to ``word``, else ``""``."""
    if len(word) > 64:
        return ""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def describe(value: Any) -> str:
    """A short, safe description of a raw value for an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        text = str(value) if -(10**30) < value < 10**30 else ""
        return text or "a very large number"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        if "${" in value:
            return f"{_short(value)} (the environment's value is not shown)"
        return _short(value) if value else "an empty string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, datetime.date):
        return "a date"
    return f"a {type(value).__name__}"


def _kind(value: Any) -> str:
    """What kind of value this is, without showing it (for secrets)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return describe(value)


@attrs.frozen(kw_only=True)
class Reader:
    """Typed access to raw values, raising ScenarioError naming ``source`` and the key path."""

    source: str
    """The file as the user named it, e.g. ``flows/x.yaml``."""
    base_dir: Path
    """Where relative file names in the scenario (CSV users, CA bundle) are resolved."""
    env: Mapping[str, str] = attrs.field(repr=False)
    """Where ``${NAME}`` references are looked up."""

    def error(self, path: str, message: str) -> ScenarioError:
        """The error to raise for the value at ``path``."""
        return ScenarioError(message, source=self.source, path=path or None)

    def mapping(self, value: Any, path: str, *, what: str = "a mapping") -> dict[str, Any]:
        """``value`` as a mapping with string keys."""
        if not isinstance(value, dict):
            raise self.error(path, f"expected {what}, got {describe(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.error(path, f"keys must be strings, got {describe(key)}")
        return value

    def check_keys(
        self,
        data: Mapping[str, Any],
        path: str,
        allowed: Collection[str],
        *,
        required: Iterable[str] = (),
    ) -> None:
        """Refuse unknown keys (suggesting a close one) and missing required ones."""
        for key in data:
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f"; expected one of {one_of(allowed)}"
                raise self.error(key_path(path, key), f"unknown key{hint}")
        for key in required:
            if key not in data:
                raise self.error(path, f"missing required key {key!r}")

    def items(self, value: Any, path: str, *, what: str = "a list") -> list[Any]:
        """``value`` as a list."""
        if not isinstance(value, list):
            raise self.error(path, f"expected {what}, got {describe(value)}")
        return value

    def expand(self, text: str, path: str, *, literal_braces: bool = False) -> str:
        """``text`` with ``${NAME}`` and ``${NAME:-default}`` replaced; ``$${`` is a literal ``${``.

        With ``literal_braces`` the substituted text has its braces doubled, for patterns
        that are later formatted with ``{n}``.
        """
        if "$" not in text:
            return text
        out: list[str] = []
        pos = 0
        for match in _REF.finditer(text):
            out.append(text[pos : match.start()])
            pos = match.end()
            if match.group(0) == "$${":
                out.append("${{" if literal_braces else "${")
                continue
            body = match.group(1)
            if body is None:
                raise self.error(path, "unterminated '${' (write '$${' for a literal '${')")
            name, sep, default = body.partition(":-")
            if not _ENV_NAME.match(name):
                raise self.error(
                    path,
                    f"malformed environment reference {_short('${' + body + '}')};"
                    " expected ${NAME} or ${NAME:-default}",
                )
            value = self.env.get(name)
            if value is None or (sep and not value):
                if not sep:
                    raise self.error(
                        path,
                        f"environment variable {name} is not set"
                        f" (write ${{{name}:-default}} to give a default)",
                    )
                value = default
            out.append(value.replace("{", "{{").replace("}", "}}") if literal_braces else value)
        out.append(text[pos:])
        return "".join(out)

    def string(
        self,
        value: Any,
        path: str,
        *,
        what: str = "a string",
        secret: bool = False,
        empty: bool = False,
        literal_braces: bool = False,
    ) -> str:
        """``value`` as an expanded string; a secret's value is never shown."""
        if not isinstance(value, str):
            got = _kind(value) if secret else describe(value)
            hint = " (quote it to make it a string)" if isinstance(value, int | float) else ""
            raise self.error(path, f"expected {what}, got {got}{hint}")
        text = self.expand(value, path, literal_braces=literal_braces)
        if not text and not empty:
            raise self.error(path, f"expected {what}, got an empty string")
        return text

    def optional_string(self, value: Any, path: str, **kwargs: Any) -> str | None:
        """Like :meth:`string`, but None stays None."""
        return None if value is None else self.string(value, path, **kwargs)

    def choice(self, value: Any, path: str, choices: Collection[_S], *, what: str) -> _S:
        """``value`` as one of ``choices``."""
        if not isinstance(value, str):
            raise self.error(
                path, f"expected {what}: one of {one_of(choices)}; got {describe(value)}"
            )
        text = self.expand(value, path)
        if text not in choices:
            raise self.error(
                path, f"unknown {what} {describe(value)}; expected one of {one_of(choices)}"
            )
        return next(choice for choice in choices if choice == text)

    def integer(
        self,
        value: Any,
        path: str,
        *,
        what: str,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        """``value`` as an int within the bounds (a string like ``"500"`` from ``${N}`` too)."""
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            text = self.expand(value, path)
            if _INT.match(text):
                number = int(text)
        if (
            number is None
            or (minimum is not None and number < minimum)
            or (maximum is not None and number > maximum)
        ):
            raise self.error(path, f"expected {what}, got {describe(value)}")
        return number

    def number(
        self,
        value: Any,
        path: str,
        *,
        what: str,
        minimum: float = 0.0,
        maximum: float = 1e9,
        positive: bool = False,
    ) -> float:
        """``value`` as a finite float in ``[minimum, maximum]`` (above 0 if ``positive``)."""
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = None
        elif isinstance(value, str):
            text = self.expand(value, path)
            number = float(text) if _FLOAT.match(text) else None
        if (
            number is None
            or not math.isfinite(number)
            or not minimum <= number <= maximum
            or (positive and number <= 0)
        ):
            raise self.error(path, f"expected {what}, got {describe(value)}")
        return number

    def duration(self, value: Any, path: str, *, what: str, positive: bool = True) -> float:
        """``value`` as seconds (``250ms``, ``30s``, ``2m``, ``1h``, ``1m30s``, a number)."""
        try:
            seconds = parse_duration(self.expand(value, path) if isinstance(value, str) else value)
        except ValueError:
            seconds = None
        if seconds is None or (positive and seconds <= 0):
            raise self.error(
                path, f"expected {what} (like 250ms, 30s, 2m or 1h), got {describe(value)}"
            )
        return seconds

    def rate(self, value: Any, path: str, *, what: str, positive: bool = True) -> float:
        """``value`` as a rate per second (``10/s``, ``600/m``, ``36000/h``, a number)."""
        try:
            rate = parse_rate(self.expand(value, path) if isinstance(value, str) else value)
        except ValueError:
            rate = None
        if rate is None or (positive and rate <= 0):
            raise self.error(
                path, f"expected {what} (like 100/s, 600/m or 100), got {describe(value)}"
            )
        return rate

    def file(self, value: Any, path: str, *, what: str) -> Path:
        """``value`` as an existing file, relative to the scenario's directory."""
        name = self.string(value, path, what=what)
        file = self.base_dir / name
        try:
            ok = file.is_file()
        except (OSError, ValueError):
            ok = False
        if not ok:
            shown = describe(value) if "${" in value else _short(str(file), 200)
            raise self.error(path, f"{shown} is not a readable file")
        return file
