"""The harness's ``sgd`` beside a plain PyTorch loop (scripts/plain_loop.py), same data, same budget, same seeds.

Both run in this process, one after the other for each seed, so they share the machine's state; the table gives
each one's test top-1, the mean difference and the time ratio. ``--set`` settings go to the harness side (to try
the loop's recipe there, or to find which setting costs the harness its points):

    python scripts/compare_sgd.py --data cifar10 --data-root ../shared/data --epochs 20 --seeds 0,1,2 \\
        --set lr=0.1 --set nesterov=true --set warmup_epochs=3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import plain_loop  # noqa: E402

from bench.runner import execute, resolve_config  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="cifar10")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--protocol", default=None, help="harness protocol to start from (default: none)")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="batch of both sides (default: the loop's 128 and the harness's default or protocol's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast on both sides")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for seed in seeds:
            loop = plain_loop.main(["--data", args.data, "--data-root", args.data_root, "--epochs", str(args.epochs),
                                    "--seed", str(seed), *(["--bf16"] if args.bf16 else []),
                                    *(["--batch-size", str(args.batch_size)] if args.batch_size else [])])
            flags = {"method": "sgd", "data": args.data, "data_root": args.data_root, "epochs": args.epochs,
                     "seed": seed, "out": out, **({"batch_size": args.batch_size} if args.batch_size else {})}
            sets = [*(["amp=true"] if args.bf16 else []), *args.sets]
            cfg, method = resolve_config(flags, sets=sets, protocol=args.protocol)
            result, _ = execute(cfg, method, force=True)
            harness = result["metrics"]
            rows.append((seed, loop["test_top1"], harness["test_top1"], loop["seconds"], harness["train_seconds"]))
            print(f"seed {seed}: plain loop {loop['test_top1']:.2f}%  harness sgd {harness['test_top1']:.2f}%",
                  flush=True)
    print()
    print(f"{args.data}, {args.epochs} epochs, batch {args.batch_size or 'default'}, harness settings: {' '.join(args.sets) or '(defaults)'}")
    print(f"{'seed':>4} {'plain loop':>10} {'harness':>8} {'diff':>6} {'time ratio':>10}")
    for seed, a, b, ta, tb in rows:
        print(f"{seed:>4} {a:>10.2f} {b:>8.2f} {b - a:>6.2f} {tb / ta:>10.2f}")
    loop_mean = statistics.fmean(r[1] for r in rows)
    harness_mean = statistics.fmean(r[2] for r in rows)
    print(f"mean {loop_mean:>10.2f} {harness_mean:>8.2f} {harness_mean - loop_mean:>6.2f}")


if __name__ == "__main__":
    main()
