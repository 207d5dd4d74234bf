"""The plugin API: one public namespace, declared hyperparameters and dataset options, --include, the guide's
example package installed and included, `bench list` in 80 columns, and runs interrupted by real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
from typer.testing import CliRunner

import bench
import bench.api
from bench.cli import app, console
from bench.errors import ConfigError
from bench.params import Param, coerce_value
from bench.registry import DATASETS, METHODS
from tests.plugin_helpers import install_distribution, isolated_registries, write  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_registries")

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
runner = CliRunner()

# the guide's example on a budget: 3 tiny modules, one epoch, a few hundred 16x16 images
SMALL = ["--epochs", "1", "--batch-size", "32", "--set", "data.train_size=192", "--set", "data.test_size=64",
         "--quiet"]


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def results(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("result.json"))]


# ------------------------------------------------------------------------------------------------ the public API


def test_the_public_api_is_one_namespace_reexported_from_bench():
    from bench import engine, method, params, registry
    from bench.data import base

    for name in bench.api.__all__:
        assert getattr(bench, name) is getattr(bench.api, name), name
    assert set(bench.__all__) == {"__version__", *bench.api.__all__}
    assert bench.train_local is engine.train_local and bench.LocalStep is engine.LocalStep
    assert bench.Method is method.Method and bench.RunContext is method.RunContext
    assert bench.ImageDataset is base.ImageDataset and bench.Param is params.Param
    assert bench.register_method is registry.register_method
    assert bench.ConfigError is ConfigError
    with pytest.raises(AttributeError):
        bench.no_such_name  # noqa: B018


def test_readme_lists_exactly_the_required_method_attributes():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Add a method"):]
    listed = re.search(r"has (.*?); no base class", section, re.S).group(1)
    names = re.findall(r"`(\w+)(?:\(run\))?`", listed)
    assert tuple(names) == bench.REQUIRED_ATTRIBUTES


# --------------------------------------------------------------------------------------- declared hyperparameters


@pytest.mark.parametrize(
    ("param", "given", "expected"),
    [
        (Param(0.1), "0.2", 0.2),
        (Param(0.1), "3", 3.0),
        (Param(0.1, per_module=True), "[0.1, 0.2]", [0.1, 0.2]),
        (Param(4, ge=1), "7", 7),
        (Param(True), "false", False),
        (Param("mean", choices=("mean", "sum")), "sum", "sum"),
        (Param("median"), "2", "2"),  # a string stays a string
        (Param(None, type=int, ge=0), "null", None),
        (Param(None), "[1, 2]", [1, 2]),  # no declared type: JSON
        (Param([1, 2], type=list), "3,4", [3, 4]),
    ],
)
def test_declared_values_are_coerced(param, given, expected):
    assert coerce_value("x", given, param) == expected


@pytest.mark.parametrize(
    ("param", "given", "needle"),
    [
        (Param(0.1), "[0.1,0.2]", "takes no list"),
        (Param(0.1, ge=0.0, lt=1.0), "1", "out of range; expected float in [0, 1)"),
        (Param(0.1, per_module=True, ge=0.0), "[0.1,-1]", "out of range"),
        (Param(4), "4.5", "expected an integer"),
        (Param(4), "true", "expected an integer"),
        (Param(0.1), "abc", "expected a number"),
        (Param(0.1), "nan", "expected a number"),
        (Param(True), "maybe", "expected true or false"),
        (Param("mean", choices=("mean", "sum")), "max", "'max' is not one of mean, sum"),
        (Param(0.1), "null", "a value is required"),
    ],
)
def test_declared_values_are_refused_with_what_is_accepted(param, given, needle):
    with pytest.raises(ConfigError) as err:
        coerce_value("smoothing", given, param, where="method 'm'")
    assert needle in str(err.value) and "smoothing of method 'm'" in str(err.value)


DECLARED = """
    from bench import ConfigError, Param, register_method, train_local

    class Declared:
        name, version, description = "declared", "1", "a method with declared hyperparameters"
        default_schedule, schedules, default_aux = "sequential", ("sequential",), "linear"
        per_module = ("beta",)
        hparams = {
            "beta": 0.5,
            "smoothing": Param(0.1, ge=0.0, lt=1.0, help="label smoothing of every local loss"),
            "mode": Param("mean", choices=("mean", "sum"), help="how the loss is reduced"),
            "steps": 3,
        }

        def validate(self, cfg):
            if cfg.hparams["mode"] == "sum" and cfg.hparams["smoothing"] > 0.5:
                raise ConfigError("mode=sum needs smoothing <= 0.5")

        def train(self, run):
            return train_local(run)

    register_method(Declared())
