"""One small registry for methods, architectures, datasets and protocols.

Built-ins are registered in code as lazy ``"module:attr"`` strings (nothing heavy is imported until used).
Plugins arrive three ways, and run exactly like built-ins:

- **entry points** of an installed distribution, in the groups ``bench.methods``, ``bench.architectures``,
  ``bench.datasets`` and ``bench.protocols``::

      [project.entry-points."bench.methods"]
      my_method = "my_package.my_method:method"

- **a file or a folder of files** given with ``--include PATH`` (:func:`load_includes`), whose objects register
  themselves with the decorators :func:`register_method`, :func:`register_dataset` and
  :func:`register_architecture`;
- the same decorators in any module the user imports before running (a notebook, a script).

A plugin that fails to import is a warning and is skipped (asking for it by name says why); an unknown name is an
error that lists close matches. Every entry remembers where it came from: ``built-in``, the distribution and its
version (``my-plugin 0.2.0``), or ``file /path/to/my_method.py``.
"""

from __future__ import annotations

import contextvars
import difflib
import hashlib
import importlib
import importlib.util
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.errors import BenchError, ConfigError, UnknownNameError
from bench.params import Param


class PluginWarning(UserWarning):
    """A third-party plugin could not be loaded; it is skipped."""


BUILT_IN = "built-in"


@dataclass
class Entry:
    name: str
    target: Any
    """The object itself, or a lazy "module:attr" string."""
    origin: str = BUILT_IN
    """"built-in", the distribution that provided it ("my-plugin 0.2.0") or the file ("file /path/x.py")."""
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


def plugin_label(kind: str, name: str, origin: str) -> str:
    """``method 'mine' (from my-plugin 0.2.0)``, or ``method 'sgd'`` for a built-in: how messages name an entry."""
    return f"{kind} {name!r}" if origin == BUILT_IN else f"{kind} {name!r} (from {origin})"


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
        self._broken_origin: dict[str, str] = {}

    def register(self, name: str, target: Any = None, *, origin: str = BUILT_IN, **meta: Any):
        """Register ``target`` under ``name``; used as ``reg.register("x", "pkg.mod:obj")`` or as a decorator."""
        if target is None:

            def decorator(obj: Any) -> Any:
                self._entries[name] = Entry(name, obj, origin, meta)
                return obj

            return decorator
        self._entries[name] = Entry(name, target, origin, meta)
        return target

    def add_plugin(self, name: str, obj: Any, *, module: str | None = None, **meta: Any) -> None:
        """Register a plugin's object (what the ``register_*`` decorators do).

        Its origin is the file being included (``--include``), else the distribution that installed ``module``,
        else ``module <name>``. A plugin may not take a built-in's name; a file included with ``--include`` may
        not take a name another plugin provides; outside an include, a name that is already registered (as the
        object an installed entry point names registers itself when imported) is left as it is.
        """
        if not isinstance(name, str) or not name or not name.strip() or name != name.strip():
            raise ConfigError(f"a {self.kind} plugin needs a non-empty name without surrounding spaces, got {name!r}")
        include = _INCLUDE_ORIGIN.get()
        origin = include or module_origin(module)
        self.load_plugins()
        existing = self._entries.get(name)
        if existing is not None:
            if existing.origin == BUILT_IN:
                raise ConfigError(
                    f"{origin} registers the {self.kind} {name!r}, which is the name of a built-in {self.kind}; "
                    "choose another name"
                )
            if existing.origin != origin and include is not None:
                raise ConfigError(
                    f"{origin} registers the {self.kind} {name!r}, which {existing.origin} already provides; "
                    "rename one of them (or uninstall the other)"
                )
            if include is None:  # e.g. the module an entry point names, registering itself as it is imported
                return
        self._broken.pop(name, None)
        self._entries[name] = Entry(name, obj, origin, dict(meta))
        if include is not None:
            _INCLUDE_COUNT.set(_INCLUDE_COUNT.get() + 1)

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
            if ep.name in self._entries and self._entries[ep.name].origin == BUILT_IN:
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
                return Entry(name, obj, BUILT_IN)
        raise UnknownNameError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        names = self.names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(names) if len(names) <= 20 else ", ".join(names[:20]) + ", ..."
        return (f"Unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {known}. See `bench list` (a plugin in "
                "a file of yours: add --include PATH).")

    def get(self, name: str) -> Any:
        """The loaded object registered as ``name``. A plugin that fails to import raises UnknownNameError
        after a warning that says why."""
        entry = self._entry(name)
        try:
            return entry.load()
        except Exception as e:  # a broken plugin must not crash the harness
            if entry.origin == BUILT_IN:
                raise
            self._mark_broken(entry, e)
            raise UnknownNameError(self._broken[name]) from e

    def _mark_broken(self, entry: Entry, error: Exception) -> None:
        warnings.warn(f"{self.kind} plugin {entry.name!r} from {entry.origin} failed to load: {error!r}",
                      PluginWarning, stacklevel=3)
        self._entries.pop(entry.name, None)
        self._broken_origin[entry.name] = entry.origin
        self._broken[entry.name] = (
            f"The {self.kind} {entry.name!r} comes from {entry.origin}, which failed to import "
            f"({type(error).__name__}: {error}). Reinstall or fix that package."
        )

    def origin(self, name: str) -> str:
        return self._entry(name).origin

    def meta(self, name: str) -> dict[str, Any]:
        return dict(self._entry(name).meta)

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._entries)

    def broken(self) -> dict[str, tuple[str, str]]:
        """Plugins that failed to load so far: name -> (origin, why) (``bench list`` shows them)."""
        return {name: (self._broken_origin.get(name, "?"), why) for name, why in self._broken.items()}

    def items(self, *, skip_broken: bool = True) -> Iterator[tuple[str, Any, str]]:
        """(name, loaded object, origin) for every entry; broken plugins warn and are skipped."""
        for name in self.names():
            entry = self._entries.get(name)
            if entry is None:
                continue
            try:
                yield name, entry.load(), entry.origin
            except Exception as e:
                if not skip_broken or entry.origin == BUILT_IN:
                    raise
                self._mark_broken(entry, e)

    def __contains__(self, name: str) -> bool:
        try:
            self._entry(name)
            return True
        except UnknownNameError:
            return False


