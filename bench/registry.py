"""One small registry for methods, architectures, datasets and protocols.

Built-ins are registered in code as lazy ``"module:attr"`` strings (nothing heavy is imported until used).
Third-party distributions add entries through the entry-point groups ``bench.methods``,
``bench.architectures`` and ``bench.datasets``::

    [project.entry-points."bench.methods"]
    my_method = "my_package.my_method:method"

A plugin that fails to import is a warning and is skipped; an unknown name is an error that lists close matches.
Every entry remembers where it came from (built-in, or which distribution and version).
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from bench.errors import UnknownNameError


class PluginWarning(UserWarning):
    """A third-party plugin could not be loaded; it is skipped."""


@dataclass
class Entry:
    name: str
    target: Any
    """The object itself, or a lazy "module:attr" string."""
    origin: str = "built-in"
    """"built-in", or the distribution that provided it, e.g. "my-plugin 0.2.0"."""
    meta: dict[str, Any] = field(default_factory=dict)
    _loaded: Any = None

    def load(self) -> Any:
        if self._loaded is None:
            self._loaded = _resolve(self.target) if isinstance(self.target, str) else self.target
        return self._loaded


def _resolve(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    obj = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


class Registry:
    """A name -> entry mapping of one kind (``"method"``, ``"architecture"``, ...)."""

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, Entry] = {}
        self._plugins_loaded = False
        self._fallback: Callable[[str], Any] | None = None
        self._broken: dict[str, str] = {}
        """Plugins that failed to import: name -> the reason, so that asking for one says why."""

    def register(self, name: str, target: Any = None, *, origin: str = "built-in", **meta: Any):
        """Register ``target`` under ``name``; used as ``reg.register("x", "pkg.mod:obj")`` or as a decorator."""
        if target is None:

            def decorator(obj: Any) -> Any:
                self._entries[name] = Entry(name, obj, origin, meta)
                return obj

            return decorator
        self._entries[name] = Entry(name, target, origin, meta)
        return target

    def set_fallback(self, resolver: Callable[[str], Any]) -> None:
        """A resolver for names that are not registered (e.g. any splittable timm model); returns None if not."""
        self._fallback = resolver

    def load_plugins(self, *, force: bool = False) -> None:
        """Read the entry-point group once; a plugin whose metadata is broken is skipped with a warning."""
        if self._plugins_loaded and not force:
            return
        self._plugins_loaded = True
        self._broken.clear()
        if not self.group:
            return
        for ep in metadata.entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            origin = f"{dist.name} {dist.version}" if dist is not None else "plugin"
            if ep.name in self._entries and self._entries[ep.name].origin == "built-in":
                warnings.warn(
                    f"plugin {origin} tries to replace the built-in {self.kind} {ep.name!r}; ignored",
                    PluginWarning,
                    stacklevel=2,
                )
                continue
            self._entries[ep.name] = Entry(ep.name, ep.value, origin)

    def _entry(self, name: str) -> Entry:
        self.load_plugins()
        if name in self._entries:
            return self._entries[name]
        if name in self._broken:
            raise UnknownNameError(self._broken[name])
        if self._fallback is not None:
            obj = self._fallback(name)
            if obj is not None:
                return Entry(name, obj, "built-in")
        raise UnknownNameError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        names = self.names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(names) if len(names) <= 20 else ", ".join(names[:20]) + ", ..."
        return f"Unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {known}. See `bench list`."

    def get(self, name: str) -> Any:
        """The loaded object registered as ``name``. A plugin that fails to import raises UnknownNameError
        after a warning that says why."""
        entry = self._entry(name)
        try:
            return entry.load()
        except Exception as e:  # a broken plugin must not crash the harness
            if entry.origin == "built-in":
                raise
            self._mark_broken(entry, e)
            raise UnknownNameError(self._broken[name]) from e

    def _mark_broken(self, entry: Entry, error: Exception) -> None:
        warnings.warn(f"{self.kind} plugin {entry.name!r} from {entry.origin} failed to load: {error!r}",
                      PluginWarning, stacklevel=3)
        self._entries.pop(entry.name, None)
        self._broken[entry.name] = (
            f"The {self.kind} {entry.name!r} comes from {entry.origin}, which failed to import ({error}). "
            "Reinstall or fix that package."
        )

    def origin(self, name: str) -> str:
        return self._entry(name).origin

    def meta(self, name: str) -> dict[str, Any]:
        return dict(self._entry(name).meta)

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._entries)

    def items(self, *, skip_broken: bool = True) -> Iterator[tuple[str, Any, str]]:
        """(name, loaded object, origin) for every entry; broken plugins warn and are skipped."""
        for name in self.names():
            entry = self._entries.get(name)
            if entry is None:
                continue
            try:
                yield name, entry.load(), entry.origin
            except Exception as e:
                if not skip_broken or entry.origin == "built-in":
                    raise
                self._mark_broken(entry, e)

    def __contains__(self, name: str) -> bool:
        try:
            self._entry(name)
            return True
        except UnknownNameError:
            return False


METHODS = Registry("method", "bench.methods")
ARCHITECTURES = Registry("architecture", "bench.architectures")
DATASETS = Registry("dataset", "bench.datasets")
PROTOCOLS = Registry("protocol", "bench.protocols")

for _name in ("sgd", "greedy_ce", "dgl", "infopro", "greedydib"):
    METHODS.register(_name, f"methods.{_name}:method")


class TimmArchitecture:
    """A built-in backbone: a timm model (or one of our CIFAR ResNets registered into timm), split into modules."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *, num_classes: int, split: str, image_size: int, cifar_stem: bool | None):
        from architectures import build_staged

        return build_staged(
            self.name, num_classes=num_classes, split=split, image_size=image_size, cifar_stem=cifar_stem
        )


def _timm_fallback(name: str) -> TimmArchitecture | None:
    """Any other timm model whose family the splitter supports."""
    try:
        from architectures import supported_family

        return TimmArchitecture(name) if supported_family(name) else None
    except Exception:
        return None


for _name in (
    "cifar_resnet20", "cifar_resnet32", "cifar_resnet56", "cifar_resnet110", "resnet18", "resnet34", "resnet50",
    "convnext_atto", "efficientnet_b0", "mobilenetv3_small_100", "regnetx_002", "vgg11",
):
    ARCHITECTURES.register(_name, TimmArchitecture(_name))
ARCHITECTURES.set_fallback(_timm_fallback)

def _register_datasets() -> None:
    from bench.data import BUILTIN_DATASETS

    for name, entry in BUILTIN_DATASETS.items():
        DATASETS.register(name, entry["loader"], description=entry["description"])


_register_datasets()


def _register_protocols() -> None:
    from bench.protocols import PROTOCOLS as _P

    for name, protocol in _P.items():
        PROTOCOLS.register(name, protocol, description=protocol.description)


_register_protocols()
