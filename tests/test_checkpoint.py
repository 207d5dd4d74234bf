"""Checkpoints at every epoch end: a run killed or interrupted and resumed ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.checkpoint import CHECKPOINT_FILENAME, Checkpointer
from bench.runner import execute, resolve_config

TINY = ["data.num_classes=4", "data.image_size=16", "data.train_size=256", "data.test_size=64", "eval_every=1"]


def resolved(schedule: str, out: Path, epochs: int = 3, sets: tuple[str, ...] = ()):
    method = {"end_to_end": "sgd", "sequential": "greedy_ce", "simultaneous": "dgl"}[schedule]
    return resolve_config({"method": method, "epochs": epochs, "batch_size": 64, "out": str(out)},
                          sets=[*TINY, *sets])


def comparable(result: dict) -> dict:
    m = result["metrics"]
    keys = ("test_top1", "test_top5", "module_top1", "val_top1", "final_train_loss", "test_top1_best",
            "val_top1_best", "val_top1_best_epoch", "test_top1_at_val_best", "peak_activation_bytes", "train_flops",
            "epochs_completed")
    history = [{k: v for k, v in r.items()} for r in result["history"]]
    return {**{k: m.get(k) for k in keys}, "history": history}


class StopAfter:
    """An epoch hook that interrupts the run (as Ctrl-C would) at the end of one epoch of one phase."""

    def __init__(self, phase: int, epoch: int) -> None:
        self.at = (phase, epoch)

    def __call__(self, run, phase, epoch, heads) -> None:
        if (phase, epoch) == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("schedule, stop, sets", [
    ("end_to_end", (0, 1), ()), ("sequential", (1, 0), ()), ("sequential", (0, 2), ()), ("simultaneous", (0, 1), ()),
    # test scored only at the end: the best validation epoch's weights travel in the checkpoint
    ("end_to_end", (0, 1), ("eval_test=end", "lr=0.5")), ("sequential", (2, 1), ("eval_test=end", "lr=0.5")),
])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, schedule, stop, sets):
    torch.set_num_threads(1)
    cfg, method = resolved(schedule, tmp_path / "a", sets=sets)
    reference, _ = execute(cfg, method)
    cfg, method = resolved(schedule, tmp_path / "b", sets=sets)
    with pytest.raises(KeyboardInterrupt):
        execute(cfg, method, checkpoint=True, epoch_hooks=[StopAfter(*stop)])
    run_dir = next((tmp_path / "b").iterdir())
    assert json.loads((run_dir / "result.json").read_text())["status"] == "interrupted"
    assert (run_dir / CHECKPOINT_FILENAME).exists()
    resumed, _ = execute(cfg, method, resume=True)
    # the checkpoint is the epoch before the interruption: the previous phase's last one when stop[1] == 0
    expected = stop if stop[1] > 0 else (stop[0] - 1, 3)
    assert resumed["status"] == "ok" and resumed["resumed_from"] == {"phase": expected[0], "epoch": expected[1]}
    assert comparable(resumed) == comparable(reference)
    assert not (run_dir / CHECKPOINT_FILENAME).exists()  # removed once the result is written


def test_a_checkpoint_of_another_run_is_not_loaded(tmp_path):
    cfg, method = resolved("end_to_end", tmp_path)
    with pytest.raises(KeyboardInterrupt):
        execute(cfg, method, checkpoint=True, epoch_hooks=[StopAfter(0, 1)])
    path = next(tmp_path.iterdir()) / CHECKPOINT_FILENAME
    assert Checkpointer(path.parent, "another-run", resume=True).resume_state is None
    path.write_bytes(b"truncated")
    assert Checkpointer(path.parent, "whatever", resume=True).resume_state is None


def test_bench_run_resume_after_a_real_sigkill(tmp_path):
    """`bench run --checkpoint` killed with SIGKILL after its first epoch, then `--resume`: same metrics."""
    args = [sys.executable, "-m", "bench.cli", "run", "--method", "greedy_ce", "--epochs", "3", "--batch-size", "64",
            "--quiet", *(x for item in TINY for x in ("--set", item)), "--set", "data.train_size=1024"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    ref = subprocess.run([*args, "--out", str(tmp_path / "ref")], capture_output=True, env=env, timeout=600)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    proc = subprocess.Popen([*args, "--out", str(tmp_path / "run"), "--checkpoint"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list((tmp_path / "run").rglob(CHECKPOINT_FILENAME)):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert list((tmp_path / "run").rglob(CHECKPOINT_FILENAME)), "no checkpoint was written before the kill"
    assert not list((tmp_path / "run").rglob("result.json"))
    res = subprocess.run([*args, "--out", str(tmp_path / "run"), "--resume"], capture_output=True, env=env,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert b"resumed from the checkpoint" in res.stdout
    (a,) = (tmp_path / "ref").rglob("result.json")
    (b,) = (tmp_path / "run").rglob("result.json")
    assert comparable(json.loads(b.read_text())) == comparable(json.loads(a.read_text()))
