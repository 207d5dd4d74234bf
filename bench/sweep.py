"""``bench sweep``: a grid of runs (protocol x methods x seeds x splits x ``--grid key=v1,v2``), run in-process,
as local processes, or as one SLURM job array through submitit.

Every cell is an ordinary ``bench run``: it runs in the folder named by its run id (the hash of its resolved
config and its method's identity), writes ``result.json`` atomically at the end, and is never run again once it
finished. The state of a sweep is therefore read from the run folders, not kept anywhere else:

- ``done``: ``result.json`` with status ``ok``;
- ``failed``: ``result.json`` with status ``failed`` or ``diverged`` (retried only with
  ``--retry-failed``);
- ``running``: a ``.running.json`` marker written when the cell started, whose process is alive (on this host) or
  whose SLURM job was submitted and has not finished;
- ``pending``: none of the above, or a result with status ``interrupted`` (Ctrl-C, SIGTERM); a cell killed mid-way
  (SIGKILL, preemption, power cut) leaves only a stale marker and is pending again, so running the same sweep again
  completes it.

Executors:

- ``debug``: every cell in this process, one after another (tests, pdb);
- ``local``: ``--jobs N`` worker processes at a time on this machine, each given ``cores / N`` torch threads;
- ``slurm``: one job array through submitit (``map_array``, at most ``--array-parallelism`` at once), logs per job
  in ``--logs``; a preempted or timed-out job is requeued by submitit and resumes from the run's last checkpoint.

Every cell checkpoints at each epoch end and resumes from its checkpoint (``bench.checkpoint``).

A sweep file (TOML) holds the same things for larger sweeps::

    protocol = "paper-cifar10-resnet32"
    methods = ["sgd", "greedy_ce", "dgl", "infopro"]
    seeds = [0, 1, 2, 3, 4]
    split = ["blocks:2", "blocks:4", "blocks:8", "blocks:16"]
    [grid.infopro]                      # a grid axis for one method only
    loss_mode = ["contrast", "cross_entropy"]
    [set]                               # applied to every cell
    data_root = "/datasets"
    [set.greedy_ce]                     # applied to one method's cells
    schedule = "simultaneous"
    aux = "linear"
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomllib

from bench.errors import BenchError, ConfigError

EXECUTORS = ("local", "debug", "slurm")
STATES = ("done", "failed", "running", "pending")
MARKER = ".running.json"
RESULT = "result.json"
SWEEP_STATE = ".sweep"
"""Folder under ``--out`` where the sweep keeps its submitted SLURM jobs and the local workers' specs and logs."""


