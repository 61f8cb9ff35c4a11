"""Strict registries for tasks, methods, models, datasets and protocols.

Built on :class:`mmengine.registry.Registry`: registering a name twice is an
error, and looking up an unknown name raises :class:`UnknownNameError` listing
the valid ones. Plugins (every module under the ``tasks`` and ``baselines``
packages) are imported by :func:`load_plugins`, so adding a method or a task is
adding a file; no central list is edited.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from mmengine.registry import Registry as _MMRegistry

from bench.errors import UnknownNameError

PLUGIN_PACKAGES = ("tasks", "baselines")


class Registry:
    """A named, strict registry of classes or factory functions."""

    def __init__(self, kind: str):
        self.kind = kind
        self._registry = _MMRegistry(kind, scope="kdbench")

    def register(self, name: str | None = None) -> Callable[[Any], Any]:
        """Decorator registering a class or function under ``name`` (default: its ``__name__``).

        A duplicate name raises ``KeyError`` at import time.
        """

        def decorator(obj: Any) -> Any:
            self._registry.register_module(name=name or obj.__name__, module=obj, force=False)
            return obj

        return decorator

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``; unknown names list the valid ones."""
        load_plugins()
        if name not in self._registry.module_dict:
            raise UnknownNameError(self.kind, name, self.names())
        return self._registry.module_dict[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._registry.module_dict)

    def __contains__(self, name: str) -> bool:
        load_plugins()
        return name in self._registry.module_dict


TASKS = Registry("task")
METHODS = Registry("method")
MODELS = Registry("model")
DATASETS = Registry("dataset")
PROTOCOLS = Registry("protocol")


def register_widths(prefix: str, build: Callable[[int, int], Any], widths: tuple[int, ...], doc: str) -> None:
    """Register ``<prefix><w>`` in ``MODELS`` for each width: ``build(width, num_classes)``."""
    for width in widths:
        def factory(num_classes: int, width: int = width) -> Any:
            return build(width, num_classes)

        factory.__doc__ = doc.format(width=width)
        MODELS.register(f"{prefix}{width}")(factory)


_loaded = False
_complete = False


def load_plugins() -> None:
    """Import every module of the plugin packages once, so they self-register."""
    global _loaded, _complete
    if _loaded:
        return
    _loaded = True
    for package_name in PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            importlib.import_module(info.name)
    _complete = True


def plugins_loaded() -> bool:
    """Whether every plugin module has been imported (False while they are being imported), i.e.
    whether a name missing from a registry is really unknown. Loads them if nobody has started to."""
    if not _loaded:
        load_plugins()
    return _complete
