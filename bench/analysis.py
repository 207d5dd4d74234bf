r"""Information-flow analysis of a training run: mutual-information matrices and the information plane.

``bench analyze`` trains exactly like ``bench run`` and, at initialisation and at every epoch end, measures what
each local module's output knows about the input and the labels, on one FIXED probe batch: the first N test images
(default 256), pushed through the network in eval mode without gradient (the training mode of every sub-module is
restored afterwards). All quantities are the matrix-based Renyi alpha-order estimators of :mod:`bench.info`, in
bits, with the Gaussian kernel width of each representation set by the batch median of its pairwise distances
(``gram_matrix(x, "median")``: scale invariant, so a layer is not rewarded or penalised for its overall scale).

Nodes and definitions
---------------------
The nodes are the input ``X`` (the normalised probe images), the output ``T_l`` of every local module
``l = 1..K`` (``StagedNet.forward_features``), and the labels ``Y`` (``label_gram``). With ``A_V`` the unit-trace
Gram matrix of node ``V`` on the probe batch:

- entropy ``S(V) = S_alpha(A_V)``;
- mutual information ``I(U;V) = S(U) + S(V) - S(U, V)`` with the joint entropy of the Hadamard product;
- the **MI matrix** at point ``e``: ``M_e[i][j] = I(V_i; V_j)`` over the nodes ``X, T_1..T_K, Y``. It is
  symmetric and its **diagonal is defined as** ``M_e[i][i] = S(V_i)``. This is a convention, not the estimator's
  value: for a Gaussian Gram the formula gives ``I(A;A) = 2S(A) - S(A o A) < S(A)``; only for 0/1 kernels
  (the labels) do the two agree. Off-diagonal entries are the raw estimates (a negative rounding residue
  above -1e-6 bits is set to 0);
- the per-node series are rows of that matrix: ``S(T_l) = M[l][l]``, ``I(X;T_l) = M[X][l]``,
  ``I(T_l;Y) = M[l][Y]``. For the estimators' constant-diagonal Grams,
  ``0 <= I(U;V) <= min(S(U), S(V))``;
- the **convergence matrix** ``C[l][e] = I(T_l at e ; T_l at the final point) / S(T_l at the final point)``,
  over the module outputs only. By the same diagonal convention ``C[l][e] = 1`` when the two representations are
  identical (always at the final point, and for a module frozen by the sequential schedule); 0 when
  ``S(T_l at the final point)`` is 0 (a collapsed representation). For distinct but nearly identical
  representations the raw estimate tops out at ``I(T;T)/S(T) < 1``; that ceiling is stored per layer as
  ``convergence_ceiling``.

The timeline
------------
Point 0 is ``"init"`` (before any training step). Then one point per epoch-end hook call: with the sequential
schedule the pairs (module k, epoch) in order, labelled ``"m<k> e<epoch>"`` (1-based); with the other schedules
``"e<epoch>"``. Each point also stores the hook's raw ``phase`` and ``epoch`` (0-based; null at init). With the
sequential schedule the whole network exists from the start, so the outputs of modules not trained yet are
measured too (they move only because their input moves).

Files of a run folder (default ``<out>/analysis_<method>_<arch>_<data>_seed<N>/``)
--------------------------------------------------------------------------------
``analysis.json`` (everything, see :func:`load_analysis`), ``layers.csv`` (point, label, layer, S, I_XT, I_TY),
``mi_matrix.csv`` (point, label, i, j, mi), and the pictures ``information_plane.png``, ``mi_matrix.png``,
``convergence.png``. Every file is written to a temporary file and renamed.

Under ``--task localize`` the network is trained on class and box (``bench.boxes``) and measured exactly as above:
``Y`` is still the class label, so ``I(T_l;Y)`` is how much of the class each layer keeps, not of the box; the box
is part of what ``I(X;T_l)`` can hold. The record adds ``task`` and ``test_miou``.

Memory: the recorder keeps the N x N float64 Gram matrix of every module output at every point (for the
convergence matrix): ``8 N^2 K P`` bytes, 0.5 MiB per module and point at N = 256.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError, ConfigError
from bench.info import gram_matrix, joint_entropy, label_gram, matrix_entropy
from bench.results import read_json

ANALYSIS_FILENAME = "analysis.json"
ANALYSIS_SCHEMA = "layerbench.analysis"
ANALYSIS_SCHEMA_VERSION = 1
DEFAULT_PROBE_SIZE = 256
DEFAULT_ALPHA = 1.01
KERNEL_WIDTH = "median"

PICTURES = ("information_plane.png", "mi_matrix.png", "convergence.png")
COMPARE_FILENAME = "compare_information_plane.png"

DPI = 100
"""Every picture is saved at this dpi, without tight bounding box, so pixel sizes are figsize x DPI."""
PLANE_FIGSIZE = (8.0, 6.0)
MI_PANEL_WIDTH = 4.0
"""mi_matrix.png is ``(MI_PANEL_WIDTH * panels + MI_EXTRA_WIDTH) x MI_HEIGHT`` inches."""
MI_EXTRA_WIDTH = 1.0
MI_HEIGHT = 4.5
CONVERGENCE_FIGSIZE = (10.0, 4.5)
COMPARE_PANEL_WIDTH = 6.5
"""compare_information_plane.png is ``(COMPARE_PANEL_WIDTH * runs + 1) x COMPARE_HEIGHT`` inches."""
COMPARE_HEIGHT = 5.5

_NEGATIVE_NOISE = 1e-6
"""Raw MI estimates in (-1e-6, 0) are rounding residue and are stored as 0."""


class AnalysisFileError(BenchError):
    """A missing, unreadable or malformed analysis folder."""


# --------------------------------------------------------------------------------------------------------------
# recording
# --------------------------------------------------------------------------------------------------------------


def point_label(schedule: str | None, phase: int, epoch: int) -> str:
    """``"m<k> e<epoch>"`` (1-based) for the sequential schedule, ``"e<epoch>"`` otherwise."""
    if schedule == "sequential":
        return f"m{phase + 1} e{epoch + 1}"
    return f"e{epoch + 1}"


def _entropy(a: torch.Tensor, alpha: float) -> float:
    return float(matrix_entropy(a, alpha))


def _mi(a: torch.Tensor, b: torch.Tensor, s_a: float, s_b: float, alpha: float) -> float:
    value = s_a + s_b - float(joint_entropy(a, b, alpha))
    if -_NEGATIVE_NOISE < value < 0.0:
        value = 0.0
    return value


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Identical representations (up to float32 rounding of the features that made the Grams)."""
    return bool((a - b).abs().max() <= 1e-6 * float(b.abs().max()))


