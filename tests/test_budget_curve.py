"""scripts/budget_curve.py: the budget is chosen from validation numbers by the doubling rule, from result files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_script
from tests.test_leaderboard import make_result, save


@pytest.fixture(scope="module")
def budget():
    return load_script("budget_curve")


def _run(root: Path, method: str, schedule: str, epochs: int, val: float, test: float, seed: int = 0) -> None:
    result = make_result(method, seed, test, schedule=schedule, val_top1=val)
    result["config"]["epochs"] = epochs
    result["run_id"] += f"-{epochs}"
    save(root, result, folder=f"{method}-{schedule}-{epochs}-{seed}")


def test_the_budget_is_the_first_whose_double_moves_validation_less_than_a_point(budget, tmp_path):
    for epochs, val, test in ((3, 90.0, 95.0), (6, 95.5, 90.0), (12, 96.2, 99.9), (24, 96.3, 99.9)):
        _run(tmp_path, "sgd", "end_to_end", epochs, val, test)
    _run(tmp_path, "sgd", "end_to_end", 6, 10.0, 10.0, seed=1)  # another seed: left out by the default seeds=[0]
    frame = budget.budget_frame(tmp_path, "cpu-cifar10", seeds=[0])
    assert budget.doubling_moves(frame, "sgd (end_to_end)") == [(3, 6, pytest.approx(5.5)),
                                                                 (6, 12, pytest.approx(0.7)),
                                                                 (12, 24, pytest.approx(0.1))]
    # 6 -> 12 moves validation by 0.7 < 1: 6, although test moved by 9.9 points (test takes no part)
    assert budget.choose_budget(frame, "sgd (end_to_end)") == 6
    assert budget.choose_budget(frame, "sgd (end_to_end)", tolerance=0.5) == 12
    assert budget.choose_budget(frame, "sgd (end_to_end)", tolerance=0.05) is None
    # a test-set target on top of the rule: 6 meets the rule but reaches only 90 % on test, 12 reaches 99.9
    assert budget.choose_budget(frame, "sgd (end_to_end)", target=95.0) == 12
    assert budget.choose_budget(frame, "sgd (end_to_end)", target=99.95) is None
    both = budget.budget_frame(tmp_path, "cpu-cifar10", seeds=None)
    assert both.set_index("epochs").loc[6, "val_top1"] == pytest.approx((95.5 + 10.0) / 2)


def test_the_script_writes_the_figure_and_its_data_and_refuses_runs_without_validation(budget, tmp_path, capsys):
    root = tmp_path / "runs"
    for epochs, val in ((3, 90.0), (6, 95.5), (12, 95.9)):
        _run(root, "sgd", "end_to_end", epochs, val, val)
        _run(root, "greedy_ce", "simultaneous", epochs, val - 3, val - 3)
    assert budget.main([str(root), "--protocol", "cpu-cifar10", "--out", str(tmp_path / "fig" / "budget")]) == 0
    out = capsys.readouterr().out
    assert "chosen budget: 6 epochs" in out and "greedy_ce (simultaneous): 3 -> 6 epochs" in out
    assert (tmp_path / "fig" / "budget.png").read_bytes()[:4] == b"\x89PNG"
    csv = (tmp_path / "fig" / "budget.csv").read_text().splitlines()
    assert csv[0].startswith("row,epochs,val_top1,test_top1") and len(csv) == 7
    bare = tmp_path / "bare"
    result = make_result("sgd", 0, 50.0)
    save(bare, result)
    assert "val_top1" not in json.dumps(result["metrics"])
    with pytest.raises(SystemExit, match="no validation top-1"):
        budget.main([str(bare), "--protocol", "cpu-cifar10"])


def test_the_committed_evidence_chooses_the_protocols_budget(budget):
    """A protocol's epochs are the budget the doubling rule chooses from the committed budget sweep of `sgd`
    (validation top-1 at 3, 6 and 12 epochs, seed 0, at the protocol's batch; docs/protocols.md, Budgets).
    cpu-gtsrb-loc inherits the budget of cpu-gtsrb version 2 (batch 128), whose sweep is evidence/cpu-gtsrb."""
    from bench.protocols import PROTOCOLS
    from tests.test_protocols import _committed_results

    files = _committed_results("evidence/cpu-gtsrb", pattern="sgd_*/result.json")
    settings = PROTOCOLS.get("cpu-gtsrb-loc").settings
    assert {r["config"]["epochs"] for r in files} >= {3, 6, 12}
    for r in files:
        assert r["status"] == "ok" and r["protocol"] == {"name": "cpu-gtsrb", "version": 2}
        assert r["config"]["batch_size"] == settings["batch_size"] and r["config"]["seed"] == 0
    root = Path(__file__).resolve().parents[1] / "evidence" / "cpu-gtsrb"
    frame = budget.budget_frame(root, "cpu-gtsrb", seeds=[0], rows=["sgd (end_to_end)"])
    assert budget.choose_budget(frame, "sgd (end_to_end)") == settings["epochs"] == 6


def test_cpu_gtsrb_s_budget_is_the_rule_with_its_test_target(budget):
    """cpu-gtsrb at batch 64 (the sweep ran under version 4): the doubling rule alone, on validation, chooses 3
    epochs, where `sgd`'s mean test top-1 over seeds 0-2 is several standard errors under the protocol's 98 % target;
    at version 4's 6 epochs (which meet the rule too) it is at the target within one standard error, and at version
    5's 12 above it, with validation top-1 too close to 100 % for a doubling to raise it by a point (evidence/cpu-
    gtsrb-v4; docs/protocols.md, Budgets: a choice that reads the test set, said there)."""
    from bench.evaluate import top1_standard_error
    from bench.protocols import PROTOCOLS
    from tests.test_protocols import _committed_results

    files = _committed_results("evidence/cpu-gtsrb-v4", pattern="sgd_*/result.json")
    assert sorted((r["config"]["epochs"], r["config"]["seed"]) for r in files) == [
        (e, s) for e in (3, 6, 12) for s in (0, 1, 2)]
    protocol = PROTOCOLS.get("cpu-gtsrb")
    for r in files:
        assert r["status"] == "ok" and r["protocol"] == {"name": "cpu-gtsrb", "version": 4}
        assert r["config"]["batch_size"] == protocol.settings["batch_size"] == 64
    root = Path(__file__).resolve().parents[1] / "evidence" / "cpu-gtsrb-v4"
    frame = budget.budget_frame(root, "cpu-gtsrb", seeds=None, rows=["sgd (end_to_end)"])
    sgd = "sgd (end_to_end)"
    assert budget.choose_budget(frame, sgd) == 3
    assert all(abs(move) < 1.0 for _, _, move in budget.doubling_moves(frame, sgd))  # 3 -> 6 and 6 -> 12
    test = frame.set_index("epochs")["test_top1"]
    se = top1_standard_error(98.0, 12630)  # about 0.12 points
    assert test[3] < 98.0 - 4 * se
    assert abs(test[6] - 98.0) < se  # version 4's budget: at the target within resolution, not above it
    assert test[12] > 98.0 and protocol.settings["epochs"] == 12  # version 5's: the first budget above it
    assert 100.0 - frame.set_index("epochs")["val_top1"][12] < 1.0  # 12 -> 24 cannot gain a validation point
    # the target taken literally: no budget the sweep can test with the rule (12 has no 24) reaches it
    assert budget.choose_budget(frame, sgd, target=98.0) is None
    assert budget.choose_budget(frame, sgd, target=98.0 - se) == 6


def test_docs_twice_the_budget_table_quotes_the_committed_cells():
    """docs/protocols.md's "twice the budget" table: every row of cpu-gtsrb v4 at 6 epochs (the grid's seed-0 cells)
    and at 12 (evidence/cpu-gtsrb-v4-12-epochs), validation and test top-1 as the result files hold them."""
    repo = Path(__file__).resolve().parents[1]
    lines = (repo / "docs" / "protocols.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "twice-the-budget table" in line)
    rows = []
    for line in lines[start + 3:]:  # the marker, the header, the separator, then the rows
        if not line.startswith("|"):
            break
        rows.append(line)

    def cells(folder: Path, epochs: int) -> dict[str, dict]:
        out = {}
        for path in folder.glob("*/result.json"):
            r = json.loads(path.read_text())
            c = r["config"]
            if (c["data"] == "gtsrb" and c["seed"] == 0 and c["epochs"] == epochs and c.get("task", "classify") ==
                    "classify" and (r.get("protocol") or {}).get("name") == "cpu-gtsrb"
                    and r["protocol"]["version"] == 4):
                name = f"`{c['method']}`" + ("" if c["method"] in ("sgd", "dgl", "infopro", "greedydib")
                                             else f" {c['schedule']}")
                out[name] = r["metrics"]
        return out

    six = cells(repo / "leaderboards" / "results", 6)
    twelve = cells(repo / "evidence" / "cpu-gtsrb-v4-12-epochs", 12)
    assert len(six) == len(twelve) == 6
    quoted = {}
    for row in rows:
        name, *numbers = [cell.strip() for cell in row.strip("|").split("|")]
        quoted[name] = [float(x) for x in numbers]
    assert set(quoted) == set(twelve)
    for name, (v6, v12, t6, t12, move) in quoted.items():
        assert (v6, t6) == (round(six[name]["val_top1"], 2), round(six[name]["test_top1"], 2)), name
        assert (v12, t12) == (round(twelve[name]["val_top1"], 2), round(twelve[name]["test_top1"], 2)), name
        assert move == pytest.approx(round(twelve[name]["test_top1"] - six[name]["test_top1"], 2), abs=0.011), name
