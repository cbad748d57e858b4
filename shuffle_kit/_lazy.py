"""Module attributes imported on first use (PEP 562), for packages whose names live in
heavier modules: ``import shuffle_kit`` should not cost pandas and ZeroMQ up front."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def attach(
    package: str, homes: dict[str, str], public: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``homes`` is imported from
    its module (relative to ``package``) when first read, then kept as a plain attribute.

    >>> import types, sys
    >>> sys.modules['demo_pkg'] = m = types.ModuleType('demo_pkg')
    >>> m.__getattr__, m.__dir__ = attach('demo_pkg', {'dumps': 'json'}, ['dumps'])
    >>> m.dumps([1])
    '[1]'
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__
