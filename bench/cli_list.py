"""``bench list``: methods, architectures, datasets and protocols, one line per entry (readable in 80 columns);
``-v`` or ``bench list method NAME`` for the details (description, hyperparameters or options with their declared
types and defaults, origin). Registered on the ``bench`` app in bench/cli.py."""

from __future__ import annotations

import textwrap
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer


class ListWhat(str, Enum):
    all = "all"
    methods = "methods"
    archs = "archs"
    datasets = "datasets"
    protocols = "protocols"
    method = "method"
    arch = "arch"
    dataset = "dataset"
    protocol = "protocol"


PLURAL = {"method": "methods", "arch": "archs", "dataset": "datasets", "protocol": "protocols"}


def list_(
    what: Annotated[ListWhat, typer.Argument(help="What to list: all, methods, archs, datasets, protocols; or "
                                                  "method, arch, dataset, protocol followed by a NAME.")] = ListWhat.all,
    name: Annotated[str | None, typer.Argument(help="With method/arch/dataset/protocol: the entry to describe.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Details of every entry: description, "
                                                                  "hyperparameters or options, origin.")] = False,
    include: Annotated[list[Path] | None, typer.Option(help="A .py file or a folder of them to load plugins "
                                                            "from first; repeatable.")] = None,
) -> None:
    """List methods (version, default schedule and head, origin), architectures, datasets and protocols.

    One line per entry; -v adds each entry's description and settings. Examples:

        bench list methods -v

        bench list method greedydib

        bench list --include my_method.py methods
    """
    from bench.cli import fail, shown_warnings
    from bench.errors import BenchError
    from bench.registry import load_includes

    kind = what.value
    if name is not None and kind in PLURAL.values():
        kind = kind[:-1]
    if kind in PLURAL and name is None:
        raise fail(f"`bench list {kind}` needs a name, e.g. `bench list {kind} NAME`; `bench list {PLURAL[kind]}` "
                   "lists them")
    if kind == "all" and name is not None:
        raise fail("give what to describe before the name: bench list method|arch|dataset|protocol NAME")
    try:
        with shown_warnings():
            load_includes(include)
            out = _Out()
            if kind in PLURAL:
                _describe_one(out, kind, name)
            else:
                for section in ("methods", "archs", "datasets", "protocols"):
                    if kind in ("all", section):
                        _SECTIONS[section](out, verbose)
            out.flush()
    except BenchError as e:
        raise fail(str(e)) from None


class _Out:
    """Plain lines, never wider than the terminal: tables are padded columns whose last column is cut with '…'."""

    def __init__(self) -> None:
        from bench.cli import console

        self.console = console
        self.width = max(40, console.width)
        self.lines: list[str] = []

    def line(self, text: str = "") -> None:
        self.lines.append(text)

    def wrap(self, text: str, indent: int) -> None:
        if not text:
            return
        pad = " " * indent
        self.lines += textwrap.wrap(text, self.width, initial_indent=pad, subsequent_indent=pad,
                                    break_on_hyphens=False, break_long_words=False) or [pad]

    def table(self, title: str, header: list[str], rows: list[list[str]]) -> None:
        self.line(title)
        if not rows:
            self.line("  (none)")
            return
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            cells = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)]
            text = "  " + "  ".join([*cells, row[-1]])
            self.line(_cut(text.rstrip(), self.width))

    def flush(self) -> None:
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        for text in self.lines:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)
        self.lines = []


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _show(value: Any) -> str:
    from bench.params import _show as show

    return show(value)


# ------------------------------------------------------------------------------------------------------- methods


def _method_rows(verbose: bool) -> tuple[list[list[str]], list[tuple[str, str, Any, str | None]]]:
    from bench.method import check_method
    from bench.registry import METHODS

    entries = []
    for name in METHODS.names():
        origin = METHODS.origin(name)
        try:
            obj = METHODS.get(name)
        except Exception as e:  # a broken plugin: shown as such below
            entries.append((name, origin, None, str(e)))
            continue
        try:
            check_method(obj, name, origin)
            problem = None
        except Exception as e:
            problem = str(e)
        entries.append((name, origin, obj, problem))
    for name, (origin, reason) in METHODS.broken().items():
        if name not in {e[0] for e in entries}:
            entries.append((name, origin, None, reason))
    entries.sort(key=lambda e: e[0])
    rows = []
    for name, origin, obj, problem in entries:
        if problem is not None:
            rows.append([name, "-", "BROKEN", "-", origin])
            continue
        rows.append([name, str(obj.version), str(obj.default_schedule), str(getattr(obj, "default_aux", None) or "-"),
                     origin])
    return rows, entries


