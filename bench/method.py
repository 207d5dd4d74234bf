"""What a training method is, and what it is given.

A method is any object with these attributes and a ``train(run)`` function (a ``typing.Protocol``: no base class to
inherit). Built-ins live one per file in ``methods/``; third-party methods arrive through the ``bench.methods``
entry-point group and run exactly like built-ins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from bench.config import RunConfig
from bench.data.loader import DeviceData
from bench.measure import Meter
from bench.staged import StagedNet


@runtime_checkable
class Method(Protocol):
    name: str
    version: str
    description: str
    default_schedule: str
    """"end_to_end", "sequential" or "simultaneous"."""
    default_aux: str | None
    """The auxiliary head used when ``--aux`` is not given (None for end-to-end methods)."""
    hparams: dict[str, Any]
    """Hyperparameters with their defaults; ``--set key=value`` is validated against these."""

    def train(self, run: RunContext) -> TrainOutcome: ...


class Progress(Protocol):
    """Where the engine reports progress (the CLI shows a rich progress bar; tests use the silent default)."""

    def start_phase(self, description: str, total_steps: int) -> None: ...

    def advance(self, steps: int = 1, **info: Any) -> None: ...

    def end_phase(self) -> None: ...


class SilentProgress:
    def start_phase(self, description: str, total_steps: int) -> None:
        pass

    def advance(self, steps: int = 1, **info: Any) -> None:
        pass

    def end_phase(self) -> None:
        pass


@dataclass
class RunContext:
    """Everything a method needs to train. ``cfg`` is fully resolved (schedule, aux head and hparams filled in)."""

    cfg: RunConfig
    net: StagedNet
    data: DeviceData
    device: torch.device
    meter: Meter
    generator: torch.Generator
    progress: Progress = field(default_factory=SilentProgress)
    epoch_hooks: list[Any] = field(default_factory=list)
    """Callables ``hook(run, phase: int, epoch: int, heads)`` run at each epoch end (analysis, logging)."""

    @property
    def hp(self) -> dict[str, Any]:
        return self.cfg.hparams

    def end_of_epoch(self, phase: int, epoch: int, heads: list[nn.Module | None] | None) -> None:
        for hook in self.epoch_hooks:
            hook(self, phase, epoch, heads)


@dataclass
class TrainOutcome:
    """What a method hands back to the runner for evaluation and the result file."""

    aux_heads: list[nn.Module | None] | None = None
    """One classifier per local module (the last is the network's own head); None for end-to-end training."""
    final_train_loss: float | None = None
    epochs_completed: int = 0
    extra_metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    """Per-epoch records (phase, module, epoch, train_loss, train_acc, val_top1, test_top1): the result's
    ``history``, from which learning curves are drawn."""
