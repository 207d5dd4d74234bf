"""Run a grid of cells (methods x seeds x hyperparameter values) of one protocol and print a summary table.

Examples::

    # every built-in method, three seeds, into the committed leaderboard results
    python scripts/run_grid.py --protocol cpu-cifar10 --data-root ../shared/data --out leaderboards/results

    # GreedyDIB's gamma sweep on one seed (kept out of the leaderboards)
    python scripts/run_grid.py --protocol cpu-gtsrb --methods greedydib --seeds 0 \\
        --grid gamma=0.003,0.01,0.03,0.1 --data-root ../shared/data --out runs/sweep-gamma

A cell whose finished result already exists is reported, not trained again (as with ``bench run``). The table
gives, per (method, grid value), test top-1 mean +- std over the seeds and the mean training time.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time

from bench.errors import BenchError, DivergedError
from bench.registry import METHODS, PROTOCOLS
from bench.runner import execute, resolve_config


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", required=True, help="protocol name (see `bench list protocols`)")
    ap.add_argument("--methods", default="", help="comma-separated methods (default: every registered method)")
    ap.add_argument("--seeds", default="", help="comma-separated seeds (default: the protocol's seeds)")
    ap.add_argument("--grid", action="append", default=[], help="key=v1,v2,... swept (repeatable: product)")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="key=value applied to every cell")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default="runs")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    try:
        protocol = PROTOCOLS.get(args.protocol)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    methods = [m for m in args.methods.split(",") if m] or METHODS.names()
    seeds = [int(s) for s in args.seeds.split(",") if s] or list(protocol.seeds)
    axes = []
    for spec in args.grid:
        key, _, values = spec.partition("=")
        if not values:
            print(f"error: --grid expects key=v1,v2,..., got {spec!r}", file=sys.stderr)
            return 2
        axes.append([f"{key}={v}" for v in values.split(",")])
    combos = list(itertools.product(*axes)) or [()]

    rows: dict[tuple[str, tuple[str, ...]], list[dict]] = {}
    cells = [(m, c, s) for m in methods for c in combos for s in seeds]
    for i, (m, combo, seed) in enumerate(cells, 1):
        flags = {"method": m, "seed": seed, "out": args.out, "data_root": args.data_root}
        label = f"[{i}/{len(cells)}] {m} {' '.join(combo)} seed {seed}".replace("  ", " ")
        try:
            cfg, method = resolve_config(flags, sets=[*args.sets, *combo], protocol=args.protocol)
            t0 = time.perf_counter()
            result, path = execute(cfg, method, force=args.force)
        except DivergedError as e:
            print(f"{label}: diverged ({e})", flush=True)
            rows.setdefault((m, combo), []).append({"status": "diverged"})
            continue
        except BenchError as e:
            print(f"error: {label}: {e}", file=sys.stderr)
            return 2
        took = "(existing result)" if result.get("_skipped") else f"{time.perf_counter() - t0:.0f} s"
        print(f"{label}: top-1 {result['metrics']['test_top1']:.2f}%  {took}  {path}", flush=True)
        rows.setdefault((m, combo), []).append(result)

    print()
    print(f"{args.protocol} (v{protocol.version}), seeds {seeds}")
    print(f"{'method':<12} {'setting':<28} {'top-1 mean':>10} {'std':>6} {'n':>3} {'train s':>8}")
    for (m, combo), results in rows.items():
        ok = [r for r in results if r.get("status") == "ok"]
        accs = [r["metrics"]["test_top1"] for r in ok]
        secs = [r["metrics"]["train_seconds"] for r in ok]
        mean = statistics.fmean(accs) if accs else float("nan")
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        sec = statistics.fmean(secs) if secs else float("nan")
        bad = len(results) - len(ok)
        extra = f"  ({bad} not ok)" if bad else ""
        print(f"{m:<12} {' '.join(combo) or '-':<28} {mean:>10.2f} {std:>6.2f} {len(ok):>3} {sec:>8.0f}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
