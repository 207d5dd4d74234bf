"""One run, end to end: resolved config -> data -> staged backbone -> method -> evaluation -> result file."""

from __future__ import annotations

import dataclasses
import platform
import random
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import bench
from bench import config as config_mod
from bench import precision
from bench.boxes import check_task
from bench.config import RunConfig
from bench.data.loader import DeviceData
from bench.errors import BenchError, ConfigError, DatasetError, DivergedError
from bench.evaluate import evaluate_all
from bench.measure import Meter
from bench.method import Method, Progress, RunContext, SilentProgress, resolve_hparams, run_validate
from bench.plugins import build_dataset, resolve_dataset_options
from bench.plugins import build_network as build_staged_network
from bench.registry import METHODS, PROTOCOLS
from bench.results import RESULT_FILENAME, SCHEMA_VERSION, config_hash, read_result, write_json_atomic


def resolve_config(
    flags: dict[str, Any] | None = None,
    *,
    sets: list[str] | None = None,
    config_file: str | Path | None = None,
    protocol: str | None = None,
) -> tuple[RunConfig, Method]:
    """defaults < protocol < config file < CLI flags < ``--set``; then method hyperparameters are validated, and
    ``amp`` / ``channels_last`` set to ``auto`` are resolved for the run's device (the config records what runs)."""
    cfg = RunConfig()
    file_values = config_mod.load_config_file(config_file) if config_file else {}
    protocol = protocol or (flags or {}).get("protocol") or file_values.get("protocol")
    if protocol:
        p = PROTOCOLS.get(protocol)
        config_mod.apply_overrides(cfg, dict(p.settings), source=f"protocol {protocol}")
        cfg.protocol = protocol
    if file_values:
        config_mod.apply_overrides(cfg, file_values, source=str(config_file))
    explicit = {k: v for k, v in (flags or {}).items() if v is not None}
    config_mod.apply_overrides(cfg, explicit, source="command line")
    if protocol:  # per-method settings of the protocol apply once the method is known (flags still win)
        p = PROTOCOLS.get(protocol)
        per_method = p.method_settings.get(cfg.method, {})
        config_mod.apply_overrides(
            cfg, {k: v for k, v in per_method.items() if k not in explicit}, source=f"protocol {protocol}"
        )
    if sets:
        config_mod.apply_overrides(cfg, config_mod.parse_set_options(sets), source="--set")

    method = METHODS.get(cfg.method)
    origin = METHODS.origin(cfg.method)
    cfg.hparams = resolve_hparams(method, cfg.method, cfg.hparams, origin)  # checks the Method protocol too
    allowed = tuple(getattr(method, "schedules", (method.default_schedule,)))
    if cfg.schedule is None:
        cfg.schedule = method.default_schedule
    elif cfg.schedule not in allowed:
        raise ConfigError(
            f"method {cfg.method!r} runs with schedule {' or '.join(allowed)}, not {cfg.schedule!r}; give one of "
            "these to --schedule, or leave it out for the method's default"
        )
    if cfg.aux is None:
        cfg.aux = getattr(method, "default_aux", None)
    config_mod.validate(cfg)
    cfg.data_options = resolve_dataset_options(cfg.data, cfg.data_options)
    run_validate(method, cfg, origin)
    resolve_precision(cfg)
    return cfg, method


def resolve_precision(cfg: RunConfig) -> RunConfig:
    """Replace ``auto`` in ``cfg.amp`` and ``cfg.channels_last`` by what runs on ``cfg.device`` (in place).

    A device that is not available here (``--device cuda`` without a GPU) leaves them as they are: the run itself
    reports the missing device."""
    try:
        device = resolve_device(cfg.device)
    except ConfigError:
        return cfg
    cfg.amp = precision.resolve_amp(cfg.amp, device)
    cfg.channels_last = precision.resolve_channels_last(cfg.channels_last, cfg.amp)
    return cfg


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def environment(device: torch.device) -> dict[str, Any]:
    import timm

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "layerbench": bench.__version__,
        "device": device.type,
        "device_name": device_name,
        "cpu_id": cpu_id(),
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "bf16_native": precision.bf16_native(device),
        "git_commit": git_commit(),
        "platform": platform.platform(),
    }


def cpu_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux: ``model name`` in ``/proc/cpuinfo``), else ``platform.processor()``, else
    ``cpu``: train times are comparable only between runs on the same CPU model."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


# The instruction sets that choose the CPU's float and bfloat16 kernels (oneDNN, ATen): two CPUs that differ in
# them train the same config to different numbers.
_KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16", "amx_fp16")


