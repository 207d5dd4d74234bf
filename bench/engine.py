"""The local-learning engine shared by every method (end-to-end SGD is its one-module case).

Module k reads the *detached* output of module k-1, has its own auxiliary head, computes a local loss and steps its
own optimizer and learning-rate schedule; its graph is freed right after its local backward, so the activations of
only one module (and its head) are alive at a time. Methods differ only in the head, the local loss and the schedule:

- ``end_to_end``: the whole network is one module trained with the network's own classifier (plain backprop).
- ``sequential``: train module 1 with its head for ``epochs`` epochs, freeze it (eval mode, no grad, optimizer state
  dropped), then module 2 on top of the frozen prefix, and so on; the last module uses the network's own classifier.
- ``simultaneous`` (decoupled): every batch goes through all modules; each steps on its own local loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError, DivergedError
from bench.heads import build_head
from bench.method import RunContext, TrainOutcome

LOSS_CHECK_EVERY = 10
"""Steps between finiteness checks of the loss (each check synchronises the device)."""


@dataclass
class LocalStep:
    """What a local loss sees for one module on one batch."""

    k: int
    """Index of the module (0-based)."""
    num_modules: int
    x: torch.Tensor
    """The (normalised, augmented) input images of the batch."""
    y: torch.Tensor
    inputs: torch.Tensor
    """The module's input: the detached output of module k-1 (or x)."""
    features: torch.Tensor
    """The module's output T_k, with gradient to the module's parameters."""
    head: nn.Module
    is_last: bool
    run: RunContext


LocalLoss = Callable[[LocalStep], tuple[torch.Tensor, torch.Tensor]]
"""Returns ``(loss, logits)``; the logits feed the running train accuracy."""
HeadFactory = Callable[[int, tuple[int, ...]], nn.Module]
"""``make_head(k, feature_shape)`` -> the auxiliary classifier of module k."""


def cross_entropy_loss(step: LocalStep) -> tuple[torch.Tensor, torch.Tensor]:
    logits = step.head(step.features)
    return F.cross_entropy(logits, step.y), logits


# --- optimisation -------------------------------------------------------------------------------------------------


def make_optimizer(params: list[nn.Parameter], cfg) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"optimizer {cfg.optimizer!r} is not one of sgd, adam, adamw")


