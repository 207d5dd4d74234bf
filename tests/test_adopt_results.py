"""scripts/adopt_results.py: an older version's result is carried over only when it is a run of the current recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.protocols import PROTOCOLS
from bench.results import SCHEMA_VERSION, UNTRAINED_FIELDS
from bench.runner import method_identity, resolve_config, run_dir_for
from tests.conftest import load_script

PROTOCOL = "cpu-gtsrb"


@pytest.fixture(scope="module")
def adopt():
    return load_script("adopt_results")


def _result(root: Path, name: str, *, version: int | None = None, method_version: str | None = None,
            **changes) -> tuple[Path, str]:
    """A result file as ``bench run --protocol cpu-gtsrb --method greedy_ce --schedule simultaneous`` writes it,
    recorded under ``version`` (the previous one by default), with ``changes`` made to its config; returns the
    file and the folder name the current version's sweep looks for."""
    cfg, method = resolve_config({"method": "greedy_ce", "seed": 1, "schedule": "simultaneous", "out": "."},
                                 protocol=PROTOCOL)
    config = {**cfg.to_dict(), **changes}
    identity = method_identity(cfg, method)
    if method_version is not None:
        identity["version"] = method_version
    result = {
        "schema_version": SCHEMA_VERSION, "status": "ok", "run_id": "r", "config": config,
        "protocol": {"name": PROTOCOL, "version": PROTOCOLS[PROTOCOL].version - 1 if version is None else version},
        "method": identity, "metrics": {"test_top1": 97.5, "val_top1": 99.0}, "env": {"cpu_id": "family 6"},
    }
    path = root / name / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(result))
    return path, run_dir_for(cfg, method).name


def test_a_run_of_the_current_recipe_is_adopted_with_its_origin_recorded(adopt, tmp_path: Path) -> None:
    source, folder = _result(tmp_path / "old", "cell")
    out = tmp_path / "new"
    adopted, refused = adopt.adopt([tmp_path / "old"], PROTOCOL, out)
    assert refused == [] and adopted == [(source, out / folder / "result.json")]
    copy = json.loads((out / folder / "result.json").read_text())
    current = PROTOCOLS[PROTOCOL].version
    assert copy["protocol"]["name"] == PROTOCOL and copy["protocol"]["version"] == current
    assert copy["protocol"]["adopted_from"]["version"] == current - 1
    original = json.loads(source.read_text())
    assert original["protocol"] == {"name": PROTOCOL, "version": current - 1}  # the source is left as it was
    assert {k: v for k, v in copy.items() if k != "protocol"} == {k: v for k, v in original.items() if k != "protocol"}


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"epochs": 3}, "epochs 3"),  # another budget: not the current recipe
        ({"batch_size": 128}, "batch_size 128"),
        ({"version": PROTOCOLS[PROTOCOL].version}, "not an older one"),  # already the current version
        ({"method_version": "0.0-old"}, "method greedy_ce is now version"),  # another method version trains otherwise
    ],
)
def test_anything_else_is_refused_with_the_reason(adopt, tmp_path: Path, kwargs: dict, reason: str) -> None:
    _result(tmp_path / "old", "cell", **kwargs)
    adopted, refused = adopt.adopt([tmp_path / "old"], PROTOCOL, tmp_path / "new")
    assert adopted == [] and len(refused) == 1 and reason in refused[0][1]
    assert not (tmp_path / "new").exists()


def test_an_existing_result_is_never_overwritten_and_the_cli_reports(adopt, tmp_path: Path, capsys) -> None:
    _, folder = _result(tmp_path / "old", "cell")
    target = tmp_path / "new" / folder / "result.json"
    target.parent.mkdir(parents=True)
    target.write_text('{"status": "ok"}')
    assert adopt.main([str(tmp_path / "old"), "--protocol", PROTOCOL, "--out", str(tmp_path / "new")]) == 1
    assert target.read_text() == '{"status": "ok"}'
    assert "exists already" in capsys.readouterr().out
    assert adopt.main([str(tmp_path / "missing"), "--protocol", PROTOCOL, "--out", str(tmp_path / "new")]) == 2
    assert adopt.main([str(tmp_path / "old"), "--protocol", "no-such", "--out", str(tmp_path / "new")]) == 2


def test_every_committed_adopted_result_is_a_run_of_the_version_it_is_filed_under(adopt) -> None:
    from bench.results import find_result_files, read_result

    results = Path(__file__).resolve().parents[1] / "leaderboards" / "results"
    checked = 0
    for path in find_result_files(results):
        result = read_result(path)
        record = result.get("protocol") or {}
        if "adopted_from" not in record or record["version"] != PROTOCOLS[record["name"]].version:
            continue
        as_made = {**result, "protocol": {"name": record["name"], "version": record["adopted_from"]["version"]}}
        folder, reason = adopt.check(as_made, record["name"])
        assert folder == path.parent.name, f"{path.parent.name}: {reason}"
        checked += 1
    if not checked:
        pytest.skip("no adopted result of a current protocol version is committed")


def test_the_adopted_sgd_cell_s_first_epoch_reproduces_on_the_grid_s_cpu() -> None:
    """evidence/cpu-gtsrb-v5-repro: `sgd` seed 0 of cpu-gtsrb version 5, run again for 2 epochs with one thread on
    the CPU of the version-5 grid, gives the adopted 12-epoch cell's first epoch to the last digit (the warm-up epoch
    does not depend on the budget): the adopted cells and the cells run for version 5 come from the same arithmetic."""
    from bench.results import read_result

    repo = Path(__file__).resolve().parents[1]
    (repro_path,) = (repo / "evidence" / "cpu-gtsrb-v5-repro").glob("*/result.json")
    repro = read_result(repro_path)
    adopted = [r for r in map(read_result, (repo / "leaderboards" / "results").glob("sgd_*gtsrb_seed0_*/result.json"))
               if r["protocol"].get("version") == 5]
    if not adopted:
        pytest.skip("cpu-gtsrb version 5's sgd seed 0 is not committed")
    (cell,) = adopted
    assert cell["protocol"]["adopted_from"]["version"] == 4 and cell["config"]["epochs"] == 12
    assert repro["config"]["epochs"] == 2 and repro["env"]["threads"] == cell["env"]["threads"] == 1
    ignored = {"epochs", *UNTRAINED_FIELDS}
    assert {k: v for k, v in repro["config"].items() if k not in ignored} == {
        k: v for k, v in cell["config"].items() if k not in ignored}
    assert repro["history"][0] == cell["history"][0]
    assert repro["history"][1] != cell["history"][1]  # after the warm-up the 2- and 12-epoch schedules part
