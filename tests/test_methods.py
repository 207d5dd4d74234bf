"""Every built-in method learns through ``bench run`` on generated signs, with the same small network and budget.

One module-scoped fixture trains each method once (CIFAR ResNet-20 cut in its 3 stages, 10 sign classes at 16x16,
2,000 training images); the tests then read the result files: final accuracy far above chance, one auxiliary
accuracy per module, the documented default schedule, and layer-wise peak activations below end-to-end's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.registry import METHODS

BUILTIN = ("sgd", "greedy_ce", "dgl", "infopro", "greedydib")
NUM_CLASSES = 10
BUDGET = [
    "--arch", "cifar_resnet20", "--split", "stages", "--epochs", "3", "--batch-size", "64", "--lr", "0.1",
    "--set", f"data.num_classes={NUM_CLASSES}", "--set", "data.train_size=2000", "--set", "data.test_size=400",
    "--set", "data.image_size=16", "--quiet",
]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("methods")
    runner = CliRunner()
    found = {}
    for name in BUILTIN:
        res = runner.invoke(app, ["run", "--method", name, *BUDGET, "--out", str(out / name)])
        assert res.exit_code == 0, res.output
        (path,) = Path(out / name).rglob("result.json")
        found[name] = json.loads(path.read_text())
    return found


@pytest.mark.parametrize("name", BUILTIN)
def test_method_learns_signs_through_bench_run(results, name):
    result = results[name]
    assert result["status"] == "ok"
    assert result["method"]["name"] == name
    chance = 100.0 / NUM_CLASSES
    assert result["metrics"]["test_top1"] >= 2 * chance, result["metrics"]


@pytest.mark.parametrize("name", [m for m in BUILTIN if m != "sgd"])
def test_layerwise_methods_report_each_modules_auxiliary_accuracy(results, name):
    result = results[name]
    module_top1 = result["metrics"]["module_top1"]
    assert len(module_top1) == result["architecture"]["num_modules"] == 3
    assert all(0.0 <= a <= 100.0 for a in module_top1)
    # the first module's head already reads useful features; the last entry is the network's own classifier
    assert module_top1[0] > 100.0 / NUM_CLASSES + 10
    assert module_top1[-1] == result["metrics"]["test_top1"]


@pytest.mark.parametrize(("name", "schedule"), [("sgd", "end_to_end"), ("greedy_ce", "sequential"),
                                                ("dgl", "simultaneous"), ("infopro", "simultaneous"),
                                                ("greedydib", "sequential")])
def test_default_schedules_follow_the_papers(results, name, schedule):
    assert results[name]["config"]["schedule"] == schedule
    assert METHODS.get(name).default_schedule == schedule


@pytest.mark.parametrize("name", [m for m in BUILTIN if m != "sgd"])
def test_layerwise_peak_activations_are_below_end_to_end(results, name):
    e2e = results["sgd"]["metrics"]["peak_activation_bytes"]
    local = results[name]["metrics"]["peak_activation_bytes"]
    assert 0 < local < e2e, (name, local, e2e)



def test_sgd_learns_the_real_cifar10_subset(shared_data, tmp_path):
    """A short end-to-end run on the real CIFAR-10 images (skipped without ../shared/data): clearly above chance."""
    res = CliRunner().invoke(app, [
        "run", "--method", "sgd", "--arch", "cifar_resnet20", "--data", "cifar10", "--data-root", str(shared_data),
        "--epochs", "3", "--batch-size", "64", "--lr", "0.05", "--set", "max_train_samples=2000",
        "--set", "max_test_samples=500", "--out", str(tmp_path), "--quiet",
    ])
    assert res.exit_code == 0, res.output
    (path,) = tmp_path.rglob("result.json")
    result = json.loads(path.read_text())
    assert result["dataset"]["name"] == "cifar10"
    assert result["metrics"]["test_top1"] > 20.0, result["metrics"]  # chance: 10%
