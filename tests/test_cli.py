"""The command line through typer's CliRunner: runs, listings, help and every kind of user mistake."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.registry import METHODS

runner = CliRunner()

# A small, fast budget: CIFAR ResNet-20 on 512 generated signs for one epoch.
FAST = ["--arch", "cifar_resnet20", "--epochs", "1", "--batch-size", "64", "--set", "max_train_samples=512",
        "--quiet"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def result_files(root: Path) -> list[Path]:
    return sorted(root.rglob("result.json"))


def assert_user_error(res, *needles: str, code: int = 2):
    out = res.output
    assert res.exit_code == code, out
    assert "Traceback" not in out
    for needle in needles:
        assert needle in out, out


def test_help_lists_commands_and_run_options():
    res = invoke("--help")
    assert res.exit_code == 0
    for cmd in ("run", "list", "leaderboard"):
        assert cmd in res.output
    res = invoke("run", "--help")
    assert res.exit_code == 0
    for opt in ("--method", "--arch", "--data", "--data-root", "--epochs", "--batch-size", "--lr", "--seed",
                "--device", "--split", "--out", "--set", "--schedule", "--protocol"):
        assert opt in res.output


def test_list_shows_every_builtin_method_with_version():
    res = invoke("list", "methods")
    assert res.exit_code == 0
    for name in ("sgd", "greedy_ce", "dgl", "infopro", "greedydib"):
        assert name in res.output
    assert "built-in" in res.output
    res = invoke("list")
    assert res.exit_code == 0
    for word in ("cifar_resnet32", "signs", "gtsrb", "cpu-cifar10"):
        assert word in res.output


def test_run_writes_a_complete_result_and_summary(tmp_path):
    res = invoke("run", "--method", "sgd", *FAST, "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "test top-1" in res.output and "result" in res.output
    (path,) = result_files(tmp_path)
    result = json.loads(path.read_text())
    assert result["status"] == "ok"
    assert result["schema_version"] == 1
    assert result["method"] == {"name": "sgd", "version": "1.0", "origin": "built-in",
                                "description": result["method"]["description"]}
    for key in ("test_top1", "test_top5", "train_seconds", "train_images_per_second", "peak_activation_bytes"):
        assert result["metrics"][key] is not None
    assert result["config"]["max_train_samples"] == 512 and result["config"]["schedule"] == "end_to_end"
    for key in ("python", "torch", "timm", "device", "git_commit"):
        assert key in result["env"]
    assert path.parent.name.startswith("sgd_cifar_resnet20_signs_seed0_")
    # the same config again is not re-run
    res = invoke("run", "--method", "sgd", *FAST, "--out", str(tmp_path))
    assert res.exit_code == 0 and "not run again" in res.output


def test_same_seed_same_result(tmp_path):
    a = invoke("run", "--method", "sgd", *FAST, "--seed", "7", "--out", str(tmp_path / "a"))
    b = invoke("run", "--method", "sgd", *FAST, "--seed", "7", "--out", str(tmp_path / "b"))
    assert a.exit_code == 0 and b.exit_code == 0
    ra, rb = (json.loads(result_files(tmp_path / d)[0].read_text()) for d in ("a", "b"))
    assert ra["metrics"]["test_top1"] == rb["metrics"]["test_top1"]
    assert ra["metrics"]["final_train_loss"] == rb["metrics"]["final_train_loss"]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--method", "sgdd"], ["Unknown method 'sgdd'", "Did you mean 'sgd'"]),
        (["--arch", "resnet_18"], ["Unknown architecture", "resnet18"]),
        (["--data", "cifar11"], ["Unknown dataset", "cifar10"]),
        (["--epochs", "0"], ["epochs must be at least 1"]),
        (["--set", "no_such_key=1"], ["unknown setting", "no_such_key"]),
        (["--method", "greedydib", "--set", "alpha=abc"], ["alpha", "expected a number"]),
        (["--set", "lr_schedule=linear"], ["lr_schedule", "cosine"]),
        (["--set", "novalue"], ["key=value"]),
        (["--method", "sgd", "--schedule", "sequential"], ["end_to_end"]),
        (["--split", "blocks:x"], ["split"]),
        (["--protocol", "cpu-cifar11"], ["Unknown protocol", "cpu-cifar10"]),
        (["--set", "data.foo=1"], ["unknown option", "foo", "num_classes"]),
        (["--set", "max_steps=0"], ["max_steps must be at least 1"]),
    ],
)
def test_user_mistakes_are_messages_not_tracebacks(tmp_path, args, needles):
    res = invoke("run", *args, "--out", str(tmp_path), "--quiet", "--epochs", "1") if "--epochs" not in args else \
        invoke("run", *args, "--out", str(tmp_path), "--quiet")
    assert_user_error(res, *needles)
    assert result_files(tmp_path) == []


def test_unknown_name_suggests_only_close_matches(tmp_path):
    res = invoke("run", "--method", "nope", "--out", str(tmp_path), "--quiet")
    assert_user_error(res, "Unknown method 'nope'", "Known methods: dgl, greedy_ce, greedydib, infopro, sgd")
    assert "Did you mean" not in res.output


def test_bad_flag_type_is_a_usage_error(tmp_path):
    res = invoke("run", "--epochs", "three", "--out", str(tmp_path))
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert result_files(tmp_path) == []


def test_missing_dataset_names_the_expected_path(tmp_path):
    res = invoke("run", "--data", "cifar10", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path))
    assert_user_error(res, "cifar-10-batches-py")
    assert result_files(tmp_path) == []


class NaNMethod:
    name = "nan_method"
    version = "0"
    description = "always diverges"
    default_schedule = "end_to_end"
    default_aux = None
    hparams: dict = {}

    def train(self, run):
        from bench.engine import train_local

        def loss(step):
            logits = step.head(step.features)
            return logits.sum() * float("inf"), logits

        return train_local(run, local_loss=loss)


def test_nan_loss_is_recorded_as_diverged(tmp_path):
    METHODS.register("nan_method", NaNMethod())
    try:
        res = invoke("run", "--method", "nan_method", *FAST, "--out", str(tmp_path))
    finally:
        METHODS._entries.pop("nan_method")
    assert_user_error(res, "diverged", code=1)
    (path,) = result_files(tmp_path)
    result = json.loads(path.read_text())
    assert result["status"] == "diverged" and "loss became" in result["message"]


def _install_fake_distribution(site: Path, module_body: str, entry: str) -> None:
    (site / "fake_bench_plugin.py").write_text(textwrap.dedent(module_body))
    dist = site / "fake_bench_plugin-0.3.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-bench-plugin\nVersion: 0.3.0\n")
    (dist / "entry_points.txt").write_text(f"[bench.methods]\n{entry}\n")


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("fake_bench_plugin", None)
    METHODS.load_plugins(force=True)
    for name in ("fake_sgd", "broken"):
        METHODS._entries.pop(name, None)


def test_third_party_method_runs_through_bench_run(plugin_site, tmp_path):
    _install_fake_distribution(
        plugin_site,
        """
        from bench.engine import cross_entropy_loss, train_local

        class FakeSGD:
            name = "fake_sgd"
            version = "0.3.0"
            description = "a plugin that trains end to end"
            default_schedule = "end_to_end"
            default_aux = None
            hparams = {"unused_knob": 1.0}

            def train(self, run):
                return train_local(run, local_loss=cross_entropy_loss)

        method = FakeSGD()
        """,
        "fake_sgd = fake_bench_plugin:method",
    )
    METHODS.load_plugins(force=True)
    res = invoke("list", "methods")
    assert "fake_sgd" in res.output and "fake-bench-plugin" in res.output
    res = invoke("run", "--method", "fake_sgd", *FAST, "--set", "unused_knob=2", "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    result = json.loads(result_files(tmp_path / "r")[0].read_text())
    assert result["method"]["origin"] == "fake-bench-plugin 0.3.0"
    assert result["config"]["hparams"] == {"unused_knob": 2.0}
    assert result["metrics"]["test_top1"] > 0
    # the same config again reuses the result; a new version of the method is a new run
    again = invoke("run", "--method", "fake_sgd", *FAST, "--set", "unused_knob=2", "--out", str(tmp_path / "r"))
    assert again.exit_code == 0 and len(result_files(tmp_path / "r")) == 1
    METHODS.get("fake_sgd").version = "0.4.0"
    bumped = invoke("run", "--method", "fake_sgd", *FAST, "--set", "unused_knob=2", "--out", str(tmp_path / "r"))
    assert bumped.exit_code == 0, bumped.output
    versions = sorted(json.loads(p.read_text())["method"]["version"] for p in result_files(tmp_path / "r"))
    assert versions == ["0.3.0", "0.4.0"]


def test_broken_plugin_warns_and_is_skipped(plugin_site, tmp_path):
    _install_fake_distribution(plugin_site, "raise ImportError('missing dependency xyz')\n",
                               "broken = fake_bench_plugin:method")
    METHODS.load_plugins(force=True)
    res = invoke("list", "methods")
    assert res.exit_code == 0 and "sgd" in res.output and "Traceback" not in res.output
    assert "warning:" in res.output and "missing dependency xyz" in res.output  # said once, as a warning
    row = next(line for line in res.output.splitlines() if line.split()[:1] == ["broken"])
    assert "BROKEN" in row and "fake-bench-plugin 0.3.0" in row
    res = invoke("run", "--method", "broken", "--out", str(tmp_path), "--quiet")
    assert_user_error(res, "failed to import", "fake-bench-plugin 0.3.0", "missing dependency xyz")
