"""scripts/bench_grid.py: every row of a sweep file timed side by side, the grid's cost projected from it, and the
measurement saved for the leaderboard."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import bench_grid  # noqa: E402

from bench import leaderboard as lb  # noqa: E402

SWEEP = """
protocol = "cpu-gtsrb"
methods = ["sgd", "greedy_ce"]
seeds = [0, 1]
[grid.greedy_ce]
schedule = ["sequential", "simultaneous"]
[set]
data = "signs"
"data.train_size" = 256
"data.test_size" = 40
"data.image_size" = 16
"data.num_classes" = 4
split = "balanced:2"
batch_size = 32
epochs = 2
val_split = 0.25
"""


def test_every_row_is_timed_and_the_grid_cost_adds_up(tmp_path, capsys):
    sweep = tmp_path / "grid.toml"
    sweep.write_text(SWEEP)
    assert bench_grid.main([str(sweep), "--steps", "3", "--skip", "1", "--repeats", "2", "--save", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "192 training images" in printed  # 256 less the validation quarter
    from bench.protocols import PROTOCOLS

    record_version = PROTOCOLS["cpu-gtsrb"].version  # the file is named after the protocol's current version
    record = json.loads((tmp_path / lb.step_times_filename("cpu-gtsrb", record_version)).read_text())
    assert record["protocol"] == {"name": "cpu-gtsrb", "version": record_version}
    from bench.runner import cpu_id, cpu_name

    assert (record["machine"], record["cpu_id"]) == (cpu_name(), cpu_id())  # which CPU the ratios hold for
    rows = {r["row"]: r for r in record["rows"]}
    assert list(rows) == ["sgd (end_to_end)", "greedy_ce (sequential)", "greedy_ce (simultaneous)"]
    assert [rows[r]["phases"] for r in rows] == [1, 2, 1]  # a sequential row steps through each module's phase
    assert rows["sgd (end_to_end)"]["vs_sgd"] == 1.0
    steps = record["steps_per_epoch"]
    assert steps == 6  # ceil(192 / 32)
    for r in rows.values():
        assert r["seeds"] == 2
        assert r["vs_sgd"] == pytest.approx(r["step_ms"] / rows["sgd (end_to_end)"]["step_ms"], abs=1e-3)
        assert r["cell_minutes"] == pytest.approx(r["step_ms"] / 1e3 * steps * 2 / 60, abs=0.01)
    assert record["grid_core_minutes"] == pytest.approx(sum(r["cell_minutes"] * 2 for r in rows.values()), abs=0.1)
    assert lb.read_step_times(tmp_path, "cpu-gtsrb", [record_version]) == record


def test_save_needs_a_protocol(tmp_path, capsys):
    sweep = tmp_path / "grid.toml"
    no_protocol = SWEEP.replace('protocol = "cpu-gtsrb"', "").replace('split = "balanced:2"',
                                                                    'arch = "cifar_resnet20"\nsplit = "balanced:2"')
    sweep.write_text(no_protocol)
    assert bench_grid.main([str(sweep), "--steps", "2", "--skip", "1", "--repeats", "1", "--save", str(tmp_path)]) == 2
    assert "needs a sweep file of a protocol" in capsys.readouterr().err
