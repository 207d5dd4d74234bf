"""Figures of results: learning curves of a run (``bench plot curves``) and top-1 against memory for a protocol
(``bench plot pareto``, also drawn by ``bench leaderboard``).

Figures are reproducible: drawn with matplotlib's Agg renderer on a figure of fixed size and resolution, with no
date and no software name in the PNG, so the same data give the same bytes (with the same matplotlib).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.results import RESULT_FILENAME, ResultFileError, read_result, write_bytes_atomic

DPI = 150
PNG_METADATA = {"Software": None}
RC = {
    "svg.hashsalt": "layerbench",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
}

METHOD_COLOURS = {
    "sgd": "#222222",
    "greedy_ce": "#1f77b4",
    "greedydib": "#d62728",
    "dgl": "#2ca02c",
    "infopro": "#9467bd",
}
OTHER_COLOURS = ("#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, without metadata that changes from run to run."""
    import matplotlib as mpl

    buf = io.BytesIO()
    with mpl.rc_context(RC):
        fig.savefig(buf, format="png", dpi=DPI, metadata=PNG_METADATA)
    return buf.getvalue()


def method_colour(method: str, others: dict[str, str] | None = None) -> str:
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    if not method:
        return "#7f7f7f"
    others = {} if others is None else others
    if method not in others:
        others[method] = OTHER_COLOURS[len(others) % len(OTHER_COLOURS)]
    return others[method]


# --------------------------------------------------------------------------------------------- learning curves


def result_path(target: str | Path) -> Path:
    """The result file of a run folder, or the file itself."""
    target = Path(target)
    path = target / RESULT_FILENAME if target.is_dir() else target
    if not path.is_file():
        raise ConfigError(f"{target}: no {RESULT_FILENAME} there; give a run folder or a result file")
    return path


