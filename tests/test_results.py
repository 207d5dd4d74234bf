"""Every run as a row: bench.results.load, where, export, and the `bench results` command, on hand-written
result files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench import results as res
from bench.cli import app
from bench.errors import ConfigError
from tests.test_leaderboard import MIB, make_result, save

runner = CliRunner()

HISTORY = [
    {"phase": 0, "module": 0, "epoch": 1, "train_loss": 2.1, "train_acc": 20.0, "val_top1": None,
     "test_top1": 25.0},
    {"phase": 0, "module": 1, "epoch": 1, "train_loss": 2.0, "train_acc": 22.0, "val_top1": None,
     "test_top1": 27.5},
]


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    save(root, make_result("sgd", 0, 60.0, activation_bytes=250 * MIB))
    save(root, make_result("sgd", 1, 62.0, activation_bytes=250 * MIB, protocol="cpu-gtsrb"))
    dgl = make_result("dgl", 0, 55.5, schedule="simultaneous", module_top1=[40.0, 50.0, 55.5],
                      hparams={"gamma": 0.5, "note": "x"})
    dgl["history"] = HISTORY
    save(root, dgl)
    save(root, make_result("infopro", 2, 58.0, schedule="simultaneous", hparams={"loss_mode": "contrast"},
                           module_top1=[30.0, 45.0, 58.0]))
    save(root, make_result("greedydib", 1, status="diverged", top1=None, message="loss is nan", protocol=None))
    return root


def test_load_one_row_per_file_with_flat_columns(results_dir: Path) -> None:
    df = res.load(results_dir)
    assert len(df) == 5
    for column in ("run_id", "status", "protocol.name", "protocol.version", "method.name", "config.seed",
                   "config.hparams.gamma", "config.hparams.loss_mode", "metrics.test_top1", "metrics.module_top1",
                   "env.layerbench", "history", "source"):
        assert column in df.columns, column
    row = df[df["method.name"] == "dgl"].iloc[0]
    assert row["metrics.test_top1"] == 55.5
    assert row["metrics.module_top1"] == [40.0, 50.0, 55.5]
    assert row["history"] == HISTORY
    assert row["config.hparams.gamma"] == 0.5
    assert row["source"].endswith("/result.json") and Path(row["source"]).is_file()
    # Sorted by path, so the same files always give the same frame.
    assert list(df["source"]) == sorted(df["source"])
    # A run outside any protocol has a missing protocol name, not a "protocol" column holding null.
    assert df["protocol.name"].isna().sum() == 1 and "protocol" not in df.columns


def test_dtypes_are_stable(results_dir: Path, tmp_path: Path) -> None:
    df = res.load(results_dir)
    assert df["config.seed"].dtype == "Int64"
    assert df["protocol.version"].dtype == "Int64"
    assert df["metrics.test_top1"].dtype == "float64"
    assert df["metrics.peak_activation_bytes"].dtype == "float64"
    assert df["metrics.module_top1"].dtype == object
    assert df["history"].dtype == object
    assert df["status"].dtype == "string" and df["method.name"].dtype == "string"
    assert str(df["finished_at"].dtype).startswith("datetime64") and str(df["finished_at"].dt.tz) == "UTC"
    assert df["config.hparams.gamma"].dtype == "float64"  # inferred: numbers
    assert df["config.hparams.note"].dtype == "string"  # inferred: text
    # The diverged run has no top-1: NaN in a float column, not an object column.
    assert df.loc[df["status"] == "diverged", "metrics.test_top1"].isna().all()
    # Known columns exist with their dtype even when no file has them, and an empty folder gives them too.
    assert df["metrics.test_top1_best"].isna().all() and df["metrics.test_top1_best"].dtype == "float64"
    (tmp_path / "empty").mkdir()
    empty = res.load(tmp_path / "empty")
    assert len(empty) == 0
    for name, dtype in res.COLUMNS.items():
        assert name in empty.columns
        assert (dtype == "datetime") == str(empty[name].dtype).startswith("datetime64"), name
    assert empty["config.seed"].dtype == "Int64" and empty["metrics.test_top1"].dtype == "float64"


def test_bad_files_are_skipped_with_a_warning(results_dir: Path) -> None:
    (results_dir / "corrupt").mkdir()
    (results_dir / "corrupt" / "result.json").write_text('{"schema_version": 1, "run_id": ')
    save(results_dir, {**make_result("sgd", 7), "schema_version": 99}, folder="future")
    with pytest.warns(res.ResultFileWarning) as caught:
        df = res.load(results_dir)
    assert len(df) == 5
    messages = [str(w.message) for w in caught]
    assert any("corrupt/result.json" in m and "not valid JSON" in m for m in messages)
    assert any("future/result.json" in m and "99" in m for m in messages)
    seen: list[str] = []
    assert len(res.load(results_dir, on_warning=seen.append)) == 5
    assert len(seen) == 2


def test_load_files_and_several_paths(results_dir: Path, tmp_path: Path) -> None:
    files = res.find_result_files(results_dir)
    assert len(res.load(files[0])) == 1
    assert len(res.load([files[0], files[1]])) == 2
    seen: list[str] = []
    assert len(res.load([files[0], tmp_path / "nowhere"], on_warning=seen.append)) == 1
    assert "nowhere" in seen[0]


def test_where_filters_by_short_names_and_columns(results_dir: Path) -> None:
    df = res.load(results_dir)

    def methods(*conditions: str) -> list[str]:
        return sorted(res.where(df, conditions)["method.name"])

    assert methods("method=dgl") == ["dgl"]
    assert methods("protocol=cpu-gtsrb") == ["sgd"]
    assert methods("method=sgd", "protocol=cpu-cifar10") == ["sgd"]
    assert methods("method=dgl,infopro") == ["dgl", "infopro"]
    assert methods("method!=sgd", "status=ok") == ["dgl", "infopro"]
    assert methods("seed=1") == ["greedydib", "sgd"]
    assert methods("k=3", "schedule=simultaneous") == ["dgl", "infopro"]
    assert methods("loss_mode=contrast") == ["infopro"]  # a method hyperparameter by its own name
    assert methods("config.hparams.gamma=0.5") == ["dgl"]
    assert methods("metrics.test_top1=60") == ["sgd"]
    assert methods("arch=cifar_resnet20", "data=cifar10") == ["dgl", "greedydib", "infopro", "sgd", "sgd"]


@pytest.mark.parametrize(
    ("condition", "needle"),
    [
        ("mehtod=dgl", "did you mean method"),
        ("nosuch=1", "unknown column 'nosuch'"),
        ("seed=one", "holds numbers"),
        ("method", "expected KEY=VALUE"),
        ("=dgl", "expected KEY=VALUE"),
    ],
)
def test_where_errors(results_dir: Path, condition: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        res.where(res.load(results_dir), [condition])


def test_csv_round_trip(results_dir: Path, tmp_path: Path) -> None:
    df = res.load(results_dir)
    path = tmp_path / "runs.csv"
    assert res.export(df, "csv", path) is None
    back = pd.read_csv(path)
    assert list(back.columns) == list(df.columns)
    assert list(back["run_id"]) == list(df["run_id"])
    assert back["metrics.test_top1"].equals(df["metrics.test_top1"])
    assert [json.loads(v) if isinstance(v, str) else None for v in back["metrics.module_top1"]] == list(
        df["metrics.module_top1"]
    )
    dgl = back[back["method.name"] == "dgl"].iloc[0]
    assert json.loads(dgl["history"]) == HISTORY
    assert list(pd.to_datetime(back["finished_at"], utc=True)) == list(df["finished_at"])
    # Without a path the text comes back.
    assert res.export(df, "csv") == path.read_text()


def test_json_round_trip(results_dir: Path) -> None:
    df = res.load(results_dir)
    records = json.loads(res.export(df, "json"))
    assert len(records) == len(df) and set(records[0]) == set(df.columns)
    by_method = {r["method.name"]: r for r in records if r["protocol.name"] == "cpu-cifar10"}
    assert by_method["dgl"]["metrics.module_top1"] == [40.0, 50.0, 55.5]
    assert by_method["dgl"]["history"] == HISTORY
    assert by_method["sgd"]["config.seed"] == 0 and by_method["sgd"]["metrics.test_top1_best"] is None
    assert by_method["sgd"]["finished_at"] == "2026-11-22T10:05:00Z"
    back = pd.read_json(io.StringIO(res.export(df, "json")), orient="records")
    assert back["metrics.test_top1"].equals(df["metrics.test_top1"])


def test_parquet_round_trip(results_dir: Path, tmp_path: Path) -> None:
    if res.parquet_engine() is None:
        pytest.skip("no Parquet engine installed (pip install pyarrow)")
    df = res.load(results_dir)
    path = tmp_path / "runs.parquet"
    res.export(df, "parquet", path)
    back = pd.read_parquet(path)
    assert list(back.columns) == list(df.columns)
    assert list(back["run_id"]) == list(df["run_id"])
    assert back["metrics.test_top1"].equals(df["metrics.test_top1"])
    assert back["config.seed"].astype("Int64").equals(df["config.seed"])

    def as_list(v):
        if isinstance(v, str):
            return json.loads(v)
        return None if v is None else [float(x) for x in v]

    assert [as_list(v) for v in back["metrics.module_top1"]] == list(df["metrics.module_top1"])


def test_parquet_without_an_engine_names_the_package(results_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(res, "parquet_engine", lambda: None)
    with pytest.raises(ConfigError, match="pip install pyarrow"):
        res.export(res.load(results_dir), "parquet", tmp_path / "x.parquet")
    out = runner.invoke(app, ["results", "--results", str(results_dir), "--format", "parquet", "--out",
                              str(tmp_path / "x.parquet")])
    assert out.exit_code == 2 and "pyarrow" in out.output and "Traceback" not in out.output
    assert not (tmp_path / "x.parquet").exists()


# --------------------------------------------------------------------------------------------------- CLI


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_cli_table_filters_and_counts(results_dir: Path) -> None:
    out = invoke("results", "--results", str(results_dir), "--where", "method=dgl")
    assert out.exit_code == 0, out.output
    assert "1 of 5 run(s)" in out.output
    assert "dgl" in out.output and "55.50" in out.output
    assert "infopro" not in out.output and "60.00" not in out.output


def test_cli_csv_with_columns(results_dir: Path, tmp_path: Path) -> None:
    out = invoke("results", "--results", str(results_dir), "--where", "protocol=cpu-cifar10", "--where",
                 "status=ok", "--columns", "method,seed,top1", "--format", "csv")
    assert out.exit_code == 0, out.output
    back = pd.read_csv(io.StringIO(out.output))
    assert list(back.columns) == ["method.name", "config.seed", "metrics.test_top1"]
    assert sorted(zip(back["method.name"], back["metrics.test_top1"], strict=True)) == [
        ("dgl", 55.5), ("infopro", 58.0), ("sgd", 60.0)
    ]
    target = tmp_path / "out" / "runs.json"
    out = invoke("results", "--results", str(results_dir), "--format", "json", "--out", str(target))
    assert out.exit_code == 0, out.output
    assert len(json.loads(target.read_text())) == 5


def _has_parquet_engine() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(name) is not None for name in ("pyarrow", "fastparquet"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--where", "nosuch=1"], "unknown column 'nosuch'"),
        (["--where", "seed=abc"], "holds numbers"),
        (["--columns", "method,bogus"], "unknown column 'bogus'"),
        (["--format", "xml"], "xml"),
        # parquet needs a file (--out), and an engine: without pyarrow that is said first
        (["--format", "parquet"], "--out" if _has_parquet_engine() else "pip install pyarrow"),
        (["--out", "x.csv"], "give --format"),
    ],
)
def test_cli_user_errors_exit_2_without_traceback(results_dir: Path, args: list[str], needle: str) -> None:
    out = invoke("results", "--results", str(results_dir), *args)
    assert out.exit_code == 2, out.output
    assert needle in out.output
    assert "Traceback" not in out.output


def test_cli_missing_folder(tmp_path: Path) -> None:
    out = invoke("results", "--results", str(tmp_path / "nowhere"))
    assert out.exit_code == 2 and "does not exist" in out.output


def test_notebook_example_groups(results_dir: Path) -> None:
    """The README's three lines: load, then groupby/agg."""
    df = res.load(results_dir)
    table = df.groupby(["protocol.name", "method.name"])["metrics.test_top1"].agg(["mean", "count"])
    assert table.loc[("cpu-cifar10", "dgl"), "mean"] == 55.5
    assert table.loc[("cpu-cifar10", "sgd"), "count"] == 1 and table.loc[("cpu-gtsrb", "sgd"), "mean"] == 62.0


