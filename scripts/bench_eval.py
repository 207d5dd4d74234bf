"""What per-epoch evaluation costs a run: whole runs with the test set scored every epoch (``eval_test=every``) and
only at the end (``eval_test=end``), side by side in this process, per method.

Each pair runs the same cell one after the other (same seed, same data, same thread count), so the ratio is taken
on the same machine state; the table gives both wall times, their ratio and the numbers the result reports (they
must agree: the final weights and the best validation epoch's weights are the same in both modes):

    python scripts/bench_eval.py --protocol cpu-gtsrb --data-root ../shared/data --epochs 2 \\
        --methods sgd,greedy_ce,greedydib

Sequential schedules also score only the modules trained so far in each phase (both modes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.runner import execute, resolve_config  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", default="cpu-gtsrb")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--methods", default="sgd,greedy_ce")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per cell (the protocol's when 0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], dest="sets")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for method_name in args.methods.split(","):
            row: dict = {"method": method_name}
            for mode in ("every", "end"):
                flags = {"method": method_name, "data_root": args.data_root, "seed": args.seed,
                         "out": str(Path(out) / mode)}
                if args.epochs:
                    flags["epochs"] = args.epochs
                cfg, method = resolve_config(flags, sets=[*args.sets, f"eval_test={mode}"], protocol=args.protocol)
                t0 = time.perf_counter()
                result, _ = execute(cfg, method, force=True)
                row[mode] = time.perf_counter() - t0
                m = result["metrics"]
                row[f"{mode}_numbers"] = (m.get("test_top1"), m.get("val_top1_best"), m.get("test_top1_at_val_best"))
                print(f"{method_name} eval_test={mode}: {row[mode]:.0f} s, test top-1 {m.get('test_top1')}", flush=True)
            rows.append(row)
    print()
    print(f"{args.protocol}, {args.epochs or 'protocol'} epoch(s), {args.threads} thread(s), seed {args.seed}")
    print(f"{'method':<12} {'every (s)':>9} {'end (s)':>8} {'end/every':>9}  same numbers")
    for r in rows:
        same = r["every_numbers"] == r["end_numbers"]
        print(f"{r['method']:<12} {r['every']:>9.0f} {r['end']:>8.0f} {r['end'] / r['every']:>9.2f}  {same}")
    return rows


if __name__ == "__main__":
    main()
