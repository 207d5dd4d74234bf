"""The local-learning engine: gradient isolation, freezing, schedules, divergence, learning."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.engine import (
    LocalStep,
    _local_step,
    _LossMonitor,
    build_units,
    lr_factor,
    make_optimizer,
    train_local,
)
from bench.errors import DivergedError
from bench.evaluate import evaluate
from tests.tiny import tiny_run


def linear_head(k, shape):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(shape[0], 4))


def test_loss_on_module_k_leaves_other_modules_untouched():
    run = tiny_run("simultaneous")
    units = build_units(run, linear_head)
    for u in units:
        u.optimizer = make_optimizer(u.parameters(), run.cfg)
        u.scheduler = torch.optim.lr_scheduler.LambdaLR(u.optimizer, lambda s: 1.0)
    x, y = next(run.data.train_batches(32, run.generator))
    h0 = units[0].body(x)  # NOT detached: the engine must cut the graph itself
    before = [copy.deepcopy(u.body.state_dict()) for u in units]
    seen = {}

    def loss_fn(step: LocalStep):
        logits = step.head(step.features)
        return F.cross_entropy(logits, step.y), logits

    # Zero the learning rate so that only gradients (not updates) are observed.
    for g in units[1].optimizer.param_groups:
        g["lr"] = 0.0
    units[1].optimizer.step = lambda: seen.setdefault("grads", [p.grad for p in units[1].body.parameters()])
    units[1].scheduler = type("NoSchedule", (), {"step": lambda self: None})()
    _local_step(run, units, 1, x, y, h0, loss_fn, _LossMonitor(run.device), "test")
    assert all(p.grad is None for p in units[0].body.parameters())
    assert all(p.grad is None for p in units[2].body.parameters())
    assert all(g is not None and g.abs().sum() > 0 for g in seen["grads"])
    for u, b in zip(units, before, strict=True):  # nothing was updated
        for key, v in u.body.state_dict().items():
            if "running" not in key and "num_batches" not in key:
                assert torch.equal(v, b[key])


def test_sequential_freezes_parameters_and_batchnorm_statistics():
    run = tiny_run("sequential", epochs=2)
    snapshots = {}

    def snapshot(run, phase, epoch, heads):
        if epoch == run.cfg.epochs - 1:
            snapshots[phase] = copy.deepcopy(run.net.stages[phase].state_dict())

    run.epoch_hooks.append(snapshot)
    train_local(run, make_head=linear_head)
    for k in range(run.net.num_modules):
        final = run.net.stages[k].state_dict()
        for key, value in snapshots[k].items():
            assert torch.equal(final[key], value), f"module {k}: {key} changed after the module was frozen"
    # and training did change module 0 relative to a fresh init
    fresh = tiny_run("sequential").net.stages[0].state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in run.net.stages[0].state_dict().items())


@pytest.mark.parametrize("schedule", ["sequential", "simultaneous", "end_to_end"])
def test_every_schedule_learns_the_blobs(schedule):
    run = tiny_run(schedule, epochs=4)
    outcome = train_local(run, make_head=linear_head)
    metrics = evaluate(run.net, run.data, aux_heads=outcome.aux_heads)
    assert metrics["test_top1"] > 60.0  # chance is 25%
    if schedule == "end_to_end":
        assert metrics["module_top1"] is None
    else:
        assert len(metrics["module_top1"]) == 3
        assert metrics["module_top1"][-1] == metrics["test_top1"]
    assert run.meter.peak_activation_bytes > 0
    assert run.meter.train_flops > 0


def test_layerwise_step_saves_fewer_activations_than_end_to_end():
    peaks = {}
    for schedule in ("sequential", "simultaneous", "end_to_end"):
        run = tiny_run(schedule, epochs=1)
        train_local(run, make_head=linear_head)
        peaks[schedule] = run.meter.peak_activation_bytes
    assert peaks["sequential"] < peaks["end_to_end"]
    assert peaks["simultaneous"] < peaks["end_to_end"]


def test_nan_loss_raises_diverged():
    run = tiny_run("sequential", epochs=1)

    def nan_loss(step):
        logits = step.head(step.features)
        return F.cross_entropy(logits, step.y) * float("nan"), logits

    with pytest.raises(DivergedError, match="nan"):
        train_local(run, make_head=linear_head, local_loss=nan_loss)


def test_same_seed_same_weights():
    a = tiny_run("simultaneous", epochs=1, seed=3)
    train_local(a, make_head=linear_head)
    b = tiny_run("simultaneous", epochs=1, seed=3)
    train_local(b, make_head=linear_head)
    for (ka, va), (_, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka


def test_lr_schedules():
    class C:
        lr_schedule = "cosine"
        step_milestones = [0.5, 0.75]
        step_gamma = 0.1

    assert lr_factor(0, 100, 0, C) == pytest.approx(1.0)
    assert lr_factor(50, 100, 0, C) == pytest.approx(0.5)
    assert lr_factor(0, 100, 10, C) == pytest.approx(0.1)  # warm-up starts low
    C.lr_schedule = "step"
    assert lr_factor(80, 100, 0, C) == pytest.approx(0.01)