def _methods(out: _Out, verbose: bool) -> None:
    rows, entries = _method_rows(verbose)
    if not verbose:
        out.table("methods (details: bench list methods -v, or bench list method NAME)",
                  ["name", "version", "schedule", "aux", "origin"], rows)
        _problems(out, [(n, p) for n, _, _, p in entries if p])
        out.line()
        return
    out.line("methods")
    for name, origin, obj, problem in entries:
        _method_details(out, name, origin, obj, problem)
    out.line()


def _broken(out: _Out, name: str, origin: str, problem: str | None) -> bool:
    """Print an entry whose plugin failed to load (name, origin, the problem); True when it did."""
    if problem is None:
        return False
    out.wrap(f"{name}  BROKEN  ({origin})", 2)
    out.wrap(problem, 6)
    out.line()
    return True


def _method_details(out: _Out, name: str, origin: str, obj: Any, problem: str | None) -> None:
    from bench.method import check_method

    if _broken(out, name, origin, problem):
        return
    out.wrap(f"{name} {obj.version}  ({origin})", 2)
    out.wrap(str(obj.description), 6)
    schedules = tuple(getattr(obj, "schedules", (obj.default_schedule,)))
    others = [s for s in schedules if s != obj.default_schedule]
    also = f" (also {', '.join(others)})" if others else ""
    out.wrap(f"schedule: {obj.default_schedule}{also}; aux head: {getattr(obj, 'default_aux', None) or 'none'}", 6)
    declared = check_method(obj, name, origin)
    if not declared:
        out.wrap("hyperparameters: none", 6)
    else:
        out.wrap("hyperparameters (--set KEY=VALUE):", 6)
        for key, p in declared.items():
            out.wrap(f"{key} = {_show(p.default)}  ({p.describe_type()})", 8)
            out.wrap(p.help, 12)
    out.line()


def _problems(out: _Out, problems: list[tuple[str, str]]) -> None:
    for name, reason in problems:
        out.wrap(f"! {name}: {reason}", 2)


# ------------------------------------------------------------------------------------------------- architectures


def _archs(out: _Out, verbose: bool) -> None:
    from bench.architectures import list_architectures
    from bench.registry import ARCHITECTURES, describe

    rows = [[r["name"], r["family"], str(r["num_stages"]), f"{r['params'] / 1e6:.2f}M", "built-in"]
            for r in list_architectures()]
    problems = []
    details = []
    for name in ARCHITECTURES.names():
        origin = ARCHITECTURES.origin(name)
        if origin == "built-in":
            continue
        try:
            obj = ARCHITECTURES.get(name)
            if not callable(obj):
                raise TypeError(f"{type(obj).__name__} is not callable; an architecture is a function "
                                "(*, num_classes, split, image_size, cifar_stem) -> StagedNet")
        except Exception as e:
            rows.append([name, "BROKEN", "?", "?", origin])
            problems.append((name, str(e)))
            continue
        rows.append([name, "plugin", "?", "?", origin])
        details.append((name, origin, describe(obj, ARCHITECTURES.meta(name))))
    for name, (origin, reason) in ARCHITECTURES.broken().items():
        if name not in {r[0] for r in rows}:
            rows.append([name, "BROKEN", "?", "?", origin])
            problems.append((name, reason))
    out.table("architectures (any other timm model of these families works too)",
              ["name", "family", "stages", "params", "origin"], rows)
    _problems(out, problems)
    if verbose:
        for name, origin, text in details:
            out.line(f"  {name}  ({origin})")
            out.wrap(text, 6)
    out.line()


# ------------------------------------------------------------------------------------------------------ datasets


def _dataset_entries() -> list[tuple[str, str, Any, str | None]]:
    from bench.plugins import dataset_options
    from bench.registry import DATASETS

    entries = []
    for name in DATASETS.names():
        origin = DATASETS.origin(name)
        try:
            obj = DATASETS.get(name)
            if not callable(obj):
                raise TypeError(f"{type(obj).__name__} is not callable; a dataset is a loader function "
                                "(root, *, allow_subset, download, **options) -> ImageDataset")
            dataset_options(name)
            problem = None
        except Exception as e:
            obj, problem = None, str(e)
        entries.append((name, origin, obj, problem))
    for name, (origin, reason) in DATASETS.broken().items():
        if name not in {e[0] for e in entries}:
            entries.append((name, origin, None, reason))
    return sorted(entries, key=lambda e: e[0])


