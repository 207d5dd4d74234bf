"""Tests of the Markdown leaderboard generator (bench.leaderboard) on hand-written result files."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from bench import leaderboard as lb
from bench import references
from bench.results import write_json_atomic

MIB = 1024 * 1024


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
    **metrics: Any,
) -> dict[str, Any]:
    """A minimal valid schema-1 result; keyword arguments not listed above override metrics."""
    result = {
        "schema_version": 1,
        "run_id": f"{method}-{arch}-{k}-{schedule}-{seed}",
        "status": status,
        "message": message,
        "config": {
            "method": method,
            "arch": arch,
            "data": "cifar10",
            "seed": seed,
            "schedule": schedule,
            "split": "stages",
            "epochs": 5,
            "batch_size": 128,
            "hparams": {},
        },
        "protocol": None if protocol is None else {"name": protocol, "version": 1},
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
        "architecture": {"name": arch, "split": "stages", "num_modules": k, "params": 272474},
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
    assert all(r[lb.SOURCE_KEY].endswith("/result.json") for r in results)


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

    assert sorted(r["metrics"]["test_top1"] for r in results) == [70.0, 80.0]
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
    assert "## Published reference" in page
    ref = table_rows(page, "## Published reference")
    e2e = [r for r in ref if r["Paper's name"] == "E2E"]
    assert len(e2e) == 1
    assert e2e[0]["Test error (%)"] == "7.37" and e2e[0]["Accuracy (%)"] == "92.63"
    assert e2e[0]["Source"].startswith("Wang et al., ICLR 2021")
    assert "not re-checked" in e2e[0]["Source"]  # unverified numbers say so in the table
    assert "Revisiting Locally Supervised Learning" in page
    # Every recorded number carries a source; unchecked ones say so.
    for entry in references.PUBLISHED_ERRORS + references.PUBLISHED_MEMORY:
        assert entry.source
        assert entry.verified or entry.note
    assert "## Published reference" not in lb.render_protocol("cpu-cifar10", [make_result()])


def test_per_k_reference_rows_render_in_order_with_their_std(monkeypatch: pytest.MonkeyPatch) -> None:
    """A per-K entry (the form InfoPro's table takes) renders after E2E, ordered by K, with its std."""

    def entry(
        method: str, label: str, k: int, err: float, std: float, verified: bool
    ) -> references.PublishedError:
        return references.PublishedError(
            protocol="paper-cifar10-resnet32",
            arch="cifar_resnet32",
            method=method,
            paper_label=label,
            k=k,
            test_error=err,
            std=std,
            source="Some paper, Table 9",
            verified=verified,
            note="" if verified else "hand-typed",
        )

    extra = (entry("infopro", "InfoPro", 8, 11.25, 0.5, True), entry("dgl", "DGL", 2, 8.5, 0.25, False))
    monkeypatch.setattr(references, "PUBLISHED_ERRORS", references.PUBLISHED_ERRORS + extra)
    page = lb.render_protocol(
        "paper-cifar10-resnet32", [make_result("sgd", 0, 92.5, protocol="paper-cifar10-resnet32")]
    )
    rows = table_rows(page, "## Published reference")
    errors = [r for r in rows if "Test error (%)" in r]
    assert [r["Paper's name"] for r in errors] == ["E2E", "DGL", "InfoPro"]
    assert [r["K"] for r in errors][1:] == ["2", "8"]
    assert errors[1]["Test error (%)"] == "8.50 ± 0.25" and errors[1]["Accuracy (%)"] == "91.50"
    assert errors[2]["Source"] == "Some paper, Table 9"  # verified: no caveat
    assert errors[1]["Source"].startswith("Some paper, Table 9 (not re-checked) [")
    assert "hand-typed" in page


def test_reference_memory_for_resnet110() -> None:
    result = make_result("sgd", 0, 93.0, protocol="paper-cifar10-resnet110", arch="cifar_resnet110")
    page = lb.render_protocol("paper-cifar10-resnet110", [result])
    assert "| 9.40 |" in page and "| 5.38 |" in page and "| 3.52 |" in page


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
    shuffled = list(reversed(results))
    second = lb.render_protocol("cpu-cifar10", shuffled), lb.render_index(lb.group_by_protocol(shuffled))
    assert first == second
    assert not re.search(r"20\d\d-\d\d-\d\d", first[0] + first[1])  # no generation timestamp


def test_write_then_check_then_stale(results_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "leaderboards"
    assert lb.check_leaderboards(results_dir, out) == [
        f"missing: {out / 'README.md'}",
        f"missing: {out / 'cpu-cifar10.md'}",
    ]
    paths = lb.write_leaderboards(results_dir, out)
    assert [p.name for p in paths] == ["README.md", "cpu-cifar10.md"]
    assert lb.check_leaderboards(results_dir, out) == []

    # One result changes: its table and the index headline go stale.
    changed = make_result("infopro", 0, 90.0, module_top1=[40.0, 55.0, 70.0], activation_bytes=100 * MIB)
    save(results_dir, changed)
    assert lb.check_leaderboards(results_dir, out) == [
        f"stale: {out / 'README.md'}",
        f"stale: {out / 'cpu-cifar10.md'}",
    ]
    lb.write_leaderboards(results_dir, out)
    assert lb.check_leaderboards(results_dir, out) == []


def test_extra_generated_tables_are_reported_and_removed(results_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "leaderboards"
    lb.write_leaderboards(results_dir, out)
    (out / "old-protocol.md").write_text(lb.GENERATED_MARKER + "\n\nold\n")
    (out / "NOTES.md").write_text("hand-written, not generated\n")
    assert lb.check_leaderboards(results_dir, out) == [f"extra: {out / 'old-protocol.md'}"]
    lb.write_leaderboards(results_dir, out)
    assert not (out / "old-protocol.md").exists()
    assert (out / "NOTES.md").exists()
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
    assert [p.name for p in paths] == ["README.md"]
    assert "No results yet." in paths[0].read_text()
