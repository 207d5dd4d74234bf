"""Peak activation memory of every method on one architecture and batch size, and its ratio to end-to-end SGD.

Each method runs a few training steps per phase (``max_steps``) through the normal runner, so the figures are the
``metrics.peak_activation_bytes`` a full run records (bytes of tensors saved for backward, each storage once,
parameters excluded: device-independent and deterministic), plus the trainable state (parameters, gradients,
optimizer state of what trains at the peak) and, on CUDA, ``torch.cuda.max_memory_allocated``.

    .venv/bin/python scripts/bench_memory.py                                   # cifar_resnet20, 3 stages, batch 128
    .venv/bin/python scripts/bench_memory.py --arch cifar_resnet110 --split blocks:4 --batch-size 1024
    .venv/bin/python scripts/bench_memory.py --arch resnet18 --methods sgd,greedydib --device cuda
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from bench.errors import BenchError
from bench.registry import METHODS
from bench.runner import execute, resolve_config

MIB = 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="cifar_resnet20")
    ap.add_argument("--split", default="stages")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--data", default="signs", help="dataset (only the input size and classes matter)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--methods", default="", help="comma-separated (default: every registered method)")
    ap.add_argument("--steps", type=int, default=2, help="training steps per phase")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--set", action="append", default=[], dest="sets", help="key=value for every method")
    args = ap.parse_args(argv)

    methods = [m for m in args.methods.split(",") if m] or METHODS.names()
    if "sgd" not in methods:
        methods.insert(0, "sgd")
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for name in methods:
            flags = {"method": name, "arch": args.arch, "split": args.split, "batch_size": args.batch_size,
                     "data": args.data, "data_root": args.data_root, "device": args.device, "out": out, "epochs": 1}
            sets = [*args.sets, f"max_steps={args.steps}", f"max_train_samples={args.batch_size * args.steps}",
                    "max_test_samples=2"]
            try:
                cfg, method = resolve_config(flags, sets=sets)
                result, _ = execute(cfg, method, force=True)
            except BenchError as e:
                print(f"error: {name}: {e}", file=sys.stderr)
                return 2
            m = result["metrics"]
            rows.append((name, cfg.schedule, cfg.aux or "-", result["architecture"]["num_modules"],
                         m["peak_activation_bytes"], m["peak_trainable_state_bytes"], m["peak_gpu_bytes"]))
            print(f"  {name} done", flush=True)

    base = next(r[4] for r in rows if r[0] == "sgd")
    print()
    print(f"peak activation memory: {args.arch} split {args.split}, batch {args.batch_size}, {args.data}, "
          f"device {args.device}")
    print(f"{'method':<12} {'schedule':<13} {'aux':<8} {'K':>2} {'activations MiB':>16} {'ratio to sgd':>13} "
          f"{'trainable MiB':>14} {'GPU peak MiB':>13}")
    for name, schedule, aux, k, act, state, gpu in rows:
        gpu_s = f"{gpu / MIB:.1f}" if gpu else "-"
        print(f"{name:<12} {schedule:<13} {aux:<8} {k:>2} {act / MIB:>16.1f} {act / base:>13.3f} "
              f"{state / MIB:>14.2f} {gpu_s:>13}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