# ------------------------------------------------------------------------------------------- where plugins come from

_INCLUDE_ORIGIN: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_include_origin", default=None)
_INCLUDE_COUNT: contextvars.ContextVar[int] = contextvars.ContextVar("bench_include_count", default=0)
_INCLUDED: dict[Path, str] = {}
"""Files already included in this process -> their module name (including twice is a no-op)."""
_PACKAGES: dict[str, list[str]] | None = None


def module_origin(module: str | None) -> str:
    """The distribution (and version) that installed ``module``, else ``module <name>``."""
    global _PACKAGES
    if not module:
        return "plugin"
    top = module.split(".")[0]
    if _PACKAGES is None:
        try:
            _PACKAGES = metadata.packages_distributions()
        except Exception:  # a broken installation must not stop a registration
            _PACKAGES = {}
    for dist in _PACKAGES.get(top, []):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return f"module {module}"


def load_includes(paths: Iterable[str | Path] | None) -> list[Path]:
    """Import every ``--include`` path: a ``.py`` file, or a folder whose ``*.py`` files (not those starting with
    ``_``) are imported in name order, each on its own (no relative imports between them).

    The files register their methods, datasets and architectures with the ``register_*`` decorators; each entry's
    origin is ``file <absolute path>``. Including a file twice in a process is a no-op. Returns the files.

    Raises:
        ConfigError: a path that does not exist or is not Python, or a file that fails to import (the message
            names the file, the line and the exception).
    """
    files: list[Path] = []
    for item in paths or []:
        path = Path(item).expanduser()
        if not path.exists():
            raise ConfigError(f"--include {item}: no such file or folder; give a .py file or a folder of them")
        if path.is_dir():
            found = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
            if not found:
                raise ConfigError(f"--include {item}: the folder holds no .py file to import")
            files += found
        elif path.suffix != ".py":
            raise ConfigError(f"--include {item}: not a Python file (.py); give a .py file or a folder of them")
        else:
            files.append(path)
    for file in files:
        _include_file(file.resolve())
    return files


