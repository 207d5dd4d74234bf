"""Budget evidence for a cpu protocol: validation top-1 against the training budget (epochs), per method.

Reads the result files of a budget sweep (``sweeps/budget-<protocol>.toml``: ``sgd`` and the equal-pass layer-wise
row at 1x, 2x and 4x a budget, seed 0), prints one table per method and, for ``sgd``, how much each doubling of
the budget moved its validation top-1; writes the figure (PNG) and its data (CSV) for docs/protocols.md:

    bench sweep --file sweeps/budget-cpu-gtsrb.toml --data-root ../shared/data --out runs/cpu-gtsrb --jobs 2
    python scripts/budget_curve.py runs/cpu-gtsrb --protocol cpu-gtsrb --out docs/figures/budget-cpu-gtsrb

The chosen budget is the smallest one where doubling it moves ``sgd``'s validation top-1 by less than
``--tolerance`` points (1 by default); only validation numbers take part in the choice, test top-1 is printed
beside them for the record. ``--target T`` adds a protocol's accuracy target: the smallest budget that meets the
doubling rule *and* where ``sgd``'s test top-1 reaches ``T`` (a choice that reads the test set; the script prints
the rule's own choice beside it, so the two can be told apart):

    python scripts/budget_curve.py evidence/cpu-gtsrb-v4 --protocol cpu-gtsrb --target 98
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from bench.plots import _figure, method_colour, png_bytes
from bench.results import load, write_bytes_atomic


def budget_frame(results: str | Path, protocol: str, seeds: list[int] | None = None,
                 rows: list[str] | None = None) -> pd.DataFrame:
    """One row per (method, schedule, epochs): the mean over ``seeds`` (all when None) of validation and test top-1
    and train time, for the rows named ``rows`` (``"sgd (end_to_end)"``; all when None)."""
    df = load(results)
    if df.empty:
        raise SystemExit(f"error: no result files under {results}")
    df = df[(df["status"] == "ok") & (df["protocol.name"] == protocol)]
    if seeds is not None:
        df = df[df["config.seed"].isin(seeds)]
    if df.empty:
        raise SystemExit(f"error: no finished result of protocol {protocol} under {results}")
    if "metrics.val_top1" not in df.columns or df["metrics.val_top1"].isna().all():
        raise SystemExit("error: these runs have no validation top-1 (val_split 0?): the budget needs validation")
    df = df.assign(
        row=df["method.name"] + " (" + df["config.schedule"].astype("string").fillna("-") + ")",
        epochs=df["config.epochs"].astype(int),
    )
    if rows is not None:
        df = df[df["row"].isin(rows)]
        if df.empty:
            raise SystemExit(f"error: no finished result of {', '.join(rows)} under {results}")
    out = (
        df.groupby(["row", "epochs"])
        .agg(val_top1=("metrics.val_top1", "mean"), test_top1=("metrics.test_top1", "mean"),
             train_seconds=("metrics.train_seconds", "mean"), seeds=("config.seed", "count"))
        .reset_index()
        .sort_values(["row", "epochs"])
    )
    return out.reset_index(drop=True)


def doubling_moves(frame: pd.DataFrame, row: str) -> list[tuple[int, int, float]]:
    """(budget, doubled budget, change in validation top-1) for each budget whose double is in ``frame``."""
    sub = frame[frame["row"] == row].set_index("epochs")["val_top1"]
    return [(int(e), int(2 * e), float(sub[2 * e] - sub[e])) for e in sub.index if 2 * e in sub.index]


def choose_budget(frame: pd.DataFrame, row: str, tolerance: float = 1.0, target: float | None = None) -> int | None:
    """The smallest budget where doubling moves ``row``'s validation top-1 by less than ``tolerance`` points and,
    when ``target`` is given, where ``row``'s test top-1 reaches ``target``."""
    test = frame[frame["row"] == row].set_index("epochs")["test_top1"]
    for e, _, delta in doubling_moves(frame, row):
        if abs(delta) < tolerance and (target is None or test[e] >= target):
            return e
    return None


