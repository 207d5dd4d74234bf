"""``bench sweep``: the command-line face of :mod:`bench.sweep` (registered on the ``bench`` app in bench/cli.py)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table


class Executor(str, Enum):
    local = "local"
    debug = "debug"
    slurm = "slurm"


def sweep(
    protocol: Annotated[str | None, typer.Option(help="Protocol every cell follows (see `bench list protocols`).")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated methods. [default: every method]")] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds. [default: the protocol's seeds]")] = None,
    split: Annotated[
        str | None, typer.Option(help="Semicolon-separated splits, e.g. 'blocks:2;blocks:4' (the K axis).")
    ] = None,
    grid: Annotated[
        list[str] | None, typer.Option("--grid", help="key=v1,v2,...: one axis of the grid; repeatable (product).")
    ] = None,
    sweep_file: Annotated[
        Path | None, typer.Option("--file", help="TOML sweep file (methods, seeds, split, [grid], [set], [slurm]).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="key=value applied to every cell; repeatable.")
    ] = None,
    data: Annotated[str | None, typer.Option(help="Dataset of every cell.")] = None,
    data_root: Annotated[str | None, typer.Option(help="Folder holding the datasets' official layouts.")] = None,
    arch: Annotated[str | None, typer.Option(help="Backbone of every cell.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of every cell.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size of every cell.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate of every cell.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML or JSON file of run settings for every cell.")] = None,
    out: Annotated[str, typer.Option(help="Folder for the run folders (one per cell).")] = "runs",
    executor: Annotated[Executor | None, typer.Option(help="local processes, debug (in-process) or slurm.")] = None,
    jobs: Annotated[int | None, typer.Option(help="local: cells run at once (torch threads are split). [default: 1]")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the cells and what is done; run nothing.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Show done/running/failed/pending cells; run nothing.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run failed cells again.")] = False,
    collect: Annotated[
        bool, typer.Option("--collect", help="Copy finished results to --results and regenerate the leaderboards.")
    ] = False,
    results: Annotated[Path, typer.Option(help="Where --collect copies results.")] = Path("leaderboards/results"),
    partition: Annotated[str | None, typer.Option(help="slurm: partition.")] = None,
    gpus: Annotated[int | None, typer.Option(help="slurm: GPUs per job.")] = None,
    cpus: Annotated[int | None, typer.Option(help="slurm: CPUs per job.")] = None,
    time_min: Annotated[int | None, typer.Option("--time", help="slurm: time limit per job, minutes.")] = None,
    mem_gb: Annotated[int | None, typer.Option("--mem", help="slurm: memory per job, GB.")] = None,
    array_parallelism: Annotated[int | None, typer.Option(help="slurm: array tasks running at once.")] = None,
    sbatch: Annotated[
        list[str] | None, typer.Option("--sbatch", help="slurm: extra sbatch option key=value; repeatable.")
    ] = None,
    logs: Annotated[Path | None, typer.Option(help="slurm: folder of job logs. [default: OUT/.sweep/logs]")] = None,
    include: Annotated[
        list[Path] | None,
        typer.Option(help="A .py file or a folder of them whose plugins the cells may name (loaded by every "
                          "worker too); repeatable."),
    ] = None,
    debug: Annotated[bool, typer.Option(help="Show the traceback of an error on the screen.")] = False,
) -> None:
    """Run a grid of cells: protocol x methods x seeds x splits x --grid, locally or on SLURM; resumable.

    Each cell is a `bench run` in the folder named by its config hash: a finished cell is never run again, a
    failed one only with --retry-failed, and a cell that was killed or interrupted resumes from its
    last epoch's checkpoint.
    Run the same command again to complete an interrupted sweep. Examples:

        bench sweep --protocol cpu-cifar10 --methods sgd,dgl --seeds 0,1,2 --data-root ../shared/data --jobs 2

        bench sweep --protocol paper-cifar10-resnet32 --split 'blocks:2;blocks:4' --executor slurm --gpus 1 --time 600

        bench sweep --file table2.toml --status

        bench sweep --include my_method.py --methods mine,greedy_ce --seeds 0,1
    """
    from bench import sweep as sw
    from bench.cli import console, err_console, fail, fail_on, shown_warnings
    from bench.errors import BenchError
    from bench.registry import load_includes

    try:
        seed_list = [int(s) for s in sw.parse_list(seeds, "seeds")] if seeds else None
    except ValueError:
        raise fail(f"--seeds expects comma-separated integers, got {seeds!r}") from None
    try:
        flags = {"data": data, "data_root": data_root, "arch": arch, "epochs": epochs, "batch_size": batch_size,
                 "lr": lr, "out": out}
        splits = None
        if split is not None:
            splits = [s.strip() for s in split.split(";")]
            if any(not s for s in splits):
                raise sw.ConfigError(f"--split expects splits separated by ';', got {split!r}")
        with shown_warnings():
            included = [str(p.resolve()) for p in load_includes(include)]
            spec = sw.build_sweep(
                protocol=protocol, methods=sw.parse_list(methods, "methods") or None, seeds=seed_list, splits=splits,
                grid=sw.parse_grid(grid or []), sets=list(set_ or []), flags=flags, sweep_file=sweep_file,
                config_file=str(config) if config else None, includes=included,
            )
    except BenchError as e:
        raise fail_on(e, str(e), debug=debug) from None

    executor_name = (executor.value if executor else None) or spec.options.get("executor") or "local"
    if executor_name not in sw.EXECUTORS:
        raise fail(f"executor {executor_name!r} is not one of {', '.join(sw.EXECUTORS)}")
    submitted = sw.read_submitted(spec.out)
    sw.refresh(spec.cells, submitted)

    def show(title: str) -> None:
        t = Table(title=title, title_justify="left")
        for col in ("cell", "settings", "state", "top-1", "run folder"):
            t.add_column(col, overflow="fold")
        style = {"done": "green", "failed": "red", "running": "cyan", "pending": "yellow"}
        for c in spec.cells:
            top1 = f"{c.top1:.2f}" if isinstance(c.top1, (int, float)) else ("–" if not c.message else c.message[:60])
            t.add_row(c.label, c.settings, f"[{style[c.state]}]{c.state}[/]", top1, c.run_dir.name)
        console.print(t)
        n = sw.counts(spec.cells)
        console.print(" · ".join(f"{k} {v}" for k, v in n.items()) + f" · {len(spec.cells)} cells", highlight=False)

    if dry_run or status:
        show(f"sweep of {len(spec.cells)} cells" + (f" ({protocol})" if protocol else ""))
        return
    if collect:
        copied = sw.collect(spec, results)
        console.print(f"copied {len(copied)} finished result(s) into {results}")
        from bench.leaderboard import write_leaderboards

        for path in write_leaderboards(results, Path("leaderboards")):
            console.print(f"wrote {path}")
        return

    n = sw.counts(spec.cells)
    console.print(f"{len(spec.cells)} cells: {n['done']} done, {n['failed']} failed, {n['running']} running, "
                  f"{n['pending']} pending; executor {executor_name}", highlight=False)

    def report(cell, summary) -> None:
        top1 = summary.get("top1")
        what = f"top-1 {top1:.2f}%" if isinstance(top1, (int, float)) else summary.get("message") or ""
        colour = "green" if summary.get("status") == "ok" else "red"
        console.print(f"[{colour}]{summary.get('status')}[/] {cell.label} {cell.settings} {what}", highlight=False)

    try:
        if executor_name == "debug":
            sw.run_debug(spec, retry_failed=retry_failed, report=report)
        elif executor_name == "local":
            lost = sw.run_local(spec, jobs=jobs or int(spec.options.get("jobs", 1)), retry_failed=retry_failed,
                                report=report)
            if lost:
                err_console.print(f"[yellow]{lost} cell(s) ended without a result (killed or crashed): see their "
                                  f"logs in {spec.out / sw.SWEEP_STATE / 'local'}; run the sweep again.[/]")
        else:
            options = dict(spec.options.get("slurm", {}))
            cli_options = {"partition": partition, "gpus_per_node": gpus, "cpus_per_task": cpus,
                           "timeout_min": time_min, "mem_gb": mem_gb, "array_parallelism": array_parallelism}
            options.update({k: v for k, v in cli_options.items() if v is not None})
            extra = dict(options.get("additional_parameters", {}))
            for item in sbatch or []:
                key, sep, value = item.partition("=")
                if not sep or not key.strip():
                    raise sw.ConfigError(f"--sbatch expects key=value, got {item!r}")
                extra[key.strip()] = value.strip()
            if extra:
                options["additional_parameters"] = extra
            job_ids = sw.run_slurm(spec, logs=logs or spec.out / sw.SWEEP_STATE / "logs", options=options,
                                   retry_failed=retry_failed)
            if job_ids:
                console.print(f"submitted {len(job_ids)} cell(s) as SLURM job array {job_ids[0].split('_')[0]}; "
                              "follow with `bench sweep ... --status`", highlight=False)
            else:
                console.print("nothing to submit: every cell is done, running or failed (--retry-failed)")
            return
    except BenchError as e:
        raise fail_on(e, str(e), debug=debug) from None
    except KeyboardInterrupt:
        raise fail("interrupted; finished cells are kept, run the same sweep again to complete it", code=130) from None
    sw.refresh(spec.cells, submitted)
    n = sw.counts(spec.cells)
    console.print(f"done {n['done']} · failed {n['failed']} · pending {n['pending']} of {len(spec.cells)} cells",
                  highlight=False)
    if n["failed"] or n["pending"]:
        raise typer.Exit(1)