def test_run_identity_ignores_where_the_data_lies_but_not_what_is_trained(tmp_path):
    from bench.runner import resolve_config, run_dir_for

    def run_dir(**flags):
        cfg, method = resolve_config({"method": "sgd", "out": str(tmp_path), **flags})
        return run_dir_for(cfg, method)

    assert run_dir(data_root="../shared/data") == run_dir(data_root="/elsewhere/data")
    assert run_dir(data_root="../shared/data") != run_dir(data_root="../shared/data", seed=1)
    assert run_dir() != run_dir(lr=0.2)


def test_a_finished_run_is_reused_only_under_the_same_protocol_version(tmp_path: Path) -> None:
    from bench.runner import execute, resolve_config

    sets = ["data.num_classes=4", "data.train_size=64", "data.test_size=16", "data.image_size=16", "max_steps=1"]
    cfg, m = resolve_config({"method": "sgd", "epochs": 1, "batch_size": 32, "out": str(tmp_path)}, sets=sets)
    first, path = execute(cfg, m)
    again, _ = execute(cfg, m)
    assert again.get("_skipped") and again["run_id"] == first["run_id"]  # same config, method and protocol: reused
    stored = json.loads(path.read_text())
    stored["protocol"] = {"name": "cpu-gtsrb", "version": 4}  # the same config recorded under another protocol
    res.write_json_atomic(path, stored)
    rerun, _ = execute(cfg, m)
    assert not rerun.get("_skipped") and rerun["protocol"] is None  # run again, and recorded as what it is now


