"""The committed grids agree with one another where their recipes say they must."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.results import UNTRAINED_FIELDS, find_result_files, read_result

RESULTS = Path(__file__).resolve().parents[1] / "leaderboards" / "results"


def _cells(protocol: str, version: int) -> dict[tuple[str, str, int], dict]:
    cells = {}
    for path in find_result_files(RESULTS):
        result = read_result(path)
        record = result.get("protocol") or {}
        if record.get("name") == protocol and record.get("version") == version and result["status"] == "ok":
            config = result["config"]
            cells[(result["method"]["name"], config["schedule"], config["seed"])] = result
    return cells


def test_cpu_cifar10_version_3_gives_version_2_s_numbers_cell_for_cell() -> None:
    """Version 3 is version 2 with the test set scored once at the end (on the final weights and on a copy of the
    best validation epoch's) instead of after every epoch. Training never reads the test set, so on the same CPU
    each of its 18 cells must train the same weights as version 2's: the same training loss and validation top-1 at
    every epoch, and the same test top-1 at the last epoch and at the best validation epoch, to the last digit."""
    v2, v3 = _cells("cpu-cifar10", 2), _cells("cpu-cifar10", 3)
    if not v2 or not v3:
        pytest.skip("cpu-cifar10 versions 2 and 3 are not both committed")
    assert sorted(v3) == sorted(v2) and len(v3) == 18
    ignored = {"eval_test", *UNTRAINED_FIELDS}
    cpu = {new["env"]["cpu_id"] for new in v3.values()}
    assert len(cpu) == 1  # every version-3 cell records its CPU, one CPU
    for key, new in v3.items():
        old = v2[key]
        assert new["config"]["eval_test"] == "end" and old["config"].get("eval_test", "every") == "every"
        assert ({k: v for k, v in new["config"].items() if k not in ignored}
                == {k: v for k, v in old["config"].items() if k not in ignored}), key
        assert new["method"] == old["method"], key
        assert new["env"]["threads"] == old["env"]["threads"] == 1
        # six version-2 cells predate the CPU field: their match here ties them to version 3's CPU
        assert old["env"].get("cpu_id") in (None, new["env"]["cpu_id"]), key
        for metric in ("test_top1", "test_top1_at_val_best", "test_top5", "val_top1", "val_top1_best",
                       "val_top1_best_epoch", "module_top1", "module_val_top1", "final_train_loss"):
            assert new["metrics"][metric] == old["metrics"][metric], (key, metric)
        for field in ("train_loss", "val_top1"):
            assert [h[field] for h in new["history"]] == [h[field] for h in old["history"]], (key, field)
        assert all(h["test_top1"] is None for h in new["history"]), key  # scored at the end only
        assert all(h["test_top1"] is not None for h in old["history"]), key
