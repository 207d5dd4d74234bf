"""What a training method is, and what it is given.

A method is any object with these attributes and a ``train(run)`` function (a ``typing.Protocol``: no base class to
inherit). Built-ins live one per file in ``methods/``; third-party methods arrive through the ``bench.methods``
entry-point group or ``--include PATH`` and run exactly like built-ins.

Required (:data:`REQUIRED_ATTRIBUTES`, what :func:`check_method` checks): ``name``, ``version``, ``description``,
``default_schedule`` and ``train(run)``. Optional (:data:`OPTIONAL_ATTRIBUTES`, with their defaults):
``default_aux`` (None), ``hparams`` ({}), ``schedules`` ((default_schedule,)), ``per_module`` (()) and
``validate(cfg)`` (none).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from bench.config import FIELD_NAMES, SCHEDULES, RunConfig
from bench.data.loader import DeviceData
from bench.errors import BenchError, ConfigError
from bench.measure import Meter
from bench.params import Param, check_declarations, coerce_value
from bench.staged import StagedNet

REQUIRED_ATTRIBUTES = ("name", "version", "description", "default_schedule", "train")
"""What every method has; a plugin without one of them is refused with a message naming what is missing."""
OPTIONAL_ATTRIBUTES: dict[str, str] = {
    "default_aux": "None: the auxiliary head used when --aux is not given (None for end-to-end methods)",
    "hparams": "{}: hyperparameters, name -> default or Param; --set key=value is validated against them",
    "schedules": "(default_schedule,): the schedules the method runs with",
    "per_module": "(): names of plain numeric hyperparameters that also take one value per module",
    "validate": "none: validate(cfg) raises ConfigError to refuse a combination of settings, before any data "
                "is loaded",
}


@runtime_checkable
class Method(Protocol):
    """The required attributes (:data:`REQUIRED_ATTRIBUTES`). The optional ones, read with their defaults when
    absent: ``default_aux: str | None`` (the auxiliary head used when ``--aux`` is not given; None for end-to-end
    methods), ``hparams: dict[str, Any | Param]`` (name -> plain default or :class:`~bench.params.Param`;
    ``--set key=value`` is validated against them and ``run.hp`` holds the validated values), ``schedules``
    (the schedules it accepts), ``per_module`` (plain numeric hyperparameters that also take a list, one value per
    module) and ``validate(cfg) -> None`` (raise ConfigError to refuse a combination of settings)."""

    name: str
    version: str
    description: str
    default_schedule: str
    """"end_to_end", "sequential" or "simultaneous"."""

    def train(self, run: RunContext) -> TrainOutcome: ...


class Progress(Protocol):
    """Where the engine reports progress (the CLI shows a rich progress bar; tests use the silent default)."""

    def start_phase(self, description: str, total_steps: int) -> None: ...

    def advance(self, steps: int = 1, **info: Any) -> None: ...

    def end_phase(self) -> None: ...


def format_info(info: dict[str, Any]) -> str:
    """``epoch 3 loss 0.412 acc 87.5%``: what the engine passes to ``Progress.advance``, as text."""
    return " ".join(f"{k} {v:.3f}" if k == "loss" else f"{k} {v:.1f}%" if k == "acc" else f"{k} {v}"
                    for k, v in info.items())


class SilentProgress:
    def start_phase(self, description: str, total_steps: int) -> None:
        pass

    def advance(self, steps: int = 1, **info: Any) -> None:
        pass

    def end_phase(self) -> None:
        pass


class LogProgress:
    """Progress as plain lines for a log file (sweep workers, cluster jobs): one line when a phase starts and one at
    each epoch end (the engine's ``advance(0, epoch=..., loss=..., acc=...)``), with the elapsed time."""

    def __init__(self, stream: Any = None, prefix: str = "") -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.prefix = prefix
        self.phase = ""
        self.total = 0
        self.done = 0
        self.started = 0.0

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"{self.prefix}{text} [{int(elapsed) // 60}m {int(elapsed) % 60:02d}s]", file=self.stream, flush=True)

    def start_phase(self, description: str, total_steps: int) -> None:
        self.phase, self.total, self.done, self.started = description, total_steps, 0, time.monotonic()
        self._line(f"{description}: {total_steps} steps")

    def advance(self, steps: int = 1, **info: Any) -> None:
        self.done += steps
        if "epoch" in info:
            self._line(f"{self.phase}: step {self.done}/{self.total} {format_info(info)}")

    def end_phase(self) -> None:
        if self.phase:
            self._line(f"{self.phase}: done")
        self.phase = ""


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
    checkpointer: Any = None
    """A ``bench.checkpoint.Checkpointer`` when the run saves checkpoints (``bench run --checkpoint/--resume``)."""

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