def _include_file(path: Path) -> None:
    if path in _INCLUDED:
        return
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"bench_include_{stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"--include {path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    origin_token = _INCLUDE_ORIGIN.set(f"file {path}")
    count_token = _INCLUDE_COUNT.set(0)
    try:
        spec.loader.exec_module(module)
        registered = _INCLUDE_COUNT.get()
    except BenchError as e:
        sys.modules.pop(module_name, None)
        raise ConfigError(f"--include {path}: {e}") from e
    except BaseException as e:
        sys.modules.pop(module_name, None)
        if not isinstance(e, Exception):
            raise
        raise ConfigError(
            f"--include {path} failed to import{_where_in(path, e)}: {type(e).__name__}: {e}. Fix the file "
            "(or install what it imports); --debug shows the traceback."
        ) from e
    finally:
        _INCLUDE_ORIGIN.reset(origin_token)
        _INCLUDE_COUNT.reset(count_token)
    _INCLUDED[path] = module_name
    if not registered:
        warnings.warn(
            f"--include {path} registered nothing: decorate your method, dataset or architecture with "
            "bench.register_method / register_dataset / register_architecture",
            PluginWarning,
            stacklevel=3,
        )


def _where_in(path: Path, error: BaseException) -> str:
    """`` (line N)`` of the innermost frame of the traceback in ``path`` (or the SyntaxError's line)."""
    if isinstance(error, SyntaxError) and error.lineno:
        return f" (line {error.lineno})"
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    return f" (line {lines[-1]})" if lines else ""


# ------------------------------------------------------------------------------------------------------ decorators


def register_method(obj: Any = None, *, name: str | None = None) -> Any:
    """Register a training method: ``@register_method`` on a class (instantiated with no arguments) or on an
    instance (``register_method(MyMethod())``); ``@register_method("mine")`` or ``name=`` overrides the method's
    ``name`` attribute. Returns what it decorates."""
    if isinstance(obj, str):
        return lambda target: register_method(target, name=obj)
    if obj is None:
        return lambda target: register_method(target, name=name)
    instance = obj() if isinstance(obj, type) else obj
    key = name or getattr(instance, "name", None)
    if not isinstance(key, str) or not key:
        raise ConfigError(f"register_method: {obj!r} has no name; give it a `name` attribute or name=...")
    METHODS.add_plugin(key, instance, module=getattr(obj, "__module__", None))
    return obj


def register_dataset(
    name: str | Callable | None = None, *, description: str | None = None, options: dict[str, Any] | None = None
) -> Any:
    """Register a dataset loader ``(root, *, allow_subset, download, **options) -> ImageDataset``:
    ``@register_dataset("rand16", description=..., options={"size": Param(64, ge=8)})``. ``options`` declares the
    ``--set data.KEY=VALUE`` options it takes (without it: the keyword arguments of its signature)."""
    if callable(name) and not isinstance(name, str):
        return register_dataset()(name)

    def decorator(loader: Callable) -> Callable:
        key = name or getattr(loader, "__name__", None)
        _set_attributes(loader, description=description, options=options)
        meta = {k: v for k, v in (("description", description), ("options", options)) if v is not None}
        DATASETS.add_plugin(key, loader, module=getattr(loader, "__module__", None), **meta)
        return loader

    return decorator


def register_architecture(name: str | Callable | None = None, *, description: str | None = None) -> Any:
    """Register a backbone builder ``(*, num_classes, split, image_size, cifar_stem) -> StagedNet``:
    ``@register_architecture("tiny_cnn", description=...)``."""
    if callable(name) and not isinstance(name, str):
        return register_architecture()(name)

    def decorator(builder: Callable) -> Callable:
        key = name or getattr(builder, "__name__", None)
        _set_attributes(builder, description=description)
        meta = {"description": description} if description is not None else {}
        ARCHITECTURES.add_plugin(key, builder, module=getattr(builder, "__module__", None), **meta)
        return builder

    return decorator


def _set_attributes(obj: Any, **values: Any) -> None:
    """Keep the declarations on the object too, so that an entry point naming it sees the same thing."""
    for key, value in values.items():
        if value is None:
            continue
        try:
            setattr(obj, key, value)
        except (AttributeError, TypeError):
            pass


def describe(obj: Any, meta: dict[str, Any] | None = None) -> str:
    """An entry's one-line description: ``description`` in its meta, its attribute, or its docstring's first line."""
    text = (meta or {}).get("description") or getattr(obj, "description", None)
    if not isinstance(text, str) or not text.strip():
        doc = getattr(obj, "__doc__", None) if not isinstance(obj, str) else None
        text = doc.strip().splitlines()[0] if isinstance(doc, str) and doc.strip() else ""
    return " ".join(text.split())


METHODS = Registry("method", "bench.methods")
ARCHITECTURES = Registry("architecture", "bench.architectures")
DATASETS = Registry("dataset", "bench.datasets")
PROTOCOLS = Registry("protocol", "bench.protocols")

for _name in ("sgd", "greedy_ce", "dgl", "infopro", "greedydib"):
    METHODS.register(_name, f"bench.methods.{_name}:method")


class TimmArchitecture:
    """A built-in backbone: a timm model (or one of our CIFAR ResNets registered into timm), split into modules."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *, num_classes: int, split: str, image_size: int, cifar_stem: bool | None):
        from bench.architectures import build_staged

        return build_staged(
            self.name, num_classes=num_classes, split=split, image_size=image_size, cifar_stem=cifar_stem
        )


def _timm_fallback(name: str) -> TimmArchitecture | None:
    """Any other timm model whose family the splitter supports."""
    try:
        from bench.architectures import supported_family

        return TimmArchitecture(name) if supported_family(name) else None
    except Exception:
        return None


for _name in (
    "cifar_resnet20", "cifar_resnet32", "cifar_resnet56", "cifar_resnet110", "resnet18", "resnet34", "resnet50",
    "convnext_atto", "efficientnet_b0", "mobilenetv3_small_100", "regnetx_002", "vgg11",
):
    ARCHITECTURES.register(_name, TimmArchitecture(_name))
ARCHITECTURES.set_fallback(_timm_fallback)

BUILTIN_DATASET_OPTIONS: dict[str, dict[str, Param]] = {
    "signs": {
        "num_classes": Param(10, ge=2, le=20, help="number of sign designs (the first N of bench.data.signs)"),
        "train_size": Param(5000, ge=2, le=1_000_000, help="training images, balanced over the classes"),
        "test_size": Param(1000, ge=2, le=1_000_000, help="test images, balanced over the classes"),
        "image_size": Param(32, ge=16, le=128, help="side of the square images, pixels"),
    },
    "cifar10": {},
    "cifar100": {
        "labels": Param("fine", choices=("fine", "coarse"), help="fine: 100 classes; coarse: the 20 superclasses"),
    },
    "gtsrb": {
        "image_size": Param(32, ge=8, le=512, help="side of the stored square images, pixels"),
        "cache": Param(True, help="read/write the decoded tensors from/to an .npz cache"),
        "cache_dir": Param(None, type=str, help="where the cache lives (default: the user cache folder)"),
        "flip": Param("none", choices=("none", "mirror"),
                      help="none: never flipped; mirror: flip a training image whose mirror image is a sign, "
                           "with its class ('turn left' <-> 'turn right'; 25 classes never flip)"),
        "contrast": Param("none", choices=("none", "stretch"),
                          help="none: images as decoded; stretch: each image's darkest value to 0 and brightest to "
                               "255 (training and test alike)"),
    },
}
"""The ``--set data.KEY=VALUE`` options of the built-in datasets, validated before the loader runs (as a
plugin's declared options are)."""


def _register_datasets() -> None:
    from bench.data import BUILTIN_DATASETS

    for name, entry in BUILTIN_DATASETS.items():
        options = entry.get("options", BUILTIN_DATASET_OPTIONS.get(name))
        DATASETS.register(name, entry["loader"], description=entry["description"], options=options)


_register_datasets()


def _register_protocols() -> None:
    from bench.protocols import PROTOCOLS as _P

    for name, protocol in _P.items():
        PROTOCOLS.register(name, protocol, description=protocol.description)


_register_protocols()
