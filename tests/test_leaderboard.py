"""Tests of the Markdown leaderboard generator (bench.leaderboard) on hand-written result files, and of the
published tables it prints beside ours (bench.references)."""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import re
import statistics
from pathlib import Path
from typing import Any

import pytest

from bench import leaderboard as lb
from bench import references
from bench.results import find_result_files, write_json_atomic

REPO = Path(__file__).resolve().parents[1]

MIB = 1024 * 1024


def _current_version(protocol: str) -> int:
    from bench.protocols import PROTOCOLS

    return PROTOCOLS[protocol].version if protocol in PROTOCOLS else 1


def make_result(
    method: str = "sgd",
    seed: int = 0,
    top1: float = 62.0,
    *,
    protocol: str | None = "cpu-cifar10",
    arch: str = "cifar_resnet20",
    k: int = 3,
    schedule: str = "end_to_end",
    status: str = "ok",
    message: str | None = None,
    module_top1: list[float] | None = None,
    activation_bytes: int = 100 * MIB,
    finished_at: str = "2026-11-22T10:05:00Z",
    split: str = "stages",
    aux: str | None = None,
    hparams: dict[str, Any] | None = None,
    **metrics: Any,
) -> dict[str, Any]:
    """A minimal valid schema-1 result; keyword arguments not listed above override metrics."""
    tag = "-".join(f"{key}={value}" for key, value in sorted((hparams or {}).items()))
    result = {
        "schema_version": 1,
        "run_id": f"{method}-{arch}-{k}-{schedule}-{split}-{aux}-{tag}-{seed}",
        "status": status,
        "message": message,
        "config": {
            "method": method,
            "arch": arch,
            "data": "cifar10",
            "seed": seed,
            "schedule": schedule,
            "split": split,
            "aux": aux,
            "epochs": 5,
            "batch_size": 128,
            "hparams": dict(hparams or {}),
        },
        "protocol": None if protocol is None else {"name": protocol, "version": _current_version(protocol)},
        "method": {"name": method, "version": "1.0", "origin": "built-in", "description": "test"},
        "dataset": {
            "name": "cifar10",
            "num_classes": 10,
            "train_size": 50000,
            "test_size": 10000,
            "image_size": 32,
            "source": "test",
            "is_subset": False,
        },
        "architecture": {"name": arch, "split": split, "num_modules": k, "params": 272474},
        "metrics": {
            "test_top1": top1,
            "test_top5": 95.0,
            "module_top1": module_top1,
            "train_seconds": 100.0,
            "train_images_per_second": 400.0,
            "peak_activation_bytes": activation_bytes,
            "peak_trainable_state_bytes": 3_000_000,
            "peak_gpu_bytes": None,
            "train_flops": 1.2e13,
        },
        "env": {"layerbench": "0.1.0", "torch": "2.14.1", "device": "cpu"},
        "started_at": "2026-11-22T10:00:00Z",
        "finished_at": finished_at,
    }
    result["metrics"].update(metrics)
    return result


def save(root: Path, result: dict[str, Any], folder: str | None = None) -> Path:
    """Write a result as <root>/<folder>/result.json (folder defaults to its run id)."""
    return write_json_atomic(root / (folder or result["run_id"]) / "result.json", result)