"""


def test_hyperparameters_are_validated_before_anything_runs(tmp_path):
    plugin = write(tmp_path / "declared.py", DECLARED)
    base = ["run", "--include", plugin, "--method", "declared", "--out", tmp_path / "runs", "--quiet"]
    cases = {
        ("--set", "smoothing=[0.1,0.2]"): "takes no list",
        ("--set", "smoothing=1.5"): "expected float in [0, 1)",
        ("--set", "mode=max"): "is not one of mean, sum",
        ("--set", "steps=2.5"): "expected an integer",
        ("--set", "beta=[0.1,x]"): "expected a number",
        ("--set", "mode=sum", "--set", "smoothing=0.6"): "mode=sum needs smoothing <= 0.5",
        ("--set", "bogus=1"): "bench list method declared",
    }
    for extra, needle in cases.items():
        res = invoke(*base, *extra)
        assert res.exit_code == 2, res.output
        assert needle in res.output and "Traceback" not in res.output, res.output
    assert results(tmp_path / "runs") == []
    from bench.runner import resolve_config

    cfg, _ = resolve_config({"method": "declared"}, sets=["beta=[0.1,0.2,0.3]", "steps=4", "smoothing=0"])
    assert cfg.hparams == {"beta": [0.1, 0.2, 0.3], "smoothing": 0.0, "mode": "mean", "steps": 4}


def test_list_shows_declared_hyperparameters_and_their_help(tmp_path):
    plugin = write(tmp_path / "declared.py", DECLARED)
    res = invoke("list", "method", "declared", "--include", plugin)
    assert res.exit_code == 0, res.output
    out = res.output
    assert f"file {plugin.resolve()}" in " ".join(out.split())
    assert "smoothing = 0.1  (float in [0, 1))" in out and "label smoothing of every local loss" in out
    assert "mode = mean  (one of mean, sum)" in out
    assert "beta = 0.5  (float, or a list of floats (one per module))" in out
    assert "steps = 3  (int)" in out


# ------------------------------------------------------------------------------------------------ bench list


def _lines(res) -> list[str]:
    return [line for line in res.output.splitlines() if line.strip()]


def test_list_fits_80_columns_one_line_per_entry(monkeypatch):
    monkeypatch.setattr(console, "_width", 80)
    res = invoke("list")
    assert res.exit_code == 0, res.output
    lines = _lines(res)
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    for name in ("sgd", "greedy_ce", "dgl", "infopro", "greedydib", "cifar_resnet20", "signs", "gtsrb",
                 "cpu-cifar10", "paper-cifar10-resnet110"):
        assert sum(1 for line in lines if line.split()[0] == name) == 1, name
    assert "sequential" in next(line for line in lines if line.split()[0] == "greedydib")
    assert "Renyi" not in res.output  # descriptions of methods only with -v
    verbose = invoke("list", "methods", "-v")
    assert verbose.exit_code == 0
    assert max(len(line) for line in _lines(verbose)) <= 80
    assert "Renyi" in verbose.output and "gamma = 0.01" in verbose.output and "(built-in)" in verbose.output


def test_list_describes_one_entry_and_refuses_unknown_names():
    for what, name, needle in [("method", "infopro", "loss_mode = contrast"), ("dataset", "signs", "num_classes = 10"),
                               ("dataset", "cifar100", "one of fine, coarse"), ("protocol", "cpu-gtsrb", "seeds:"),
                               ("arch", "cifar_resnet32", "family cifar_resnet")]:
        res = invoke("list", what, name)
        assert res.exit_code == 0 and needle in res.output, res.output
    res = invoke("list", "method", "greedydibb")
    assert res.exit_code == 2 and "Did you mean 'greedydib'" in res.output
    res = invoke("list", "dataset")
    assert res.exit_code == 2 and "needs a name" in res.output


def test_list_shows_broken_plugins_as_broken(tmp_path, monkeypatch):
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    write(site / "fake_bench_plugin.py", "raise ImportError('missing dependency xyz')\n")
    install_distribution(site, "fake-bench-plugin", "0.3.0", {"bench.datasets": {"brokends": "fake_bench_plugin:load"}})
    DATASETS.load_plugins(force=True)
    plugin = write(tmp_path / "nometh.py", """
        from bench import register_method

        class NoTrain:
            name, version, description, default_schedule = "notrain", "1", "forgot train", "sequential"

        register_method(NoTrain())
    """)
    res = invoke("list", "--include", plugin)
    assert res.exit_code == 0, res.output
    row = next(line for line in _lines(res) if line.split()[0] == "brokends")
    assert "BROKEN" in row and "fake-bench-plugin 0.3.0" in row
    assert "missing dependency xyz" in res.output
    row = next(line for line in _lines(res) if line.split()[0] == "notrain")
    assert "BROKEN" in row and "missing train" in res.output


# ----------------------------------------------------------------------------------------------- dataset options


RAND16 = """
    import torch
    from bench import ImageDataset, register_dataset

    @register_dataset("rand16")
    def rand16(root, *, allow_subset=False, download=False, n=128, classes=4):
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
        y = torch.arange(n) % classes
        return ImageDataset("rand16", classes, x, y, x[:32], y[:32], (0.5, 0.5, 0.5), (0.29, 0.29, 0.29), False)
