"""Helpers for the plugin tests: isolated registries, fake installed distributions, small plugin files."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import registry

REGISTRIES = (registry.METHODS, registry.DATASETS, registry.ARCHITECTURES, registry.PROTOCOLS)


@pytest.fixture
def isolated_registries(monkeypatch) -> Iterator[None]:
    """Whatever a test registers (``--include`` files, decorators, entry points) is forgotten after it."""
    saved = [(r, dict(r._entries), dict(r._broken), dict(r._broken_origin), r._plugins_loaded) for r in REGISTRIES]
    included = dict(registry._INCLUDED)
    modules = set(sys.modules)
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith(("bench_include_", "bench_example", "fake_bench_plugin")):
            sys.modules.pop(name, None)
    registry._INCLUDED.clear()
    registry._INCLUDED.update(included)
    for reg, entries, broken, broken_origin, loaded in saved:
        reg._entries.clear()
        reg._entries.update(entries)
        reg._broken.clear()
        reg._broken.update(broken)
        reg._broken_origin.clear()
        reg._broken_origin.update(broken_origin)
        reg._plugins_loaded = loaded


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def install_distribution(site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]]) -> Path:
    """A ``<name>-<version>.dist-info`` folder with METADATA and entry_points.txt in ``site`` (on sys.path): what
    ``pip install`` leaves for the entry points of a package. ``entry_points``: group -> {name: "module:attr"}."""
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in entries.items()]
        lines.append("")
    (dist / "entry_points.txt").write_text("\n".join(lines))
    return dist