# --------------------------------------------------------------------------------------------------- checking


def _label(name: str, origin: str) -> str:
    return f"method {name!r}" if origin == "built-in" else f"method {name!r} (from {origin})"


def check_method(method: Any, name: str, origin: str = "built-in") -> dict[str, Param]:
    """Check that ``method`` implements the protocol; returns its hyperparameter declarations.

    Raises:
        ConfigError: naming the method and its origin, and what is missing or malformed.
    """
    who = _label(name, origin)
    missing = [a for a in REQUIRED_ATTRIBUTES if not hasattr(method, a)]
    if missing:
        raise ConfigError(
            f"{who} does not implement the Method protocol: missing {', '.join(missing)}. A method needs "
            f"{', '.join(REQUIRED_ATTRIBUTES[:-1])} and train(run) (see docs/plugins.md); fix the plugin or "
            "uninstall it."
        )
    if not callable(method.train):
        raise ConfigError(f"{who}: `train` must be a function train(run) -> TrainOutcome")
    for attr in ("version", "description"):
        if not isinstance(getattr(method, attr), (str, int, float)):
            raise ConfigError(f"{who}: `{attr}` must be a string, got {type(getattr(method, attr)).__name__}")
    schedule = method.default_schedule
    if schedule not in SCHEDULES:
        raise ConfigError(f"{who}: default_schedule {schedule!r} is not one of {', '.join(SCHEDULES)}")
    schedules = getattr(method, "schedules", (schedule,))
    if isinstance(schedules, str) or not all(s in SCHEDULES for s in schedules) or schedule not in schedules:
        raise ConfigError(
            f"{who}: schedules {schedules!r} must be a tuple of {', '.join(SCHEDULES)} holding default_schedule"
        )
    aux = getattr(method, "default_aux", None)
    if aux is not None and not isinstance(aux, str):
        raise ConfigError(f"{who}: default_aux must be a head name (str) or None, got {aux!r}")
    declared = check_declarations(getattr(method, "hparams", None) or {}, where=who)
    per_module = getattr(method, "per_module", ()) or ()
    for key in per_module:
        if key not in declared:
            raise ConfigError(f"{who}: per_module names {key!r}, which is not one of its hparams")
        p = declared[key]
        if not p.per_module:
            declared[key] = dataclasses.replace(p, per_module=True, type=p.kind)
    return declared


def resolve_hparams(method: Any, name: str, given: dict[str, Any], origin: str = "built-in") -> dict[str, Any]:
    """Every hyperparameter of ``method``: its default, or the given value validated against its declaration.

    Raises:
        ConfigError: an unknown name (the message lists the method's hyperparameters and the config keys), or a
            value of the wrong type, out of range or not among the choices.
    """
    declared = check_method(method, name, origin)
    unknown = sorted(set(given) - set(declared))
    if unknown:
        accepted = ", ".join(sorted(declared)) or "none"
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)} for method {name!r}. "
            f"Method hyperparameters: {accepted}. Config keys: {', '.join(FIELD_NAMES)}. "
            f"`bench list method {name}` shows what each accepts."
        )
    who = _label(name, origin)
    return {
        key: coerce_value(key, given[key], p, where=who) if key in given else p.default
        for key, p in declared.items()
    }


def run_validate(method: Any, cfg: RunConfig, origin: str = "built-in") -> None:
    """Call the method's optional ``validate(cfg)``: a ConfigError it raises is the user's mistake (exit 2); any
    other exception becomes a ConfigError naming the method and its origin (the original is chained)."""
    hook = getattr(method, "validate", None)
    if hook is None:
        return
    who = _label(cfg.method, origin)
    try:
        hook(cfg)
    except BenchError as e:
        raise ConfigError(f"{who}: {e}") from e
    except Exception as e:
        raise ConfigError(
            f"{who} raised {type(e).__name__} while checking its settings: {e}. Check the values given with "
            f"--set (`bench list method {cfg.method}` shows what it accepts); a method refuses a value with "
            "bench.ConfigError. --debug shows the traceback."
        ) from e
