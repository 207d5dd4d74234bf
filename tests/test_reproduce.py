"""Slow: a committed leaderboard cell reproduces on this machine (``pytest -m slow``; needs the real subsets).

Runs ``sgd`` and ``greedydib`` on ``cpu-cifar10`` with seed 0 (about two minutes each on a 2-core CPU) and compares
with the result files in ``leaderboards/results/``. The numbers agree exactly with the same torch build and thread
count; other BLAS builds or thread counts change the floating-point reduction order, hence the tolerance.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.leaderboard import collect
from bench.runner import execute, resolve_config

RESULTS = Path(__file__).resolve().parents[1] / "leaderboards" / "results"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sgd", "greedydib"])
def test_committed_cpu_cifar10_cell_reproduces(method, shared_data, tmp_path):
    committed = [
        r for r in collect(RESULTS)[0]
        if r["protocol"] and r["protocol"]["name"] == "cpu-cifar10" and r["config"]["method"] == method
        and r["config"]["seed"] == 0
    ]
    if not committed:
        pytest.skip(f"no committed cpu-cifar10 result for {method} seed 0")
    cfg, m = resolve_config({"method": method, "seed": 0, "data_root": str(shared_data), "out": str(tmp_path)},
                            protocol="cpu-cifar10")
    result, _ = execute(cfg, m)
    assert result["metrics"]["test_top1"] == pytest.approx(committed[0]["metrics"]["test_top1"], abs=3.0)
    assert result["metrics"]["peak_activation_bytes"] == committed[0]["metrics"]["peak_activation_bytes"]
