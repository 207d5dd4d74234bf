"""Training step time of every method in float32, bfloat16 autocast, and bfloat16 autocast + channels_last.

Each method trains through its own ``train`` (the engine, its heads and local losses, the activation meter) for a
few steps per phase, once per precision variant, and the variants alternate: repeat 1 runs fp32, bf16, bf16+cl,
repeat 2 runs bf16, bf16+cl, fp32, and so on, so that a drift of the machine (another process, thermal state)
reaches every variant alike. The time of a step is the wall time between two consecutive steps of a phase (the
batch's augmentation included, as in training); the first ``--skip`` steps of every phase are not timed (they
count FLOPs and warm up the kernels). A method's step time is the sum over its phases of the median step time of
each phase: one batch through every module (for sequential schedules: one step of each module on top of its
frozen prefix). The data are generated signs at the network's input size (the content does not change the time).

    .venv/bin/python scripts/bench_precision.py --threads 1                      # cifar_resnet20, batch 128, 32x32
    .venv/bin/python scripts/bench_precision.py --methods sgd,greedydib --repeats 5 --steps 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from typing import Any

import torch

from bench import precision
from bench.data.loader import DeviceData
from bench.errors import BenchError
from bench.measure import Meter
from bench.method import RunContext
from bench.runner import build_network, load_data, resolve_config, resolve_device, seed_everything

VARIANTS: dict[str, dict[str, bool]] = {
    "fp32": {"amp": False, "channels_last": False},
    "bf16": {"amp": True, "channels_last": False},
    "bf16+cl": {"amp": True, "channels_last": True},
}
DEFAULT_METHODS = ("sgd", "greedy_ce", "dgl", "infopro", "greedydib")


class StepTimer:
    """A progress reporter that records the wall time of every training step, per phase."""

    def __init__(self) -> None:
        self.phases: list[list[float]] = []
        self._last = 0.0

    def start_phase(self, description: str, total_steps: int) -> None:
        self.phases.append([])
        self._last = time.perf_counter()

    def advance(self, steps: int = 1, **info: Any) -> None:
        if steps <= 0:
            return
        now = time.perf_counter()
        self.phases[-1].append(now - self._last)
        self._last = now

    def end_phase(self) -> None:
        pass


def train_once(cfg, method, dataset, device: torch.device, *, val_split: float = 0.0) -> list[list[float]]:
    """One short training run as ``bench run`` would do it (without the final evaluation); returns the step times
    of each phase. ``val_split`` holds out the validation split as the run would (0: train on every image)."""
    seed_everything(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    fmt = precision.memory_format(bool(cfg.channels_last))
    torch.manual_seed(cfg.seed)
    net = build_network(cfg, dataset.num_classes, dataset.image_size).to(device, memory_format=fmt)
    data = DeviceData(dataset, device, crop_padding=cfg.crop_padding, padding_mode=cfg.crop_padding_mode,
                      val_split=val_split, max_train_samples=cfg.max_train_samples, memory_format=fmt)
    timer = StepTimer()
    run = RunContext(cfg, net, data, device, Meter(device, exclude_params=list(net.parameters())), generator,
                     timer)
    method.train(run)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return timer.phases


def measure(args) -> tuple[list[tuple[str, str, dict[str, float]]], torch.device]:
    device = resolve_device(args.device)
    methods = [m for m in args.methods.split(",") if m]
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for name in methods:
            configs = {}
            for variant, settings in VARIANTS.items():
                flags = {"method": name, "arch": args.arch, "split": args.split, "batch_size": args.batch_size,
                         "data": "signs", "device": args.device, "out": out, "epochs": 1}
                sets = [f"data.image_size={args.image_size}", f"data.num_classes={args.classes}",
                        f"data.train_size={args.batch_size * args.steps}", "data.test_size=10",
                        f"max_steps={args.steps}", f"max_train_samples={args.batch_size * args.steps}",
                        "val_split=0", f"amp={str(settings['amp']).lower()}",
                        f"channels_last={str(settings['channels_last']).lower()}", *args.sets]
                configs[variant] = resolve_config(flags, sets=sets)
            cfg0 = configs["fp32"][0]
            dataset = load_data(cfg0)
            per_phase: dict[str, list[list[float]]] = {v: [] for v in VARIANTS}
            order = list(VARIANTS)
            for r in range(args.repeats):
                for variant in order[r % len(order):] + order[: r % len(order)]:
                    cfg, method = configs[variant]
                    phases = train_once(cfg, method, dataset, device)
                    if not per_phase[variant]:
                        per_phase[variant] = [[] for _ in phases]
                    for k, times in enumerate(phases):
                        per_phase[variant][k].extend(times[args.skip:])
            step_ms = {v: 1e3 * sum(statistics.median(t) for t in phases) for v, phases in per_phase.items()}
            rows.append((name, cfg0.schedule, step_ms))
            print(f"  {name} done", file=sys.stderr, flush=True)
    return rows, device


def format_table(rows: list[tuple[str, str, dict[str, float]]]) -> str:
    head = f"{'method':<11} {'schedule':<13}" + "".join(f"{v + ' ms':>12}" for v in VARIANTS)
    head += "".join(f"{v + '/fp32':>14}" for v in VARIANTS if v != "fp32")
    lines = [head]
    for name, schedule, ms in rows:
        line = f"{name:<11} {schedule:<13}" + "".join(f"{ms[v]:>12.1f}" for v in VARIANTS)
        line += "".join(f"{ms[v] / ms['fp32']:>14.2f}" for v in VARIANTS if v != "fp32")
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated method names")
    ap.add_argument("--arch", default="cifar_resnet20")
    ap.add_argument("--split", default="stages")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--steps", type=int, default=6, help="training steps per phase and run")
    ap.add_argument("--skip", type=int, default=2, help="first steps of each phase not timed")
    ap.add_argument("--repeats", type=int, default=3, help="runs per variant (alternating)")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="key=value for every run")
    args = ap.parse_args(argv)
    if args.skip >= args.steps:
        ap.error("--skip must be smaller than --steps")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        rows, device = measure(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"cpu ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''}, "
                  f"native bf16: {'yes' if precision.bf16_native(device) else 'no'})")
    print(f"training step time, ms per batch of {args.batch_size} (median of {args.repeats} x "
          f"{args.steps - args.skip} steps per phase, summed over phases); {args.arch} split {args.split}, "
          f"{args.image_size}x{args.image_size}; {where}; torch {torch.__version__}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