"""


def test_plugin_dataset_options_are_validated_like_builtin_ones(tmp_path):
    plugin = write(tmp_path / "rand16.py", RAND16)
    base = ["run", "--include", plugin, "--data", "rand16", "--out", tmp_path / "runs", "--quiet"]
    res = invoke(*base, "--set", "data.bogus=1")
    assert res.exit_code == 2 and "Traceback" not in res.output
    for needle in ("unknown option(s) bogus for dataset 'rand16'", "accepted: classes, n", "--set data.KEY=VALUE"):
        assert needle in " ".join(res.output.split()), res.output
    res = invoke(*base, "--set", "data.n=many")
    assert res.exit_code == 2 and "n of dataset 'rand16'" in res.output and "expected an integer" in res.output
    builtin = invoke("run", "--set", "data.bogus=1", "--out", tmp_path / "runs", "--quiet")
    assert builtin.exit_code == 2 and "unknown option(s) bogus for dataset 'signs'" in builtin.output
    assert results(tmp_path / "runs") == []
    from bench.runner import resolve_config

    cfg, _ = resolve_config({"data": "rand16"}, sets=["data.n=64"])
    assert cfg.data_options == {"n": 64}  # only what was given: the loader's defaults do the rest


# --------------------------------------------------------------------------------- the guide's example package


def guide_files() -> dict[str, str]:
    """The code blocks of docs/plugins.md whose first line is ``# <path>``: path -> source."""
    blocks = re.findall(r"```(?:python|toml)\n(.*?)```", GUIDE.read_text(), re.S)
    files = {}
    for block in blocks:
        first, _, body = block.partition("\n")
        if re.fullmatch(r"# [\w/.]+\.(py|toml)", first.strip()):
            files[first[2:].strip()] = body
    return files


