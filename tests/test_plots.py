"""Figures: learning curves from a result's history and top-1 against memory (bench.plots, `bench plot`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench import plots
from bench.cli import app
from bench.errors import ConfigError
from tests.test_leaderboard import MIB, make_result, save

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sequential_history(modules: int = 3, epochs: int = 4) -> list[dict[str, Any]]:
    """A sequential schedule: phase k trains module k, epochs counted from 1 within each phase."""
    return [
        {"phase": k, "module": k, "epoch": e, "train_loss": 2.0 - 0.3 * e - 0.1 * k, "train_acc": 30.0 + 8 * e + k,
         "val_top1": None, "test_top1": 28.0 + 7 * e + 2 * k if e % 2 == 0 else None}
        for k in range(modules)
        for e in range(1, epochs + 1)
    ]


def end_to_end_history(epochs: int = 5) -> list[dict[str, Any]]:
    return [
        {"phase": 0, "module": None, "epoch": e, "train_loss": 2.2 / e, "train_acc": 20.0 + 10 * e,
         "val_top1": 18.0 + 9 * e, "test_top1": 17.0 + 9 * e}
        for e in range(1, epochs + 1)
    ]


def run_with_history(root: Path, method: str, history: list[dict[str, Any]] | None, **kw: Any) -> Path:
    result = make_result(method, kw.pop("seed", 0), **kw)
    if history is not None:
        result["history"] = history
    return save(root, result).parent


def test_curves_one_panel_per_module(tmp_path: Path) -> None:
    runs = [("greedy_ce", sequential_history(3))]
    fig = plots.curves_figure(runs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert titles == ["module 1", "module 2", "module 3"]
    first = next(ax for ax in fig.axes if ax.get_title() == "module 2")
    loss = first.get_lines()[0]
    assert list(loss.get_xdata()) == [1, 2, 3, 4]
    assert list(loss.get_ydata()) == pytest.approx([1.6, 1.3, 1.0, 0.7])
    fig = plots.curves_figure([("sgd", end_to_end_history())])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["end to end"]


def test_simultaneous_history_records_every_module_each_epoch() -> None:
    history = [
        {"phase": 0, "module": k, "epoch": e, "train_loss": 1.0 / e + k, "train_acc": 10.0 * e, "val_top1": None,
         "test_top1": None}
        for e in range(1, 4)
        for k in range(2)
    ]
    fig = plots.curves_figure([("dgl", history)])
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert sorted(panels) == ["module 1", "module 2"]
    assert list(panels["module 2"].get_lines()[0].get_ydata()) == pytest.approx([2.0, 1.5, 1 + 1 / 3])


def test_bench_plot_curves_writes_a_png_twice_the_same(tmp_path: Path) -> None:
    run_dir = run_with_history(tmp_path / "runs", "greedy_ce", sequential_history(3), schedule="sequential")
    out = runner.invoke(app, ["plot", "curves", str(run_dir)])
    assert out.exit_code == 0, out.output
    first = (run_dir / "curves.png").read_bytes()
    assert first.startswith(PNG_MAGIC)
    target = tmp_path / "again.png"
    out = runner.invoke(app, ["plot", "curves", str(run_dir / "result.json"), "--out", str(target)])
    assert out.exit_code == 0, out.output
    assert target.read_bytes() == first


def test_bench_plot_curves_several_runs(tmp_path: Path) -> None:
    a = run_with_history(tmp_path / "runs", "sgd", end_to_end_history())
    b = run_with_history(tmp_path / "runs", "sgd", end_to_end_history(3), seed=1)
    target = tmp_path / "both.png"
    out = runner.invoke(app, ["plot", "curves", str(a), str(b), "--out", str(target)])
    assert out.exit_code == 0, out.output
    assert target.read_bytes().startswith(PNG_MAGIC)


def test_old_result_without_history_is_a_clear_error(tmp_path: Path) -> None:
    run_dir = run_with_history(tmp_path / "runs", "sgd", None)
    out = runner.invoke(app, ["plot", "curves", str(run_dir), "--out", str(tmp_path / "x.png")])
    assert out.exit_code == 2
    assert "no training history" in out.output and "Traceback" not in out.output
    assert not (tmp_path / "x.png").exists()
    out = runner.invoke(app, ["plot", "curves", str(tmp_path / "nowhere")])
    assert out.exit_code == 2 and "no result.json" in out.output
    bad = tmp_path / "bad" / "result.json"
    bad.parent.mkdir()
    bad.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        plots.load_history(bad)


@pytest.fixture
def cpu_results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for seed, top1 in enumerate((60.0, 62.0, 64.0)):
        save(root, make_result("sgd", seed, top1, activation_bytes=250 * MIB))
    for seed, top1 in enumerate((70.0, 72.0)):
        save(root, make_result("infopro", seed, top1, schedule="simultaneous", activation_bytes=100 * MIB))
    save(root, make_result("greedy_ce", 0, 50.0, schedule="sequential", activation_bytes=90 * MIB))
    return root


def test_bench_plot_pareto_is_byte_identical_and_matches_the_leaderboard(cpu_results: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for target in (a, b):
        out = runner.invoke(app, ["plot", "pareto", "--protocol", "cpu-cifar10", "--results", str(cpu_results),
                                  "--out", str(target)])
        assert out.exit_code == 0, out.output
    assert a.read_bytes().startswith(PNG_MAGIC)
    assert a.read_bytes() == b.read_bytes()
    board = tmp_path / "board"
    out = runner.invoke(app, ["leaderboard", "--results", str(cpu_results), "--out", str(board)])
    assert out.exit_code == 0, out.output
    assert (board / "cpu-cifar10.png").read_bytes() == a.read_bytes()
    # No date and no software name in the file.
    assert b"Software" not in a.read_bytes() and b"matplotlib" not in a.read_bytes()


def test_pareto_figure_draws_ours_and_published(tmp_path: Path) -> None:
    from bench import leaderboard as lb

    results = [
        make_result("sgd", 0, 93.0, protocol="paper-cifar10-resnet110", arch="cifar_resnet110", k=4,
                    split="blocks:4", activation_bytes=800 * MIB),
        make_result("dgl", 0, 90.0, protocol="paper-cifar10-resnet110", arch="cifar_resnet110", k=4,
                    schedule="simultaneous", split="blocks:4", activation_bytes=300 * MIB),
        make_result("dgl", 0, 88.0, protocol="paper-cifar10-resnet110", arch="cifar_resnet110", k=8,
                    schedule="simultaneous", split="blocks:8", activation_bytes=200 * MIB),
    ]
    points = lb.pareto_points("paper-cifar10-resnet110", results)
    fig = plots.pareto_figure(points, "paper-cifar10-resnet110")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == sorted(["sgd K=4", "dgl K=4", "dgl K=8", "E2E", "GC", "InfoPro* K=2", "InfoPro* K=3",
                            "InfoPro* K=4"])
    # Published E2E sits at x = 1 and InfoPro* K=4 at 3.52 / 9.40.
    xs = sorted(round(float(line.get_xdata()[0]), 3) for line in fig.axes[0].lines if len(line.get_xdata()) == 1)
    assert 1.0 in xs and round(3.52 / 9.40, 3) in xs and 0.25 in xs
    target = tmp_path / "p.png"
    target.write_bytes(plots.pareto_png(points, "paper-cifar10-resnet110"))
    assert target.read_bytes() == plots.pareto_png(points, "paper-cifar10-resnet110")


def test_bench_plot_pareto_errors(cpu_results: Path, tmp_path: Path) -> None:
    out = runner.invoke(app, ["plot", "pareto", "--protocol", "nosuch", "--results", str(cpu_results)])
    assert out.exit_code == 2 and "no results for protocol 'nosuch'" in out.output and "cpu-cifar10" in out.output
    out = runner.invoke(app, ["plot", "pareto", "--protocol", "cpu-cifar10", "--results", str(tmp_path / "none")])
    assert out.exit_code == 2 and "does not exist" in out.output
    lonely = tmp_path / "lonely"
    save(lonely, make_result("dgl", 0))
    out = runner.invoke(app, ["plot", "pareto", "--protocol", "cpu-cifar10", "--results", str(lonely)])
    assert out.exit_code == 2 and "nothing to plot" in out.output and "Traceback" not in out.output


def test_history_records_survive_json(tmp_path: Path) -> None:
    """The format the engine writes (null module for end to end, null val/test) reads back and draws."""
    run_dir = run_with_history(tmp_path / "runs", "sgd", end_to_end_history(2))
    result, records = plots.load_history(run_dir)
    assert records == json.loads((run_dir / "result.json").read_text())["history"]
    assert records[0]["module"] is None
