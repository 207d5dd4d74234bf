"""``bench sweep``: grids run once, resumable after a real SIGKILL, SLURM submission through submitit (fake sbatch)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench import sweep as sw
from bench.cli import app
from bench.errors import ConfigError

runner = CliRunner()

TINY = ["--epochs", "1", "--batch-size", "64", "--set", "data.num_classes=4", "--set", "data.image_size=16",
        "--set", "data.train_size=256", "--set", "data.test_size=64"]


def tiny_sweep(out: Path, methods=("sgd", "greedy_ce"), seeds=(0, 1), epochs: int = 1) -> sw.Sweep:
    return sw.build_sweep(
        methods=list(methods), seeds=list(seeds),
        sets=["data.num_classes=4", "data.image_size=16", "data.train_size=256", "data.test_size=64"],
        flags={"epochs": epochs, "batch_size": 64, "out": str(out)},
    )


def results_of(out: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime_ns for p in sorted(out.rglob("result.json"))}


def test_debug_executor_runs_every_cell_once_and_never_again(tmp_path):
    sweep = tiny_sweep(tmp_path)
    assert len(sweep.cells) == 4
    done = []
    sw.run_debug(sweep, report=lambda cell, summary: done.append((cell.label, summary["status"])))
    assert sorted(done) == sorted((c.label, "ok") for c in sweep.cells)
    first = results_of(tmp_path)
    assert len(first) == 4
    again = []
    sw.run_debug(tiny_sweep(tmp_path), report=lambda cell, summary: again.append(cell))
    assert again == [] and results_of(tmp_path) == first
    sw.refresh(sweep.cells)
    assert sw.counts(sweep.cells)["done"] == 4 and all(c.top1 is not None for c in sweep.cells)
    assert not list(tmp_path.rglob(sw.MARKER))


def test_local_executor_through_the_cli_then_status_and_dry_run(tmp_path):
    args = ["sweep", "--methods", "sgd,dgl", "--seeds", "0,1", "--out", str(tmp_path), "--jobs", "2", *TINY]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert len(results_of(tmp_path)) == 4
    for path in results_of(tmp_path):
        assert json.loads(path.read_text())["status"] == "ok"
    logs = sorted((tmp_path / sw.SWEEP_STATE / "local").glob("*.log"))
    assert len(logs) == 4
    for log in logs:  # each worker's log follows its run: a line per phase and per epoch, then the outcome
        text = log.read_text()
        assert "epoch 1" in text and "loss" in text and ": ok, test top-1" in text, text
    first = results_of(tmp_path)
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "4 done" in res.output and results_of(tmp_path) == first
    res = runner.invoke(app, [*args, "--status"])
    assert res.exit_code == 0 and "done 4" in res.output
    res = runner.invoke(app, ["sweep", "--methods", "sgd", "--seeds", "5", "--out", str(tmp_path), *TINY, "--dry-run"])
    assert res.exit_code == 0 and "pending 1" in res.output and len(results_of(tmp_path)) == 4


def test_a_sigkilled_sweep_resumes_without_half_written_results(tmp_path):
    """Kill a real worker with SIGKILL mid-way, then run the same sweep again: finished cells are kept."""
    args = [sys.executable, "-m", "bench.cli", "sweep", "--methods", "sgd", "--seeds", "0,1,2", "--out",
            str(tmp_path), "--jobs", "1", *TINY, "--set", "data.train_size=1024"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    killed = None
    deadline = time.time() + 240
    while time.time() < deadline and killed is None:
        done = list(tmp_path.rglob("result.json"))
        markers = [m for m in tmp_path.rglob(sw.MARKER) if not (m.parent / "result.json").exists()]
        if done and markers:  # one cell finished, another is training: kill its worker
            pid = json.loads(markers[0].read_text())["pid"]
            os.kill(pid, signal.SIGKILL)
            killed = markers[0].parent
        time.sleep(0.05)
    assert killed is not None, "no worker was caught mid-run"
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 1, out  # one cell ended without a result
    assert b"without a result" in out
    assert not (killed / "result.json").exists()
    kept = {p: t for p, t in results_of(tmp_path).items() if p.parent != killed}
    res = subprocess.run(args, capture_output=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    after = results_of(tmp_path)
    assert len(after) == 3 and (killed / "result.json") in after
    assert all(after[p] == t for p, t in kept.items())  # finished cells were not run again
    assert all(json.loads(p.read_text())["status"] == "ok" for p in after)
    assert not [p for p in tmp_path.rglob("*.tmp")] and not list(tmp_path.rglob(sw.MARKER))


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch, squeue, sacct, scancel and srun on PATH that record their arguments and answer like SLURM."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "slurm-log"
    log.mkdir()
    scripts = {
        "sbatch": 'echo "$@" >> "$FAKE_SLURM_LOG/sbatch_args"\ncp "$1" "$FAKE_SLURM_LOG/script.sh"\n'
                  'echo "Submitted batch job 4242"\n',
        "squeue": 'echo "squeue $@" >> "$FAKE_SLURM_LOG/calls"\n',
        "sacct": 'echo "sacct $@" >> "$FAKE_SLURM_LOG/calls"\necho "JobID|State|NodeList"\n',
        "scancel": 'echo "scancel $@" >> "$FAKE_SLURM_LOG/calls"\n',
        "srun": 'echo "srun $@" >> "$FAKE_SLURM_LOG/calls"\n',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/usr/bin/env bash\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_LOG", str(log))
    return log


def test_slurm_submits_one_job_array_with_the_cluster_options(tmp_path, fake_slurm):
    out = tmp_path / "runs"
    res = runner.invoke(app, ["sweep", "--methods", "sgd,greedy_ce", "--seeds", "0,1,2", "--out", str(out), *TINY,
                              "--executor", "slurm", "--partition", "gpu", "--gpus", "1", "--time", "90", "--mem",
                              "16", "--array-parallelism", "2", "--cpus", "8", "--sbatch", "exclude=node7"])
    assert res.exit_code == 0, res.output
    assert "4242" in res.output
    assert len((fake_slurm / "sbatch_args").read_text().splitlines()) == 1  # one array, one sbatch call
    script = (fake_slurm / "script.sh").read_text()
    for line in ("#SBATCH --array=0-5%2", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --time=90", "#SBATCH --mem=16GB", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --exclude=node7"):
        assert line in script, script
    assert "submitit.core._submit" in script and "--signal=USR2" in script  # requeue on preemption/timeout
    assert not list(out.rglob("result.json"))
    res = runner.invoke(app, ["sweep", "--methods", "sgd,greedy_ce", "--seeds", "0,1,2", "--out", str(out), *TINY,
                              "--status"])
    assert "running 6" in res.output, res.output
    # submitting again does not submit the running cells twice
    res = runner.invoke(app, ["sweep", "--methods", "sgd,greedy_ce", "--seeds", "0,1,2", "--out", str(out), *TINY,
                              "--executor", "slurm"])
    assert res.exit_code == 0 and "nothing to submit" in res.output
    assert len((fake_slurm / "sbatch_args").read_text().splitlines()) == 1


def test_the_slurm_callable_requeues_itself_on_checkpoint():
    job = sw.SlurmCell()
    delayed = job.checkpoint({"flags": {"method": "sgd"}})
    assert delayed.function is job and delayed.args == ({"flags": {"method": "sgd"}},)


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--grid", "no_such_key=1,2"], "no_such_key"),
        (["--grid", "lr="], "no values"),
        (["--grid", "lr"], "key=v1,v2"),
        (["--methods", "sgd,nope"], "nope"),
        (["--seeds", "0,x"], "integers"),
        (["--grid", "lr=0.1,-1"], "lr must be positive"),
        (["--protocol", "no-such-protocol"], "no-such-protocol"),
        (["--executor", "slurm", "--sbatch", "novalue"], "key=value"),
    ],
)
def test_a_bad_grid_is_a_clear_error_before_anything_runs(tmp_path, extra, needle):
    res = runner.invoke(app, ["sweep", "--methods", "sgd", "--seeds", "0", "--out", str(tmp_path), *TINY, *extra])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert not list(tmp_path.rglob("result.json")) and not list(tmp_path.rglob(sw.MARKER))


def test_sweep_file_with_per_method_axes_and_settings(tmp_path):
    path = tmp_path / "table2.toml"
    path.write_text(textwrap.dedent("""
        methods = ["sgd", "greedy_ce", "greedydib"]
        seeds = [0, 1]
        [grid.greedydib]
        gamma = [0.0, 0.1]
        [set]
        epochs = 1
        [set.greedy_ce]
        schedule = "simultaneous"
        aux = "linear"
    """))
    sweep = sw.build_sweep(sweep_file=path, flags={"out": str(tmp_path)})
    assert len(sweep.cells) == 2 + 2 + 4
    greedy = [c for c in sweep.cells if c.label.startswith("greedy_ce")]
    assert all("schedule=simultaneous" in c.spec.sets and "aux=linear" in c.spec.sets for c in greedy)
    assert sorted({c.settings for c in sweep.cells if c.label.startswith("greedydib")}) == ["gamma=0.0", "gamma=0.1"]
    path.write_text('methods = ["sgd"]\n[grid.dgl]\nlr = [0.1]\n')
    with pytest.raises(ConfigError, match=r"\[grid.dgl\]"):
        sw.build_sweep(sweep_file=path)
    path.write_text("methods = []\n")
    with pytest.raises(ConfigError, match="non-empty"):
        sw.build_sweep(sweep_file=path)


def test_grid_values_split_outside_brackets():
    assert sw.parse_grid(["gamma=[0.1,0.2],[0.3,0.4]", "lr=0.1,0.05"]) == {
        "gamma": ["[0.1,0.2]", "[0.3,0.4]"], "lr": ["0.1", "0.05"]}


@pytest.mark.parametrize("arch", ["32", "110"])
def test_the_shipped_table2_sweep_covers_every_published_row_once(arch):
    """sweeps/infopro-table2-*.toml: E2E once per seed, the 4 K values for each layer-wise row, 5 trials."""
    from bench.references import PUBLISHED_ERRORS

    path = Path(__file__).resolve().parents[1] / "sweeps" / f"infopro-table2-resnet{arch}.toml"
    sweep = sw.build_sweep(sweep_file=path, flags={"out": "unused"})
    assert len(sweep.cells) == 5 + 4 * 5 * 4  # sgd; greedy SL, DGL, InfoPro x 2 loss modes at 4 K
    rows = [r for r in PUBLISHED_ERRORS if r.protocol == f"paper-cifar10-resnet{arch}" and r.harness is not None]
    assert len(rows) >= 1 + 4 * 4
    for row in rows:
        h = row.harness
        matching = [
            c for c in sweep.cells
            if c.cfg.method == h.method and (h.schedule is None or c.cfg.schedule == h.schedule)
            and (h.aux is None or c.cfg.aux == h.aux)
            and (row.k is None or c.cfg.split == h.split_for(row.k))
            and all(c.cfg.hparams.get(key) == value for key, value in h.hparams)
        ]
        assert len(matching) == 5, (row.paper_label, row.k)  # 5 trials, as published