def test_the_guide_has_the_three_plugins_and_its_contracts():
    files = guide_files()
    assert {"my_method.py", "bench_example/smooth_ce.py", "bench_example/stripes.py", "bench_example/tiny_cnn.py",
            "pyproject.toml"} <= set(files)
    text = GUIDE.read_text()
    for heading in ("## The method contract", "## The dataset contract", "## The architecture contract"):
        assert heading in text
    for attribute in (*bench.REQUIRED_ATTRIBUTES, "default_aux", "hparams", "schedules", "per_module", "validate"):
        assert f"`{attribute}" in text, attribute
    for field in ("train_images", "train_labels", "mean", "std", "hflip", "train_boxes", "train_groups"):
        assert f"`{field}`" in text, field
    for field in ("step.k", "step.x", "step.y", "step.inputs", "step.features", "step.head", "step.is_last"):
        assert f"`{field}`" in text, field


def _write_package(folder: Path) -> Path:
    for path, source in guide_files().items():
        if path.startswith("bench_example/"):
            write(folder / path, source)
    (folder / "bench_example" / "__init__.py").write_text("")
    return folder / "bench_example"


def test_the_guide_package_runs_from_its_files_with_include(tmp_path):
    package = _write_package(tmp_path / "src")
    out = tmp_path / "runs"
    listing = invoke("list", "--include", package, "methods")
    assert listing.exit_code == 0, listing.output
    assert "smooth_ce" in listing.output and "file " in listing.output
    res = invoke("run", "--include", package, "--method", "smooth_ce", "--data", "stripes", "--arch", "tiny_cnn",
                 "--set", "smoothing=[0.2,0.1,0.0]", "--set", "data.num_classes=3", *SMALL, "--out", out)
    assert res.exit_code == 0, res.output
    (result,) = results(out)
    assert result["status"] == "ok" and result["method"]["origin"] == f"file {(package / 'smooth_ce.py').resolve()}"
    assert result["config"]["hparams"]["smoothing"] == [0.2, 0.1, 0.0]
    assert result["dataset"]["name"] == "stripes" and result["dataset"]["num_classes"] == 3
    assert result["architecture"]["num_modules"] == 3 and result["metrics"]["test_top1"] is not None
    res = invoke("run", "--include", package, "--method", "smooth_ce", "--data", "stripes", "--arch", "tiny_cnn",
                 "--set", "smoothing=[0.2,0.1]", *SMALL, "--out", out)  # the guide's own ConfigError from train
    assert res.exit_code == 2 and "smoothing has 2 values; the network has 3 modules" in res.output
    res = invoke("run", "--include", package, "--method", "smooth_ce", "--data", "stripes", "--arch", "tiny_cnn",
                 "--split", "blocks:2", *SMALL, "--out", out)
    assert res.exit_code == 2 and "tiny_cnn splits as 'stages'" in res.output
    assert len(results(out)) == 1