def lr_factor(step: int, total_steps: int, warmup_steps: int, cfg) -> float:
    """Multiplier of the base learning rate at ``step`` (linear warm-up, then cosine to 0, step decay or constant)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if cfg.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if cfg.lr_schedule == "step":
        return cfg.step_gamma ** sum(progress >= m for m in cfg.step_milestones)
    return 1.0


def make_scheduler(opt: torch.optim.Optimizer, cfg, steps_per_epoch: int, epochs: int):
    total = steps_per_epoch * epochs
    warmup = steps_per_epoch * cfg.warmup_epochs
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup, cfg))


# --- the engine ---------------------------------------------------------------------------------------------------


@dataclass
class Unit:
    """One locally trained module: its body (one or more stages), its head, its optimizer."""

    body: nn.Module
    head: nn.Module
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None

    def parameters(self) -> list[nn.Parameter]:
        return [p for m in (self.body, self.head) for p in m.parameters() if p.requires_grad]


def configured_heads(run: RunContext, **options) -> HeadFactory:
    """The head factory of ``run.cfg.aux`` (``--aux``, default: the method's), built with ``options``."""

    def make_head(k: int, shape: tuple[int, ...]) -> nn.Module:
        return build_head(run.cfg.aux, shape, run.net.num_classes, image_shape=run.net.input_shape, **options)

    return make_head


def build_units(run: RunContext, make_head: HeadFactory | None) -> list[Unit]:
    net = run.net
    if run.cfg.schedule == "end_to_end":
        return [Unit(nn.Sequential(*net.stages), net.head)]
    if make_head is None:
        make_head = configured_heads(run)
    units = []
    for k, stage in enumerate(net.stages):
        is_last = k == net.num_modules - 1
        head = net.head if is_last else make_head(k, net.feature_shapes[k]).to(run.device)
        units.append(Unit(stage, head))
    return units


class _LossMonitor:
    """Running loss/accuracy for the progress bar and a NaN/inf check every few steps."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device)
        self.seen = 0
        self.steps = 0
        self.last_loss = float("nan")

    def update(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, where: str) -> None:
        self.loss_sum += loss.detach().float()
        self.correct += (logits.detach().argmax(1) == y).sum()
        self.seen += y.numel()
        self.steps += 1
        if self.steps % LOSS_CHECK_EVERY == 0:
            self.check(where)

    def check(self, where: str) -> None:
        total = float(self.loss_sum)
        if not math.isfinite(total):
            raise DivergedError(
                f"the loss became {total} at {where}; try a lower --lr (or --set gamma=... for the DIB term)"
            )
        self.last_loss = total / max(1, self.steps)

    def info(self) -> dict[str, float]:
        self.check("the end of an epoch")
        return {"loss": self.last_loss, "acc": 100.0 * float(self.correct) / max(1, self.seen)}

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()
        self.seen = 0
        self.steps = 0


def _autocast(run: RunContext):
    enabled = bool(run.cfg.amp) and run.device.type == "cuda"
    return torch.autocast(device_type=run.device.type, dtype=torch.bfloat16, enabled=enabled)


def _local_step(run: RunContext, units: list[Unit], k: int, x, y, inputs, loss_fn: LocalLoss, monitor, where):
    """Forward module k on detached ``inputs``, compute its local loss, backward, step. Returns its output."""
    unit = units[k]
    inputs = inputs.detach()  # no gradient crosses a module boundary
    with run.meter.activations(), _autocast(run):
        features = unit.body(inputs)
        step = LocalStep(k, len(units), x, y, inputs, features, unit.head, k == len(units) - 1, run)
        loss, logits = loss_fn(step)
    unit.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    unit.optimizer.step()
    unit.scheduler.step()
    monitor.update(loss, logits, y, where)
    return features.detach()


def train_local(
    run: RunContext, *, make_head: HeadFactory | None = None, local_loss: LocalLoss = cross_entropy_loss
) -> TrainOutcome:
    """Train ``run.net`` with local losses under ``run.cfg.schedule``; returns the heads for evaluation.

    ``make_head(k, feature_shape)`` builds module k's auxiliary head (the last module uses the network's own
    classifier); by default the ``--aux`` head of the run (:func:`configured_heads`). ``local_loss`` defaults to
    cross-entropy of the head's logits.
    """
    cfg = run.cfg
    units = build_units(run, make_head)
    for unit in units:
        run.meter.exclude(unit.parameters())
    run.meter.exclude(run.net.parameters())
    steps_per_epoch = run.data.steps_per_epoch(cfg.batch_size)
    heads = None if cfg.schedule == "end_to_end" else [u.head for u in units]
    monitor = _LossMonitor(run.device)
    epochs_run = 0

    if cfg.schedule in ("end_to_end", "sequential"):
        for k, unit in enumerate(units):
            unit.optimizer = make_optimizer(unit.parameters(), cfg)
            unit.scheduler = make_scheduler(unit.optimizer, cfg, steps_per_epoch, cfg.epochs)
            label = "end to end" if len(units) == 1 else f"module {k + 1}/{len(units)}"
            run.progress.start_phase(label, steps_per_epoch * cfg.epochs)
            phase_steps = 0
            for epoch in range(cfg.epochs):
                if cfg.max_steps is not None and phase_steps >= cfg.max_steps:
                    break
                monitor.reset()
                unit.body.train()
                unit.head.train()
                run.meter.start()
                for i, (x, y) in enumerate(run.data.train_batches(cfg.batch_size, run.generator)):
                    if cfg.max_steps is not None and phase_steps >= cfg.max_steps:
                        break
                    phase_steps += 1
                    with run.meter.count_flops(enabled=epoch == 0 and i == 0) as flops:
                        with torch.no_grad(), _autocast(run):
                            h = x
                            for frozen in units[:k]:
                                h = frozen.body(h)
                        _local_step(run, units, k, x, y, h, local_loss, monitor, f"{label}, epoch {epoch + 1}")
                    if flops is not None:
                        run.meter.train_flops += flops.get_total_flops() / y.numel() * run.data.train_size * cfg.epochs
                        run.meter.record_trainable_state([unit.body, unit.head], [unit.optimizer])
                    run.meter.images_trained += y.numel()
                    run.progress.advance(1)
                run.meter.stop()
                epochs_run = max(epochs_run, epoch + 1)
                run.progress.advance(0, epoch=epoch + 1, **monitor.info())
                run.end_of_epoch(k, epoch, heads)
            run.progress.end_phase()
            if len(units) > 1:  # freeze: eval mode, no grad, no optimizer state kept
                unit.body.eval()
                unit.head.eval()
                unit.body.requires_grad_(False)
                unit.head.requires_grad_(False)
            unit.optimizer = unit.scheduler = None
    elif cfg.schedule == "simultaneous":
        for unit in units:
            unit.optimizer = make_optimizer(unit.parameters(), cfg)
            unit.scheduler = make_scheduler(unit.optimizer, cfg, steps_per_epoch, cfg.epochs)
        run.progress.start_phase(f"{len(units)} modules, simultaneous", steps_per_epoch * cfg.epochs)
        aux_monitor = _LossMonitor(run.device)  # the hidden modules' losses: checked, not displayed
        phase_steps = 0
        for epoch in range(cfg.epochs):
            if cfg.max_steps is not None and phase_steps >= cfg.max_steps:
                break
            monitor.reset()
            aux_monitor.reset()
            for unit in units:
                unit.body.train()
                unit.head.train()
            run.meter.start()
            for i, (x, y) in enumerate(run.data.train_batches(cfg.batch_size, run.generator)):
                if cfg.max_steps is not None and phase_steps >= cfg.max_steps:
                    break
                phase_steps += 1
                with run.meter.count_flops(enabled=epoch == 0 and i == 0) as flops:
                    h = x
                    for k in range(len(units)):
                        mon = monitor if k == len(units) - 1 else aux_monitor
                        h = _local_step(run, units, k, x, y, h, local_loss, mon, f"module {k + 1}, epoch {epoch + 1}")
                if flops is not None:
                    run.meter.train_flops += flops.get_total_flops() / y.numel() * run.data.train_size * cfg.epochs
                    run.meter.record_trainable_state(
                        [m for u in units for m in (u.body, u.head)], [u.optimizer for u in units]
                    )
                run.meter.images_trained += y.numel()
                run.progress.advance(1)
            run.meter.stop()
            epochs_run = epoch + 1
            aux_monitor.check(f"epoch {epoch + 1}")
            run.progress.advance(0, epoch=epoch + 1, **monitor.info())
            run.end_of_epoch(0, epoch, heads)
        run.progress.end_phase()
        for unit in units:
            unit.optimizer = unit.scheduler = None
    else:
        raise ConfigError(f"unknown schedule {cfg.schedule!r}")

    run.net.eval()
    return TrainOutcome(aux_heads=heads, final_train_loss=monitor.last_loss, epochs_completed=epochs_run)