def table_rows(markdown: str, heading: str = "## Results") -> list[dict[str, str]]:
    """The data rows of the first table after ``heading``, as {column header: cell text}."""
    lines = markdown.split(heading, 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        block.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    header, data = block[0], block[2:]
    return [dict(zip(header, row, strict=True)) for row in data]


def section_tables(markdown: str, heading: str) -> list[list[dict[str, str]]]:
    """Every table of a section (from ``heading`` to the next ``## ``), each as ``table_rows`` gives it."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    tables, start = [], 0
    lines = section.splitlines()
    while start < len(lines):
        if lines[start].startswith("|"):
            end = start
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            tables.append(table_rows("\n".join(["#", *lines[start:end]]), "#"))
            start = end
        start += 1
    return tables


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for seed, top1 in enumerate((60.0, 62.0, 64.0)):
        save(root, make_result("sgd", seed, top1, activation_bytes=250 * MIB))
    for seed, (top1, modules) in enumerate(((70.0, [40.0, 55.0, 70.0]), (72.0, [42.0, 57.0, 72.0]))):
        save(root, make_result("infopro", seed, top1, module_top1=modules, activation_bytes=100 * MIB))
    save(root, make_result("greedy_ce", 0, 50.0, module_top1=[30.0, 45.0, 50.0], activation_bytes=90 * MIB))
    save(root, make_result("dgl", 0, status="failed", top1=None, message="CUDA out of memory | retry"))
    save(root, make_result("greedydib", 1, status="diverged", top1=None, message="loss is nan"))
    save(root, make_result("greedy_ce", 1, 99.0, status="diverged", message="loss is inf"))
    return root


def rows_by_method(markdown: str) -> dict[str, dict[str, str]]:
    return {row["Method"].strip("*"): row for row in table_rows(markdown)}


# ------------------------------------------------------------------------------------------------- collect


def test_collect_reads_all_valid_files(results_dir: Path) -> None:
    results, warnings = lb.collect(results_dir)
    assert warnings == []
    assert len(results) == 9
    assert results["source"].str.endswith("/result.json").all()


def test_corrupt_and_unknown_schema_files_are_warned_and_skipped(results_dir: Path) -> None:
    bad = results_dir / "corrupt" / "result.json"
    bad.parent.mkdir()
    bad.write_text('{"schema_version": 1, "run_id": ')
    save(results_dir, {**make_result("sgd", 7, 10.0), "schema_version": 99}, folder="future")

    results, warnings = lb.collect(results_dir)

    assert len(results) == 9
    assert len(warnings) == 2
    assert any("corrupt/result.json" in w and "not valid JSON" in w for w in warnings)
    assert any("future/result.json" in w and "99" in w for w in warnings)
    # And the leaderboard still renders, without the bad files.
    page = lb.render_protocol("cpu-cifar10", results)
    assert rows_by_method(page)["sgd"]["n"] == "3"


def test_duplicates_keep_the_newest_and_warn(tmp_path: Path) -> None:
    root = tmp_path / "results"
    save(root, make_result("sgd", 0, 50.0, finished_at="2026-11-22T10:05:00Z"), folder="old")
    save(root, make_result("sgd", 0, 80.0, finished_at="2026-11-23T09:00:00Z"), folder="new")
    save(root, make_result("sgd", 1, 70.0), folder="other-seed")

    results, warnings = lb.collect(root)

    assert sorted(results["metrics.test_top1"]) == [70.0, 80.0]
    assert len(warnings) == 1
    assert "duplicate" in warnings[0] and "kept new/result.json" in warnings[0]
    assert "ignored old/result.json" in warnings[0]


# --------------------------------------------------------------------------------------------- aggregation


def test_mean_std_and_seed_count(results_dir: Path) -> None:
    results, _ = lb.collect(results_dir)
    rows = rows_by_method(lb.render_protocol("cpu-cifar10", results))
    assert rows["sgd"]["Top-1 (%)"] == "62.00 ± 2.00"
    assert rows["sgd"]["n"] == "3"
    assert rows["infopro"]["Top-1 (%)"] == "**71.00 ± 1.41**"
    assert rows["infopro"]["n"] == "2"
    assert rows["sgd"]["Top-5 (%)"] == "95.00"


def test_single_seed_std_is_a_dash() -> None:
    page = lb.render_protocol("p", [make_result("sgd", 0, 62.0, protocol="p")])
    assert rows_by_method(page)["sgd"]["Top-1 (%)"] == "**62.00 ± –**"
    assert rows_by_method(page)["sgd"]["n"] == "1"


def test_rows_sorted_by_accuracy_and_best_marked(results_dir: Path) -> None:
    results, _ = lb.collect(results_dir)
    rows = table_rows(lb.render_protocol("cpu-cifar10", results))
    assert [r["Method"] for r in rows] == ["**infopro**", "sgd", "greedy_ce"]
    assert [r["#"] for r in rows] == ["1", "2", "3"]
    assert sum("**" in r["Top-1 (%)"] for r in rows) == 1


def test_memory_ratio_to_sgd(results_dir: Path) -> None:
    results, _ = lb.collect(results_dir)
    rows = rows_by_method(lb.render_protocol("cpu-cifar10", results))
    assert rows["sgd"]["vs sgd"] == "1.00x"
    assert rows["infopro"]["vs sgd"] == "0.40x"  # 2.5x smaller
    assert rows["greedy_ce"]["vs sgd"] == "0.36x"
    assert rows["infopro"]["Act. mem (MiB)"] == "100.0"


def _step_times(version: int, ratios: dict[str, float]) -> dict[str, Any]:
    """A step-time file as ``scripts/bench_grid.py --save`` writes it (the keys the leaderboard reads)."""
    return {"protocol": {"name": "cpu-cifar10", "version": version}, "machine": "Test CPU 9000", "threads": 1,
            "torch": "2.14.1", "measured": "2026-12-06", "command": "python scripts/bench_grid.py sweeps/x.toml --save",
            "rows": [{"row": row, "vs_sgd": v} for row, v in ratios.items()], "grid_core_minutes": 123.4}


def test_side_by_side_step_times_are_shown_beside_the_recorded_time(results_dir: Path) -> None:
    version = _current_version("cpu-cifar10")
    pages = lb.build_leaderboards(results_dir)
    assert "side by side" not in pages["cpu-cifar10.md"]  # no step-time file: no column
    record = _step_times(version, {"sgd (end_to_end)": 1.0, "infopro (end_to_end)": 1.37})
    write_json_atomic(results_dir / lb.step_times_filename("cpu-cifar10", version), record)
    page = lb.build_leaderboards(results_dir)["cpu-cifar10.md"]
    rows = rows_by_method(page)
    assert rows["sgd"]["Step time vs sgd, side by side"] == "1.00x"
    assert rows["infopro"]["Step time vs sgd, side by side"] == "1.37x"
    assert rows["greedy_ce"]["Step time vs sgd, side by side"] == "–"  # a row the measurement did not time
    assert rows["infopro"]["Time vs sgd"] == "1.00x"  # the recorded times stay as recorded
    assert "Test CPU 9000 (1 thread" in page and "123 core-minutes" in page
    record["cpu_id"] = "family 6 model 143 stepping 8; avx2 amx_bf16"
    write_json_atomic(results_dir / lb.step_times_filename("cpu-cifar10", version), record)
    assert "Test CPU 9000 (`family 6 model 143 stepping 8; avx2 amx_bf16`) (1 thread" in lb.build_leaderboards(
        results_dir)["cpu-cifar10.md"]
    # a file of another protocol version is not shown
    (results_dir / lb.step_times_filename("cpu-cifar10", version)).rename(
        results_dir / lb.step_times_filename("cpu-cifar10", version + 1))
    assert "side by side" not in lb.build_leaderboards(results_dir)["cpu-cifar10.md"]


def test_a_corrupt_step_time_file_is_a_clear_error(results_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bench.cli import app
    from bench.errors import ConfigError

    path = results_dir / lb.step_times_filename("cpu-cifar10", _current_version("cpu-cifar10"))
    path.write_text('{"rows": [{"row": "sgd (end_to_end)"}]}')
    with pytest.raises(ConfigError, match="not a step-time file"):
        lb.build_leaderboards(results_dir)
    result = CliRunner().invoke(app, ["leaderboard", "--results", str(results_dir), "--out", str(tmp_path / "lb")])
    assert result.exit_code != 0
    assert not isinstance(result.exception, ConfigError)  # reported, not raised
    assert "not a step-time file" in result.output


def test_memory_ratio_is_a_dash_without_sgd_row() -> None:
    page = lb.render_protocol("p", [make_result("infopro", 0, protocol="p")])
    assert rows_by_method(page)["infopro"]["vs sgd"] == "–"


def test_module_accuracies_averaged_elementwise(results_dir: Path) -> None:
    results, _ = lb.collect(results_dir)
    rows = rows_by_method(lb.render_protocol("cpu-cifar10", results))
    assert rows["infopro"]["Module top-1 (%)"] == "41.0 / 56.0 / 71.0"
    assert rows["sgd"]["Module top-1 (%)"] == "–"


def test_failed_and_diverged_listed_apart_and_not_averaged(results_dir: Path) -> None:
    results, _ = lb.collect(results_dir)
    page = lb.render_protocol("cpu-cifar10", results)
    main = rows_by_method(page)
    assert "dgl" not in main and "greedydib" not in main
    # The diverged greedy_ce seed (top-1 99.0) is not averaged in.
    assert main["greedy_ce"]["Top-1 (%)"] == "50.00 ± –"
    assert main["greedy_ce"]["n"] == "1"

    failed = table_rows(page, "## Runs that did not finish")
    assert [(r["Method"], r["Seed"], r["Status"]) for r in failed] == [
        ("dgl", "0", "failed"),
        ("greedy_ce", "1", "diverged"),
        ("greedydib", "1", "diverged"),
    ]
    assert failed[0]["Message"] == r"CUDA out of memory \| retry"
    assert "- Result files: 9 (2 diverged, 1 failed, 6 ok)" in page


def test_header_lists_versions() -> None:
    a = make_result("sgd", 0, protocol="p")
    b = copy.deepcopy(a) | {"run_id": "b"}
    b["config"]["seed"] = 1
    b["protocol"]["version"] = 2
    b["env"]["layerbench"] = "0.2.0"
    page = lb.render_protocol("p", [a, b])
    assert "- Protocol version(s): 1, 2" in page
    assert "- Harness version(s) (layerbench): 0.1.0, 0.2.0" in page
    assert "- Result files: 2 (2 ok)" in page


def test_formatters() -> None:
    assert lb.fmt_flops(1.234e15) == "1.23 PFLOP"
    assert lb.fmt_flops(4.56e13) == "45.6 TFLOP"
    assert lb.fmt_flops(1.2e13) == "12.0 TFLOP"
    assert lb.fmt_flops(999.9e9) == "1.00 TFLOP"
    assert lb.fmt_duration(42.0) == "42.0 s"
    assert lb.fmt_duration(303) == "5m 03s"
    assert lb.fmt_duration(7500) == "2h 05m"
    assert lb.fmt_mean_std(62.0, None) == "62.00 ± –"
    assert lb.fmt_ratio(100, 250) == "0.40x"
    assert lb.fmt_modules([41.24, 55.0]) == "41.2 / 55.0"


def test_gpu_column_only_when_present() -> None:
    without = lb.render_protocol("p", [make_result("sgd", 0, protocol="p")])
    assert "GPU peak (MiB)" not in without
    with_gpu = lb.render_protocol("p", [make_result("sgd", 0, protocol="p", peak_gpu_bytes=512 * MIB)])
    assert rows_by_method(with_gpu)["sgd"]["GPU peak (MiB)"] == "512.0"


# --------------------------------------------------------------------------------------- protocols, refs


def test_adhoc_left_out_by_default(results_dir: Path) -> None:
    save(results_dir, make_result("sgd", 5, protocol=None), folder="adhoc-run")
    results, _ = lb.collect(results_dir)
    assert list(lb.group_by_protocol(results)) == ["cpu-cifar10"]
    assert list(lb.group_by_protocol(results, include_adhoc=True)) == ["adhoc", "cpu-cifar10"]


def test_reference_table_for_paper_protocol() -> None:
    result = make_result("sgd", 0, 92.5, protocol="paper-cifar10-resnet32", arch="cifar_resnet32")
    page = lb.render_protocol("paper-cifar10-resnet32", [result])
    assert "## Published and ours" in page
    ref = table_rows(page, "## Published and ours")
    e2e = [r for r in ref if r["Paper's name"] == "E2E"]
    assert len(e2e) == 1
    assert e2e[0]["Published error (%)"] == "7.37 ± 0.10"
    assert e2e[0]["Ours: error, last epoch (%)"] == "7.50 ± –" and e2e[0]["n"] == "1"
    assert e2e[0]["Ours: error, best epoch (%)"] == "–"  # this run has no per-epoch evaluations
    assert e2e[0]["Source"] == "Wang et al., ICLR 2021, Table 2 (from the authors' figs/cifar_k.png)"
    assert "as published: mean ± std of 5 trials" in page
    assert "Revisiting Locally Supervised Learning" in page
    # Every recorded number carries a source; unchecked ones say why.
    for entry in references.PUBLISHED_ERRORS + references.PUBLISHED_MEMORY:
        assert entry.source
        assert entry.verified or entry.note
    assert "## Published and ours" not in lb.render_protocol("cpu-cifar10", [make_result()])


def test_unverified_reference_rows_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry not checked against its source is marked in the table and its note printed."""
    extra = references.PublishedError(
        table=9, dataset="cifar10", network="resnet32", paper_label="DGL", k=3, test_error=9.5, std=0.25,
        source="Some paper, Table 9", verified=False, note="hand-typed",
    )
    monkeypatch.setattr(references, "PUBLISHED_ERRORS", references.PUBLISHED_ERRORS + (extra,))
    page = lb.render_protocol(
        "paper-cifar10-resnet32", [make_result("sgd", 0, 92.5, protocol="paper-cifar10-resnet32")]
    )
    rows = [r for r in table_rows(page, "## Published and ours") if r["K"] == "3"]
    assert len(rows) == 1
    assert rows[0]["Published error (%)"] == "9.50 ± 0.25"
    assert rows[0]["Source"].startswith("Some paper, Table 9 (not re-checked) [")
    assert "hand-typed" in page


def paper_result(method: str, seed: int, top1: float, k: int, *, best: float | None = None, **kw: Any):
    """A result on paper-cifar10-resnet32 with --split blocks:K (defaults: the method's schedule)."""
    schedule = kw.pop("schedule", "end_to_end" if method == "sgd" else "simultaneous")
    extra = {} if best is None else {"test_top1_best": best}
    return make_result(method, seed, top1, protocol="paper-cifar10-resnet32", arch="cifar_resnet32", k=k,
                       schedule=schedule, split=kw.pop("split", f"blocks:{k}"), **kw, **extra)


def test_paper_protocol_shows_published_and_ours_side_by_side() -> None:
    contrast = {"loss_mode": "contrast", "temperature": 0.07}
    results = [
        paper_result("sgd", 0, 92.0, 4, best=92.4),
        paper_result("infopro", 0, 91.0, 4, best=91.5, aux="infopro", hparams=contrast),
        paper_result("infopro", 1, 91.5, 4, best=92.0, aux="infopro", hparams=contrast),
        paper_result("infopro", 0, 90.0, 4, aux="infopro", hparams={**contrast, "loss_mode": "cross_entropy"}),
        paper_result("dgl", 0, 89.0, 8, aux="mlp_sr"),
        paper_result("greedy_ce", 0, 85.0, 2, aux="linear"),
        paper_result("greedy_ce", 0, 80.0, 2, aux="conv", schedule="sequential"),  # not the paper's Greedy SL
        paper_result("greedy_ce", 1, 70.0, 2, schedule="simultaneous"),  # no aux recorded: not Greedy SL either
        paper_result("infopro", 5, 50.0, 16, aux="infopro"),  # no loss_mode recorded: neither InfoPro row
    ]
    page = lb.render_protocol("paper-cifar10-resnet32", results)
    ref = {(r["Paper's name"], r["K"]): r for r in table_rows(page, "## Published and ours")}
    assert len(ref) == 1 + 4 * 4  # E2E and the four methods at K = 2, 4, 8, 16 for ResNet-32

    row = ref[("InfoPro (Contrast)", "4")]
    assert row["Method"] == "infopro (loss_mode=contrast, simultaneous)"
    assert row["Published error (%)"] == "8.58 ± 0.17"
    assert row["Ours: error, last epoch (%)"] == "8.75 ± 0.35"  # 100 - (91.0, 91.5)
    assert row["Ours: error, best epoch (%)"] == "8.25 ± 0.35"  # 100 - (91.5, 92.0)
    assert row["n"] == "2"
    softmax = ref[("InfoPro (Softmax)", "4")]
    assert softmax["Published error (%)"] == "8.64 ± 0.25"
    assert softmax["Ours: error, last epoch (%)"] == "10.00 ± –" and softmax["n"] == "1"
    assert ref[("DGL", "8")]["Ours: error, last epoch (%)"] == "11.00 ± –"
    assert ref[("DGL", "4")]["Ours: error, last epoch (%)"] == "–" and ref[("DGL", "4")]["n"] == "0"
    assert ref[("InfoPro (Contrast)", "16")]["n"] == "0" and ref[("InfoPro (Softmax)", "16")]["n"] == "0"
    greedy = ref[("Greedy SL", "2")]  # only the simultaneous, linear-head run maps to the paper's Greedy SL
    assert greedy["Published error (%)"] == "10.30 ± 0.20"
    assert greedy["Ours: error, last epoch (%)"] == "15.00 ± –" and greedy["n"] == "1"
    e2e = ref[("E2E", "– (end-to-end)")]
    assert e2e["Ours: error, last epoch (%)"] == "8.00 ± –" and e2e["Ours: error, best epoch (%)"] == "7.60 ± –"

    # The two InfoPro losses are two rows of the main table, told apart by their settings.
    main = [r for r in table_rows(page) if r["Method"].strip("*") == "infopro" and r["K"] == "4"]
    assert sorted(r["Settings"] for r in main) == ["loss_mode=contrast", "loss_mode=cross_entropy"]
    assert [r["n"] for r in main if r["Settings"] == "loss_mode=contrast"] == ["2"]
    assert "Best-epoch top-1 (%)" in table_rows(page)[0]


def test_published_only_rows_for_resnet110() -> None:
    result = make_result("sgd", 0, 93.0, protocol="paper-cifar10-resnet110", arch="cifar_resnet110",
                         schedule="end_to_end", split="blocks:4", peak_gpu_bytes=8 * 1024**3)
    page = lb.render_protocol("paper-cifar10-resnet110", [result])
    rows = table_rows(page, "## Published and ours")
    plus = [r for r in rows if r["Paper's name"] == "Greedy SL+"]
    assert [r["K"] for r in plus] == ["2", "4", "8", "16"]
    assert plus[0]["Method"].startswith("– (no equivalent) [")
    assert plus[0]["Published error (%)"] == "8.00 ± 0.11" and plus[0]["Ours: error, last epoch (%)"] == "–"
    assert [r["K"] for r in rows if r["Paper's name"] == "Asy-InfoPro (Contrast)"] == ["2", "4"]
    assert "asynchronous training" in page


def test_reference_memory_for_resnet110() -> None:
    results = [
        make_result("sgd", 0, 93.0, protocol="paper-cifar10-resnet110", arch="cifar_resnet110", k=4,
                    schedule="end_to_end", split="blocks:4", activation_bytes=800 * MIB, peak_gpu_bytes=8 * 1024**3),
        make_result("infopro", 0, 92.5, protocol="paper-cifar10-resnet110", arch="cifar_resnet110", k=2,
                    schedule="simultaneous", split="balanced:2", aux="infopro", hparams={"loss_mode": "contrast"},
                    activation_bytes=400 * MIB, peak_gpu_bytes=5 * 1024**3),
    ]
    page = lb.render_protocol("paper-cifar10-resnet110", results)
    errors, mem = section_tables(page, "## Published and ours")
    assert "Published GPU memory (GB)" in mem[0] and "Published GPU memory (GB)" not in errors[0]
    by_name = {(r["Paper's name"], r["K"]): r for r in mem}
    assert by_name[("E2E Training", "– (end-to-end)")]["Published GPU memory (GB)"] == "9.40"
    star2 = by_name[("InfoPro* (balanced memory)", "2")]
    assert star2["Published GPU memory (GB)"] == "5.38"
    assert star2["Published vs E2E"] == "0.57x"  # 5.38 / 9.40
    assert star2["Ours: GPU peak (GiB)"] == "5.00" and star2["Ours: GPU vs sgd"] == "0.62x"
    assert star2["Ours: act. vs sgd"] == "0.50x" and star2["n"] == "1"
    assert star2["Method"] == "infopro (loss_mode=contrast, simultaneous, split balanced:2)"
    assert by_name[("InfoPro* (balanced memory)", "4")]["Published GPU memory (GB)"] == "3.52"
    assert by_name[("InfoPro* (balanced memory)", "4")]["n"] == "0"
    assert by_name[("GC (gradient checkpointing)", "– (end-to-end)")]["n"] == "–"


# ---------------------------------------------------------------------------------------- published data


SHARED_REFERENCES = REPO.parent / "shared" / "references"
TABLE2_CSV_ROWS = 86  # counted in infopro_iclr2021_tables.csv: 5 networks/datasets, 4 K each, 4-6 methods
TABLE3_CSV_ROWS = 10  # infopro_iclr2021_memory.csv: CIFAR-10 and STL-10, 5 rows each


def packaged(name: str) -> Path:
    return REPO / "bench" / "reference_data" / name


def test_every_published_row_is_in_the_package() -> None:
    for name, count in ((references.TABLE2_FILE, TABLE2_CSV_ROWS), (references.TABLE3_FILE, TABLE3_CSV_ROWS)):
        with packaged(name).open() as f:
            assert len(list(csv.DictReader(f))) == count
    # Table 2: one entry per CSV row plus one E2E entry per (dataset, network).
    networks = {(e.dataset, e.network) for e in references.PUBLISHED_ERRORS}
    assert len(networks) == 5
    assert len(references.PUBLISHED_ERRORS) == TABLE2_CSV_ROWS + len(networks)
    assert len(references.PUBLISHED_MEMORY) == TABLE3_CSV_ROWS
    with packaged(references.TABLE2_FILE).open() as f:
        for row in csv.DictReader(f):
            k = int(row["K"])
            match = [e for e in references.PUBLISHED_ERRORS if (e.dataset, e.network, e.paper_label, e.k)
                     == (row["dataset"], row["network"], row["method_label"], k)]
            assert len(match) == 1, row
            assert match[0].test_error == float(row["test_error"]) and match[0].std == float(row["std"])
            e2e = [e for e in references.PUBLISHED_ERRORS if (e.dataset, e.network, e.k) == (row["dataset"],
                                                                                                row["network"], None)]
            assert [e.test_error for e in e2e] == [float(row["e2e_test_error"])]
    for entry in references.PUBLISHED_ERRORS:
        assert entry.verified and entry.source.startswith("Wang et al., ICLR 2021, Table 2 (from the authors'")


def test_packaged_tables_are_the_shared_transcription() -> None:
    if not SHARED_REFERENCES.is_dir():
        pytest.skip(f"the transcribed tables are not at {SHARED_REFERENCES}")
    for name in (references.TABLE2_FILE, references.TABLE3_FILE):
        assert packaged(name).read_bytes() == (SHARED_REFERENCES / name).read_bytes()


def test_paper_labels_map_to_harness_configurations() -> None:
    def harness(label: str) -> references.HarnessConfig | None:
        return references.LABELS[label]

    assert harness("E2E").method == "sgd" and harness("E2E Training").method == "sgd"
    assert harness("InfoPro (Contrast)").hparams == (("loss_mode", "contrast"),)
    assert harness("InfoPro (Softmax)").hparams == (("loss_mode", "cross_entropy"),)
    greedy = harness("Greedy SL")
    assert (greedy.method, greedy.schedule, greedy.aux) == ("greedy_ce", "simultaneous", "linear")
    assert harness("DGL").method == "dgl" and harness("DGL").split_for(8) == "blocks:8"
    assert harness("InfoPro* (balanced memory)").split_for(3) == "balanced:3"
    for label in ("Greedy SL+", "Asy-InfoPro (Contrast)", "GC (gradient checkpointing)"):
        assert harness(label) is None
    # Every label in the data has a mapping (or is declared to have none); protocols only for CIFAR-10 ResNets.
    for entry in references.PUBLISHED_ERRORS + references.PUBLISHED_MEMORY:
        assert entry.paper_label in references.LABELS
        assert (entry.harness is None) == bool(entry.no_equivalent)
        expected = {"resnet32": "paper-cifar10-resnet32", "resnet110": "paper-cifar10-resnet110"}
        assert entry.protocol == (expected.get(entry.network) if entry.dataset == "cifar10" else None)
    k4 = [e for e in references.errors_for("paper-cifar10-resnet32") if e.k == 4]
    assert [e.paper_label for e in k4] == ["Greedy SL", "DGL", "InfoPro (Softmax)", "InfoPro (Contrast)"]
    match = harness("InfoPro (Contrast)").matches
    kw = {"method": "infopro", "k": 4, "schedule": "simultaneous", "aux": "infopro", "split": "blocks:4"}
    assert match(**kw, hparams={"loss_mode": "contrast"}, row_k=4)
    assert not match(**kw, hparams={"loss_mode": "cross_entropy"}, row_k=4)
    assert not match(**kw, hparams={"loss_mode": "contrast"}, row_k=8)
    assert not match(**{**kw, "split": "balanced:4"}, hparams={"loss_mode": "contrast"}, row_k=4)


def test_index_links_protocols_and_says_generated(results_dir: Path) -> None:
    results, _ = lb.collect(results_dir)
    index = lb.render_index(lb.group_by_protocol(results))
    assert "[cpu-cifar10](cpu-cifar10.md)" in index
    assert "`bench leaderboard`" in index and "leaderboards/results/" in index
    assert "Do not edit them by hand" in index
    assert "infopro (cifar_resnet20, K=3, end_to_end)" in index
    assert "71.00 ± 1.41" in index


# ---------------------------------------------------------------------------------- determinism, writing


def test_output_is_deterministic(results_dir: Path) -> None:
    results, _ = lb.collect(results_dir)
    groups = lb.group_by_protocol(results)
    first = lb.render_protocol("cpu-cifar10", results), lb.render_index(groups)
    shuffled = results.iloc[::-1].reset_index(drop=True)
    second = lb.render_protocol("cpu-cifar10", shuffled), lb.render_index(lb.group_by_protocol(shuffled))
    assert first == second
    assert not re.search(r"20\d\d-\d\d-\d\d", first[0] + first[1])  # no generation timestamp


def test_write_then_check_then_stale(results_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "leaderboards"
    paper = [f"paper-cifar10-resnet{n}{ext}" for n in ("110", "32") for ext in (".md", ".pareto.csv", ".png")
             if ext == ".md" or n == "110"]  # published pages; only ResNet-110 has published memory to plot
    assert lb.check_leaderboards(results_dir, out) == [
        f"missing: {out / 'README.md'}",
        f"missing: {out / 'cpu-cifar10.md'}",
        f"missing: {out / 'cpu-cifar10.pareto.csv'}",
        f"missing: {out / 'cpu-cifar10.png'}",
        *(f"missing: {out / name}" for name in paper),
    ]
    paths = lb.write_leaderboards(results_dir, out)
    assert [p.name for p in paths] == ["README.md", "cpu-cifar10.md", "cpu-cifar10.pareto.csv", "cpu-cifar10.png",
                                       *paper]
    assert lb.check_leaderboards(results_dir, out) == []
    assert "![top-1 against peak activation memory" in (out / "cpu-cifar10.md").read_text()
    assert "(cpu-cifar10.png)" in (out / "cpu-cifar10.md").read_text()

    # One result changes: its table, its figure's data and the index headline go stale.
    changed = make_result("infopro", 0, 90.0, module_top1=[40.0, 55.0, 70.0], activation_bytes=100 * MIB)
    save(results_dir, changed)
    assert lb.check_leaderboards(results_dir, out) == [
        f"stale: {out / 'README.md'}",
        f"stale: {out / 'cpu-cifar10.md'}",
        f"stale: {out / 'cpu-cifar10.pareto.csv'}",
    ]
    figure = (out / "cpu-cifar10.png").read_bytes()
    lb.write_leaderboards(results_dir, out)
    assert lb.check_leaderboards(results_dir, out) == []
    assert (out / "cpu-cifar10.png").read_bytes() != figure  # redrawn from the new data

    # A deleted figure is missing.
    (out / "cpu-cifar10.png").unlink()
    assert lb.check_leaderboards(results_dir, out) == [f"missing: {out / 'cpu-cifar10.png'}"]


def test_extra_generated_tables_are_reported_and_removed(results_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "leaderboards"
    lb.write_leaderboards(results_dir, out)
    (out / "old-protocol.md").write_text(lb.GENERATED_MARKER + "\n\nold\n")
    (out / "old-protocol.pareto.csv").write_text(lb.CSV_MARKER + "\nsource\n")
    (out / "old-protocol.png").write_bytes(b"png")
    (out / "NOTES.md").write_text("hand-written, not generated\n")
    (out / "mine.pareto.csv").write_text("source\nhand-made\n")
    assert lb.check_leaderboards(results_dir, out) == [
        f"extra: {out / 'old-protocol.md'}",
        f"extra: {out / 'old-protocol.pareto.csv'}",
    ]
    lb.write_leaderboards(results_dir, out)
    assert not (out / "old-protocol.md").exists()
    assert not (out / "old-protocol.pareto.csv").exists() and not (out / "old-protocol.png").exists()
    assert (out / "NOTES.md").exists() and (out / "mine.pareto.csv").exists()
    assert lb.check_leaderboards(results_dir, out) == []


def test_warnings_reach_the_callback(results_dir: Path, tmp_path: Path) -> None:
    (results_dir / "bad").mkdir()
    (results_dir / "bad" / "result.json").write_text("not json")
    seen: list[str] = []
    lb.write_leaderboards(results_dir, tmp_path / "out", on_warning=seen.append)
    assert len(seen) == 1 and "bad/result.json" in seen[0]


def test_empty_results_folder(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    paths = lb.write_leaderboards(tmp_path / "results", tmp_path / "out")
    assert [p.name for p in paths if not p.name.startswith("paper-")] == ["README.md"]
    index = paths[0].read_text()
    assert "cpu-cifar10" not in index and "[paper-cifar10-resnet32](paper-cifar10-resnet32.md)" in index


# ------------------------------------------------------------------------------ the committed tables, figures

COMMITTED = REPO / "leaderboards" / "results"


def _page_of(result: dict[str, Any]) -> str | None:
    """The page a result belongs on, computed independently of bench.leaderboard.page_names."""
    from bench.protocols import PROTOCOLS

    protocol = result["protocol"] or {}
    name, version = protocol.get("name"), protocol.get("version")
    if name in PROTOCOLS and version != PROTOCOLS[name].version:
        return f"{name}-v{version}"
    return name


def _mean_spread(values: list[float]) -> str:
    """``mean ± sample std`` to 2 decimals, computed without bench.leaderboard; ``± –`` for one value."""
    spread = f"{statistics.stdev(values):.2f}" if len(values) > 1 else "–"
    return f"{statistics.fmean(values):.2f} ± {spread}"


def test_committed_results_give_the_cells_a_plain_computation_gives() -> None:
    """The pandas aggregation against an independent one (statistics.fmean/stdev over the JSON files), on every
    committed result: same rows, same top-1, n, top-5, module top-1, memory, time and FLOPs cells."""
    files = [json.loads(p.read_text()) for p in find_result_files(COMMITTED)]
    if not files:
        pytest.skip("no committed results")
    results, warnings = lb.collect(COMMITTED)
    assert warnings == []
    for protocol, group in lb.group_by_protocol(results).items():
        page = {(row["Method"].strip("*"), row["Schedule"]): row
                for row in table_rows(lb.render_protocol(protocol, group))}
        mine = [f for f in files if _page_of(f) == protocol and f["status"] == "ok"]
        assert sorted(page) == sorted({(f["method"]["name"], f["config"]["schedule"]) for f in mine})
        sgd_act = statistics.fmean(f["metrics"]["peak_activation_bytes"] for f in mine if f["method"]["name"] == "sgd")
        for (method, schedule), row in page.items():
            runs = [f["metrics"] for f in mine if (f["method"]["name"], f["config"]["schedule"]) == (method, schedule)]
            assert row["Top-1 (%)"].strip("*") == _mean_spread([m["test_top1"] for m in runs])
            assert row["n"] == str(len(runs))
            assert row["Top-5 (%)"] == f"{statistics.fmean(m['test_top5'] for m in runs):.2f}"
            if runs[0]["module_top1"]:
                modules = [statistics.fmean(col) for col in zip(*(m["module_top1"] for m in runs), strict=True)]
                assert row["Module top-1 (%)"] == " / ".join(f"{v:.1f}" for v in modules)
            act = statistics.fmean(m["peak_activation_bytes"] for m in runs)
            assert row["Act. mem (MiB)"] == f"{act / MIB:.1f}"
            assert row["vs sgd"] == f"{act / sgd_act:.2f}x"
            assert row["Train time"] == lb.fmt_duration(statistics.fmean(m["train_seconds"] for m in runs))
            assert row["Train FLOPs"] == lb.fmt_flops(statistics.fmean(m["train_flops"] for m in runs))


def _readme_result_tables() -> list[tuple[str, list[dict[str, str]]]]:
    """Every table of the README with a `test top-1 (%)` column, with the leaderboard page it quotes: the last
    `leaderboards/<page>.md` named in the prose between the previous table (or heading) and this one."""
    lines = (REPO / "README.md").read_text().splitlines()
    tables, prose, i = [], [], 0
    while i < len(lines):
        if not lines[i].startswith("|"):
            prose.append(lines[i])
            i += 1
            continue
        block = []
        while i < len(lines) and lines[i].startswith("|"):
            block.append([c.strip() for c in lines[i].strip("|").split("|")])
            i += 1
        header, rows = block[0], block[2:]
        if "test top-1 (%)" in header:
            pages = re.findall(r"leaderboards/([\w.-]+)\.md", "\n".join(prose))
            assert pages, f"a README results table names no leaderboard page: {header}"
            tables.append((pages[-1], [dict(zip(header, row, strict=True)) for row in rows]))
        prose = []
    return tables


def test_readme_result_tables_match_the_committed_results() -> None:
    """The README quotes the leaderboards: each row's n, test top-1 (mean ± std) and validation top-1 are those of
    the committed result files of the page it names, and every row of that page is quoted."""
    files = [json.loads(p.read_text()) for p in find_result_files(COMMITTED)]
    if not files:
        pytest.skip("no committed results")
    tables = _readme_result_tables()
    assert {page for page, _ in tables} >= {"cpu-gtsrb", "cpu-gtsrb-v4", "cpu-gtsrb-v2", "cpu-cifar10", "cpu-gtsrb-loc",
                                            "cpu-gtsrb-loc-v2"}

    for page, rows in tables:
        mine = [f for f in files if _page_of(f) == page and f["status"] == "ok"]
        assert mine, page
        quoted = set()
        for row in rows:
            method = re.match(r"`(\w+)`", row["method"]).group(1)
            schedule = row["schedule"].replace(" ", "_")
            runs = [f["metrics"] for f in mine if (f["method"]["name"], f["config"]["schedule"]) == (method, schedule)]
            assert runs, (page, method, schedule)
            quoted.add((method, schedule))
            assert row["n"] == str(len(runs)), (page, method, schedule)
            assert row["test top-1 (%)"] == _mean_spread([m["test_top1"] for m in runs]), (page, method, schedule)
            val = row.get("validation top-1 (%)", row.get("val top-1 (%)"))
            assert val == _mean_spread([m["val_top1"] for m in runs]), (page, method, schedule)
        assert quoted == {(f["method"]["name"], f["config"]["schedule"]) for f in mine}, page


def test_readme_step_time_ratios_are_the_committed_side_by_side_measurement() -> None:
    """A README table's "step time vs sgd, side by side" column quotes the step-time file of the page's protocol
    version (scripts/bench_grid.py --save), row by row."""
    from bench.protocols import PROTOCOLS

    quoted = 0
    for page, rows in _readme_result_tables():
        column = "step time vs sgd, side by side"
        if not rows or column not in rows[0]:
            continue
        superseded = re.fullmatch(r"(.+)-v(\d+)", page)  # a superseded version's page quotes its own measurement
        if superseded and superseded.group(1) in PROTOCOLS:
            name, version = superseded.group(1), int(superseded.group(2))
        else:
            name, version = page, PROTOCOLS[page].version
        record = lb.read_step_times(COMMITTED, name, [version])
        assert record is not None, page
        ratios = lb.step_time_ratios(record)
        for row in rows:
            method = re.match(r"`(\w+)`", row["method"]).group(1)
            key = f"{method} ({row['schedule'].replace(' ', '_')})"
            assert row[column] == f"{ratios[key]:.2f}x", (page, key)
            quoted += 1
    assert quoted >= 12


def test_committed_leaderboards_are_up_to_date() -> None:
    if not any(find_result_files(COMMITTED)):
        pytest.skip("no committed results")
    assert lb.check_leaderboards(COMMITTED, REPO / "leaderboards") == []


def test_settings_that_differ_split_rows_and_duplicates() -> None:
    """Two configurations of one method (a hyperparameter apart) are two rows, and the same seed of each is
    not a duplicate of the other."""
    runs = [
        make_result("greedydib", 0, 50.0, schedule="sequential", hparams={"gamma": 0.01, "alpha": 1.01}),
        make_result("greedydib", 1, 52.0, schedule="sequential", hparams={"gamma": 0.01, "alpha": 1.01}),
        make_result("greedydib", 0, 40.0, schedule="sequential", hparams={"gamma": 0.1, "alpha": 1.01}),
    ]
    kept, warnings = lb.drop_duplicates(runs)
    assert len(kept) == 3 and warnings == []
    rows = table_rows(lb.render_protocol("cpu-cifar10", kept))
    assert [(r["Settings"], r["Top-1 (%)"], r["n"]) for r in rows] == [
        ("gamma=0.01", "**51.00 ± 1.41**", "2"),
        ("gamma=0.1", "40.00 ± –", "1"),
    ]
    # Without a difference there is no Settings column (the committed tables have none).
    assert "Settings" not in table_rows(lb.render_protocol("cpu-cifar10", runs[:2]))[0]


def test_pareto_points_ours_and_published() -> None:
    results = [
        make_result("sgd", s, 93.0 + s, protocol="paper-cifar10-resnet110", arch="cifar_resnet110", k=4,
                    split="blocks:4", activation_bytes=800 * MIB)
        for s in (0, 1)
    ] + [
        make_result("dgl", 0, 90.0, protocol="paper-cifar10-resnet110", arch="cifar_resnet110", k=k,
                    schedule="simultaneous", split=f"blocks:{k}", activation_bytes=a * MIB)
        for k, a in ((4, 300), (8, 200))
    ]
    points = lb.pareto_points("paper-cifar10-resnet110", results)
    ours = points[points["source"] == "ours"].set_index(["method", "k"])
    assert ours.loc[("sgd", 4), "memory_ratio"] == 1.0
    assert ours.loc[("sgd", 4), "top1_mean"] == 93.5 and math.isclose(ours.loc[("sgd", 4), "top1_std"], 0.5**0.5)
    assert ours.loc[("dgl", 4), "memory_ratio"] == 0.375 and ours.loc[("dgl", 8), "memory_ratio"] == 0.25
    published = points[points["source"] == "published"].set_index("label")
    assert math.isclose(published.loc["E2E Training", "memory_ratio"], 1.0)
    star = published[published["k"] == 2].iloc[0]
    assert math.isclose(star["memory_ratio"], 5.38 / 9.40) and math.isclose(star["top1_mean"], 100 - 6.41)
    assert star["method"] == "infopro" and star["top1_std"] == 0.13
    assert set(published["k"].dropna()) == {2, 3, 4}
    # The data file round-trips.
    again = lb.read_pareto_csv(lb.pareto_csv("paper-cifar10-resnet110", points))
    assert list(again["label"]) == list(points["label"])
    assert again["memory_ratio"].round(4).tolist() == points["memory_ratio"].round(4).tolist()
    # A protocol with no published memory has only our points; no sgd row, no point.
    assert set(lb.pareto_points("cpu-cifar10", [make_result("sgd", 0)])["source"]) == {"ours"}
    assert lb.pareto_points("cpu-cifar10", [make_result("dgl", 0)]).empty


def test_write_is_stable_byte_for_byte(results_dir: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    lb.write_leaderboards(results_dir, a)
    lb.write_leaderboards(results_dir, b)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    mtime = os.stat(a / "cpu-cifar10.png").st_mtime_ns
    lb.write_leaderboards(results_dir, a)  # unchanged: not rewritten
    assert os.stat(a / "cpu-cifar10.png").st_mtime_ns == mtime


def test_paper_protocols_get_their_published_page_before_any_run(tmp_path):
    """Table 2 and 3 are rendered with their source even when no result of ours exists yet."""
    (tmp_path / "results").mkdir()
    files = lb.build_leaderboards(tmp_path / "results")
    page = files["paper-cifar10-resnet110.md"]
    assert "No result of ours yet" in page and "6.50 ± 0.34" in page and "9.40" in page
    assert "Table 2" in page and "Table 3" in page and "infopro-table2-resnet110.toml" in page
    assert "7.37 ± 0.10" in files["paper-cifar10-resnet32.md"]
    assert "cpu-cifar10.md" not in files  # protocols without published numbers get no empty page


def test_superseded_protocol_version_gets_its_own_page(tmp_path: Path) -> None:
    """A result of an older version of a protocol is never averaged with the current version's: its own page."""
    from bench.protocols import PROTOCOLS

    current = PROTOCOLS["cpu-cifar10"].version
    assert current >= 2
    save(tmp_path, make_result("sgd", 0, 70.0), folder="new")
    old = make_result("sgd", 0, 40.0)
    old["protocol"]["version"] = current - 1
    save(tmp_path, old, folder="old")
    files = lb.build_leaderboards(tmp_path)
    assert f"cpu-cifar10-v{current - 1}.md" in files and "cpu-cifar10.md" in files
    assert "70.00" in files["cpu-cifar10.md"] and "40.00" not in files["cpu-cifar10.md"]
    assert "40.00" in files[f"cpu-cifar10-v{current - 1}.md"]


def test_time_and_flops_relative_to_sgd_and_test_precision(tmp_path: Path) -> None:
    save(tmp_path, make_result("sgd", 0, 70.0, train_seconds=100.0, train_flops=1e12), folder="a")
    save(tmp_path, make_result("greedy_ce", 0, 60.0, k=3, schedule="sequential", train_seconds=250.0,
                                  train_flops=1.5e12), folder="b")
    page = lb.build_leaderboards(tmp_path)["cpu-cifar10.md"]
    rows = rows_by_method(page)
    assert rows["greedy_ce"]["Time vs sgd"] == "2.50x" and rows["greedy_ce"]["FLOPs vs sgd"] == "1.50x"
    assert rows["sgd"]["Time vs sgd"] == "1.00x"
    # test_size 10,000 (make_result's dataset) at 70 %: 100 * sqrt(0.7 * 0.3 / 10000) = 0.458 points
    assert "standard error of about 0.46 points (10,000 test images, at 70.0 %)" in page
    assert "smaller than about 0.9 points" in page


def test_with_a_validation_split_the_epoch_is_chosen_on_validation_not_on_test(tmp_path: Path) -> None:
    # Each run evaluated every epoch: its best test epoch (test_top1_best) is a number chosen on the test set; with a
    # validation split the table shows the test top-1 at the best validation epoch instead.
    for seed, (at_val, best) in enumerate([(68.0, 71.0), (66.0, 70.0)]):
        save(tmp_path, make_result("sgd", seed, 67.0, val_top1=72.0 + seed, test_top1_at_val_best=at_val,
                                   test_top1_best=best), folder=f"s{seed}")
    row = rows_by_method(lb.build_leaderboards(tmp_path)["cpu-cifar10.md"])["sgd"]
    assert row["Top-1 at best val epoch (%)"] == "67.00 ± 1.41"
    assert "Best-epoch top-1 (%)" not in row
    # Without a validation split (a paper protocol, as published) the best-epoch column stays.
    plain = make_result("sgd", 0, 67.0, protocol=None, test_top1_best=71.0)
    page = lb.render_protocol("(none)", [plain])
    assert table_rows(page)[0]["Best-epoch top-1 (%)"] == "71.00 ± –"


def test_a_page_names_its_cpu_models_and_flags_a_grid_that_mixes_them(tmp_path):
    results_dir = tmp_path / "results"
    amx = "family 6 model 143 stepping 8; avx2 fma avx512f avx512_bf16 amx_bf16"
    no_amx = "family 6 model 106 stepping 6; avx2 fma avx512f"
    for seed, ident in enumerate([amx, amx, None]):
        result = make_result("sgd", seed)
        if ident:
            result["env"]["cpu_id"] = ident
        save(results_dir, result)
    page = lb.render_protocol("cpu-cifar10", lb.collect(results_dir)[0])
    line = next(line for line in page.splitlines() if line.startswith("- CPU model(s):"))
    assert line == f"- CPU model(s): `{amx}` (2 files), not recorded (1 file)"  # one recorded model: no warning
    other = make_result("dgl", 0, schedule="simultaneous")
    other["env"]["cpu_id"] = no_amx
    save(results_dir, other)
    page = lb.render_protocol("cpu-cifar10", lb.collect(results_dir)[0])
    line = next(line for line in page.splitlines() if line.startswith("- CPU model(s):"))
    assert f"`{amx}` (2 files), `{no_amx}` (1 file), not recorded (1 file)" in line
    assert "more than one CPU model" in line


def test_a_page_says_how_many_of_its_results_were_adopted_from_an_older_version(tmp_path):
    results_dir = tmp_path / "results"
    for seed in range(3):
        result = make_result("sgd", seed)
        if seed < 2:
            result["protocol"]["adopted_from"] = {"version": 1, "adopted": "2026-12-06"}
        save(results_dir, result)
    page = lb.render_protocol("cpu-cifar10", lb.collect(results_dir)[0])
    line = next(line for line in page.splitlines() if line.startswith("- Adopted result files:"))
    assert line.startswith("- Adopted result files: 2 from version 1, run before this version")
    assert table_rows(page)[0]["n"] == "3"  # adopted results count as the version's own
    plain = tmp_path / "plain"
    save(plain, make_result("sgd", 0))
    assert "Adopted" not in lb.render_protocol("cpu-cifar10", lb.collect(plain)[0])
