"""The ``bench`` command line: run, list, leaderboard, results, plot, analyze."""

from __future__ import annotations

import json
import signal
import threading
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bench.errors import BenchError, DivergedError

app = typer.Typer(
    help="layerbench: train CNNs layer-wise (GreedyDIB, greedy CE, DGL, InfoPro) or end to end (SGD) under one "
    "protocol, and compare accuracy, memory and time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print("[bold red]Error:[/] ", end="", highlight=False)
    err_console.print(message, highlight=False, markup=False)
    return typer.Exit(code)


def fail_on(error: BaseException, message: str, *, debug: bool, code: int = 2) -> typer.Exit:
    """``fail(message)``, with the traceback of ``error`` (and of what caused it) first under ``--debug``."""
    if debug:
        err_console.print("".join(traceback.format_exception(error)), highlight=False, markup=False)
    return fail(message, code)


@contextmanager
def shown_warnings() -> Iterator[None]:
    """Warnings raised inside (a plugin that failed to load, an include that registered nothing) printed as
    ``warning: ...`` lines on stderr, once each, instead of Python's file:line format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                text = str(w.message)
                if text not in seen:
                    seen.add(text)
                    err_console.print("[yellow]warning:[/] ", end="", highlight=False)
                    err_console.print(text, highlight=False, markup=False)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM handled like Ctrl-C (KeyboardInterrupt) inside: the run records itself as interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class RichProgress:
    """The engine's progress reports as a rich progress bar (one line per training phase)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def start_phase(self, description: str, total_steps: int) -> None:
        self.task = self.progress.add_task(description, total=total_steps, info="")

    def advance(self, steps: int = 1, **info: Any) -> None:
        if self.task is None:
            return
        if info:
            from bench.method import format_info

            self.progress.update(self.task, advance=steps, info=format_info(info))
        else:
            self.progress.update(self.task, advance=steps)

    def end_phase(self) -> None:
        self.task = None


def _mib(n: Any) -> str:
    return f"{n / 2**20:.1f} MiB" if isinstance(n, (int, float)) else "–"


def print_summary(result: dict, path: Path) -> None:
    from bench.boxes import box_summary_rows

    m = result["metrics"]
    cfg = result["config"]
    table = Table(title=f"{cfg['method']} on {cfg['data']} with {cfg['arch']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", result["status"])
    table.add_row(
        "schedule", f"{cfg['schedule']}, {result['architecture']['num_modules']} modules ({cfg['split']})"
    )
    table.add_row("test top-1", f"{m.get('test_top1', float('nan')):.2f}%")
    table.add_row("test top-5", f"{m.get('test_top5', float('nan')):.2f}%")
    if m.get("module_top1"):
        table.add_row("module top-1", " / ".join(f"{a:.1f}" for a in m["module_top1"] if a is not None))
    for label, text in box_summary_rows(m):  # --task localize (bench.boxes)
        table.add_row(label, text)
    table.add_row("train time", f"{m.get('train_seconds', 0):.1f} s")
    ips = m.get("train_images_per_second")
    table.add_row("images/s", f"{ips:.0f}" if ips else "–")
    table.add_row("peak activations", _mib(m.get("peak_activation_bytes")))
    table.add_row("peak trainable state", _mib(m.get("peak_trainable_state_bytes")))
    if m.get("peak_gpu_bytes") is not None:
        table.add_row("peak GPU memory", _mib(m["peak_gpu_bytes"]))
    if m.get("train_flops"):
        table.add_row("train FLOPs", f"{m['train_flops'] / 1e12:.2f} TFLOP")
    table.add_row("result", str(path))
    console.print(table)


# Training options shared by `bench run` and `bench analyze`.
MethodOpt = Annotated[str | None, typer.Option(help="Training method (see `bench list methods`). \\[default: greedydib]")]
ArchOpt = Annotated[str | None, typer.Option(help="Backbone: a CIFAR ResNet or a timm CNN. \\[default: cifar_resnet20]")]
DataOpt = Annotated[str | None, typer.Option(help="Dataset: signs (embedded), cifar10, cifar100, gtsrb. \\[default: signs]")]
DataRootOpt = Annotated[str | None, typer.Option(help="Folder holding the datasets' official layouts. \\[default: ./data]")]
EpochsOpt = Annotated[int | None, typer.Option(help="Epochs (per module with --schedule sequential).")]
BatchOpt = Annotated[int | None, typer.Option(help="Training batch size.")]
LrOpt = Annotated[float | None, typer.Option(help="Base learning rate.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (data order, initialisation, augmentation).")]
DeviceOpt = Annotated[Device | None, typer.Option(help="auto picks CUDA when available.")]
SplitOpt = Annotated[str | None, typer.Option(help="How to cut the backbone: stages, blocks:K, balanced:K or cuts:i,j,...")]
ScheduleOpt = Annotated[str | None, typer.Option(help="sequential | simultaneous | end_to_end (default: the method's).")]
AuxOpt = Annotated[str | None, typer.Option(help="Auxiliary head of layer-wise methods (default: the method's).")]
ProtocolOpt = Annotated[str | None, typer.Option(help="Run one cell of a named protocol (see `bench list protocols`).")]
ConfigOpt = Annotated[Path | None, typer.Option(help="TOML or JSON file of settings (below flags in precedence).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="key=value for any config field or method hyperparameter; repeatable."),
]
AmpOpt = Annotated[bool | None, typer.Option("--amp/--no-amp", help="bfloat16 autocast on CUDA.")]
TaskOpt = Annotated[str | None, typer.Option(help="classify, or localize: class and box, for a dataset with boxes "
                                                  "(gtsrb, signs). \\[default: classify]")]
IncludeOpt = Annotated[
    list[Path] | None,
    typer.Option(help="A .py file, or a folder of them, whose methods, datasets and architectures (registered with "
                      "bench.register_method / register_dataset / register_architecture) can then be named; "
                      "repeatable. See docs/plugins.md."),
]
DebugOpt = Annotated[bool, typer.Option(help="Show the traceback of an error on the screen.")]


def _training_flags(device, **flags) -> dict:
    """The command-line values of the shared training options, as resolve_config takes them."""
    return {**flags, "device": device.value if device else None}


def _describe(cfg, extra: str = "") -> str:
    per_module = " per module" if cfg.schedule == "sequential" else ""
    return (f"{cfg.method} ({cfg.schedule}) · {cfg.arch} split {cfg.split} · {cfg.data} · "
            f"{cfg.epochs} epoch(s){per_module} · seed {cfg.seed}{extra}")


@app.command()
def run(
    method: MethodOpt = None,
    arch: ArchOpt = None,
    data: DataOpt = None,
    data_root: DataRootOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    split: SplitOpt = None,
    schedule: ScheduleOpt = None,
    aux: AuxOpt = None,
    out: Annotated[str | None, typer.Option(help="Folder for result folders. \\[default: runs]")] = None,
    protocol: ProtocolOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    amp: AmpOpt = None,
    task: TaskOpt = None,
    force: Annotated[bool, typer.Option(help="Run again even if a finished result with this config exists.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    include: IncludeOpt = None,
    debug: DebugOpt = False,
    checkpoint: Annotated[
        bool, typer.Option(help="Save checkpoint.pt in the run folder at every epoch end (removed at the end).")
    ] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue from the run's checkpoint when there is one (implies --checkpoint).")
    ] = False,
) -> None:
    """Train one network with one method and write its result file.

    With no options: GreedyDIB on the embedded `signs` dataset with CIFAR ResNet-20 in 3 local modules
    (about a minute on a 2-core CPU). Examples:

        bench run --method sgd --arch cifar_resnet32 --data cifar10 --data-root ../shared/data

        bench run --method greedydib --set gamma=0.01 --set alpha=2

        bench run --protocol cpu-cifar10 --method dgl --seed 1

        bench run --include my_method.py --method mine

    Exit status: 0 done, 2 a bad setting (nothing recorded), 1 training failed or diverged (recorded, with the
    traceback in the run folder's error.log), 130 interrupted by Ctrl-C or SIGTERM (recorded as interrupted).
    """
    from bench.runner import execute

    flags = _training_flags(
        device, method=method, arch=arch, data=data, data_root=data_root, epochs=epochs, batch_size=batch_size,
        lr=lr, seed=seed, split=split, schedule=schedule, aux=aux, out=out, amp=amp, task=task,
    )
    cfg, method_obj = prepare(flags, sets=set_, config=config, protocol=protocol, include=include, debug=debug)
    console.print(f"[bold]{_describe(cfg)}[/]", highlight=False)

    def train(progress):
        return execute(cfg, method_obj, progress=progress, force=force, checkpoint=checkpoint, resume=resume)

    result, path = guarded_training(train, cfg, method_obj, quiet=quiet, debug=debug)
    if result.get("resumed_from"):
        r = result["resumed_from"]
        console.print(f"resumed from the checkpoint after epoch {r['epoch']} of phase {r['phase'] + 1}",
                      highlight=False)
    if result.pop("_skipped", False):
        console.print("[yellow]A finished result with this config exists; not run again (use --force).[/]")
    print_summary(result, path)


def prepare(flags: dict, *, sets, config, protocol, include, debug: bool):
    """Load ``--include`` files and resolve the config; a user error (or a plugin's error while its settings are
    checked) is a message and exit 2."""
    from bench.registry import load_includes
    from bench.runner import resolve_config

    try:
        with shown_warnings():
            load_includes(include)
            return resolve_config(flags, sets=sets or [], config_file=config, protocol=protocol)
    except BenchError as e:
        raise fail_on(e, str(e), debug=debug) from None
    except Exception as e:  # not a user error: a bug, in a plugin or here
        raise fail_on(e, f"unexpected error while preparing the run: {type(e).__name__}: {e}. Run again with "
                         "--debug to see the traceback.", debug=debug, code=1) from None


def guarded_training(train, cfg, method_obj, *, quiet: bool, debug: bool):
    """``train(progress)`` with the outcomes of a run turned into messages and exit codes: a user error 2 (nothing
    recorded), divergence 1, a crash 1 (recorded as failed, its traceback in the run folder's error.log),
    Ctrl-C or SIGTERM 130 (recorded as interrupted)."""
    from bench.runner import method_origin, run_dir_for

    run_dir = run_dir_for(cfg, method_obj)
    try:
        with terminate_as_interrupt():
            if quiet:
                return train(None)
            with RichProgress(console) as progress:
                return train(progress)
    except DivergedError as e:
        raise fail_on(e, f"training diverged: {e}. The run was recorded with status 'diverged'; lower the "
                         "learning rate (--lr) or check the method's loss.", debug=debug, code=1) from None
    except BenchError as e:
        raise fail_on(e, str(e), debug=debug) from None
    except KeyboardInterrupt as e:
        status = _recorded_status(run_dir)
        where = (f"the run was recorded with status 'interrupted' in {run_dir / 'result.json'}; run the same "
                 "command again to start it anew" if status == "interrupted"
                 else "nothing was recorded (training had not started)")
        raise fail_on(e, f"interrupted; {where}.", debug=debug, code=130) from None
    except Exception as e:
        from bench.registry import plugin_label

        who = plugin_label("method", cfg.method, method_origin(cfg.method))
        log = _write_traceback(run_dir, e)
        recorded = (f"The run was recorded with status 'failed' in {run_dir / 'result.json'}"
                    if _recorded_status(run_dir) == "failed" else "Nothing was recorded")
        raise fail_on(e, f"training failed: {who} raised {type(e).__name__}: {e}. {recorded}; the traceback is in "
                         f"{log} (--debug shows it here).", debug=debug, code=1) from None


def _recorded_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "result.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _write_traceback(run_dir: Path, error: BaseException) -> Path:
    """The run folder's error.log (the runner writes it when it records the failure; written here otherwise)."""
    log = run_dir / "error.log"
    if not log.exists():
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            log.write_text("".join(traceback.format_exception(error)))
        except OSError:
            pass
    return log


from bench.cli_list import list_ as _list  # noqa: E402  (defined in its own module, registered here)

app.command("list")(_list)


@app.command()
def leaderboard(
    results: Annotated[Path, typer.Option(help="Folder of result files (searched recursively).")] = Path(
        "leaderboards/results"
    ),
    out: Annotated[Path, typer.Option(help="Where the Markdown tables and figures are written.")] = Path(
        "leaderboards"
    ),
    check: Annotated[bool, typer.Option(help="Write nothing; exit 1 if a committed table or figure is stale.")] = False,
    include_adhoc: Annotated[bool, typer.Option(help="Also tabulate runs made without --protocol.")] = False,
) -> None:
    """Render every result under --results into Markdown leaderboards: one page per protocol (with published
    numbers beside ours for the paper protocols), its accuracy-against-memory figure (<protocol>.png, drawn from
    <protocol>.pareto.csv) and an index."""
    from bench.leaderboard import check_leaderboards, write_leaderboards

    if not results.exists():
        raise fail(f"results folder {results} does not exist")

    def warn(message: str) -> None:
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False)

    try:
        if check:
            problems = check_leaderboards(results, out, include_adhoc=include_adhoc)
        else:
            written = write_leaderboards(results, out, include_adhoc=include_adhoc, on_warning=warn)
    except BenchError as e:
        raise fail(str(e)) from None
    if check:
        if problems:
            for line in problems:
                err_console.print(f"  {line}", highlight=False)
            raise fail("leaderboards are out of date; run `bench leaderboard` and commit the tables", code=1)
        console.print(f"Leaderboards in {out} are up to date.")
        return
    for path in written:
        console.print(f"wrote {path}")


class ResultsFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


TABLE_COLUMNS = {
    "run_id": "run_id",
    "protocol.name": "protocol",
    "method.name": "method",
    "config.arch": "arch",
    "architecture.num_modules": "K",
    "config.schedule": "schedule",
    "config.seed": "seed",
    "status": "status",
    "metrics.test_top1": "top-1 %",
    "metrics.test_top1_best": "best top-1 %",
    "metrics.peak_activation_bytes": "act. MiB",
    "metrics.train_seconds": "train s",
}
"""What `bench results` shows as a table when --columns is not given, and the headers it uses (CSV, JSON and
Parquet get every column under its full name)."""


def _cell(value: Any) -> str:
    import pandas as pd

    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    if value is None or pd.isna(value):
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1e7 else f"{value:.4g}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


@app.command()
def results(
    results_dir: Annotated[
        Path, typer.Option("--results", help="Folder of result files (searched recursively), or one result file.")
    ] = Path("leaderboards/results"),
    where_: Annotated[
        list[str] | None,
        typer.Option("--where", help="KEY=VALUE (or KEY!=VALUE; VALUE may be a,b for either): keep matching runs. "
                                     "KEY: a column or method, protocol, seed, arch, data, schedule, split, aux, k, "
                                     "status, a hyperparameter. Repeatable (all must hold)."),
    ] = None,
    columns: Annotated[
        str | None, typer.Option(help="Comma-separated columns to show, in order (short names work).")
    ] = None,
    format_: Annotated[ResultsFormat, typer.Option("--format", help="table (printed), csv, json or parquet.")] = (
        ResultsFormat.table
    ),
    out: Annotated[Path | None, typer.Option(help="Write to this file (needed for parquet); csv/json print "
                                                  "to the terminal without it.")] = None,
) -> None:
    """List runs, one row per result file, with flattened columns (config.*, method.*, metrics.*, env.*, ...).

    The same frame as `from bench.results import load; load("leaderboards/results")` in Python. Examples:

        bench results --where method=dgl --where protocol=cpu-gtsrb

        bench results --columns method,seed,metrics.test_top1 --format csv --out runs.csv

        bench results --results runs --format parquet --out runs.parquet
    """
    from bench import results as res

    if not results_dir.exists():
        raise fail(f"results folder {results_dir} does not exist")

    problems: list[str] = []

    def warn(message: str) -> None:
        problems.append(message)
        if not results_dir.is_file():  # one file that cannot be read is an error, below
            err_console.print(f"[yellow]warning:[/] {message}", highlight=False)

    try:
        frame = res.load(results_dir, on_warning=warn)
        if results_dir.is_file() and problems and frame.empty:
            raise BenchError(f"{results_dir} cannot be read: {problems[-1].removeprefix('skipped ')}")
        total = len(frame)
        frame = res.where(frame, where_ or [])
        if columns:
            frame = res.select_columns(frame, columns.split(","))
        elif format_ is ResultsFormat.table:
            frame = frame[[c for c in TABLE_COLUMNS if c in frame.columns and (c == "run_id" or frame[c].notna().any()
                                                                              or frame.empty)]].copy()
            if "metrics.peak_activation_bytes" in frame:
                frame["metrics.peak_activation_bytes"] = frame["metrics.peak_activation_bytes"] / 2**20
        if format_ is ResultsFormat.table:
            if out is not None:
                raise BenchError("--out writes csv, json or parquet; give --format too")
            table = Table(title=f"{len(frame)} of {total} run(s) in {results_dir}", title_justify="left")
            for name in frame.columns:
                table.add_column(name if columns else TABLE_COLUMNS[name], overflow="fold")
            for row in frame.itertuples(index=False):
                table.add_row(*(_cell(v) for v in row))
            console.print(table)
            return
        text = res.export(frame, format_.value, out)
    except BenchError as e:
        raise fail(str(e)) from None
    if text is not None:
        typer.echo(text, nl=False)
    else:
        err_console.print(f"wrote {len(frame)} run(s) to {out}", highlight=False)


plot_app = typer.Typer(
    help="Figures: learning curves of runs, accuracy against memory for a protocol.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(plot_app, name="plot")


@plot_app.command("curves")
def plot_curves(
    runs: Annotated[list[Path], typer.Argument(help="Run folders or result.json files (several: one colour each).")],
    out: Annotated[Path | None, typer.Option(help="PNG to write. \\[default: curves.png in the run folder, or "
                                                  "here for several runs]")] = None,
) -> None:
    """Learning curves from a result's history: train loss and accuracy, and val/test top-1 when recorded, per
    epoch; one panel per local module for layer-wise runs.

        bench plot curves runs/greedydib_cifar_resnet20_signs_seed0_1a2b3c4d5e6f
    """
    from bench import plots

    if out is None:
        first = runs[0]
        out = (first if first.is_dir() else first.parent) / "curves.png" if len(runs) == 1 else Path("curves.png")
    try:
        path = plots.plot_curves(runs, out)
    except BenchError as e:
        raise fail(str(e)) from None
    console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@plot_app.command("pareto")
def plot_pareto(
    protocol: Annotated[str, typer.Option(help="Protocol whose results are drawn (see `bench list protocols`).")],
    results_dir: Annotated[Path, typer.Option("--results", help="Folder of result files.")] = Path(
        "leaderboards/results"
    ),
    out: Annotated[Path | None, typer.Option(help="PNG to write. \\[default: <protocol>.png]")] = None,
) -> None:
    """Top-1 against peak activation memory relative to sgd, one marker per method (and K), error bars over seeds,
    with the published points where the paper reports memory (GPU memory relative to its own end-to-end run).

        bench plot pareto --protocol cpu-cifar10
    """
    from bench import plots
    from bench.leaderboard import protocol_stem

    target = out if out is not None else Path(protocol_stem(protocol) + ".png")
    try:
        path = plots.plot_pareto(protocol, results_dir, target)
    except BenchError as e:
        raise fail(str(e)) from None
    console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command()
def analyze(
    method: MethodOpt = None,
    arch: ArchOpt = None,
    data: DataOpt = None,
    data_root: DataRootOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    split: SplitOpt = None,
    schedule: ScheduleOpt = None,
    aux: AuxOpt = None,
    out: Annotated[str | None, typer.Option(help="Folder for run folders (with --compare: where the figure goes). \\[default: runs]")] = None,
    protocol: ProtocolOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    amp: AmpOpt = None,
    task: TaskOpt = None,
    probe_size: Annotated[int, typer.Option(help="N: the probe is the first N test images (2..test set size).")] = 256,
    alpha: Annotated[float, typer.Option(help="Renyi order of the entropies.")] = 1.01,
    epochs_to_plot: Annotated[
        str | None,
        typer.Option(help="Points shown in mi_matrix.png: comma-separated indices (negative from the end), labels "
                          "('m2 e3', 'e3') or init/middle/final. \\[default: init,middle,final]"),
    ] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Analysis folder. \\[default: <out>/analysis_<method>_<arch>_<data>_seed<N>]")] = None,
    from_: Annotated[Path | None, typer.Option("--from", help="Redraw the pictures of this analysis folder; no training.")] = None,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(metavar="DIR_A DIR_B", help="Draw two analysis folders' information planes side by side "
                                               "(compare_information_plane.png in DIR_A, or in --out); no training."),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    include: IncludeOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Train like `bench run` and measure information flow on a fixed probe batch: entropy S(T), I(X;T), I(T;Y) of
    every module output, the MI matrix between layers and the convergence matrix, at init and every epoch end.

    Writes analysis.json, layers.csv, mi_matrix.csv, information_plane.png, mi_matrix.png and convergence.png
    (see docs/analysis.md). Examples:

        bench analyze --method greedydib --epochs 3

        bench analyze --from runs/analysis_greedydib_cifar_resnet20_signs_seed0 --epochs-to-plot init,m2 e3,final

        bench analyze --compare runs/analysis_sgd_cifar_resnet20_signs_seed0 runs/analysis_greedydib_cifar_resnet20_signs_seed0
    """
    from bench import analysis as an

    flags = _training_flags(
        device, method=method, arch=arch, data=data, data_root=data_root, epochs=epochs, batch_size=batch_size,
        lr=lr, seed=seed, split=split, schedule=schedule, aux=aux, out=out, amp=amp, task=task,
    )
    if from_ is not None and compare is not None:
        raise fail("--from and --compare are two separate modes; give only one")
    if from_ is not None or compare is not None:
        ignored = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is not None and k != "out"]
        ignored += ["--set"] * bool(set_) + ["--protocol"] * bool(protocol) + ["--config"] * bool(config)
        if ignored:
            err_console.print(f"[yellow]warning:[/] {', '.join(ignored)} ignored: nothing is trained with "
                              f"{'--from' if from_ is not None else '--compare'}", highlight=False)
    try:
        if from_ is not None:
            analysis = an.load_analysis(from_)
            files = an.draw_all(analysis, from_, points_to_plot=epochs_to_plot)
            console.print(an.summary_table(analysis))
            for name, path in files.items():
                console.print(f"{name}: {path}", highlight=False, soft_wrap=True)
            return
        if compare is not None:
            analyses = [an.load_analysis(d) for d in compare]
            target = (Path(out) if out is not None else compare[0]) / an.COMPARE_FILENAME
            an.plot_compare(analyses, target)
            console.print(f"wrote {target}", highlight=False, soft_wrap=True)
            return
    except BenchError as e:
        raise fail_on(e, str(e), debug=debug) from None
    cfg, method_obj = prepare(flags, sets=set_, config=config, protocol=protocol, include=include, debug=debug)
    console.print(f"[bold]analyze {_describe(cfg, f' · probe {probe_size} · alpha {alpha:g}')}[/]", highlight=False)
    kwargs = dict(probe_size=probe_size, alpha=alpha, run_dir=run_dir, points_to_plot=epochs_to_plot)

    def train(progress):
        return an.analyze(cfg, method_obj, progress=progress, **kwargs)

    res = guarded_training(train, cfg, method_obj, quiet=quiet, debug=debug)
    console.print(an.summary_table(res.analysis))
    for name, path in {**res.files, "result": res.result_path}.items():
        console.print(f"{name}: {path}", highlight=False, soft_wrap=True)


from bench.cli_sweep import sweep as _sweep  # noqa: E402  (defined in its own module, registered here)

app.command("sweep")(_sweep)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