def load_history(target: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run's result and its ``history`` records; ConfigError when the file is unreadable or has no history."""
    path = result_path(target)
    try:
        result = read_result(path)
    except ResultFileError as e:
        raise ConfigError(str(e)) from None
    history = result.get("history")
    if not isinstance(history, list) or not history:
        raise ConfigError(
            f"{path}: this result has no training history (per-epoch records); it was written before the harness "
            "recorded them, or the run stopped before its first epoch ended. Run it again (`bench run ... "
            "--force`) to record learning curves."
        )
    return result, [r for r in history if isinstance(r, Mapping)]


def _run_label(result: Mapping[str, Any], path: Path) -> str:
    cfg = result.get("config") or {}
    arch = result.get("architecture") or {}
    parts = [str(cfg.get("method") or "?"), str(cfg.get("arch") or "?")]
    if arch.get("num_modules"):
        parts.append(f"K={arch['num_modules']}")
    parts.append(f"seed {cfg.get('seed')}")
    return " ".join(parts)


def _module_name(module: Any) -> str:
    return "end to end" if module is None else f"module {int(module) + 1}"


def _series(records: Sequence[Mapping[str, Any]], module: Any) -> dict[str, list[tuple[int, float]]]:
    """One module's records in training order, as (epoch number, value) per quantity; epochs count on across
    phases when a module trains in more than one."""
    mine = sorted(
        (r for r in records if r.get("module") == module),
        key=lambda r: (int(r.get("phase") or 0), int(r.get("epoch") or 0)),
    )
    out: dict[str, list[tuple[int, float]]] = {}
    for x, record in enumerate(mine, start=1):
        for key in ("train_loss", "train_acc", "val_top1", "test_top1"):
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out.setdefault(key, []).append((x, float(value)))
    return out


CURVE_STYLES = {
    "train_loss": ("train loss", "-", None),
    "train_acc": ("train acc.", "--", None),
    "val_top1": ("val top-1", "-.", "s"),
    "test_top1": ("test top-1", ":", "o"),
}


def curves_figure(runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], title: str | None = None):
    """Learning curves of one or more runs: one panel per module (end to end: one panel), train loss on the left
    axis, train accuracy and val/test top-1 (%) on the right one; runs told apart by colour."""
    from matplotlib.lines import Line2D

    modules: list[Any] = []
    for _, records in runs:
        for record in records:
            if record.get("module") not in modules:
                modules.append(record.get("module"))
    modules.sort(key=lambda m: -1 if m is None else int(m))
    ncols = min(len(modules), 4)
    nrows = math.ceil(len(modules) / ncols)
    width, height = max(6.4, 3.0 * ncols + 0.6), (4.0 if ncols == 1 else 2.5 * nrows + 1.0)
    fig = _figure(width, height)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    used: set[str] = set()
    for index, module in enumerate(modules):
        ax = axes[index // ncols][index % ncols]
        acc_ax = ax.twinx()
        for run_index, (_, records) in enumerate(runs):
            colour = RUN_COLOURS[run_index % len(RUN_COLOURS)]
            series = _series(records, module)
            for key, points in series.items():
                _, style, marker = CURVE_STYLES[key]
                target = ax if key == "train_loss" else acc_ax
                xs, ys = zip(*points, strict=True)
                target.plot(xs, ys, linestyle=style, marker=marker, markersize=3, color=colour, linewidth=1.3)
                used.add(key)
        ax.set_title(_module_name(module))
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        if index % ncols == 0:
            ax.set_ylabel("train loss")
        if index % ncols == ncols - 1 or index == len(modules) - 1:
            acc_ax.set_ylabel("accuracy (%)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    for index in range(len(modules), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    handles = [
        Line2D([], [], color="0.2", linestyle=CURVE_STYLES[k][1], marker=CURVE_STYLES[k][2], markersize=3,
               label=CURVE_STYLES[k][0])
        for k in CURVE_STYLES if k in used
    ]
    if len(runs) > 1:
        handles += [
            Line2D([], [], color=RUN_COLOURS[i % len(RUN_COLOURS)], linewidth=3, label=label)
            for i, (label, _) in enumerate(runs)
        ]
    ncol = 4 if width >= 9 else 2 if len(runs) > 1 else 3
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), ncol), frameon=False)
    fig.suptitle(title or (runs[0][0] if len(runs) == 1 else "learning curves"))
    legend_rows = math.ceil(len(handles) / ncol)
    fig.tight_layout(rect=(0, (0.1 + 0.22 * legend_rows) / height, 1, 1))
    return fig


def plot_curves(targets: Iterable[str | Path], out: str | Path) -> Path:
    """Draw the learning curves of the given runs (folders or result files) into the PNG ``out``.

    ConfigError when a target has no result file or no recorded history."""
    runs = []
    for target in targets:
        result, records = load_history(target)
        runs.append((_run_label(result, result_path(target)), records))
    if not runs:
        raise ConfigError("give at least one run folder or result file")
    fig = curves_figure(runs)
    return write_bytes_atomic(out, png_bytes(fig))


# ------------------------------------------------------------------------------------ accuracy against memory