# --------------------------------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class CellSpec:
    """What a worker needs to run one cell: plain data, so that it pickles (SLURM) and serialises (local)."""

    flags: dict[str, Any]
    """``bench run`` flags: method, seed, split, out, data_root, ..."""
    sets: tuple[str, ...] = ()
    """``--set key=value`` items, the grid's values last."""
    protocol: str | None = None
    config_file: str | None = None
    includes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"flags": self.flags, "sets": list(self.sets), "protocol": self.protocol,
                "config_file": self.config_file, "includes": list(self.includes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellSpec:
        return cls(dict(data["flags"]), tuple(data.get("sets", ())), data.get("protocol"), data.get("config_file"),
                   tuple(data.get("includes", ())))


@dataclass
class Cell:
    spec: CellSpec
    run_dir: Path
    label: str
    settings: str
    """The grid values and split of this cell, for the status table."""
    cfg: Any = None
    """The resolved RunConfig of the cell."""
    state: str = "pending"
    top1: float | None = None
    message: str | None = None


def parse_grid(items: Iterable[str]) -> dict[str, list[str]]:
    """``["lr=0.1,0.05", "gamma=[0.1,0.2],[0.3,0.3]"]`` -> ``{"lr": ["0.1", "0.05"], ...}``.

    Values are split on commas outside brackets, so list-valued settings can be swept too.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--grid expects key=v1,v2,..., got {item!r}")
        parts = _split_top_level(values)
        if not parts:
            raise ConfigError(f"--grid {key}= has no values; give at least one (key=v1,v2,...)")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice")
        grid[key] = parts
    return grid


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def parse_list(text: str | None, what: str) -> list[str]:
    """A comma-separated option (``--methods a,b``); None -> [], an empty item is an error."""
    if text is None:
        return []
    items = [t.strip() for t in text.split(",")]
    if not items or any(not t for t in items):
        raise ConfigError(f"--{what} expects a comma-separated list without empty items, got {text!r}")
    return items


def load_sweep_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML sweep file (see the module docstring); ConfigError naming the file when it is malformed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"sweep file {path} is not valid TOML: {e}") from e
    known = {"protocol", "methods", "seeds", "split", "grid", "set", "executor", "jobs", "slurm"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key in ("methods", "seeds", "split"):
        if key in data and (not isinstance(data[key], list) or not data[key]):
            raise ConfigError(f"sweep file {path}: {key} must be a non-empty list")
    for key in ("grid", "set", "slurm"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"sweep file {path}: [{key}] must be a table")
    return data


def _grid_from_file(table: dict[str, Any], methods: list[str]) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Split a [grid] table into the axes for every method and the per-method axes ([grid.METHOD])."""
    common: dict[str, list[str]] = {}
    per_method: dict[str, dict[str, list[str]]] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            if key not in methods:
                raise ConfigError(f"[grid.{key}] names a method that is not in the sweep ({', '.join(methods)})")
            per_method[key] = {k: _values(k, v) for k, v in value.items()}
        else:
            common[key] = _values(key, value)
    return common, per_method


def _values(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"grid {key} must be a non-empty list of values, got {value!r}")
    return [v if isinstance(v, str) else json.dumps(v) for v in value]


def _sets_from_file(table: dict[str, Any], methods: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    common: list[str] = []
    per_method: dict[str, list[str]] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            if key not in methods:
                raise ConfigError(f"[set.{key}] names a method that is not in the sweep ({', '.join(methods)})")
            per_method[key] = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in value.items()]
        else:
            common.append(f"{key}={value if isinstance(value, str) else json.dumps(value)}")
    return common, per_method


@dataclass
class Sweep:
    """A resolved grid: every cell checked (names, keys, values) before anything runs."""

    cells: list[Cell]
    out: Path
    protocol: str | None
    options: dict[str, Any] = field(default_factory=dict)
    """Executor options read from a sweep file (executor, jobs, slurm table)."""


def build_sweep(
    *,
    protocol: str | None = None,
    methods: list[str] | None = None,
    seeds: list[int] | None = None,
    splits: list[str] | None = None,
    grid: dict[str, list[str]] | None = None,
    sets: list[str] | None = None,
    flags: dict[str, Any] | None = None,
    sweep_file: str | Path | None = None,
    config_file: str | None = None,
    includes: list[str] | None = None,
) -> Sweep:
    """The cells of a sweep, each resolved with ``bench.runner.resolve_config``; raises ConfigError (or another
    BenchError) for an unknown method, key or value before any cell runs."""
    from bench.registry import METHODS, PROTOCOLS
    from bench.runner import resolve_config, run_dir_for

    file = load_sweep_file(sweep_file) if sweep_file else {}
    protocol = protocol or file.get("protocol")
    if protocol:
        PROTOCOLS.get(protocol)  # unknown protocol: a clear error now
    methods = list(methods or file.get("methods") or [])
    if not methods:
        methods = METHODS.names()
    for m in methods:
        METHODS.get(m)
    if seeds is None or not seeds:
        file_seeds = file.get("seeds")
        if file_seeds is not None:
            seeds = [_int(s, "seeds") for s in file_seeds]
        else:
            seeds = list(PROTOCOLS.get(protocol).seeds) if protocol else [0]
    splits = list(splits or file.get("split") or [None])
    common_grid, method_grid = _grid_from_file(file.get("grid", {}), methods)
    common_grid.update(grid or {})
    file_sets, method_sets = _sets_from_file(file.get("set", {}), methods)
    all_sets = [*file_sets, *(sets or [])]
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    for forbidden in ("method", "seed", "split"):
        flags.pop(forbidden, None)

    cells: list[Cell] = []
    seen: dict[Path, str] = {}
    for method in methods:
        axes = {**common_grid, **method_grid.get(method, {})}
        keys = list(axes)
        for combo in itertools.product(*(axes[k] for k in keys)) if keys else [()]:
            grid_sets = [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
            for split in splits:
                for seed in seeds:
                    cell_flags = {**flags, "method": method, "seed": seed}
                    if split is not None:
                        cell_flags["split"] = split
                    spec = CellSpec(cell_flags, tuple([*all_sets, *method_sets.get(method, []), *grid_sets]),
                                    protocol, config_file, tuple(includes or ()))
                    where = f"cell {method} seed {seed}" + (f" split {split}" if split else "") + (
                        f" {' '.join(grid_sets)}" if grid_sets else "")
                    try:
                        cfg, method_obj = resolve_config(spec.flags, sets=list(spec.sets), config_file=config_file,
                                                         protocol=protocol)
                    except BenchError as e:
                        raise type(e)(f"{where}: {e}") from None
                    run_dir = run_dir_for(cfg, method_obj)
                    if run_dir in seen:  # two grid values that resolve to the same run
                        continue
                    seen[run_dir] = where
                    settings = " ".join([*([f"split={split}"] if split else []), *grid_sets]) or "-"
                    cells.append(Cell(spec, run_dir, f"{method} seed {seed}", settings, cfg))
    if not cells:
        raise ConfigError("the sweep has no cells")
    out = Path(flags.get("out") or "runs")
    options = {k: file[k] for k in ("executor", "jobs", "slurm") if k in file}
    return Sweep(cells, out, protocol, options)


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: expected integers, got {value!r}") from None


# --------------------------------------------------------------------------------------------------- state


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def refresh(cells: Iterable[Cell], submitted: dict[str, Any] | None = None) -> None:
    """Set each cell's state from its run folder (see the module docstring)."""
    submitted = submitted or {}
    for cell in cells:
        cell.top1 = cell.message = None
        result = _read_json(cell.run_dir / RESULT)
        if result is not None and result.get("status") == "ok":
            cell.state = "done"
            cell.top1 = (result.get("metrics") or {}).get("test_top1")
            continue
        if result is not None and result.get("status") != "interrupted":
            cell.state, cell.message = "failed", f"{result.get('status')}: {result.get('message')}"
            continue
        marker = _read_json(cell.run_dir / MARKER)
        if marker is not None:
            local = marker.get("host") == socket.gethostname() and not marker.get("slurm_job_id")
            if (local and _pid_alive(int(marker.get("pid", -1)))) or (not local and str(cell.run_dir) in submitted):
                cell.state = "running"
                continue
        if str(cell.run_dir) in submitted:
            cell.state, cell.message = "running", f"submitted as SLURM job {submitted[str(cell.run_dir)]}"
            continue
        cell.state = "pending"


def counts(cells: Iterable[Cell]) -> dict[str, int]:
    out = dict.fromkeys(STATES, 0)
    for c in cells:
        out[c.state] += 1
    return out


def _submitted_path(out: Path) -> Path:
    return out / SWEEP_STATE / "submitted.json"


def read_submitted(out: Path) -> dict[str, Any]:
    return _read_json(_submitted_path(out)) or {}


# --------------------------------------------------------------------------------------------------- workers


def cell_label(cfg: Any) -> str:
    """``sgd seed 0`` for a cell's log lines."""
    return f"{cfg.method} seed {cfg.seed}"


def run_cell(spec: CellSpec | dict[str, Any], *, threads: int | None = None) -> dict[str, Any]:
    """Run one cell in this process (the worker of every executor). Returns a short summary.

    Writes the ``.running.json`` marker first (with the process id, the host and the SLURM job id when there is
    one) and removes it when the run ends, whatever the outcome.
    """
    import torch

    from bench.errors import DivergedError
    from bench.registry import load_includes
    from bench.runner import execute, resolve_config, run_dir_for

    if isinstance(spec, dict):
        spec = CellSpec.from_json(spec)
    if threads:
        torch.set_num_threads(threads)
    load_includes(spec.includes)  # the plugins of --include, in this (worker) process too
    cfg, method = resolve_config(spec.flags, sets=list(spec.sets), config_file=spec.config_file,
                                 protocol=spec.protocol)
    run_dir = run_dir_for(cfg, method)
    run_dir.mkdir(parents=True, exist_ok=True)
    marker = run_dir / MARKER
    marker.write_text(json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }))
    try:
        from bench.method import LogProgress

        print(f"{cell_label(cfg)}: {run_dir}", flush=True)
        result, path = execute(cfg, method, checkpoint=True, resume=True, progress=LogProgress())
        metrics = result.get("metrics") or {}
        print(f"{cell_label(cfg)}: {result['status']}, test top-1 {metrics.get('test_top1')}, "
              f"validation top-1 {metrics.get('val_top1')}", flush=True)
        return {"status": result["status"], "top1": result["metrics"].get("test_top1"), "path": str(path),
                "skipped": bool(result.get("_skipped"))}
    except DivergedError as e:
        return {"status": "diverged", "message": str(e), "path": str(run_dir / RESULT)}
    finally:
        marker.unlink(missing_ok=True)


