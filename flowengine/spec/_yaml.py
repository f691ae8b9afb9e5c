"""YAML text to plain Python data, safely: no tags that run code, no duplicate keys.

Syntax errors become one :class:`ScenarioError` with the line and column, and without the
offending line itself (it may hold a secret).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flowengine.errors import ScenarioError

__all__ = ["read_yaml"]

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader (the C one when available)."""


def _check_duplicates(root: Node) -> None:
    """Refuse a mapping that has the same key twice (PyYAML would keep the last silently)."""
    stack: list[Node] = [root]
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, MappingNode):
            keys: set[tuple[str, str]] = set()
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.tag != _MERGE:
                    if (key.tag, key.value) in keys:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key.value[:40]!r}", key.start_mark
                        )
                    keys.add((key.tag, key.value))
                stack.extend((key, value))
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def read_yaml(raw: bytes, *, source: str) -> Any:
    """The one YAML document in ``raw`` (None when empty)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicates(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        problem = exc.problem or exc.context or "not valid YAML"
        raise ScenarioError(f"invalid YAML: {problem}", source=source, path=where) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScenarioError(f"invalid YAML: {first[:200]}", source=source) from None
    except RecursionError:
        raise ScenarioError("invalid YAML: nested too deeply", source=source) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise ScenarioError(f"invalid YAML value: {str(exc)[:200]}", source=source) from None
    finally:
        loader.dispose()