class InfoRecorder:
    """Epoch hook that measures entropies and mutual informations on a fixed probe batch.

    Use ``on_start`` as ``execute``'s ``on_start`` (the probe is taken and point ``"init"`` recorded before
    training), the recorder itself as an epoch hook (``hook(run, phase, epoch, heads)``), and :meth:`finish` after
    training for the complete record (convergence matrix included). See the module docstring for the definitions.

    Args:
        probe_size: N, the number of test images in the probe (the first N); 2 <= N <= test set size.
        alpha: Renyi order of every entropy.
        chunk_size: images per forward pass when computing the probe features.
    """

    def __init__(self, probe_size: int = DEFAULT_PROBE_SIZE, alpha: float = DEFAULT_ALPHA, *, chunk_size: int = 256):
        check_probe_size(probe_size)
        if not (math.isfinite(alpha) and alpha > 0):
            raise ConfigError(f"alpha must be a positive number, got {alpha}")
        self.probe_size = int(probe_size)
        self.alpha = float(alpha)
        self.chunk_size = int(chunk_size)
        self.schedule: str | None = None
        self.layers: list[str] = []
        self.nodes: list[str] = []
        self.points: list[dict[str, Any]] = []
        self.mi_matrices: list[np.ndarray] = []
        self.grams: list[list[torch.Tensor]] = []
        """Per point, the (CPU, float64) Gram matrix of each module output."""
        self._x = None
        self._gram_x: torch.Tensor | None = None
        self._gram_y: torch.Tensor | None = None
        self._s_x = self._s_y = 0.0

    # -- the probe ---------------------------------------------------------------------------------------------

    def on_start(self, run) -> None:
        """Take the probe batch (first N test images) and record point 0, ``"init"``."""
        data = run.data
        n = self.probe_size
        if n > data.test_size:
            raise ConfigError(
                f"probe size {n} is larger than the test set ({data.test_size} images); "
                f"use --probe-size between 2 and {data.test_size}"
            )
        self.schedule = run.cfg.schedule
        self.layers = [f"T{k + 1}" for k in range(run.net.num_modules)]
        self.nodes = ["X", *self.layers, "Y"]
        self._x = data.normalize(data.test_images[:n])
        y = data.test_labels[:n]
        self._gram_x = gram_matrix(self._x.double(), KERNEL_WIDTH).cpu()
        self._gram_y = label_gram(y, dtype=torch.float64).cpu()
        self._s_x = _entropy(self._gram_x, self.alpha)
        self._s_y = _entropy(self._gram_y, self.alpha)
        self.points, self.mi_matrices, self.grams = [], [], []
        self._record(run, "init", None, None)

    def __call__(self, run, phase: int, epoch: int, heads=None) -> None:
        self._record(run, point_label(self.schedule, phase, epoch), phase, epoch)

    @torch.no_grad()
    def probe_features(self, net) -> list[torch.Tensor]:
        """Every module's output on the probe, in eval mode; each sub-module's train/eval flag is restored."""
        modes = [(m, m.training) for m in net.modules()]
        net.eval()
        try:
            chunks = [net.forward_features(self._x[i : i + self.chunk_size])
                      for i in range(0, self.probe_size, self.chunk_size)]
        finally:
            for m, was_training in modes:
                m.training = was_training
        return [torch.cat([c[k] for c in chunks]) for k in range(len(chunks[0]))]

    def _record(self, run, label: str, phase: int | None, epoch: int | None) -> None:
        if self._gram_x is None:
            raise RuntimeError("InfoRecorder.on_start must run before the first epoch hook")
        feats = self.probe_features(run.net)
        grams = [gram_matrix(f.detach().double(), KERNEL_WIDTH).cpu() for f in feats]
        del feats
        mats = [self._gram_x, *grams, self._gram_y]
        s = [self._s_x, *(_entropy(g, self.alpha) for g in grams), self._s_y]
        m = np.diag(np.asarray(s, dtype=np.float64))
        for i in range(len(mats)):
            for j in range(i + 1, len(mats)):
                m[i, j] = m[j, i] = _mi(mats[i], mats[j], s[i], s[j], self.alpha)
        self.points.append({"index": len(self.points), "label": label, "phase": phase, "epoch": epoch})
        self.mi_matrices.append(m)
        self.grams.append(grams)

    # -- the record --------------------------------------------------------------------------------------------

    def convergence(self) -> tuple[list[list[float]], list[float]]:
        """``C[l][e]`` (layers x points) and the per-layer ceiling ``I(T_f;T_f)/S(T_f)`` of the raw estimate."""
        final = self.grams[-1]
        rows, ceilings = [], []
        for layer, g_f in enumerate(final):
            s_f = _entropy(g_f, self.alpha)
            row = []
            for grams in self.grams:
                g_e = grams[layer]
                if _same(g_e, g_f):
                    row.append(1.0)
                elif s_f <= 1e-12:
                    row.append(0.0)
                else:
                    row.append(_mi(g_e, g_f, _entropy(g_e, self.alpha), s_f, self.alpha) / s_f)
            rows.append(row)
            ceilings.append(_mi(g_f, g_f, s_f, s_f, self.alpha) / s_f if s_f > 1e-12 else 0.0)
        return rows, ceilings

    def finish(self) -> dict[str, Any]:
        """The analysis record (without run metadata): nodes, points, series, MI matrices, convergence."""
        if not self.points:
            raise RuntimeError("nothing recorded")
        conv, ceiling = self.convergence()
        idx = {name: i for i, name in enumerate(self.nodes)}
        x, y = idx["X"], idx["Y"]
        series = {
            "S": {v: [float(m[i, i]) for m in self.mi_matrices] for v, i in idx.items()},
            "I_XT": {v: [float(m[x, i]) for m in self.mi_matrices] for v, i in idx.items()},
            "I_TY": {v: [float(m[i, y]) for m in self.mi_matrices] for v, i in idx.items()},
        }
        return {
            "alpha": self.alpha,
            "probe_size": self.probe_size,
            "kernel_width": KERNEL_WIDTH,
            "schedule": self.schedule,
            "nodes": list(self.nodes),
            "layers": list(self.layers),
            "points": [dict(p) for p in self.points],
            "S_X": self._s_x,
            "S_Y": self._s_y,
            "I_XY": float(self.mi_matrices[0][x, y]),
            "series": series,
            "mi_matrices": [m.tolist() for m in self.mi_matrices],
            "convergence": conv,
            "convergence_ceiling": ceiling,
        }