def figure(frame: pd.DataFrame, protocol: str, marks: dict[int, str], seeds_text: str = "seed 0",
           target: float | None = None) -> bytes:
    """Validation and test top-1 against budget, one line per row; ``marks``: budget -> label (vertical lines)."""
    fig = _figure(5.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for row, sub in frame.groupby("row"):
        colour = method_colour(row.split(" ")[0])
        style = "-" if "sequential" not in row and "simultaneous" not in row else "--"
        n = sorted(set(sub["seeds"].astype(int)))
        seeds = "" if n == [1] else f" (n = {'/'.join(str(k) for k in n)})"
        ax.plot(sub["epochs"], sub["val_top1"], style, marker="o", color=colour, label=f"{row}{seeds}: validation")
        ax.plot(sub["epochs"], sub["test_top1"], ":", marker="x", color=colour, alpha=0.6, label=f"{row}{seeds}: test")
    if target is not None:
        ax.axhline(target, color="grey", lw=0.6, ls=":")
        ax.annotate(f"test target {target:g} %", (frame["epochs"].max(), target), textcoords="offset points",
                    xytext=(-4, 3), fontsize=7, color="grey", ha="right")
    for k, (epochs, label) in enumerate(sorted(marks.items())):
        ax.axvline(epochs, color="grey", lw=0.8, ls="-" if k == 0 else "--")
        ax.annotate(label, (epochs, ax.get_ylim()[1]), textcoords="offset points",
                    xytext=(4, -12 - 10 * k), fontsize=8, color="grey")
    ax.set_xscale("log", base=2)
    epochs = sorted(frame["epochs"].unique())
    ax.set_xticks(epochs, [str(e) for e in epochs])
    ax.set_xlabel("training budget (epochs; log scale)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{protocol}: top-1 against budget ({seeds_text})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
    return png_bytes(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="folder of the budget sweep's runs")
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--baseline", default="sgd (end_to_end)", help="row whose doubling decides the budget")
    ap.add_argument("--tolerance", type=float, default=1.0, help="points of validation top-1 (default 1)")
    ap.add_argument("--target", type=float, default=None,
                    help="test top-1 (%%) the baseline must also reach at the chosen budget (reads the test set)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds to average (default 0; 'all' for every seed)")
    ap.add_argument("--rows", default="sgd (end_to_end),greedy_ce (simultaneous)",
                    help="comma-separated 'method (schedule)' rows to show; 'all' for every row")
    ap.add_argument("--out", default=None, help="stem of the PNG and CSV to write (default: print only)")
    args = ap.parse_args(argv)

    seeds = None if args.seeds == "all" else [int(x) for x in args.seeds.split(",")]
    rows = None if args.rows == "all" else [r.strip() for r in args.rows.split(",")]
    frame = budget_frame(args.results, args.protocol, seeds, rows)
    print(frame.to_markdown(index=False, floatfmt=".2f"))
    print()
    if args.baseline not in set(frame["row"]):
        print(f"error: no {args.baseline} row among {', '.join(sorted(set(frame['row'])))}", file=sys.stderr)
        return 2
    for row in sorted(set(frame["row"])):
        for e, e2, delta in doubling_moves(frame, row):
            print(f"{row}: {e} -> {e2} epochs moves validation top-1 by {delta:+.2f} points")
    chosen = rule = choose_budget(frame, args.baseline, args.tolerance)
    print()
    print(f"chosen budget: {chosen} epochs" if chosen is not None else
          f"no budget in the sweep where doubling moves {args.baseline} by less than {args.tolerance} points: "
          "extend the sweep")
    if args.target is not None:
        chosen = choose_budget(frame, args.baseline, args.tolerance, args.target)
        print(f"with the target (test top-1 >= {args.target:g} %): " + (
            f"{chosen} epochs" if chosen is not None else
            "no budget in the sweep meets the rule and reaches the target: extend the sweep"))
    if args.out:
        stem = Path(args.out)
        stem.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(stem.with_suffix(".csv"), frame.to_csv(index=False, float_format="%.4f").encode())
        seeds_text = ("mean over seeds" if seeds is None else
                      f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(x) for x in seeds)}")
        from bench.registry import PROTOCOLS

        labels: dict[int, list[str]] = {}
        if rule is not None:
            labels.setdefault(rule, []).append(f"rule: {rule} epochs")
        if args.target is not None and chosen is not None:
            labels.setdefault(chosen, []).append(f"rule + test >= {args.target:g} %: {chosen} epochs")
        budget = PROTOCOLS.get(args.protocol).settings.get("epochs")
        if budget is not None:
            labels.setdefault(int(budget), []).append(f"protocol: {budget} epochs")
        marks = {epochs: " / ".join(text) for epochs, text in labels.items()}
        write_bytes_atomic(stem.with_suffix(".png"), figure(frame, args.protocol, marks, seeds_text,
                                                                    args.target))
        print(f"wrote {stem.with_suffix('.csv')} and {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