def test_a_result_adopted_into_the_current_protocol_version_is_reused(tmp_path: Path) -> None:
    from bench.protocols import PROTOCOLS
    from bench.runner import execute, resolve_config

    sets = ["data.num_classes=4", "data.train_size=64", "data.test_size=16", "data.image_size=16", "max_steps=1"]
    flags = {"method": "sgd", "data": "signs", "arch": "cifar_resnet20", "split": "blocks:2", "epochs": 1,
             "batch_size": 32, "val_split": 0.0, "warmup_epochs": 0, "out": str(tmp_path)}
    cfg, m = resolve_config(flags, sets=sets, protocol="cpu-gtsrb")
    first, path = execute(cfg, m)
    current = PROTOCOLS["cpu-gtsrb"].version
    assert first["protocol"] == {"name": "cpu-gtsrb", "version": current}
    stored = json.loads(path.read_text())
    stored["protocol"] = {"name": "cpu-gtsrb", "version": current, "adopted_from": {"version": current - 1}}
    res.write_json_atomic(path, stored)
    again, _ = execute(cfg, m)
    assert again.get("_skipped") and again["protocol"]["adopted_from"] == {"version": current - 1}
    stored["protocol"] = {"name": "cpu-gtsrb", "version": current - 1}  # not adopted: an older version runs again
    res.write_json_atomic(path, stored)
    rerun, _ = execute(cfg, m)
    assert not rerun.get("_skipped") and rerun["protocol"] == {"name": "cpu-gtsrb", "version": current}
