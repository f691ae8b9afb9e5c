"""The public surface: every module has a sorted, complete ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil

import flowengine


def _modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(flowengine.__path__, "flowengine.")
        if not m.name.rsplit(".", 1)[-1].startswith("_")
    )


def test_top_level_all_is_sorted_and_resolves() -> None:
    """flowengine.__all__ is sorted and every name in it exists."""
    assert list(flowengine.__all__) == sorted(flowengine.__all__)
    for name in flowengine.__all__:
        assert hasattr(flowengine, name), name


def test_every_module_declares_all() -> None:
    """Each public module declares a sorted __all__ whose names exist."""
    for name in _modules():
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{name} has no __all__"
        assert list(exported) == sorted(exported), f"{name}.__all__ is not sorted"
        for attr in exported:
            assert hasattr(module, attr), f"{name}.__all__ names missing {attr}"
