"""Strict registries for tasks, methods, models, datasets and protocols.

Built on :class:`mmengine.registry.Registry`: registering a name twice is an
error naming both sources (:class:`DuplicateNameError`), and looking up an unknown
name raises :class:`UnknownNameError` listing the valid ones. :func:`load_plugins`
imports every module under the ``tasks`` and ``baselines`` packages (the built-ins),
so adding a method or a task is adding a file; no central list is edited.

**Plugins from other packages** (issue 17) are found by entry point, so ``pip install
my-kd-method`` then ``kdbench run --method my-kd`` works:

- group ``kdbench.plugins``: each entry names a module, imported so that it registers
  itself (``my_kd = "my_kd_package.methods"``);
- groups ``kdbench.methods``, ``kdbench.models``, ``kdbench.datasets``,
  ``kdbench.protocols``, ``kdbench.tasks``: each entry ``name = "module:object"`` is
  registered under ``name`` in that registry (unless importing it registered it already).

A plugin that fails to import is recorded (:data:`PLUGIN_ERRORS`), named with its error
on stderr and in ``kdbench list``, and the other commands go on without it. A name that
collides with a built-in (or another plugin) is refused with both sources. Every entry
knows where it comes from (:meth:`Registry.source`): ``built-in (baselines/kd.py)`` or
``plugin my-kd-method 0.1 (my_kd_package.methods)``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any

from mmengine.registry import Registry as _MMRegistry

from bench.errors import DuplicateNameError, UnknownNameError

PLUGIN_PACKAGES = ("tasks", "baselines")
PLUGIN_GROUP = "kdbench.plugins"
#: (plugin label, error) of every plugin entry point that failed to load, in the order met
PLUGIN_ERRORS: list[tuple[str, str]] = []
_loading_plugin: list[str] = []  # the label of the plugin being imported, while it is


class Registry:
    """A named, strict registry of classes or factory functions."""

    def __init__(self, kind: str):
        self.kind = kind
        self._registry = _MMRegistry(kind, scope="kdbench")
        self._sources: dict[str, str] = {}

    def register(self, name: str | None = None) -> Callable[[Any], Any]:
        """Decorator registering a class or function under ``name`` (default: its ``__name__``).

        A duplicate name raises ``KeyError`` at import time.
        """

        def decorator(obj: Any) -> Any:
            key = name or obj.__name__
            source = _source_of(obj)
            if key in self._registry.module_dict:
                raise DuplicateNameError(self.kind, key, source, self._sources.get(key, "?"))
            self._registry.register_module(name=key, module=obj, force=False)
            self._sources[key] = source
            return obj

        return decorator

    def source(self, name: str) -> str:
        """Where ``name`` was registered from: ``built-in (<file>)`` or ``plugin <dist> <version> (<module>)``."""
        self.get(name)
        return self._sources.get(name, "built-in")

    def is_plugin(self, name: str) -> bool:
        return self.source(name).startswith("plugin ")

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
    """Import every module of the built-in packages once, so they self-register, then the plugins
    installed by entry point (see the module docstring)."""
    global _loaded, _complete
    if _loaded:
        return
    _loaded = True
    for package_name in PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            importlib.import_module(info.name)
    _load_entry_points()
    _complete = True


def _registries() -> dict[str, Registry]:
    return {"kdbench.methods": METHODS, "kdbench.models": MODELS, "kdbench.datasets": DATASETS,
            "kdbench.protocols": PROTOCOLS, "kdbench.tasks": TASKS}


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for group in (PLUGIN_GROUP, *_registries()):
        for point in sorted(entry_points(group=group), key=lambda p: (p.dist.name if p.dist else "", p.name)):
            dist = f"{point.dist.name} {point.dist.version}" if point.dist else "(unknown distribution)"
            label = f"plugin {dist} ({point.value})"
            _loading_plugin.append(label)
            try:
                obj = point.load()
                registry = _registries().get(group)
                # registered under its entry point's name, unless importing it did just that already
                if registry is not None and registry._registry.module_dict.get(point.name) is not obj:
                    registry.register(point.name)(obj)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break kdbench
                PLUGIN_ERRORS.append((f"{point.name} = {point.value} [{group}, {dist}]",
                                      f"{type(exc).__name__}: {exc}"))
                print(f"kdbench: plugin {point.name} ({point.value}, {dist}) was not loaded: "
                      f"{type(exc).__name__}: {exc}", file=sys.stderr)
            finally:
                _loading_plugin.pop()


def _source_of(obj: Any) -> str:
    """Where ``obj`` is being registered from: the plugin being loaded, else the built-in file."""
    if _loading_plugin:
        return _loading_plugin[-1]
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    path = getattr(module, "__file__", None)
    if path:
        try:
            path = str(Path(path).resolve().relative_to(Path(__file__).resolve().parents[1]))
        except ValueError:
            pass
    return f"built-in ({path or getattr(obj, '__module__', '?')})"


def plugins_loaded() -> bool:
    """Whether every plugin module has been imported (False while they are being imported), i.e.
    whether a name missing from a registry is really unknown. Loads them if nobody has started to."""
    if not _loaded:
        load_plugins()
    return _complete