def check_probe_size(probe_size: int, test_size: int | None = None) -> None:
    """Raise ConfigError unless 2 <= probe_size (<= test_size when given)."""
    if isinstance(probe_size, bool) or not isinstance(probe_size, int) or probe_size < 2:
        raise ConfigError(f"probe size must be an integer of at least 2 (the estimators need pairs), got {probe_size!r}")
    if test_size is not None and probe_size > test_size:
        raise ConfigError(f"probe size {probe_size} is larger than the test set ({test_size} images)")


# --------------------------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------------------------


@dataclass
class AnalysisRun:
    """What :func:`analyze` returns."""

    analysis: dict[str, Any]
    run_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    result_path: Path | None = None


def analysis_dir_for(cfg) -> Path:
    """``<out>/analysis_<method>_<arch>_<data>_seed<N>``."""
    return Path(cfg.out) / f"analysis_{cfg.method}_{cfg.arch}_{cfg.data}_seed{cfg.seed}"


def analyze(
    cfg,
    method,
    *,
    probe_size: int = DEFAULT_PROBE_SIZE,
    alpha: float = DEFAULT_ALPHA,
    run_dir: str | Path | None = None,
    progress=None,
    points_to_plot: str | Sequence[str | int] | None = None,
    draw: bool = True,
) -> AnalysisRun:
    """Train ``cfg`` with ``method`` (through :func:`bench.runner.execute`, always forced: the analysis needs the
    training to happen) while an :class:`InfoRecorder` measures the probe; write the analysis folder.

    ``points_to_plot`` selects the panels of ``mi_matrix.png`` (see :func:`select_points`). Raises BenchError
    subclasses for user errors, before training when possible.
    """
    from bench.runner import execute

    check_probe_size(probe_size)
    if points_to_plot is not None:
        parse_point_spec(points_to_plot)  # syntax errors before training
    recorder = InfoRecorder(probe_size, alpha)
    result, result_path = execute(cfg, method, progress=progress, force=True, epoch_hooks=[recorder],
                                  on_start=recorder.on_start)
    analysis = recorder.finish()
    metrics = result.get("metrics", {})
    analysis = {
        "schema": ANALYSIS_SCHEMA,
        "schema_version": ANALYSIS_SCHEMA_VERSION,
        "method": cfg.method,
        "arch": cfg.arch,
        "data": cfg.data,
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        **analysis,
        "task": getattr(cfg, "task", "classify"),
        "test_top1": metrics.get("test_top1"),
        "test_miou": metrics.get("test_miou"),
        "result_path": str(result_path),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    out_dir = Path(run_dir) if run_dir is not None else analysis_dir_for(cfg)
    files = write_analysis(analysis, out_dir)
    if draw:
        try:
            files.update(draw_all(analysis, out_dir, points_to_plot=points_to_plot))
        except ConfigError as e:
            raise ConfigError(f"{e}. {out_dir / ANALYSIS_FILENAME} was written; redraw with "
                              f"`bench analyze --from {out_dir} --epochs-to-plot ...`") from None
    return AnalysisRun(analysis, out_dir, files, result, result_path)


# --------------------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------------------


def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _csv_bytes(header: Sequence[str], rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


def write_analysis(analysis: dict[str, Any], run_dir: str | Path) -> dict[str, Path]:
    """Write ``analysis.json``, ``layers.csv`` and ``mi_matrix.csv`` into ``run_dir`` (atomically)."""
    run_dir = Path(run_dir)
    files = {"analysis": _atomic_write_bytes(run_dir / ANALYSIS_FILENAME,
                                             (json.dumps(analysis, indent=1) + "\n").encode())}
    nodes, points, series = analysis["nodes"], analysis["points"], analysis["series"]
    layer_rows = [
        (p["index"], p["label"], v, series["S"][v][e], series["I_XT"][v][e], series["I_TY"][v][e])
        for e, p in enumerate(points) for v in nodes
    ]
    files["layers_csv"] = _atomic_write_bytes(
        run_dir / "layers.csv", _csv_bytes(("point", "label", "layer", "S", "I_XT", "I_TY"), layer_rows)
    )
    mi_rows = [
        (p["index"], p["label"], a, b, m[i][j])
        for p, m in zip(points, analysis["mi_matrices"], strict=True)
        for i, a in enumerate(nodes) for j, b in enumerate(nodes)
    ]
    files["mi_csv"] = _atomic_write_bytes(
        run_dir / "mi_matrix.csv", _csv_bytes(("point", "label", "i", "j", "mi"), mi_rows)
    )
    return files


_REQUIRED = ("method", "arch", "data", "alpha", "probe_size", "nodes", "layers", "points", "series",
             "mi_matrices", "convergence", "S_Y")


def load_analysis(run_dir: str | Path) -> dict[str, Any]:
    """Read and check ``run_dir/analysis.json``; raise :class:`AnalysisFileError` (a BenchError) if it is missing,
    not JSON, of another schema, or inconsistent (lengths of points, matrices, series, convergence rows)."""
    run_dir = Path(run_dir)
    path = run_dir / ANALYSIS_FILENAME
    if not run_dir.is_dir():
        raise AnalysisFileError(f"{run_dir} is not a folder (expected a `bench analyze` run folder)")
    if not path.is_file():
        raise AnalysisFileError(f"no {ANALYSIS_FILENAME} in {run_dir}; run `bench analyze` to make one")
    data = read_json(path, AnalysisFileError, "; the file is corrupt")
    problem = _check_analysis(data)
    if problem:
        raise AnalysisFileError(f"{path}: {problem}")
    return data


def _check_analysis(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("schema") != ANALYSIS_SCHEMA:
        return f"not a layerbench analysis (schema {data.get('schema')!r})"
    if data.get("schema_version") != ANALYSIS_SCHEMA_VERSION:
        return f"unknown schema_version {data.get('schema_version')!r} (this version reads {ANALYSIS_SCHEMA_VERSION})"
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        return f"missing keys {', '.join(missing)}"
    try:
        p, nodes, layers = len(data["points"]), data["nodes"], data["layers"]
        if p < 1 or not layers:
            return "no points or no layers recorded"
        if len(data["mi_matrices"]) != p or any(
            len(m) != len(nodes) or any(len(r) != len(nodes) for r in m) for m in data["mi_matrices"]
        ):
            return "MI matrices do not match the points and nodes"
        for key in ("S", "I_XT", "I_TY"):
            if any(len(data["series"][key][v]) != p for v in nodes):
                return f"series {key} does not match the points"
        if len(data["convergence"]) != len(layers) or any(len(r) != p for r in data["convergence"]):
            return "convergence matrix does not match the layers and points"
        if not all(isinstance(q["label"], str) for q in data["points"]):
            return "point labels must be strings"
    except (KeyError, TypeError) as e:
        return f"malformed content ({type(e).__name__}: {e})"
    return None


# --------------------------------------------------------------------------------------------------------------
# point selection
# --------------------------------------------------------------------------------------------------------------

_NAMED = ("init", "middle", "final", "last")


def parse_point_spec(spec: str | Sequence[str | int]) -> list[str | int]:
    """``"init,middle,final"`` / ``"0,4,-1"`` / ``"m2 e3"`` -> list of tokens (ints, names or labels)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    tokens: list[str | int] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            tokens.append(item)
            continue
        text = " ".join(str(item).split())
        if not text:
            continue
        try:
            tokens.append(int(text))
        except ValueError:
            tokens.append(text.lower())
    if not tokens:
        raise ConfigError("no points to plot: give comma-separated indices, labels ('m2 e3') or init,middle,final")
    return tokens


def select_points(labels: Sequence[str], spec: str | Sequence[str | int] | None = None) -> list[int]:
    """Indices of the points named by ``spec`` (default init, middle, final; duplicates dropped, order kept).

    A token is an index (negative counts from the end), a point label (``"m2 e3"``, ``"e3"``, case and spaces
    ignored), or ``init`` / ``middle`` / ``final`` (= ``last``). Unknown tokens raise ConfigError.
    """
    p = len(labels)
    tokens = parse_point_spec(spec) if spec is not None else ["init", "middle", "final"]
    by_label = {" ".join(lab.split()).lower(): i for i, lab in enumerate(labels)}
    out: list[int] = []
    for t in tokens:
        if isinstance(t, int):
            if not -p <= t < p:
                raise ConfigError(f"point {t} does not exist (there are {p} points, 0..{p - 1})")
            i = t % p
        elif t == "init":
            i = 0
        elif t == "middle":
            i = (p - 1) // 2
        elif t in ("final", "last"):
            i = p - 1
        elif t in by_label:
            i = by_label[t]
        else:
            raise ConfigError(f"no point {t!r}; points are {', '.join(labels)} (or an index, init, middle, final)")
        if i not in out:
            out.append(i)
    return out


# --------------------------------------------------------------------------------------------------------------
# pictures
# --------------------------------------------------------------------------------------------------------------


def _figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return _atomic_write_bytes(Path(path), buf.getvalue())


def _title(analysis: dict[str, Any]) -> str:
    task = " · localize (Y = class)" if analysis.get("task") == "localize" else ""
    return f"{analysis['method']} · {analysis['arch']} · {analysis['data']}{task}"


def _draw_plane(ax, analysis: dict[str, Any], *, normalise_time: bool):
    """One trajectory per module output in the (I(X;T), I(T;Y)) plane; returns the scatter (for a colorbar)."""
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    points = analysis["points"]
    p = len(points)
    t = np.arange(p, dtype=float)
    if normalise_time:
        t = t / max(1, p - 1)
    norm = mpl.colors.Normalize(vmin=0.0, vmax=1.0 if normalise_time else max(1, p - 1))
    markers = "osD^v<>ph*"
    sc = None
    for k, layer in enumerate(analysis["layers"]):
        xs = np.asarray(analysis["series"]["I_XT"][layer])
        ys = np.asarray(analysis["series"]["I_TY"][layer])
        ax.plot(xs, ys, "-", color="0.6", lw=1.0, zorder=1)
        sc = ax.scatter(xs, ys, c=t, cmap=cmap, norm=norm, s=36, marker=markers[k % len(markers)],
                        edgecolors="k", linewidths=0.4, zorder=2, label=layer)
        ax.annotate(layer, (xs[-1], ys[-1]), xytext=(5, 4), textcoords="offset points", fontsize=9,
                    fontweight="bold")
    s_y = float(analysis["S_Y"])
    ax.axhline(s_y, color="tab:red", ls="--", lw=1, zorder=0)
    ax.text(0.01, s_y, f"S(Y) = {s_y:.2f} bits", color="tab:red", fontsize=8, va="bottom",
            transform=ax.get_yaxis_transform())
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, title="module output", title_fontsize=8)
    return sc


def plot_information_plane(analysis: dict[str, Any], path: str | Path | None = None):
    """The information plane: x = I(X;T_l), y = I(T_l;Y) in bits, one trajectory per module output, points
    coloured by time (colorbar: init .. final point). Returns the matplotlib Figure; saved when ``path`` is given.
    Size ``PLANE_FIGSIZE`` x ``DPI``."""
    fig = _figure(PLANE_FIGSIZE)
    ax = fig.add_subplot(1, 1, 1)
    sc = _draw_plane(ax, analysis, normalise_time=False)
    labels = [q["label"] for q in analysis["points"]]
    cb = fig.colorbar(sc, ax=ax)
    ticks = sorted({0, (len(labels) - 1) // 2, len(labels) - 1})
    cb.set_ticks(ticks)
    cb.set_ticklabels([labels[i] for i in ticks])
    cb.set_label("time (recorded point)")
    ax.set_title(f"Information plane: {_title(analysis)}\n(probe {analysis['probe_size']} test images, "
                 f"alpha {analysis['alpha']:g})", fontsize=10)
    fig.tight_layout()
    if path is not None:
        _save(fig, path)
    return fig


def plot_mi_matrices(analysis: dict[str, Any], path: str | Path | None = None,
                     points: str | Sequence[str | int] | None = None):
    """Heatmaps of the MI matrix ``M_e[i][j] = I(V_i;V_j)`` (diagonal = S(V_i)) over X, T_1..T_K, Y at the chosen
    points (default init, middle, final; see :func:`select_points`), on one colour scale in bits.
    Size ``(MI_PANEL_WIDTH * panels + MI_EXTRA_WIDTH, MI_HEIGHT)`` x ``DPI``."""
    labels = [q["label"] for q in analysis["points"]]
    chosen = select_points(labels, points)
    nodes = analysis["nodes"]
    mats = [np.asarray(analysis["mi_matrices"][i], dtype=float) for i in chosen]
    vmax = max(float(m.max()) for m in mats) or 1.0
    fig = _figure((MI_PANEL_WIDTH * len(chosen) + MI_EXTRA_WIDTH, MI_HEIGHT))
    axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    im = None
    for ax, i, m in zip(axes, chosen, mats, strict=True):
        im = ax.imshow(m, cmap="viridis", vmin=0.0, vmax=vmax)
        ax.set_xticks(range(len(nodes)), nodes)
        ax.set_yticks(range(len(nodes)), nodes)
        ax.set_title(f"point {i}: {labels[i]}", fontsize=10)
        if len(nodes) <= 8:
            for a in range(len(nodes)):
                for b in range(len(nodes)):
                    ax.text(b, a, f"{m[a, b]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if m[a, b] < 0.6 * vmax else "black")
    cb = fig.colorbar(im, ax=list(axes), fraction=0.04, pad=0.02)
    cb.set_label("I(V_i;V_j) [bits] (diagonal: S(V_i))")
    fig.suptitle(f"Mutual information between layers: {_title(analysis)}", fontsize=11)
    if path is not None:
        _save(fig, path)
    return fig


def plot_convergence(analysis: dict[str, Any], path: str | Path | None = None):
    """Heatmap of ``C[l][e] = I(T_l at e; T_l final) / S(T_l final)`` (module outputs x points), in [0, 1].
    Size ``CONVERGENCE_FIGSIZE`` x ``DPI``."""
    c = np.asarray(analysis["convergence"], dtype=float)
    labels = [q["label"] for q in analysis["points"]]
    layers = analysis["layers"]
    fig = _figure(CONVERGENCE_FIGSIZE)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(c, cmap="magma", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    step = max(1, math.ceil(len(labels) / 24))
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=45, ha="right", fontsize=8)
    ceiling = analysis.get("convergence_ceiling") or [None] * len(layers)
    ax.set_yticks(range(len(layers)),
                  [f"{v}\n(raw max {m:.2f})" if m is not None else v for v, m in zip(layers, ceiling, strict=True)],
                  fontsize=8)
    ax.set_xlabel("recorded point")
    ax.set_ylabel("module output")
    if c.size <= 80:
        for a in range(c.shape[0]):
            for b in range(c.shape[1]):
                ax.text(b, a, f"{c[a, b]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if c[a, b] < 0.6 else "black")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("I(T_l;T_l final) / S(T_l final)  [bits/bits]")
    ax.set_title(f"Convergence to the final representation: {_title(analysis)}\n1 = identical representation; "
                 "raw max = I(T;T)/S(T), the estimate's ceiling for distinct but nearly identical ones", fontsize=9)
    fig.tight_layout()
    if path is not None:
        _save(fig, path)
    return fig


def plot_compare(analyses: Sequence[dict[str, Any]], path: str | Path | None = None):
    """Information planes of several runs side by side, on shared axes; time as a fraction of each run's
    training (0 = init, 1 = final point). Size ``(COMPARE_PANEL_WIDTH * runs + 1, COMPARE_HEIGHT)`` x ``DPI``."""
    analyses = list(analyses)
    if not analyses:
        raise ValueError("nothing to compare")
    fig = _figure((COMPARE_PANEL_WIDTH * len(analyses) + 1.0, COMPARE_HEIGHT))
    axes = fig.subplots(1, len(analyses), squeeze=False, sharex=True, sharey=True)[0]
    sc = None
    for ax, a in zip(axes, analyses, strict=True):
        sc = _draw_plane(ax, a, normalise_time=True)
        ax.set_title(_title(a), fontsize=10)
        ax.yaxis.set_tick_params(labelleft=True)
    cb = fig.colorbar(sc, ax=list(axes), fraction=0.03, pad=0.02)
    cb.set_label("fraction of training (0 = init, 1 = end)")
    fig.suptitle("Information planes: " + " vs ".join(a["method"] for a in analyses), fontsize=11)
    if path is not None:
        _save(fig, path)
    return fig


def draw_all(analysis: dict[str, Any], run_dir: str | Path,
             points_to_plot: str | Sequence[str | int] | None = None) -> dict[str, Path]:
    """(Re)draw the three pictures of a run folder; returns their paths."""
    run_dir = Path(run_dir)
    out = {"information_plane": run_dir / "information_plane.png", "mi_matrix": run_dir / "mi_matrix.png",
           "convergence": run_dir / "convergence.png"}
    plot_mi_matrices(analysis, out["mi_matrix"], points_to_plot)  # first: it is the one that can reject options
    plot_information_plane(analysis, out["information_plane"])
    plot_convergence(analysis, out["convergence"])
    return out


# --------------------------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------------------------


def summary_table(analysis: dict[str, Any]):
    """A rich Table: per module output, S(T), I(X;T), I(T;Y) at the final point (and I(T;Y) at init)."""
    from rich.table import Table

    s = analysis["series"]
    final = analysis["points"][-1]["label"]
    t = Table(title=f"information flow: {_title(analysis)} (final point {final}, bits)", title_justify="left")
    for col in ("layer", "S(T)", "I(X;T)", "I(T;Y)", "I(T;Y) at init"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for v in analysis["layers"]:
        t.add_row(v, f"{s['S'][v][-1]:.3f}", f"{s['I_XT'][v][-1]:.3f}", f"{s['I_TY'][v][-1]:.3f}",
                  f"{s['I_TY'][v][0]:.3f}")
    caption = f"S(X) = {analysis['S_X']:.3f}, S(Y) = {analysis['S_Y']:.3f}, I(X;Y) = {analysis['I_XY']:.3f}"
    if analysis.get("test_top1") is not None:
        caption += f"; test top-1 {analysis['test_top1']:.2f}%"
    if analysis.get("test_miou") is not None:
        caption += f", test mean IoU {analysis['test_miou']:.3f}"
    t.caption = caption
    t.caption_justify = "left"
    return t
