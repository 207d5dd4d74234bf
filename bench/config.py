"""The resolved configuration of one run: defaults < protocol < config file < CLI flags (and ``--set``).

Every field is recorded in the result file. Method hyperparameters live under ``hparams`` and are validated against
the method's declarations (``bench.method.resolve_hparams``: unknown key, wrong type, range or choice ->
ConfigError).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import tomllib

from bench.errors import ConfigError

SCHEDULES = ("end_to_end", "sequential", "simultaneous")
LR_SCHEDULES = ("cosine", "step", "constant", "infopro")
PADDING_MODES = ("zeros", "reflect")
LAST_HEADS = ("backbone", "aux")
DEVICES = ("auto", "cpu", "cuda")
AUTO = "auto"
"""The value of a tri-state setting (``amp``, ``channels_last``) that the run resolves from the hardware."""


EVAL_TEST = ("every", "end")
"""``eval_test`` values: the test set at every per-epoch evaluation, or only at the end."""

@dataclass
class RunConfig:
    """Everything that defines a run. Defaults make ``bench run`` finish in about a minute on a 2-core CPU."""

    method: str = "greedydib"
    arch: str = "cifar_resnet20"
    data: str = "signs"
    data_root: str = "./data"
    data_options: dict[str, Any] = field(default_factory=dict)
    """Dataset-specific options (``--set data.num_classes=4`` for signs, ``data.labels=coarse`` for cifar100)."""
    task: str = "classify"
    """classify (class labels) | localize (class label and box, for a dataset with boxes: gtsrb, signs); see
    ``bench.boxes``."""
    lambda_box: float = 1.0
    """Weight of the box loss added to every local objective under ``task=localize``."""
    box_loss: str = "smooth_l1+giou"
    """Box loss under ``task=localize``: smooth_l1 | giou | smooth_l1+giou (``bench.boxes.box_loss``)."""
    split: str = "stages"
    schedule: str | None = None
    """sequential | simultaneous | end_to_end; None = the method's default."""
    aux: str | None = None
    """Auxiliary head of the layer-wise methods; None = the method's default."""
    epochs: int = 3
    """Epochs of training; with the sequential schedule, epochs per module."""
    batch_size: int = 128
    eval_batch_size: int = 500
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"
    """cosine (per step, after an optional linear warm-up) | step | constant | infopro (the InfoPro authors'
    per-epoch warm-up + cosine of ``train.py --cos_lr``); see ``bench.engine.lr_factor``."""
    warmup_epochs: int = 0
    step_milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    """For lr_schedule=step: fractions of training where the learning rate is multiplied by step_gamma."""
    step_gamma: float = 0.1
    step_every_epochs: int = 0
    """For lr_schedule=step: when > 0, multiply by step_gamma every that many epochs instead of at the milestones
    (layerCNN and DGL: 0.2 every 15 epochs, restarted for each module of a sequential schedule)."""
    crop_padding: int = 4
    """Pixels of padding for the random-crop augmentation (0: no crop)."""
    crop_padding_mode: str = "zeros"
    """zeros (torchvision's RandomCrop(32, padding=4), as layerCNN and DGL) | reflect (InfoPro's train.py)."""
    last_head: str = "backbone"
    """Classifier of the last local module: the backbone's own (GAP + linear) or ``aux``, a head of the method's
    auxiliary type (layerCNN and DGL classify with their auxiliary network at the top too)."""
    eval_every: int = 0
    """Evaluate on the validation and test sets every N epochs (0: only at the end). Gives the per-epoch curves in
    ``history``, ``metrics.val_top1_best`` (with its epoch and the test top-1 at that epoch: early stopping chosen
    on validation) and ``metrics.test_top1_best``, the statistic some papers report (best epoch on test, not a
    selection); the headline stays the last epoch."""
    eval_test: str = "every"
    """When the test set is evaluated: ``every`` (with the validation split at every per-epoch evaluation: test
    curves and ``test_top1_best``) or ``end`` (the per-epoch evaluations score the validation split only; the
    test set is scored once, at the end, on the final weights and on the weights of the best validation epoch,
    kept in memory: the same ``test_top1`` and ``test_top1_at_val_best``, without ``test_top1_best``, at about a
    quarter of the evaluation cost on GTSRB)."""
    val_split: float = 0.1
    """Fraction of the training set held out for validation (0: none): whole tracks on GTSRB, the last images of
    the training files elsewhere (``bench.data.base.validation_split``). Training uses only the rest;
    ``max_train_samples`` applies to the rest."""
    seed: int = 0
    device: str = "auto"
    amp: bool | str = AUTO
    """Mixed precision: bfloat16 autocast of training and evaluation, on CPU and CUDA (true | false | auto).
    ``auto`` = on where the hardware has native bfloat16 (CUDA GPUs with bf16; CPUs with AMX or AVX512-BF16);
    the run records the resolved value. The information estimators stay in float32/64 (``bench.precision``)."""
    channels_last: bool | str = AUTO
    """Channels-last memory format for the network and its input batches (true | false | auto). ``auto`` = on
    when ``amp`` is on (the layout the bfloat16 convolution kernels prefer); the run records the resolved value."""
    max_train_samples: int | None = None
    """Train on the first N training images only (of those left after the validation split)."""
    max_test_samples: int | None = None
    """Evaluate on the first N test images only (quick checks; leaderboard protocols leave it unset)."""
    max_steps: int | None = None
    """Stop each training phase after N optimisation steps (smoke tests of long recipes)."""
    allow_subset: bool = True
    """Accept dataset files that are a valid subset of the official release (MD5 differs)."""
    download: bool = False
    cifar_stem: bool | None = None
    """3x3 stride-1 stem without max-pool; None = automatic for inputs of at most 64 pixels."""
    protocol: str | None = None
    out: str = "runs"
    hparams: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELD_TYPES: dict[str, Any] = get_type_hints(RunConfig)
