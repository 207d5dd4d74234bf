"""Slow: a committed leaderboard cell reproduces on this machine (``pytest -m slow``; needs the real subsets).

Runs ``sgd`` and ``greedydib`` on ``cpu-cifar10`` with seed 0 (about two minutes each on a 2-core CPU) and compares
with the result files in ``leaderboards/results/``. The numbers agree exactly with the same torch build and thread
count; other BLAS builds or thread counts change the floating-point reduction order, hence the tolerance.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.results import load
from bench.runner import execute, resolve_config

RESULTS = Path(__file__).resolve().parents[1] / "leaderboards" / "results"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sgd", "greedydib"])
def test_committed_cpu_cifar10_cell_reproduces(method, shared_data, tmp_path):
    df = load(RESULTS)
    from bench.protocols import PROTOCOLS

    version = PROTOCOLS["cpu-cifar10"].version  # a superseded version's results are made with other settings
    rows = df[(df["protocol.name"] == "cpu-cifar10").fillna(False) & (df["protocol.version"] == version).fillna(False)
              & (df["config.method"] == method).fillna(False) & (df["config.seed"] == 0).fillna(False)]
    if rows.empty:
        pytest.skip(f"no committed cpu-cifar10 (version {version}) result for {method} seed 0")
    committed = rows.iloc[0]
    cfg, m = resolve_config({"method": method, "seed": 0, "data_root": str(shared_data), "out": str(tmp_path)},
                            protocol="cpu-cifar10")
    result, _ = execute(cfg, m)
    assert result["metrics"]["test_top1"] == pytest.approx(committed["metrics.test_top1"], abs=3.0)
    assert result["metrics"]["peak_activation_bytes"] == committed["metrics.peak_activation_bytes"]