class SlurmCell:
    """The callable a SLURM array task runs: one cell, resumed from its last checkpoint after a requeue.

    submitit calls ``checkpoint`` when the job is preempted or reaches its time limit; returning a
    ``DelayedSubmission`` of the same call requeues it, and the rerun resumes from the run's last checkpoint.
    """

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0) or None
        return run_cell(spec, threads=threads)

    def checkpoint(self, spec: dict[str, Any]):
        import submitit

        return submitit.helpers.DelayedSubmission(self, spec)


# --------------------------------------------------------------------------------------------------- running


def _to_run(sweep: Sweep, retry_failed: bool) -> list[Cell]:
    refresh(sweep.cells, read_submitted(sweep.out))
    states = ("pending", "failed") if retry_failed else ("pending",)
    return [c for c in sweep.cells if c.state in states]


def run_debug(sweep: Sweep, *, retry_failed: bool = False, report: Callable[[Cell, dict], None] | None = None) -> None:
    """Every pending cell in this process, one after another."""
    for cell in _to_run(sweep, retry_failed):
        if retry_failed:
            (cell.run_dir / RESULT).unlink(missing_ok=True)
        try:
            summary = run_cell(cell.spec)
        except BenchError:
            raise
        except Exception as e:  # recorded in the cell's result.json by the runner (status failed)
            summary = {"status": "failed", "message": f"{type(e).__name__}: {e}"}
        if report:
            report(cell, summary)