FIELD_NAMES = tuple(f.name for f in dataclasses.fields(RunConfig))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (often a string from the command line) to type ``tp``, or raise ConfigError."""
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is not None and type(None) in args:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], key)
    if tp is Any:
        return parse_literal(value) if isinstance(value, str) else value
    if set(args) == {bool, str}:  # tri-state: true | false | auto
        if isinstance(value, str) and value.strip().lower() == AUTO:
            return AUTO
        try:
            return coerce(value, bool, key)
        except ConfigError:
            raise ConfigError(f"{key}: expected true, false or auto, got {value!r}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if origin is list or tp is list:
        items = value
        if isinstance(value, str):
            items = parse_literal(value) if value.strip().startswith("[") else value.split(",")
            if not isinstance(items, list):
                items = [items]
        if not isinstance(items, (list, tuple)):
            items = [items]
        inner = args[0] if args else Any
        return [coerce(v, inner, key) for v in items]
    if origin is dict or tp is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigError(f"{key}: expected a mapping")
    return value


def parse_literal(text: str) -> Any:
    """Parse a command-line value: JSON when it parses (numbers, lists, true/false/null), else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        if low in ("none", "null"):
            return None
        return text


def apply_overrides(cfg: RunConfig, overrides: dict[str, Any], *, source: str) -> RunConfig:
    """Set fields of ``cfg`` from a mapping; method hyperparameters go to ``cfg.hparams`` unvalidated here
    (they are checked against the method's declared defaults once the method is known)."""
    for key, value in overrides.items():
        if key == "hparams":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: 'hparams' must be a mapping")
            cfg.hparams.update(value)
        elif key == "data_options":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: 'data_options' must be a mapping")
            cfg.data_options.update({k: parse_literal(v) if isinstance(v, str) else v for k, v in value.items()})
        elif key.startswith("data."):
            option = key[len("data."):]
            cfg.data_options[option] = parse_literal(value) if isinstance(value, str) else value
        elif key in FIELD_TYPES:
            setattr(cfg, key, coerce(value, FIELD_TYPES[key], key))
        else:
            cfg.hparams[key] = value
    return cfg


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """``["lr=0.1", "gamma=[0.1,0.2]"]`` -> ``{"lr": "0.1", "gamma": "[0.1,0.2]"}`` (coerced later)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        if key.startswith("hparams."):
            key = key[len("hparams.") :]
        out[key] = value.strip()
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML or JSON file of config values (same keys as the flags; method hyperparameters under [hparams])."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} cannot be read: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of key = value settings (a JSON object), not a "
                          f"{type(data).__name__}; see `bench run --help` for the keys")
    return data


def validate(cfg: RunConfig) -> None:
    """Range and choice checks that do not need the registries."""
    if cfg.epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {cfg.epochs}")
    if cfg.batch_size < 2:
        raise ConfigError(f"batch_size must be at least 2, got {cfg.batch_size}")
    if cfg.eval_batch_size < 1:
        raise ConfigError(f"eval_batch_size must be at least 1, got {cfg.eval_batch_size}")
    if not cfg.lr > 0:
        raise ConfigError(f"lr must be positive, got {cfg.lr}")
    if cfg.weight_decay < 0 or cfg.momentum < 0:
        raise ConfigError("weight_decay and momentum must be non-negative")
    if cfg.schedule is not None and cfg.schedule not in SCHEDULES:
        raise ConfigError(f"schedule {cfg.schedule!r} is not one of {', '.join(SCHEDULES)}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule {cfg.lr_schedule!r} is not one of {', '.join(LR_SCHEDULES)}")
    if cfg.optimizer not in ("sgd", "adam", "adamw"):
        raise ConfigError(f"optimizer {cfg.optimizer!r} is not one of sgd, adam, adamw")
    if cfg.crop_padding_mode not in PADDING_MODES:
        raise ConfigError(f"crop_padding_mode {cfg.crop_padding_mode!r} is not one of {', '.join(PADDING_MODES)}")
    if cfg.crop_padding < 0:
        raise ConfigError(f"crop_padding must be >= 0, got {cfg.crop_padding}")
    if cfg.last_head not in LAST_HEADS:
        raise ConfigError(f"last_head {cfg.last_head!r} is not one of {', '.join(LAST_HEADS)}")
    for key in ("amp", "channels_last"):
        value = getattr(cfg, key)
        if not (isinstance(value, bool) or value == AUTO):
            raise ConfigError(f"{key}: expected true, false or auto, got {value!r}")
    if isinstance(cfg.val_split, bool) or not 0.0 <= cfg.val_split < 1.0:
        raise ConfigError(f"val_split must be a fraction in [0, 1) (0: no validation split), got {cfg.val_split}")
    if cfg.eval_every < 0:
        raise ConfigError(f"eval_every must be >= 0, got {cfg.eval_every}")
    if cfg.eval_test not in EVAL_TEST:
        raise ConfigError(f"eval_test must be one of {', '.join(EVAL_TEST)}, got {cfg.eval_test!r}")
    if cfg.step_every_epochs < 0:
        raise ConfigError(f"step_every_epochs must be >= 0, got {cfg.step_every_epochs}")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device {cfg.device!r} is not one of {', '.join(DEVICES)}")
    if cfg.warmup_epochs < 0 or cfg.warmup_epochs >= cfg.epochs and cfg.warmup_epochs > 0:
        raise ConfigError(
            f"warmup_epochs must be in [0, epochs), got {cfg.warmup_epochs} with epochs {cfg.epochs}"
            + (f" (the warm-up comes from protocol {cfg.protocol})" if cfg.protocol else "")
            + f": shorten it (--set warmup_epochs={max(0, cfg.epochs - 1)}) or train longer"
        )
    if cfg.max_train_samples is not None and cfg.max_train_samples < cfg.batch_size:
        raise ConfigError("max_train_samples must be at least one batch")
    if cfg.max_test_samples is not None and cfg.max_test_samples < 1:
        raise ConfigError(f"max_test_samples must be at least 1, got {cfg.max_test_samples}")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {cfg.max_steps}")
    _validate_task(cfg)


def _validate_task(cfg: RunConfig) -> None:
    from bench.boxes import validate_box_settings

    validate_box_settings(cfg)