def cpu_id(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The CPU beyond its model name, from the first processor of ``cpuinfo``: family, model and stepping and the
    kernel-choosing instruction sets it has, e.g. ``"family 6 model 143 stepping 8; avx2 fma avx512f amx_bf16"``.

    A virtual machine's model name is often generic ("Intel(R) Xeon(R) Processor"), and the same config gives
    different numbers on CPUs that differ here (docs/protocols.md, Budgets), so results record it. ``None`` where
    the file does not exist (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor only
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    flags = precision.cpuinfo_flags(cpuinfo)
    ident = " ".join(f"{name} {fields[key]}" for name, key in
                     (("family", "cpu family"), ("model", "model"), ("stepping", "stepping")) if fields.get(key))
    kernels = " ".join(flag for flag in _KERNEL_FLAGS if flag in flags)
    text = "; ".join(part for part in (ident, kernels) if part)
    return text or None


def git_commit() -> str | None:
    repo = Path(bench.__file__).resolve().parent.parent
    if not (repo / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def method_origin(name: str) -> str:
    return METHODS.origin(name)


def method_identity(cfg: RunConfig, method: Method) -> dict[str, str]:
    """What produced a run besides its config: the method's name, version and origin (package and version)."""
    return {"name": cfg.method, "version": str(method.version), "origin": method_origin(cfg.method)}


def run_id_for(cfg: RunConfig, method: Method) -> str:
    """Hash of the resolved config *and* the method's identity: bumping a method's version, or installing it
    from another package, gives a new run instead of returning an old result."""
    return config_hash({**cfg.to_dict(), "_method": method_identity(cfg, method)})


def run_dir_for(cfg: RunConfig, method: Method) -> Path:
    return Path(cfg.out) / f"{cfg.method}_{cfg.arch}_{cfg.data}_seed{cfg.seed}_{run_id_for(cfg, method)}"


def load_data(cfg: RunConfig):
    dataset = build_dataset(cfg.data, cfg.data_root, allow_subset=cfg.allow_subset, download=cfg.download,
                            options=cfg.data_options)
    if dataset.train_labels.numel() < cfg.batch_size:
        raise DatasetError(
            f"dataset {cfg.data!r} has {dataset.train_labels.numel()} training images, fewer than one batch "
            f"({cfg.batch_size}); lower --batch-size"
        )
    return dataset


def build_network(cfg: RunConfig, num_classes: int, image_size: int):
    return build_staged_network(cfg.arch, num_classes=num_classes, split=cfg.split, image_size=image_size,
                                cifar_stem=cfg.cifar_stem)


def execute(
    cfg: RunConfig,
    method: Method,
    *,
    progress: Progress | None = None,
    force: bool = False,
    epoch_hooks: list | None = None,
    on_start=None,
    checkpoint: bool = False,
    resume: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Train and evaluate one resolved config; write ``<out>/<run>/result.json`` atomically and return it.

    ``checkpoint`` saves ``checkpoint.pt`` in the run folder at every epoch end; ``resume`` (which implies it)
    continues from that file when it belongs to this run (``bench.checkpoint``); it is removed once the result is
    written.

    A finished run (status ok) with the same config, method identity and protocol version is not run again unless
    ``force``. User errors raise
    BenchError before anything is written; a crash or divergence during training is recorded with status
    ``failed``/``diverged`` and re-raised (a crash's traceback goes to ``error.log`` beside the result); Ctrl-C
    (or SIGTERM turned into KeyboardInterrupt by the CLI) is recorded with status ``interrupted`` and re-raised.
    A previous result that is not ``ok`` (failed, diverged, interrupted) is replaced by the new run's; a run killed
    by SIGKILL leaves none (the result is written atomically at the end), so the next run starts cleanly.
    """
    run_dir = run_dir_for(cfg, method)
    result_path = run_dir / RESULT_FILENAME
    identity = method_identity(cfg, method)
    if result_path.exists() and not force:
        try:
            previous = read_result(result_path)
            same = config_hash(previous.get("config") or {}) == config_hash(cfg.to_dict()) and all(
                previous.get("method", {}).get(key) == value for key, value in identity.items()
            ) and _same_protocol(previous.get("protocol"), _protocol_record(cfg.protocol))
            if previous["status"] == "ok" and same:
                previous["_skipped"] = True
                return previous, result_path
        except ValueError:
            pass  # a corrupt previous result is simply replaced

    device = resolve_device(cfg.device)
    generator = seed_everything(cfg.seed)
    dataset = load_data(cfg)
    check_task(cfg, dataset)  # --task localize needs boxes (bench.boxes)
    torch.manual_seed(cfg.seed)  # the network's initialisation does not depend on how the data was made
    amp = precision.resolve_amp(cfg.amp, device)
    fmt = precision.memory_format(precision.resolve_channels_last(cfg.channels_last, amp))
    net = build_network(cfg, dataset.num_classes, dataset.image_size).to(device, memory_format=fmt)
    data = DeviceData(dataset, device, crop_padding=cfg.crop_padding, padding_mode=cfg.crop_padding_mode,
                      val_split=cfg.val_split, max_train_samples=cfg.max_train_samples,
                      max_test_samples=cfg.max_test_samples, memory_format=fmt)
    meter = Meter(device, exclude_params=list(net.parameters()))
    run = RunContext(cfg, net, data, device, meter, generator, progress or SilentProgress(), list(epoch_hooks or []))
    if checkpoint or resume:
        from bench.checkpoint import Checkpointer

        run.checkpointer = Checkpointer(run_dir, run_id_for(cfg, method), resume=resume)
    if on_start is not None:
        on_start(run)

    (run_dir / "error.log").unlink(missing_ok=True)  # a previous crash's traceback is not this run's
    started = _now()
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id_for(cfg, method),
        "status": "ok",
        "message": None,
        "config": cfg.to_dict(),
        "protocol": _protocol_record(cfg.protocol),
        "method": {**identity, "description": method.description},
        "dataset": {**dataset.summary(), "train_size_used": data.train_size, **data.validation_summary()},
        "architecture": {
            "name": cfg.arch,
            "split": cfg.split,
            "num_modules": net.num_modules,
            "params": sum(p.numel() for p in net.parameters()),
            "cifar_stem": getattr(net, "cifar_stem", None),
            "modules": net.describe(),
        },
        "metrics": {},
        "env": environment(device),
        "started_at": started,
        "finished_at": None,
    }
    try:
        outcome = method.train(run)
        metrics = evaluate_all(net, data, batch_size=cfg.eval_batch_size, aux_heads=outcome.aux_heads, amp=amp)
        metrics.update(meter.metrics())
        metrics["final_train_loss"] = outcome.final_train_loss
        metrics["epochs_completed"] = outcome.epochs_completed
        metrics.update(outcome.extra_metrics)
        if cfg.eval_test == "end" and "val_top1_best" in metrics and metrics.get("test_top1_at_val_best") is None:
            metrics["test_top1_at_val_best"] = metrics.get("test_top1")  # the best validation epoch was the last
        result["metrics"] = metrics
        result["architecture"].update(trained_params(net, outcome.aux_heads))
        result["history"] = outcome.history
        if run.checkpointer is not None and run.checkpointer.resume_state is not None:
            result["resumed_from"] = {"phase": int(run.checkpointer.resume_state["phase"]),
                                      "epoch": int(run.checkpointer.resume_state["epoch"]) + 1}
    except DivergedError as e:
        result.update(status="diverged", message=str(e), metrics=meter.metrics())
        _finish(result, result_path)
        raise
    except BenchError:
        raise
    except KeyboardInterrupt:
        result.update(status="interrupted", message="interrupted (Ctrl-C or SIGTERM) before the end of training",
                      metrics=meter.metrics())
        _finish(result, result_path)
        raise
    except Exception as e:
        result.update(status="failed", message=f"{type(e).__name__}: {e}", metrics=meter.metrics())
        _write_error_log(run_dir, e)
        _finish(result, result_path)
        raise
    _finish(result, result_path)
    if run.checkpointer is not None:
        run.checkpointer.remove()
    return result, result_path


def trained_params(net: torch.nn.Module, aux_heads: Any) -> dict[str, int]:
    """Parameter counts after training: ``params``, the network as it is evaluated (with the box head beside its
    classifier under ``--task localize``, added during training), and ``aux_params``, the auxiliary heads that
    training used and the network does not keep (each module's classifier, and its box head under localize)."""
    own = {id(p) for p in net.parameters()}
    aux: dict[int, int] = {}
    for head in aux_heads or []:
        if isinstance(head, torch.nn.Module):
            aux.update({id(p): p.numel() for p in head.parameters() if id(p) not in own})
    return {"params": sum(p.numel() for p in net.parameters()), "aux_params": sum(aux.values())}


def _same_protocol(recorded: dict | None, current: dict | None) -> bool:
    """A new protocol version runs again; a result adopted from an older version (scripts/adopt_results.py records
    ``adopted_from`` beside the version) counts as the version it was adopted into."""
    if not recorded or not current:
        return recorded == current
    return (recorded.get("name"), recorded.get("version")) == (current["name"], current["version"])


def _protocol_record(name: str | None) -> dict | None:
    if not name:
        return None
    p = PROTOCOLS.get(name)
    return {"name": p.name, "version": p.version}


def _write_error_log(run_dir: Path, error: BaseException) -> None:
    """The traceback of a crashed run, in ``<run folder>/error.log`` (the screen shows only the message)."""
    import traceback

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.log").write_text("".join(traceback.format_exception(error)))
    except OSError:
        pass


def _finish(result: dict[str, Any], path: Path) -> None:
    result["finished_at"] = _now()
    write_json_atomic(path, result)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def config_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(RunConfig))