def run_local(
    sweep: Sweep,
    *,
    jobs: int = 1,
    retry_failed: bool = False,
    report: Callable[[Cell, dict], None] | None = None,
    poll_seconds: float = 0.2,
) -> int:
    """Pending cells as worker processes, ``jobs`` at a time, torch threads split between them.

    Returns the number of cells whose worker did not finish with a result (killed or crashed). On Ctrl-C the
    workers are terminated (their cells stay pending) and KeyboardInterrupt is raised again.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    todo = _to_run(sweep, retry_failed)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    state_dir = sweep.out / SWEEP_STATE / "local"
    state_dir.mkdir(parents=True, exist_ok=True)
    running: list[tuple[subprocess.Popen, Cell, Path]] = []
    lost = 0
    try:
        while todo or running:
            while todo and len(running) < jobs:
                cell = todo.pop(0)
                if retry_failed:
                    (cell.run_dir / RESULT).unlink(missing_ok=True)
                name = cell.run_dir.name
                spec_path = state_dir / f"{name}.json"
                spec_path.write_text(json.dumps(cell.spec.to_json()))
                log_path = state_dir / f"{name}.log"
                env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
                with log_path.open("ab") as log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "bench.sweep", "--worker", str(spec_path), "--threads", str(threads)],
                        stdout=log, stderr=subprocess.STDOUT, env=env,
                    )
                running.append((proc, cell, log_path))
            time.sleep(poll_seconds)
            still = []
            for proc, cell, log_path in running:
                code = proc.poll()
                if code is None:
                    still.append((proc, cell, log_path))
                    continue
                result = _read_json(cell.run_dir / RESULT)
                if result is None:
                    lost += 1
                    summary = {"status": "killed" if code < 0 else "crashed", "exit_code": code, "log": str(log_path)}
                    if code == 2:
                        summary["message"] = _last_line(log_path)
                else:
                    summary = {"status": result.get("status"), "top1": (result.get("metrics") or {}).get("test_top1"),
                               "message": result.get("message"), "log": str(log_path)}
                if report:
                    report(cell, summary)
            running = still
    except KeyboardInterrupt:
        for proc, _, _ in running:
            proc.send_signal(signal.SIGTERM)
        for proc, _, _ in running:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    return lost


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


SLURM_OPTION_NAMES = ("partition", "gpus_per_node", "cpus_per_task", "timeout_min", "mem_gb", "array_parallelism",
                      "nodes", "job_name", "account", "qos", "constraint", "additional_parameters", "setup")


def slurm_parameters(options: dict[str, Any]) -> dict[str, Any]:
    """submitit's ``update_parameters`` arguments from the sweep's cluster options."""
    unknown = sorted(set(options) - set(SLURM_OPTION_NAMES))
    if unknown:
        raise ConfigError(f"unknown SLURM option(s) {', '.join(unknown)}; known: {', '.join(SLURM_OPTION_NAMES)}")
    params: dict[str, Any] = {"slurm_job_name": options.get("job_name") or "bench-sweep"}
    mapping = {"partition": "slurm_partition", "gpus_per_node": "slurm_gpus_per_node",
               "cpus_per_task": "slurm_cpus_per_task", "timeout_min": "timeout_min", "mem_gb": "slurm_mem_gb",
               "array_parallelism": "slurm_array_parallelism", "nodes": "nodes", "account": "slurm_account",
               "qos": "slurm_qos", "constraint": "slurm_constraint", "setup": "slurm_setup"}
    for key, name in mapping.items():
        if options.get(key) is not None:
            params[name] = options[key]
    extra = dict(options.get("additional_parameters") or {})
    if extra:
        params["slurm_additional_parameters"] = extra
    return params


def run_slurm(sweep: Sweep, *, logs: Path, options: dict[str, Any], retry_failed: bool = False) -> list[str]:
    """Submit every pending cell as one job array; returns the job ids. Does not wait for the jobs."""
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            "--executor slurm needs submitit: pip install 'layerbench[cluster]' (or pip install submitit)"
        ) from None
    todo = _to_run(sweep, retry_failed)
    if not todo:
        return []
    if retry_failed:
        for cell in todo:
            (cell.run_dir / RESULT).unlink(missing_ok=True)
    executor = submitit.AutoExecutor(folder=str(logs / "%j"), cluster="slurm")
    executor.update_parameters(**slurm_parameters(options))
    try:
        jobs = executor.map_array(SlurmCell(), [c.spec.to_json() for c in todo])
    except Exception as e:  # sbatch missing, refused, unparsable answer
        raise ConfigError(f"the SLURM submission failed: {type(e).__name__}: {e}") from None
    submitted = read_submitted(sweep.out)
    for cell, job in zip(todo, jobs, strict=True):
        submitted[str(cell.run_dir)] = job.job_id
    path = _submitted_path(sweep.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(submitted, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return [j.job_id for j in jobs]


def collect(sweep: Sweep, results_dir: Path) -> list[Path]:
    """Copy the finished cells' result files into ``results_dir/<run folder>/result.json``."""
    refresh(sweep.cells)
    copied = []
    for cell in sweep.cells:
        if cell.state != "done":
            continue
        target = results_dir / cell.run_dir.name / RESULT
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cell.run_dir / RESULT, target)
        copied.append(target)
    return copied


# --------------------------------------------------------------------------------------------------- worker entry


def _worker_main(argv: list[str]) -> int:
    """``python -m bench.sweep --worker SPEC.json [--threads N]``: the local executor's worker process."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.sweep")
    ap.add_argument("--worker", required=True)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM -> KeyboardInterrupt -> recorded
    spec = CellSpec.from_json(json.loads(Path(args.worker).read_text()))
    try:
        summary = run_cell(spec, threads=args.threads)
    except BenchError as e:
        print(f"error: {e}", flush=True)
        return 2
    print(json.dumps(summary), flush=True)
    return 0 if summary.get("status") == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(_worker_main(sys.argv[1:]))