def _datasets(out: _Out, verbose: bool) -> None:
    from bench.registry import DATASETS, describe

    entries = _dataset_entries()
    if not verbose:
        rows = [[n, o, "BROKEN" if p else describe(obj, DATASETS.meta(n)) if n in DATASETS else ""]
                for n, o, obj, p in entries]
        out.table("datasets (options: bench list datasets -v)", ["name", "origin", "description"], rows)
        _problems(out, [(n, p) for n, _, _, p in entries if p])
        out.line()
        return
    out.line("datasets")
    for entry in entries:
        _dataset_details(out, *entry)


def _dataset_details(out: _Out, name: str, origin: str, obj: Any, problem: str | None) -> None:
    from bench.plugins import dataset_options
    from bench.registry import DATASETS, describe

    if _broken(out, name, origin, problem):
        return
    out.wrap(f"{name}  ({origin})", 2)
    out.wrap(describe(obj, DATASETS.meta(name)), 6)
    options = dataset_options(name)
    if options is None:
        out.wrap("options: any (--set data.KEY=VALUE; not declared, the loader checks them)", 6)
    elif not options:
        out.wrap("options: none", 6)
    else:
        out.wrap("options (--set data.KEY=VALUE):", 6)
        for key, p in options.items():
            out.wrap(f"{key} = {_show(p.default)}  ({p.describe_type()})", 8)
            out.wrap(p.help, 12)
    out.line()


# ----------------------------------------------------------------------------------------------------- protocols


def _protocols(out: _Out, verbose: bool) -> None:
    from bench.registry import PROTOCOLS

    rows = []
    items = list(PROTOCOLS.items())
    for name, p, _ in items:
        s = p.settings
        rows.append([name, str(p.version), str(s.get("data", "")), str(s.get("arch", "")), str(s.get("split", "")),
                     str(s.get("epochs", ""))])
    if not verbose:
        out.table("protocols (details: bench list protocols -v)",
                  ["name", "version", "data", "arch", "split", "epochs"], rows)
        out.line()
        return
    out.line("protocols")
    for name, p, origin in items:
        _protocol_details(out, name, p, origin)


def _protocol_details(out: _Out, name: str, p: Any, origin: str) -> None:
    out.line(f"  {name} v{p.version}  ({origin})")
    out.wrap(p.description, 6)
    out.wrap("settings: " + ", ".join(f"{k}={_show(v)}" for k, v in p.settings.items()), 6)
    if p.method_settings:
        for method, values in p.method_settings.items():
            out.wrap(f"{method}: " + ", ".join(f"{k}={_show(v)}" for k, v in values.items()), 6)
    out.wrap("seeds: " + ", ".join(str(s) for s in p.seeds), 6)
    out.line()


# ----------------------------------------------------------------------------------------------------- one entry


def _describe_one(out: _Out, kind: str, name: str) -> None:
    from bench.errors import ConfigError
    from bench.registry import ARCHITECTURES, DATASETS, METHODS, PROTOCOLS, describe

    if kind == "method":
        obj = METHODS.get(name)
        origin = METHODS.origin(name)
        from bench.method import check_method

        check_method(obj, name, origin)
        _method_details(out, name, origin, obj, None)
    elif kind == "dataset":
        obj = DATASETS.get(name)
        origin = DATASETS.origin(name)
        if not callable(obj):
            raise ConfigError(f"dataset {name!r} ({origin}) is not a loader function")
        _dataset_details(out, name, origin, obj, None)
    elif kind == "protocol":
        _protocol_details(out, name, PROTOCOLS.get(name), PROTOCOLS.origin(name))
    else:
        obj = ARCHITECTURES.get(name)
        origin = ARCHITECTURES.origin(name)
        if origin == "built-in":
            from bench.architectures import list_architectures

            (row,) = list_architectures([getattr(obj, "name", name)])
            out.line(f"  {name}  (built-in)")
            out.wrap(f"family {row['family']}, {row['num_stages']} stages, {row['num_atoms']} blocks to cut between "
                     f"(--split blocks:K / cuts:i,j), {row['params'] / 1e6:.2f}M parameters at 10 classes", 6)
        else:
            out.line(f"  {name}  ({origin})")
            out.wrap(describe(obj, ARCHITECTURES.meta(name)), 6)


_SECTIONS = {"methods": _methods, "archs": _archs, "datasets": _datasets, "protocols": _protocols}