def test_the_guide_package_runs_installed_through_its_entry_points(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _write_package(site)
    entry_points = tomllib.loads(guide_files()["pyproject.toml"])["project"]["entry-points"]
    install_distribution(site, "bench-example", "0.1.0", entry_points)
    monkeypatch.syspath_prepend(str(site))
    for reg in (METHODS, DATASETS, bench.registry.ARCHITECTURES):
        reg.load_plugins(force=True)
    listing = invoke("list")
    for name in ("smooth_ce", "stripes", "tiny_cnn"):
        row = next(line for line in _lines(listing) if line.split()[0] == name)
        assert "bench-example 0.1.0" in row, listing.output
    out = tmp_path / "runs"
    res = invoke("run", "--method", "smooth_ce", "--data", "stripes", "--arch", "tiny_cnn", *SMALL, "--out", out)
    assert res.exit_code == 0, res.output
    mixed = invoke("run", "--method", "greedy_ce", "--data", "stripes", "--arch", "tiny_cnn", *SMALL, "--out", out)
    assert mixed.exit_code == 0, mixed.output
    by_method = {r["method"]["name"]: r for r in results(out)}
    assert by_method["smooth_ce"]["method"]["origin"] == "bench-example 0.1.0"
    assert by_method["smooth_ce"]["config"]["hparams"] == {"smoothing": 0.1, "last_plain": False}
    assert by_method["greedy_ce"]["status"] == "ok" and by_method["greedy_ce"]["dataset"]["name"] == "stripes"


def test_the_guide_quick_start_method_runs_with_include(tmp_path):
    plugin = write(tmp_path / "my_method.py", guide_files()["my_method.py"])
    out = tmp_path / "runs"
    args = ["run", "--include", plugin, "--method", "l2_features", "--arch", "cifar_resnet20",
            "--set", "data.num_classes=3", "--set", "data.image_size=16", "--set", "max_steps=2", *SMALL,
            "--out", out]
    res = invoke(*args, "--set", "beta=-1")
    assert res.exit_code == 2 and "beta of method 'l2_features'" in res.output and ">= 0" in res.output
    res = invoke(*args, "--set", "beta=0.01")
    assert res.exit_code == 0, res.output
    (result,) = results(out)
    assert result["config"]["hparams"] == {"beta": 0.01} and result["status"] == "ok"


def test_include_sweep_loads_the_file_in_its_workers(tmp_path):
    plugin = write(tmp_path / "my_method.py", guide_files()["my_method.py"])
    out = tmp_path / "runs"
    res = invoke("sweep", "--include", plugin, "--methods", "l2_features", "--seeds", "0", "--grid", "beta=0,0.01",
                 "--executor", "local", "--arch", "cifar_resnet20", "--epochs", "1", "--batch-size", "32",
                 "--set", "data.train_size=160", "--set", "data.test_size=40", "--set", "data.image_size=16",
                 "--set", "max_steps=1", "--out", out)
    assert res.exit_code == 0, res.output
    found = results(out)
    assert sorted(r["config"]["hparams"]["beta"] for r in found) == [0.0, 0.01]
    assert all(r["status"] == "ok" and r["method"]["origin"].startswith("file ") for r in found)


# ---------------------------------------------------------------------------------------------- real signals


HANG = """
    import os
    import time

    from bench import register_method, train_local

    class Hang:
        name, version, description, default_schedule = "hang", "1", "waits for a signal", "end_to_end"

        def train(self, run):
            flag = os.environ.get("HANG_FLAG")
            if flag:
                open(flag, "w").close()
                while True:
                    time.sleep(0.05)
            return train_local(run)

    register_method(Hang())
"""


def _start(tmp_path: Path, out: Path, hang: bool) -> tuple[subprocess.Popen, Path]:
    plugin = write(tmp_path / "hang.py", HANG)
    flag = tmp_path / f"started-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("HANG_FLAG", None)
    if hang:
        env["HANG_FLAG"] = str(flag)
    cmd = [sys.executable, "-c", "from bench.cli import main; main()", "run", "--include", str(plugin), "--method", "hang",
           "--arch", "cifar_resnet20", "--epochs", "1", "--batch-size", "32", "--set", "data.train_size=160",
           "--set", "data.test_size=40", "--set", "data.image_size=16", "--set", "max_steps=2", "--quiet",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, flag


def _wait_started(proc: subprocess.Popen, flag: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not flag.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before training started: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("training did not start in time")
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_is_recorded_as_interrupted_and_exits_130(tmp_path, sig):
    out = tmp_path / "runs"
    proc, flag = _start(tmp_path, out, hang=True)
    _wait_started(proc, flag)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stdout + stderr and "interrupted" in stderr
    (path,) = sorted(out.rglob("result.json"))
    result = json.loads(path.read_text())
    assert result["status"] == "interrupted" and result["finished_at"] is not None
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # written atomically
    # the same config again trains anew (an interrupted result is not a finished one)
    proc, _ = _start(tmp_path, out, hang=False)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, (stdout, stderr)
    assert json.loads(path.read_text())["status"] == "ok"


def test_a_killed_run_leaves_no_result_and_the_next_run_starts_cleanly(tmp_path):
    out = tmp_path / "runs"
    proc, flag = _start(tmp_path, out, hang=True)
    _wait_started(proc, flag)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert list(out.rglob("result.json")) == []
    proc, _ = _start(tmp_path, out, hang=False)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, (stdout, stderr)
    assert "not run again" not in stdout
    (path,) = sorted(out.rglob("result.json"))
    assert json.loads(path.read_text())["status"] == "ok"
