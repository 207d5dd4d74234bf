"""The local-learning engine: gradient isolation, freezing, schedules, divergence, learning."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.config import RunConfig
from bench.data.loader import DeviceData
from bench.engine import (
    LocalStep,
    _local_step,
    _LossMonitor,
    amp_enabled,
    build_units,
    lr_factor,
    make_optimizer,
    train_local,
)
from bench.errors import DivergedError
from bench.evaluate import evaluate
from bench.runner import execute, resolve_config
from tests.tiny import blobs_dataset, tiny_run


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
    C = RunConfig(lr_schedule="cosine")
    assert lr_factor(0, 10, 10, C) == pytest.approx(1.0)
    assert lr_factor(50, 10, 10, C) == pytest.approx(0.5)
    C.warmup_epochs = 1
    assert lr_factor(0, 10, 10, C) == pytest.approx(0.1)  # warm-up starts low
    C = RunConfig(lr_schedule="step")
    assert lr_factor(80, 10, 10, C) == pytest.approx(0.01)


def test_infopro_schedule_is_the_authors_per_epoch_formula():
    """InfoPro train.py, adjust_learning_rate(optimizer, epoch + 1) with --cos_lr, transcribed literally."""
    lr0, epochs, steps = 0.8, 160, 7

    def authors(epoch):  # epoch = 1..E, as their loop passes epoch + 1
        if epoch <= 10:
            return 0.5 * lr0 * (1 + math.cos(math.pi * epoch / epochs)) * (epoch - 1) / 10 + 0.01 * (11 - epoch) / 10
        return 0.5 * lr0 * (1 + math.cos(math.pi * epoch / epochs))

    C = RunConfig(lr=lr0, lr_schedule="infopro", epochs=epochs)
    for e in (1, 2, 5, 10, 11, 80, 159, 160):
        for s in (0, steps - 1):  # constant within an epoch
            assert lr0 * lr_factor((e - 1) * steps + s, steps, epochs, C) == pytest.approx(authors(e), abs=1e-12)
    assert lr_factor(0, steps, epochs, C) * lr0 == pytest.approx(0.01)
    assert lr_factor(epochs * steps - 1, steps, epochs, C) == pytest.approx(0.0, abs=1e-12)


def test_step_every_epochs_is_layercnn_and_dgl_decay():
    """DGL cifar_dgl.py: lr = lr_0 * 0.2 ** (epoch // 15), epoch 0-based, set per epoch."""
    C = RunConfig(lr_schedule="step", step_every_epochs=15, step_gamma=0.2, epochs=50)
    for epoch in (0, 14, 15, 29, 30, 49):
        assert lr_factor(epoch * 3 + 2, 3, 50, C) == pytest.approx(0.2 ** (epoch // 15))


def test_reflect_padding_reflects_and_zero_padding_pads_zeros():
    ds = blobs_dataset(train=8, image_size=8)
    ds.train_images[:] = 200
    zeros = DeviceData(ds, "cpu", crop_padding=4, padding_mode="zeros")
    reflect = DeviceData(ds, "cpu", crop_padding=4, padding_mode="reflect")
    g = torch.Generator().manual_seed(0)
    out_z = zeros.augment(zeros.train_images, g)
    out_r = reflect.augment(reflect.train_images, torch.Generator().manual_seed(0))
    assert (out_z == 0).any()  # some crop offset reaches the zero border
    assert (out_r == 200).all()  # reflection of a constant image is the constant


def test_deferred_work_trains_but_is_not_counted_as_activations():
    """A probe trained on detached features after the backward must not raise the measured peak."""
    counted = {}
    for defer in (False, True):
        run = tiny_run("simultaneous", epochs=1)
        probe = nn.Sequential(nn.Conv2d(8, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                              nn.Linear(64, 4))
        units = build_units(run, linear_head)
        units[0].head = nn.ModuleDict({"cls": units[0].head, "probe": probe})
        for u in units:
            u.optimizer = make_optimizer(u.parameters(), run.cfg)
            u.scheduler = torch.optim.lr_scheduler.LambdaLR(u.optimizer, lambda s: 1.0)
        run.meter.exclude([p for u in units for p in u.parameters()])
        x, y = next(run.data.train_batches(32, run.generator))
        before = probe[0].weight.detach().clone()

        def loss_fn(step: LocalStep, defer=defer):
            logits = step.head["cls"](step.features)
            loss = F.cross_entropy(logits, step.y)
            if defer:
                step.defer(lambda: (F.cross_entropy(out := step.head["probe"](step.features.detach()), step.y), out))
                return loss, None
            return loss + F.cross_entropy(step.head["probe"](step.features.detach()), step.y), logits

        mon = _LossMonitor(run.device)
        _local_step(run, units, 0, x, y, x, loss_fn, mon, "test")
        assert not torch.equal(before, probe[0].weight)  # the probe trained in both cases
        assert mon.seen == 32  # train accuracy came from the probe's logits when deferred
        counted[defer] = run.meter.peak_activation_bytes
    assert counted[True] < counted[False]


def test_last_head_aux_replaces_the_backbone_classifier():
    run = tiny_run("sequential", epochs=1, last_head="aux")
    original = run.net.head
    outcome = train_local(run, make_head=linear_head)
    assert run.net.head is not original and outcome.aux_heads[-1] is run.net.head
    assert evaluate(run.net, run.data)["test_top1"] > 25.0


@pytest.mark.parametrize("schedule", ["end_to_end", "sequential", "simultaneous"])
def test_history_and_best_epoch_are_recorded(schedule):
    run = tiny_run(schedule, epochs=3, eval_every=1)
    outcome = train_local(run, make_head=linear_head)
    h = outcome.history
    modules = 1 if schedule == "end_to_end" else 3
    assert len(h) == 3 * modules
    assert {r["epoch"] for r in h} == {1, 2, 3}
    assert all(r["test_top1"] is not None and r["train_loss"] > 0 for r in h)
    if schedule == "sequential":
        assert [r["phase"] for r in h] == [0, 0, 0, 1, 1, 1, 2, 2, 2] and [r["module"] for r in h][::3] == [0, 1, 2]
    network = [r["test_top1"] for r in h if r["module"] in (None, 2)]
    assert outcome.extra_metrics["test_top1_best"] == max(network)
    final = evaluate(run.net, run.data, amp=amp_enabled(run))["test_top1"]
    assert network[-1] == final  # the last per-epoch evaluation is the end-of-run evaluation
    assert all(r["val_top1"] is None for r in h)  # no validation split: nothing to record
    assert "val_top1_best" not in outcome.extra_metrics


@pytest.mark.parametrize("schedule", ["end_to_end", "sequential", "simultaneous"])
def test_validation_is_evaluated_every_epoch_and_chooses_the_best_epoch(schedule):
    run = tiny_run(schedule, epochs=3, eval_every=1, val_split=0.25)
    assert run.data.val_size == 64 and run.data.train_size == 192
    outcome = train_local(run, make_head=linear_head)
    h = outcome.history
    assert all(r["val_top1"] is not None for r in h)
    network = [r for r in h if r["module"] in (None, 2)]
    vals = [r["val_top1"] for r in network]
    best = outcome.extra_metrics
    assert best["val_top1_best"] == max(vals)
    at = vals.index(max(vals))  # the first epoch reaching the best validation top-1
    assert best["val_top1_best_epoch"] == network[at]["epoch"]
    assert best["test_top1_at_val_best"] == network[at]["test_top1"]
    final = evaluate(run.net, run.data, amp=amp_enabled(run), split="val")
    assert network[-1]["val_top1"] == final["val_top1"]
    if schedule != "end_to_end":  # each module's record carries its own head's validation accuracy
        assert [r["val_top1"] for r in h if r["module"] == 0][-1] == evaluate(
            run.net, run.data, aux_heads=outcome.aux_heads, amp=amp_enabled(run), split="val"
        )["module_val_top1"][0]


def test_a_run_records_validation_and_test_and_trains_on_the_rest(tmp_path):
    """Through the runner: val_split is recorded, the held-out images never train, both top-1s are reported."""
    sets = ["data.num_classes=4", "data.train_size=200", "data.test_size=40", "data.image_size=16",
            "max_train_samples=150", "max_steps=1"]
    flags = {"method": "greedy_ce", "epochs": 1, "batch_size": 50, "out": str(tmp_path)}
    cfg, m = resolve_config(flags, sets=[*sets, "val_split=0.2"])
    result, _ = execute(cfg, m)
    assert result["config"]["val_split"] == 0.2
    ds = result["dataset"]
    assert (ds["val_size"], ds["train_size"], ds["train_size_used"]) == (40, 200, 150)  # the cap applies to the rest
    assert ds["val_rule"] == "the last 40 of the 200 training images" and len(ds["val_digest"]) == 16
    metrics = result["metrics"]
    assert 0 <= metrics["val_top1"] <= 100 and 0 <= metrics["test_top1"] <= 100
    assert len(metrics["module_val_top1"]) == 3 and metrics["module_val_top1"][-1] == metrics["val_top1"]
    cfg0, m0 = resolve_config(flags, sets=[*sets, "val_split=0"])
    none, _ = execute(cfg0, m0)
    assert none["dataset"]["val_size"] == 0 and "val_top1" not in none["metrics"]



@pytest.mark.parametrize("schedule", ["end_to_end", "sequential", "simultaneous"])
def test_test_scored_only_at_the_end_gives_the_same_numbers_as_every_epoch(tmp_path, schedule):
    """``eval_test=end``: validation every epoch, test once on the final weights and once on the kept weights of the
    best validation epoch: the same test_top1 and test_top1_at_val_best as scoring test every epoch."""
    from bench.runner import execute, resolve_config

    method = {"end_to_end": "sgd", "sequential": "greedy_ce", "simultaneous": "dgl"}[schedule]
    sets = ["data.num_classes=4", "data.image_size=16", "data.train_size=256", "data.test_size=64", "eval_every=1",
            "val_split=0.25", "lr=0.5"]
    results = {}
    for mode in ("every", "end"):
        cfg, m = resolve_config({"method": method, "epochs": 4, "batch_size": 64, "out": str(tmp_path / mode)},
                                sets=[*sets, f"eval_test={mode}"])
        results[mode], _ = execute(cfg, m)
    every, end = results["every"]["metrics"], results["end"]["metrics"]
    for key in ("test_top1", "val_top1", "module_top1", "val_top1_best", "val_top1_best_epoch",
                "test_top1_at_val_best"):
        assert end[key] == every[key], key
    assert "test_top1_best" in every and "test_top1_best" not in end
    assert all(r["test_top1"] is None and r["val_top1"] is not None for r in results["end"]["history"])
    assert [r["val_top1"] for r in results["end"]["history"]] == [r["val_top1"] for r in results["every"]["history"]]


def test_the_best_validation_weights_are_scored_when_they_are_not_the_final_ones():
    run = tiny_run("end_to_end", epochs=4, eval_every=1, val_split=0.25, lr=0.5, eval_test="end")
    outcome = train_local(run, make_head=linear_head)
    final = evaluate(run.net, run.data, amp=amp_enabled(run))["test_top1"]
    best = outcome.extra_metrics
    assert best["val_top1_best_epoch"] < 4, "the setting no longer makes an earlier epoch best: change it"
    reference = tiny_run("end_to_end", epochs=4, eval_every=1, val_split=0.25, lr=0.5)
    expected = train_local(reference, make_head=linear_head)
    assert best["test_top1_at_val_best"] == expected.extra_metrics["test_top1_at_val_best"]
    assert best["test_top1_at_val_best"] != final or expected.history[-1]["test_top1"] == final
    # the network is left with its final weights
    assert evaluate(reference.net, reference.data, amp=amp_enabled(reference))["test_top1"] == final


def test_a_sequential_phase_scores_only_the_modules_it_has_trained():
    run = tiny_run("sequential", epochs=1, eval_every=1, val_split=0.25)
    outcome = train_local(run, make_head=linear_head)
    full = evaluate(run.net, run.data, aux_heads=outcome.aux_heads, amp=amp_enabled(run), split="val")
    for k in (0, 1):
        part = evaluate(run.net, run.data, aux_heads=outcome.aux_heads, amp=amp_enabled(run), split="val", upto=k)
        assert part["val_top1"] is None and part["val_top5"] is None
        assert part["module_val_top1"][: k + 1] == full["module_val_top1"][: k + 1]
        assert part["module_val_top1"][k + 1 :] == [None] * (2 - k)
    with pytest.raises(ValueError, match="upto"):
        evaluate(run.net, run.data, aux_heads=outcome.aux_heads, upto=3)


def test_a_config_field_added_later_keeps_the_ids_of_older_results():
    from bench.results import config_hash

    old = {k: v for k, v in RunConfig().to_dict().items() if k != "eval_test"}
    assert config_hash(old) == config_hash({**old, "eval_test": "every"})
    assert config_hash(old) != config_hash({**old, "eval_test": "end"})