def pareto_figure(points, protocol: str):
    """Top-1 (%) against memory relative to end-to-end training: ours filled circles, published hollow diamonds,
    one colour per method, error bars = std over seeds (ours) or trials (published)."""
    import pandas as pd
    from matplotlib.lines import Line2D

    fig = _figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    others: dict[str, str] = {}
    ours = points[points["source"] == "ours"]
    vary_k = ours["k"].dropna().nunique() > 1
    labels: list[tuple[str, float, float, str]] = []
    for _, p in points.iterrows():
        published = p["source"] == "published"
        colour = method_colour(str(p["method"]), others)
        std = p["top1_std"]
        ax.errorbar(
            [p["memory_ratio"]], [p["top1_mean"]], yerr=None if pd.isna(std) else [[std], [std]],
            fmt="D" if published else "o", markersize=6 if published else 7, color=colour,
            markerfacecolor="white" if published else colour, markeredgewidth=1.4, elinewidth=1.1, capsize=3,
            zorder=3,
        )
        label = str(p["label"])
        if published:
            label = label.split(" (")[0].replace("E2E Training", "E2E") + (
                "" if pd.isna(p["k"]) else f" K={int(p['k'])}"
            )
        else:
            if vary_k and not pd.isna(p["k"]):
                label += f" K={int(p['k'])}"
            if p["settings"]:
                label += f" ({p['settings']})"
        labels.append((label, float(p["memory_ratio"]), float(p["top1_mean"]), colour))
    ax.set_xlabel("memory relative to end-to-end training (sgd = 1)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(f"{protocol}: accuracy against memory")
    high = max([1.0, *points["memory_ratio"].tolist()])
    ax.set_xlim(0, high * 1.25)
    ax.margins(y=0.1)
    ax.grid(True, alpha=0.3)
    handles = [Line2D([], [], color="0.3", marker="o", linestyle="",
                      label="ours: peak activation memory / sgd; bars: ± std over seeds")]
    if (points["source"] == "published").any():
        handles.append(Line2D([], [], color="0.3", marker="D", markerfacecolor="white", linestyle="",
                              label="published: GPU memory / its E2E; bars: ± std of 5 trials"))
    fig.legend(handles=handles, loc="lower center", ncol=1, frameon=False)
    fig.tight_layout(rect=(0, 0.03 + 0.055 * len(handles), 1, 1))
    _place_labels(fig, ax, labels)
    return fig


LABEL_OFFSETS = ((7, 0, "left"), (-7, 0, "right"), (7, 10, "left"), (7, -10, "left"), (-7, 10, "right"),
                 (-7, -10, "right"), (7, 20, "left"), (7, -20, "left"))
"""Where a point's label may go (points right, up; horizontal alignment), tried in this order."""


def _place_labels(fig, ax, labels: Sequence[tuple[str, float, float, str]]) -> None:
    """Label each point at the first offset where the label overlaps no other label or marker."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    pad = 3 * DPI / 72
    taken = [
        Bbox.from_extents(x - pad, y - pad, x + pad, y + pad)
        for x, y in (to_px((mx, my)) for _, mx, my, _ in labels)
    ]
    for text, x, y, colour in labels:
        placed = None
        for dx, dy, ha in LABEL_OFFSETS:
            candidate = ax.annotate(
                text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va="center", fontsize=8,
                color=colour, zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )
            box = candidate.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in taken):
                placed = candidate
                break
            candidate.remove()
        if placed is None:  # crowded: keep the first choice
            placed = ax.annotate(
                text, (x, y), xytext=LABEL_OFFSETS[0][:2], textcoords="offset points", ha="left", va="center",
                fontsize=8, color=colour, zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )
        taken.append(placed.get_window_extent(renderer))


def pareto_png(points, protocol: str) -> bytes:
    """The figure of :func:`pareto_figure` as PNG bytes."""
    return png_bytes(pareto_figure(points, protocol))


def plot_pareto(protocol: str, results_dir: str | Path, out: str | Path) -> Path:
    """Draw ``protocol``'s top-1 against memory from the results under ``results_dir`` into the PNG ``out``.

    ConfigError when the folder is missing or the protocol has nothing to plot."""
    from bench import leaderboard as lb
    from bench import references

    results_dir = Path(results_dir)
    if not results_dir.exists():
        raise ConfigError(f"results folder {results_dir} does not exist")
    frame, _ = lb.collect(results_dir)
    groups = lb.group_by_protocol(frame, include_adhoc=True)
    if protocol not in groups and not references.memory_for(protocol):
        known = ", ".join(groups) or "none"
        raise ConfigError(f"no results for protocol {protocol!r} under {results_dir} (protocols there: {known})")
    points = lb.pareto_points(protocol, groups.get(protocol, frame.iloc[0:0]))
    if points.empty:
        raise ConfigError(
            f"nothing to plot for {protocol!r}: no configuration has both a top-1 and a peak activation memory "
            "with an sgd run to compare with"
        )
    points = lb.read_pareto_csv(lb.pareto_csv(protocol, points))  # the same points as the leaderboard's figure
    return write_bytes_atomic(out, pareto_png(points, protocol))
