"""Carry results of an older protocol version over to the current one when they already follow its recipe.

A new protocol version that changes a setting (cpu-gtsrb version 5: 12 epochs instead of 6) can have runs already
made under the old version with that setting given on top (the budget evidence: ``--grid epochs=12``). Such a run
*is* a run of the new version: the same resolved config, the same method, so the same training. This script checks
that for every result file it is given and copies the ones that pass into ``--out`` under the current version, with
where they came from recorded beside it:

    python scripts/adopt_results.py evidence/cpu-gtsrb-v4-12-epochs --protocol cpu-gtsrb --out runs/cpu-gtsrb-v5
    bench sweep --file sweeps/cpu-gtsrb.toml --data-root ../shared/data --out runs/cpu-gtsrb-v5 --jobs 2

The sweep then runs only the cells that are still missing. A result is adopted only when

* its status is ``ok`` and it was made under an *older* version of ``--protocol``;
* the config that ``bench run --protocol P --method M --seed S --schedule X`` resolves to today (the current
  version's settings and per-method settings; a setting the version leaves at ``auto``, such as ``amp``, as the run
  resolved it) has the same hash as the recorded config, and the method's version and origin are today's (so the
  run id, hence the folder name, is the one the sweep looks for).

Anything else is refused with the reason (the first settings that differ), and nothing is written for it. The
adopted file keeps everything it recorded (its metrics, environment, CPU, dates); only ``protocol`` changes, to
``{"name": P, "version": current, "adopted_from": {"version": old, "adopted": date}}``, so that the leaderboard
page of the current version shows it and says how many of its results were adopted.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.registry import PROTOCOLS
from bench.results import RESULT_FILENAME, UNTRAINED_FIELDS, config_hash, read_result, write_json_atomic
from bench.runner import method_identity, resolve_config, run_dir_for


def _differences(recorded: dict[str, Any], resolved: dict[str, Any], limit: int = 4) -> str:
    keys = sorted(k for k in set(recorded) | set(resolved)
                  if k not in UNTRAINED_FIELDS and recorded.get(k) != resolved.get(k))
    shown = [f"{k} {recorded.get(k)!r} (version's: {resolved.get(k)!r})" for k in keys[:limit]]
    return ", ".join(shown) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check(result: dict[str, Any], protocol: str) -> tuple[str | None, str]:
    """``(run folder name, "")`` when ``result`` is a run of the current version of ``protocol``; else
    ``(None, reason)``."""
    current = PROTOCOLS.get(protocol)
    recorded_protocol = result.get("protocol") or {}
    if result.get("status") != "ok":
        return None, f"status {result.get('status')!r}, not ok"
    if recorded_protocol.get("name") != protocol:
        return None, f"made under protocol {recorded_protocol.get('name')!r}, not {protocol!r}"
    version = recorded_protocol.get("version")
    if not isinstance(version, int) or version >= current.version:
        return None, f"made under version {version} of {protocol}, not an older one than {current.version}"
    config = result.get("config") or {}
    flags = {"method": config.get("method"), "seed": config.get("seed"), "schedule": config.get("schedule"),
             "out": ".", "data_root": config.get("data_root")}
    # a setting the version leaves to the machine ("auto": bf16 and channels_last where the CPU has native bf16) is
    # taken as the run resolved it, so that the check gives the same answer on any machine
    flags.update({key: config.get(key) for key, value in current.settings.items() if value == "auto"})
    try:
        cfg, method = resolve_config(flags, protocol=protocol)
    except BenchError as exc:
        return None, f"its method or schedule does not resolve today: {exc}"
    if config_hash(cfg.to_dict()) != config_hash(config):
        return None, f"its config is not version {current.version}'s: {_differences(config, cfg.to_dict())}"
    identity = method_identity(cfg, method)
    recorded_method = result.get("method") or {}
    if any(recorded_method.get(key) != value for key, value in identity.items()):
        return None, (f"method {identity['name']} is now version {identity['version']} from {identity['origin']}, "
                      f"the result's is {recorded_method.get('version')} from {recorded_method.get('origin')}")
    return run_dir_for(cfg, method).name, ""


def adopt(sources: list[Path], protocol: str, out: Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Copy every adoptable result under ``sources`` into ``out``; return (adopted (from, to), refused (file,
    reason)). An existing result in ``out`` is never overwritten."""
    current = PROTOCOLS.get(protocol)
    adopted: list[tuple[Path, Path]] = []
    refused: list[tuple[Path, str]] = []
    files = sorted(f for s in sources for f in ([s] if s.is_file() else s.rglob(RESULT_FILENAME)))
    today = _dt.date.today().isoformat()
    for path in files:
        try:
            result = read_result(path)
        except ValueError as exc:
            refused.append((path, f"unreadable: {exc}"))
            continue
        folder, reason = check(result, protocol)
        if folder is None:
            refused.append((path, reason))
            continue
        target = out / folder / RESULT_FILENAME
        if target.exists():
            refused.append((path, f"{target} exists already"))
            continue
        old = result["protocol"]["version"]
        result["protocol"] = {"name": protocol, "version": current.version,
                              "adopted_from": {"version": old, "adopted": today}}
        write_json_atomic(target, result)
        adopted.append((path, target))
    return adopted, refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="result files or folders (searched recursively)")
    parser.add_argument("--protocol", required=True, help="the protocol whose current version adopts them")
    parser.add_argument("--out", required=True, type=Path, help="results folder of the current version's grid")
    args = parser.parse_args(argv)
    try:
        version = PROTOCOLS.get(args.protocol).version
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    missing = [s for s in args.sources if not s.exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    adopted, refused = adopt(args.sources, args.protocol, args.out)
    for source, target in adopted:
        print(f"adopted  {source.parent.name} -> {target.parent}")
    for source, reason in refused:
        print(f"refused  {source.parent.name}: {reason}")
    print(f"{len(adopted)} adopted as {args.protocol} version {version}, {len(refused)} refused")
    return 0 if adopted or not refused else 1


if __name__ == "__main__":
    sys.exit(main())
