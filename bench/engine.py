"""The local-learning engine shared by every method (end-to-end SGD is its one-module case).

Module k reads the *detached* output of module k-1, has its own auxiliary head, computes a local loss and steps its
own optimizer and learning-rate schedule; its graph is freed right after its local backward, so the activations of
only one module (and its head) are alive at a time. Methods differ only in the head, the local loss and the schedule:

- ``end_to_end``: the whole network is one module trained with the network's own classifier (plain backprop).
- ``sequential``: train module 1 with its head for ``epochs`` epochs, freeze it (eval mode, no grad, optimizer state
  dropped), then module 2 on top of the frozen prefix, and so on; the last module uses the network's own classifier.
- ``simultaneous`` (decoupled): every batch goes through all modules; each steps on its own local loss.

Task (``--task``, ``bench.boxes``): under ``localize`` every module's head and the network's own classifier are
wrapped in a :class:`~bench.boxes.LocalizeHead`, a box head beside the classifier on the same features; a local loss
still sees the classifier alone as ``step.head`` and returns ``(loss, logits)`` as for classification, and the engine
adds ``lambda_box * box_loss(step.box_head(T_k), step.boxes)`` to it. A method written against :func:`train_local`
thus learns the box with no change; one that wants its own box term passes ``add_box_term=False`` and uses
``step.boxes`` and ``step.box_head`` itself.

Precision (``bench.precision``): under ``amp`` every forward pass and local loss runs in bfloat16 autocast
(parameters and optimizer state stay float32), on CPU as on CUDA; under ``channels_last`` the network, the heads and
the input batches use the channels-last memory format. Evaluations run under the same autocast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench import precision
from bench.boxes import BoxRegressor, LocalizeHead, box_head_of, box_loss, classifier_of, is_localize
from bench.errors import ConfigError, DivergedError
from bench.evaluate import evaluate, evaluate_all
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
    """The module's classifier (its auxiliary head, or the network's own for the last module)."""
    is_last: bool
    run: RunContext
    deferred: list[Callable[[], tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=list)
    boxes: torch.Tensor | None = None
    """``--task localize``: the batch's target boxes, float32 (N, 4), normalised ``(x1, y1, x2, y2)`` in [0, 1]
    and transformed with the images by the augmentation (``bench.boxes``); None for classification."""
    box_head: nn.Module | None = None
    """``--task localize``: the module's box head (``box_head(features)`` -> normalised boxes (N, 4)), trained by
    the engine's box term; None for classification."""

    def defer(self, fn: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Run ``fn() -> (loss, logits)`` after the module's backward, outside the activation meter.

        For work that must not change what is measured, such as a probe classifier trained on the *detached*
        features only to report a module accuracy: its loss is backwarded before the optimizer step (so it
        trains in the same step), and its logits feed the running train accuracy when the local loss returned
        ``None`` as its logits.
        """
        self.deferred.append(fn)


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


def lr_factor(step: int, steps_per_epoch: int, epochs: int, cfg) -> float:
    """Multiplier of the base learning rate at optimisation ``step`` (0-based) of a phase of ``epochs`` epochs.

    - ``cosine``: linear warm-up over ``warmup_epochs`` (per step), then cosine to 0 (per step).
    - ``step``: multiplied by ``step_gamma`` at each of ``step_milestones`` (fractions of training, per step), or,
      when ``step_every_epochs`` > 0, every that many epochs (per epoch: layerCNN's and DGL's
      ``lr_0 * 0.2 ** (epoch // 15)``, restarted for every module of a sequential schedule).
    - ``infopro``: the InfoPro authors' ``adjust_learning_rate`` with ``--cos_lr`` (``train.py``), set once per
      epoch e = 1..E: ``0.5 (1 + cos(pi e / E))``, blended over the first 10 epochs with a warm-up from 0.01
      (absolute: ``0.01 / lr``): ``cos_e * (e - 1) / 10 + (0.01 / lr) * (11 - e) / 10``; exactly 0 at the last
      epoch.
    - ``constant``: 1 (after the optional warm-up).
    """
    total_steps = steps_per_epoch * epochs
    epoch = step // max(1, steps_per_epoch)  # 0-based
    if cfg.lr_schedule == "infopro":
        e = min(epoch + 1, epochs)
        cos = 0.5 * (1.0 + math.cos(math.pi * e / epochs))
        if e <= 10:
            return cos * (e - 1) / 10 + (0.01 / cfg.lr) * (11 - e) / 10
        return cos
    if cfg.lr_schedule == "step" and cfg.step_every_epochs > 0:
        return cfg.step_gamma ** (epoch // cfg.step_every_epochs)
    warmup_steps = steps_per_epoch * cfg.warmup_epochs
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if cfg.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if cfg.lr_schedule == "step":
        return cfg.step_gamma ** sum(progress >= m for m in cfg.step_milestones)
    return 1.0


def make_scheduler(opt: torch.optim.Optimizer, cfg, steps_per_epoch: int, epochs: int):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps_per_epoch, epochs, cfg))


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

    def train(self, mode: bool = True) -> None:
        self.body.train(mode)
        self.head.train(mode)


def configured_heads(run: RunContext, **options) -> HeadFactory:
    """The head factory of ``run.cfg.aux`` (``--aux``, default: the method's), built with ``options``."""

    def make_head(k: int, shape: tuple[int, ...]) -> nn.Module:
        return build_head(run.cfg.aux, shape, run.net.num_classes, image_shape=run.net.input_shape, **options)

    return make_head


def build_units(
    run: RunContext, make_head: HeadFactory | None, make_last_head: HeadFactory | None = None
) -> list[Unit]:
    """One Unit per local module. The last module uses the network's own classifier, unless
    ``cfg.last_head == "aux"``: then ``make_last_head`` (default ``make_head``) builds it and it *replaces*
    ``run.net.head``, so that evaluation and analysis use it (layerCNN and DGL classify with their auxiliary
    network at the top too). Under ``--task localize`` every head, the network's own included (``run.net.head``
    is replaced), is a :class:`~bench.boxes.LocalizeHead` (:func:`add_box_heads`)."""
    units = _build_units(run, make_head, make_last_head)
    if is_localize(run.cfg):
        add_box_heads(run, units)
    return units


def add_box_heads(run: RunContext, units: list[Unit]) -> None:
    """Wrap every unit's head in a :class:`~bench.boxes.LocalizeHead` with a fresh
    :class:`~bench.boxes.BoxRegressor` on the module's output, started at the training set's mean box; the last
    unit's head is the network's own, so ``run.net.head`` becomes the wrapper too (the network's box head beside
    its classifier). Idempotent."""
    net = run.net
    fmt = _memory_format(run)
    if not getattr(run.data, "has_boxes", False):
        raise ConfigError(f"--task localize needs a dataset with boxes; {run.data.dataset.name!r} has none")
    mean_box = run.data.normalize_boxes(run.data.train_boxes).mean(0).cpu()
    for k, unit in enumerate(units):
        if isinstance(unit.head, LocalizeHead):
            continue
        shape = net.feature_shapes[-1] if k == len(units) - 1 else net.feature_shapes[k]
        box_head = BoxRegressor(shape).start_at(mean_box).to(run.device, memory_format=fmt)
        wrapped = LocalizeHead(unit.head, box_head)
        if unit.head is net.head:
            net.head = wrapped
        unit.head = wrapped


def _build_units(
    run: RunContext, make_head: HeadFactory | None, make_last_head: HeadFactory | None = None
) -> list[Unit]:
    net = run.net
    if run.cfg.schedule == "end_to_end":
        return [Unit(nn.Sequential(*net.stages), net.head)]
    if make_head is None:
        make_head = configured_heads(run)
    if run.cfg.last_head == "aux":
        last = (make_last_head or make_head)(net.num_modules - 1, net.feature_shapes[-1]).to(run.device)
        net.head = last.to(memory_format=_memory_format(run))
    units = []
    for k, stage in enumerate(net.stages):
        is_last = k == net.num_modules - 1
        head = net.head if is_last else make_head(k, net.feature_shapes[k]).to(run.device)
        units.append(Unit(stage, head.to(memory_format=_memory_format(run))))
    return units


class _LossMonitor:
    """Running loss/accuracy for the progress bar and a NaN/inf check every few steps."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device)
        self.seen = 0
        self.steps = 0
        self.last_loss = float("nan")

    def update(self, loss: torch.Tensor, logits: torch.Tensor | None, y: torch.Tensor, where: str) -> None:
        self.loss_sum += loss.detach().float()
        if logits is not None:
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


def autocast(run: RunContext):
    """bfloat16 autocast when ``cfg.amp`` is on (see :func:`amp_enabled`), a no-op context otherwise."""
    return precision.autocast(run.device, amp_enabled(run))


def amp_enabled(run: RunContext) -> bool:
    """``cfg.amp`` as it runs on the run's device (``auto``: on where bfloat16 is native, CPU or CUDA)."""
    return precision.resolve_amp(run.cfg.amp, run.device)


def channels_last_enabled(run: RunContext) -> bool:
    """``cfg.channels_last`` as it runs (``auto``: on when :func:`amp_enabled`)."""
    return precision.resolve_channels_last(run.cfg.channels_last, amp_enabled(run))


def _memory_format(run: RunContext) -> torch.memory_format:
    return precision.memory_format(channels_last_enabled(run))


def apply_memory_format(run: RunContext) -> None:
    """Put the network's parameters and the data's batches in the run's memory format (idempotent)."""
    fmt = _memory_format(run)
    run.net.to(memory_format=fmt)
    run.data.memory_format = fmt


def _local_step(run: RunContext, units: list[Unit], k: int, x, y, inputs, loss_fn: LocalLoss, monitor, where,
                *, boxes: torch.Tensor | None = None, add_box_term: bool = True):
    """Forward module k on detached ``inputs``, compute its local loss (plus the box term under ``--task
    localize``), backward, step. Returns its output."""
    unit = units[k]
    inputs = inputs.detach()  # no gradient crosses a module boundary
    with run.meter.activations(), autocast(run):
        features = unit.body(inputs)
        box_head = box_head_of(unit.head)
        step = LocalStep(k, len(units), x, y, inputs, features, classifier_of(unit.head), k == len(units) - 1, run,
                         boxes=boxes if box_head is not None else None, box_head=box_head)
        loss, logits = loss_fn(step)
        if add_box_term and step.box_head is not None and step.boxes is not None:
            loss = loss + box_term(run, step.box_head(features), step.boxes)
    unit.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for fn in step.deferred:  # probes and the like: after the backward, not counted as the module's activations
        with autocast(run):
            extra_loss, extra_logits = fn()
        extra_loss.backward()
        loss = loss.detach() + extra_loss.detach()
        if logits is None:
            logits = extra_logits
    unit.optimizer.step()
    unit.scheduler.step()
    monitor.update(loss, logits, y, where)
    return features.detach()


def box_term(run: RunContext, predicted: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``lambda_box * box_loss(predicted, boxes)`` with the run's ``lambda_box`` and ``box_loss`` settings."""
    cfg = run.cfg
    return float(getattr(cfg, "lambda_box", 1.0)) * box_loss(predicted, boxes, getattr(cfg, "box_loss", "smooth_l1"))


def _train_batches(run: RunContext, batch_size: int):
    """``(x, y, boxes)`` of one epoch: the data's ``train_batches`` with ``boxes`` None for classification, its
    ``train_batches_with_boxes`` under ``--task localize`` (same images, same random numbers)."""
    if is_localize(run.cfg):
        yield from run.data.train_batches_with_boxes(batch_size, run.generator)
    else:
        for x, y in run.data.train_batches(batch_size, run.generator):
            yield x, y, None


class _History:
    """Per-epoch records of a run (the result's ``history``) and what the per-epoch evaluations give:
    ``val_top1_best`` (with its epoch and ``test_top1_at_val_best``, the test top-1 of that epoch: early stopping
    chosen on validation only) and ``test_top1_best`` (best epoch on test, a statistic some papers report)."""

    def __init__(self, run: RunContext, units: list[Unit], heads) -> None:
        self.run = run
        self.units = units
        self.heads = heads
        self.records: list[dict[str, Any]] = []
        self.best: tuple[float, int] | None = None
        """(best test top-1 of the network's own classifier over per-epoch evaluations, its epoch)."""
        self.best_val: tuple[float, int, float | None] | None = None
        """(best validation top-1 of the network's own classifier, its epoch, the test top-1 at that epoch; None
        under ``eval_test=end`` until :meth:`finish` scores the kept weights)."""
        self.best_state: dict[str, torch.Tensor] | None = None
        """``eval_test=end``: the network's weights at the best validation epoch (a copy), scored on test at the end."""
        self.last: tuple[int, int] | None = None
        """(phase, epoch) of the latest per-epoch evaluation of the whole network."""

    def _should_evaluate(self, epoch: int) -> bool:
        every = self.run.cfg.eval_every
        return bool(every) and ((epoch + 1) % every == 0 or epoch + 1 == self.run.cfg.epochs)

    def end_epoch(self, phase: int, epoch: int, monitors: dict[int | None, _LossMonitor], trained: list[int],
                  network_trained: bool) -> None:
        """Record one epoch. ``monitors`` maps module index (None for end to end) to its monitor; ``trained`` are
        the units that trained this epoch (their train mode is restored after an evaluation)."""
        evaluation = None
        with_test = self.run.cfg.eval_test == "every"
        if self._should_evaluate(epoch) and (with_test or self.run.data.val_size > 0):
            # a sequential phase training module k scores modules 0..k only: the later ones are untrained
            upto = None if network_trained or self.heads is None else max(trained)
            evaluation = evaluate_all(self.run.net, self.run.data, batch_size=self.run.cfg.eval_batch_size,
                                      aux_heads=self.heads, amp=amp_enabled(self.run), upto=upto, test=with_test)
            for i in trained:
                self.units[i].train()
            if network_trained:
                self.last = (phase, epoch)
                test, val = evaluation.get("test_top1"), evaluation.get("val_top1")
                if test is not None and (self.best is None or test > self.best[0]):
                    self.best = (test, epoch + 1)
                if val is not None and (self.best_val is None or val > self.best_val[0]):
                    self.best_val = (val, epoch + 1, test)
                    if not with_test:
                        self.best_state = {k: v.detach().clone() for k, v in self.run.net.state_dict().items()}
        for module, mon in monitors.items():
            info = mon.info()
            test_top1 = val_top1 = None
            if evaluation is not None:
                test_top1 = self._module_value(evaluation, "test_top1", "module_top1", module)
                val_top1 = self._module_value(evaluation, "val_top1", "module_val_top1", module)
            record = {
                "phase": phase, "module": module, "epoch": epoch + 1,
                "train_loss": round(info["loss"], 6), "train_acc": round(info["acc"], 3),
                "val_top1": val_top1, "test_top1": test_top1,
            }
            if is_localize(self.run.cfg):  # each module's box head: mean IoU per evaluation
                record["val_miou"] = record["test_miou"] = None
                if evaluation is not None:
                    record["val_miou"] = self._module_value(evaluation, "val_miou", "module_val_miou", module)
                    record["test_miou"] = self._module_value(evaluation, "test_miou", "module_miou", module)
            self.records.append(record)

    def finish(self) -> None:
        """``eval_test=end``: score the weights of the best validation epoch on test (the test top-1 at that epoch),
        unless they are the final weights, which the runner scores anyway."""
        if self.best_state is None or self.best_val is None or self.best_val[1] == self.last[1] + 1:
            return
        net = self.run.net
        final = {k: v.detach().clone() for k, v in net.state_dict().items()}
        net.load_state_dict(self.best_state)
        test = evaluate(net, self.run.data, batch_size=self.run.cfg.eval_batch_size, amp=amp_enabled(self.run))
        net.load_state_dict(final)
        self.best_val = (self.best_val[0], self.best_val[1], test["test_top1"])

    def _module_value(self, evaluation: dict, network_key: str, module_key: str, module: int | None):
        if module is None or module == len(self.units) - 1:
            return evaluation.get(network_key)
        per_module = evaluation.get(module_key)
        return None if per_module is None else per_module[module]

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.best is not None:
            out.update(test_top1_best=self.best[0], test_top1_best_epoch=self.best[1])
        if self.best_val is not None:
            out.update(val_top1_best=self.best_val[0], val_top1_best_epoch=self.best_val[1],
                       test_top1_at_val_best=self.best_val[2])
        return out


def _save_checkpoint(run: RunContext, units: list[Unit], history: _History, phase: int, epoch: int,
                     active: list[int], last_loss: float, epochs_run: int) -> None:
    """Checkpoint at the end of an epoch (``bench.checkpoint``); a no-op unless the run checkpoints."""
    if run.checkpointer is None:
        return
    from bench.checkpoint import meter_state, rng_state

    run.checkpointer.save({
        "phase": phase, "epoch": epoch,
        "net": run.net.state_dict(),
        "heads": [u.head.state_dict() for u in units],
        "optimizers": {str(i): units[i].optimizer.state_dict() for i in active},
        "schedulers": {str(i): units[i].scheduler.state_dict() for i in active},
        "rng": rng_state(run.generator),
        "history": {"records": history.records, "best": history.best, "best_val": history.best_val,
                    "best_state": history.best_state, "last": history.last},
        "meter": meter_state(run.meter),
        "last_loss": last_loss, "epochs_run": epochs_run,
    })


def _restore_checkpoint(run: RunContext, units: list[Unit], history: _History) -> dict[str, Any] | None:
    """Load a checkpoint's weights, history and counters; the caller resumes the schedule after its epoch."""
    state = run.checkpointer.resume_state if run.checkpointer is not None else None
    if state is None:
        return None
    from bench.checkpoint import set_meter_state

    run.net.load_state_dict(state["net"])
    for unit, head_state in zip(units, state["heads"], strict=True):
        unit.head.load_state_dict(head_state)
    history.records = list(state["history"]["records"])
    history.best = state["history"]["best"]
    history.best_val = state["history"]["best_val"]
    history.best_state = state["history"].get("best_state")
    history.last = state["history"].get("last")
    set_meter_state(run.meter, state["meter"])
    return state


def _resume_optimizers(units: list[Unit], state: dict[str, Any] | None, active: list[int], run: RunContext) -> int:
    """Load the saved optimizer/schedule of the modules in training and the RNG state; returns the first epoch to
    run (0 without a checkpoint of this phase)."""
    if state is None:
        return 0
    from bench.checkpoint import set_rng_state

    for i in active:
        units[i].optimizer.load_state_dict(state["optimizers"][str(i)])
        units[i].scheduler.load_state_dict(state["schedulers"][str(i)])
    set_rng_state(run.generator, state["rng"])
    return int(state["epoch"]) + 1


def train_local(
    run: RunContext,
    *,
    make_head: HeadFactory | None = None,
    local_loss: LocalLoss = cross_entropy_loss,
    make_last_head: HeadFactory | None = None,
    add_box_term: bool = True,
) -> TrainOutcome:
    """Train ``run.net`` with local losses under ``run.cfg.schedule``; returns the heads for evaluation.

    ``make_head(k, feature_shape)`` builds module k's auxiliary head (the last module uses the network's own
    classifier, or ``make_last_head`` under ``--set last_head=aux``); by default the ``--aux`` head of the run
    (:func:`configured_heads`). ``local_loss`` defaults to cross-entropy of the head's logits.

    Under ``--task localize`` each head gets a box head beside it and the engine adds ``lambda_box * box_loss``
    of the box head's prediction to every local loss (:func:`box_term`), unless ``add_box_term`` is False: then the
    local loss is responsible for the box (``step.boxes``, ``step.box_head``). The returned heads (and
    ``run.net.head``) are then :class:`~bench.boxes.LocalizeHead` s, which evaluation scores on the boxes too.
    """
    cfg = run.cfg
    apply_memory_format(run)
    units = build_units(run, make_head, make_last_head)
    for unit in units:
        run.meter.exclude(unit.parameters())
    run.meter.exclude(run.net.parameters())
    steps_per_epoch = run.data.steps_per_epoch(cfg.batch_size)
    heads = None if cfg.schedule == "end_to_end" else [u.head for u in units]
    history = _History(run, units, heads)
    last_loss = float("nan")
    epochs_run = 0
    resumed = _restore_checkpoint(run, units, history)
    if resumed is not None:
        last_loss, epochs_run = float(resumed["last_loss"]), int(resumed["epochs_run"])

    if cfg.schedule in ("end_to_end", "sequential"):
        for k, unit in enumerate(units):
            if resumed is not None and k < resumed["phase"]:  # trained before the interruption: frozen
                unit.train(False)
                unit.body.requires_grad_(False)
                unit.head.requires_grad_(False)
                continue
            monitor = _LossMonitor(run.device)
            monitor.last_loss = last_loss
            unit.optimizer = make_optimizer(unit.parameters(), cfg)
            unit.scheduler = make_scheduler(unit.optimizer, cfg, steps_per_epoch, cfg.epochs)
            start_epoch = _resume_optimizers(units, resumed if resumed and k == resumed["phase"] else None, [k], run)
            label = "end to end" if len(units) == 1 else f"module {k + 1}/{len(units)}"
            run.progress.start_phase(label, steps_per_epoch * cfg.epochs)
            run.progress.advance(steps_per_epoch * start_epoch)
            phase_steps = 0
            for epoch in range(start_epoch, cfg.epochs):
                if cfg.max_steps is not None and phase_steps >= cfg.max_steps:
                    break
                monitor.reset()
                unit.train()
                run.meter.start()
                for i, (x, y, boxes) in enumerate(_train_batches(run, cfg.batch_size)):
                    if cfg.max_steps is not None and phase_steps >= cfg.max_steps:
                        break
                    phase_steps += 1
                    with run.meter.count_flops(enabled=epoch == 0 and i == 0) as flops:
                        with torch.no_grad(), autocast(run):
                            h = x
                            for frozen in units[:k]:
                                h = frozen.body(h)
                        _local_step(run, units, k, x, y, h, local_loss, monitor, f"{label}, epoch {epoch + 1}",
                                    boxes=boxes, add_box_term=add_box_term)
                    if flops is not None:
                        run.meter.train_flops += flops.get_total_flops() / y.numel() * run.data.train_size * cfg.epochs
                        run.meter.record_trainable_state([unit.body, unit.head], [unit.optimizer])
                    run.meter.images_trained += y.numel()
                    run.progress.advance(1)
                run.meter.stop()
                epochs_run = max(epochs_run, epoch + 1)
                run.progress.advance(0, epoch=epoch + 1, **monitor.info())
                is_network = k == len(units) - 1
                history.end_epoch(k, epoch, {None if len(units) == 1 else k: monitor}, [k], is_network)
                run.end_of_epoch(k, epoch, heads)
                _save_checkpoint(run, units, history, k, epoch, [k], monitor.last_loss, epochs_run)
            run.progress.end_phase()
            last_loss = monitor.last_loss
            if len(units) > 1:  # freeze: eval mode, no grad, no optimizer state kept
                unit.train(False)
                unit.body.requires_grad_(False)
                unit.head.requires_grad_(False)
            unit.optimizer = unit.scheduler = None
    elif cfg.schedule == "simultaneous":
        for unit in units:
            unit.optimizer = make_optimizer(unit.parameters(), cfg)
            unit.scheduler = make_scheduler(unit.optimizer, cfg, steps_per_epoch, cfg.epochs)
        start_epoch = _resume_optimizers(units, resumed, list(range(len(units))), run)
        run.progress.start_phase(f"{len(units)} modules, simultaneous", steps_per_epoch * cfg.epochs)
        run.progress.advance(steps_per_epoch * start_epoch)
        monitors = {k: _LossMonitor(run.device) for k in range(len(units))}  # the last one is displayed
        monitors[len(units) - 1].last_loss = last_loss
        phase_steps = 0
        for epoch in range(start_epoch, cfg.epochs):
            if cfg.max_steps is not None and phase_steps >= cfg.max_steps:
                break
            for mon in monitors.values():
                mon.reset()
            for unit in units:
                unit.train()
            run.meter.start()
            for i, (x, y, boxes) in enumerate(_train_batches(run, cfg.batch_size)):
                if cfg.max_steps is not None and phase_steps >= cfg.max_steps:
                    break
                phase_steps += 1
                with run.meter.count_flops(enabled=epoch == 0 and i == 0) as flops:
                    h = x
                    for k in range(len(units)):
                        h = _local_step(run, units, k, x, y, h, local_loss, monitors[k],
                                        f"module {k + 1}, epoch {epoch + 1}", boxes=boxes, add_box_term=add_box_term)
                if flops is not None:
                    run.meter.train_flops += flops.get_total_flops() / y.numel() * run.data.train_size * cfg.epochs
                    run.meter.record_trainable_state(
                        [m for u in units for m in (u.body, u.head)], [u.optimizer for u in units]
                    )
                run.meter.images_trained += y.numel()
                run.progress.advance(1)
            run.meter.stop()
            epochs_run = epoch + 1
            run.progress.advance(0, epoch=epoch + 1, **monitors[len(units) - 1].info())
            history.end_epoch(0, epoch, monitors, list(range(len(units))), True)
            run.end_of_epoch(0, epoch, heads)
            _save_checkpoint(run, units, history, 0, epoch, list(range(len(units))),
                             monitors[len(units) - 1].last_loss, epochs_run)
        run.progress.end_phase()
        last_loss = monitors[len(units) - 1].last_loss
        for unit in units:
            unit.optimizer = unit.scheduler = None
    else:
        raise ConfigError(f"unknown schedule {cfg.schedule!r}")

    run.net.eval()
    history.finish()
    outcome = TrainOutcome(aux_heads=heads, final_train_loss=last_loss, epochs_completed=epochs_run)
    outcome.history = history.records
    outcome.extra_metrics.update(history.metrics())
    return outcome
