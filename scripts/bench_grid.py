"""What a protocol's grid costs: the training step time of every row of its sweep file, side by side in one process,
its ratio to ``sgd``, and the training time of a cell and of the whole grid projected from it.

Every row of the sweep file (a method and its grid values, e.g. ``greedy_ce`` with ``schedule`` sequential and
simultaneous) is resolved exactly as ``bench sweep`` resolves its cells (the protocol's recipe, its per-method
settings, the file's values) and trains through its own ``train`` on the protocol's real data for ``--steps`` steps
per phase; the rows alternate over ``--repeats`` runs, so that a drift of the machine reaches every row alike. A
phase's step time is the median of its timed steps (the first ``--skip`` of a phase warm up and count FLOPs); a
cell's training time is the sum over its phases of step time x steps per epoch x epochs (evaluation not included).
The grid's time on ``--jobs`` cores is the sum over cells and seeds divided by the jobs: a lower bound, since cells
do not divide evenly among the workers. Train times of result files (``--results``) taken on different machines or
days are not comparable with one another; the ratios printed here are.

    python scripts/bench_grid.py sweeps/cpu-gtsrb.toml --data-root ../shared/data
    python scripts/bench_grid.py sweeps/cpu-gtsrb.toml --data-root ../shared/data --results leaderboards/results

``--save`` writes the measurement to ``leaderboards/results/step-times-<protocol>-v<version>.json`` (or into the
folder it names), and ``bench leaderboard`` shows its ratios beside the recorded train times.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_precision import train_once  # noqa: E402

from bench.errors import BenchError  # noqa: E402
from bench.leaderboard import row_key, step_times_filename  # noqa: E402
from bench.registry import PROTOCOLS  # noqa: E402
from bench.runner import cpu_id, cpu_name, load_data, resolve_config  # noqa: E402
from bench.sweep import build_sweep  # noqa: E402


def grid_rows(sweep_file: str, data_root: str | None, out: str, steps: int) -> list[tuple[str, object, object, int]]:
    """``(row, cfg, method, seeds)`` of every row of the sweep file, resolved for seed 0 with ``max_steps``."""
    sweep = build_sweep(sweep_file=sweep_file, flags={"data_root": data_root, "out": out})
    seeds: dict[str, int] = {}
    first: dict[str, object] = {}
    for cell in sweep.cells:
        name = row_key(cell.cfg.method, cell.cfg.schedule)
        seeds[name] = seeds.get(name, 0) + 1
        first.setdefault(name, cell)
    rows = []
    for name, cell in first.items():
        flags = {**cell.spec.flags, "seed": 0}
        cfg, method = resolve_config(flags, sets=[*cell.spec.sets, f"max_steps={steps}"],
                                     config_file=cell.spec.config_file, protocol=cell.spec.protocol)
        rows.append((name, cfg, method, seeds[name]))
    return rows


def recorded_seconds(results: str, protocol: dict) -> dict[str, float]:
    """Mean ``train_seconds`` per row of the finished result files of ``protocol`` under ``results``."""
    from bench.results import load

    df = load(results)
    if df.empty:
        return {}
    df = df[(df["status"] == "ok") & (df["protocol.name"] == protocol["name"])
            & (df["protocol.version"] == protocol["version"])]
    rows = [row_key(m, s) for m, s in zip(df["method.name"], df["config.schedule"], strict=True)]
    return df.groupby(rows)["metrics.train_seconds"].mean().to_dict()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_file", help="a protocol's sweep file, e.g. sweeps/cpu-gtsrb.toml")
    ap.add_argument("--data-root", default=None, help="where the protocol's dataset lies (e.g. ../shared/data)")
    ap.add_argument("--steps", type=int, default=14, help="training steps per phase and run (default 14)")
    ap.add_argument("--skip", type=int, default=4, help="first steps of each phase not timed (default 4)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per row, alternating (default 3)")
    ap.add_argument("--jobs", type=int, default=2, help="cores the grid runs on, one cell per core (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per cell (default 1, as a sweep)")
    ap.add_argument("--results", default=None, help="result files to print the recorded train time beside")
    ap.add_argument("--save", nargs="?", const="leaderboards/results", default=None, metavar="DIR",
                    help="write the step times for `bench leaderboard` (default DIR: leaderboards/results)")
    args = ap.parse_args(argv)
    if args.skip >= args.steps:
        ap.error("--skip must be smaller than --steps")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    try:
        with tempfile.TemporaryDirectory() as out:
            rows = grid_rows(args.sweep_file, args.data_root, out, args.steps)
            cfg0 = rows[0][1]
            if args.save and not cfg0.protocol:
                print("error: --save needs a sweep file of a protocol (the file is named after it)", file=sys.stderr)
                return 2
            dataset = load_data(cfg0)
            times: dict[str, list[list[float]]] = {name: [] for name, *_ in rows}
            for r in range(args.repeats):
                order = rows[r % len(rows):] + rows[: r % len(rows)]
                for name, cfg, method, _ in order:
                    phases = train_once(cfg, method, dataset, device, val_split=cfg.val_split)
                    if not times[name]:
                        times[name] = [[] for _ in phases]
                    for k, t in enumerate(phases):
                        times[name][k].extend(t[args.skip:])
                print(f"  repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from bench.data.loader import DeviceData

    train_size = DeviceData(dataset, device, val_split=cfg0.val_split,
                            max_train_samples=cfg0.max_train_samples).train_size
    steps_per_epoch = math.ceil(train_size / cfg0.batch_size)
    protocol = PROTOCOLS.get(cfg0.protocol) if cfg0.protocol else None
    recorded = (recorded_seconds(args.results, {"name": protocol.name, "version": protocol.version})
                if args.results and protocol else {})

    step_ms = {name: sum(1e3 * statistics.median(t) for t in times[name]) for name, *_ in rows}
    base = row_key("sgd", "end_to_end") if row_key("sgd", "end_to_end") in step_ms else rows[0][0]
    lines = []
    saved = []
    total = 0.0
    for name, cfg, _, seeds in rows:
        phases = len(times[name])
        cell_min = step_ms[name] / 1e3 * steps_per_epoch * cfg.epochs / 60
        total += cell_min * seeds
        ratio = round(step_ms[name] / step_ms[base], 3)  # printed and saved alike
        saved.append({"row": name, "phases": phases, "step_ms": round(step_ms[name], 2), "vs_sgd": ratio,
                      "cell_minutes": round(cell_min, 2), "seeds": seeds})
        line = f"{name:<28} {phases:>6} {step_ms[name]:>10.1f} {ratio:>8.2f} {cell_min:>10.1f} {seeds:>6}"
        if recorded:
            rec, rec_base = recorded.get(name), recorded.get(base)
            line += (f" {rec / 60:>10.1f} {rec / rec_base:>9.2f}" if rec is not None and rec_base
                     else f"{'-':>10} {'-':>9}")
        lines.append(line)
    if base != row_key("sgd", "end_to_end"):
        print(f"note: no sgd row in the sweep; ratios are to {base}", file=sys.stderr)
    title = (f"{protocol.name} version {protocol.version}" if protocol else args.sweep_file)
    print(f"{title}: {train_size} training images, batch {cfg0.batch_size}, {steps_per_epoch} steps an epoch, "
          f"{cfg0.epochs} epochs; one process, {args.threads} thread(s), {cpu_name()}, torch {torch.__version__}; "
          f"median of {args.repeats} x {args.steps - args.skip} steps per phase")
    head = f"{'row':<28} {'phases':>6} {'step ms':>10} {'x sgd':>8} {'cell min':>10} {'seeds':>6}"
    if recorded:
        head += f" {'recorded':>10} {'x sgd':>9}"
    print(head)
    print("\n".join(lines))
    print(f"grid: {total:.0f} core-minutes of training; on {args.jobs} cores at least {total / args.jobs:.0f} minutes "
          "(evaluation not included)")
    if args.save and protocol is not None:
        from bench.results import write_bytes_atomic

        record = {
            "protocol": {"name": protocol.name, "version": protocol.version},
            "machine": cpu_name(), "cpu_id": cpu_id(), "threads": args.threads, "torch": torch.__version__,
            "measured": datetime.date.today().isoformat(),
            "command": f"python scripts/bench_grid.py {args.sweep_file} --save",
            "steps": args.steps, "skip": args.skip, "repeats": args.repeats,
            "train_images": train_size, "batch_size": cfg0.batch_size, "steps_per_epoch": steps_per_epoch,
            "epochs": cfg0.epochs, "rows": saved, "grid_core_minutes": round(total, 1),
        }
        path = Path(args.save) / step_times_filename(protocol.name, protocol.version)
        write_bytes_atomic(path, (json.dumps(record, indent=1) + "\n").encode())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
