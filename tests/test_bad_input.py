"""The bad-input catalogue: every case is a message that names the problem and what to do, a non-zero exit, no
traceback on the screen, and no result claiming success. docs/errors.md lists the same cases by id."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bench.cli import app
from tests.plugin_helpers import install_distribution, isolated_registries, write  # noqa: F401
from tests.test_data import write_cifar10, write_gtsrb

pytestmark = pytest.mark.usefixtures("isolated_registries")
runner = CliRunner()
DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"

TINY = ["--epochs", "1", "--batch-size", "16", "--set", "data.train_size=64", "--set", "data.test_size=32",
        "--set", "data.image_size=16", "--set", "max_steps=1", "--quiet"]
"""A budget for the cases that get as far as data and network: signs at 16x16, one step."""
BUDGET = ["--epochs", "1", "--batch-size", "16", "--set", "max_steps=1", "--quiet"]


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Path, pytest.MonkeyPatch], list]
    """The command line, given a fresh folder (for the files the case needs) and monkeypatch."""
    needles: tuple[str, ...]
    """What the message must say: the problem, and what to do."""
    code: int = 2


def run(*extra) -> Callable[[Path, pytest.MonkeyPatch], list]:
    return lambda tmp, mp: ["run", *extra, "--out", tmp / "runs", "--quiet"]


def plugin(source: str, *extra: str) -> Callable[[Path, pytest.MonkeyPatch], list]:
    """`bench run --include <a file holding source> ...` (on the small signs unless ``--data`` is given)."""
    def argv(tmp: Path, mp) -> list:
        path = write(tmp / "plugin.py", source)
        budget = BUDGET if "--data" in extra else TINY
        return ["run", "--include", path, *extra, *budget, "--out", tmp / "runs"]
    return argv


def config_file(name: str, text: str) -> Callable[[Path, pytest.MonkeyPatch], list]:
    def argv(tmp: Path, mp) -> list:
        return ["run", "--config", write(tmp / name, text), "--out", tmp / "runs", "--quiet"]
    return argv


# ------------------------------------------------------------------------------------------- dataset files


def cifar(damage: Callable[[Path], None] | None = None) -> Callable[[Path, pytest.MonkeyPatch], list]:
    def argv(tmp: Path, mp) -> list:
        if damage is not None:
            write_cifar10(tmp / "data")
            damage(tmp / "data" / "cifar-10-batches-py")
        return ["run", "--data", "cifar10", "--data-root", tmp / "data", "--out", tmp / "runs", "--quiet"]
    return argv


def _truncate(folder: Path) -> None:
    path = folder / "data_batch_1"
    path.write_bytes(path.read_bytes()[:100])


def _wrong_shape(folder: Path) -> None:
    batch = {"batch_label": "x", "labels": [0, 1, 2], "data": np.zeros((3, 100), np.uint8)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch))


def _bad_labels(folder: Path) -> None:
    batch = {"batch_label": "x", "labels": [0, 11, 2], "data": np.zeros((3, 3072), np.uint8)}
    (folder / "data_batch_2").write_bytes(pickle.dumps(batch))


def gtsrb(damage: Callable[[Path], None]) -> Callable[[Path, pytest.MonkeyPatch], list]:
    def argv(tmp: Path, mp) -> list:
        write_gtsrb(tmp / "data" / "gtsrb")
        damage(tmp / "data" / "gtsrb")
        return ["run", "--data", "gtsrb", "--data-root", tmp / "data", "--set", "data.cache=false", "--out",
                tmp / "runs", "--quiet"]
    return argv


def _class_csv(base: Path) -> Path:
    return base / "GTSRB" / "Training" / "00002" / "GT-00002.csv"


def _drop_column(base: Path) -> None:
    path = _class_csv(base)
    rows = [line.split(";")[:-1] for line in path.read_text().splitlines()]
    path.write_text("\n".join(";".join(r) for r in rows) + "\n")


def _remove_image(base: Path) -> None:
    (base / "GTSRB" / "Final_Test" / "Images" / "00001.ppm").unlink()


def _box_outside(base: Path) -> None:
    path = _class_csv(base)
    lines = path.read_text().splitlines()
    cells = lines[1].split(";")  # Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId
    cells[5] = str(int(cells[1]) + 7)
    lines[1] = ";".join(cells)
    path.write_text("\n".join(lines) + "\n")


def _corrupt_image(base: Path) -> None:
    (base / "GTSRB" / "Training" / "00000" / "00000_00001.ppm").write_bytes(b"not an image")


# -------------------------------------------------------------------------------------------- result files


def result_file(text: str | dict, command: str) -> Callable[[Path, pytest.MonkeyPatch], list]:
    def argv(tmp: Path, mp) -> list:
        path = tmp / "runs" / "r" / "result.json"
        write(path, text if isinstance(text, str) else json.dumps(text))
        if command == "results":
            return ["results", "--results", path]
        return ["plot", "curves", path.parent]
    return argv


OK_RESULT = {"schema_version": 1, "run_id": "x", "status": "ok", "config": {}, "method": {}, "metrics": {},
             "env": {}, "history": [{"phase": 0, "module": None, "epoch": 1, "train_loss": 1.0}]}


# ---------------------------------------------------------------------------------------------- plugins

METHOD = """
    from bench import ConfigError, Param, register_method, train_local

    class Plugin:
        name, version, description = "p", "1", "a test plugin"
        default_schedule, default_aux = "end_to_end", None
        hparams = {{"smoothing": Param(0.1, ge=0.0, lt=1.0, help="label smoothing")}}
        {body}

        def train(self, run):
            {train}
            return train_local(run)

    register_method(Plugin())
"""


def method(body: str = "", train: str = "pass") -> str:
    return METHOD.format(body=body, train=train)


DATASET = """
    import torch
    from bench import ImageDataset, register_dataset

    @register_dataset("pdata", options={{"n": 64}})
    def pdata(root, *, allow_subset=False, download=False, n=64):
        x = torch.zeros(n, 3, 16, 16, dtype=torch.uint8)
        y = torch.arange(n) % 4
        mean, std, boxes = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), None
        {body}
        return ImageDataset("pdata", 4, x, y, x[:16], y[:16], mean, std, False, train_boxes=boxes)
"""


def dataset(body: str) -> str:
    return DATASET.format(body=body)


ARCH = """
    from torch import nn
    from bench import StagedNet, register_architecture

    @register_architecture("parch")
    def parch(*, num_classes, split, image_size, cifar_stem=None):
        stages = [nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())]
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, {classes}))
        {body}
        return StagedNet(stages, head, arch="parch", split=split, input_shape=(3, image_size, image_size),
                         num_classes=num_classes)
"""


def arch(body: str = "pass", classes: str = "num_classes") -> str:
    return ARCH.format(body=body, classes=classes)


def entry_point_import_error(tmp: Path, mp: pytest.MonkeyPatch) -> list:
    from bench.registry import METHODS

    site = tmp / "site"
    write(site / "fake_bench_plugin.py", "raise ImportError('missing dependency xyz')\n")
    install_distribution(site, "fake-bench-plugin", "0.3.0", {"bench.methods": {"broken": "fake_bench_plugin:m"}})
    mp.syspath_prepend(str(site))
    METHODS.load_plugins(force=True)
    return ["run", "--method", "broken", "--out", tmp / "runs", "--quiet"]


def include_folder_without_python(tmp: Path, mp) -> list:
    (tmp / "empty").mkdir()
    return ["run", "--include", tmp / "empty", "--out", tmp / "runs", "--quiet"]


CASES = [
    # --- command-line flags
    Case("flag-unknown-method", run("--method", "sgdd"), ("Unknown method 'sgdd'", "Did you mean 'sgd'")),
    Case("flag-unknown-arch", run("--arch", "resnet_18"), ("Unknown architecture 'resnet_18'", "resnet18")),
    Case("flag-unknown-dataset", run("--data", "cifar11"), ("Unknown dataset 'cifar11'", "cifar10")),
    Case("flag-unknown-protocol", run("--protocol", "cpu-cifar11"), ("Unknown protocol", "cpu-cifar10")),
    Case("flag-not-a-number", run("--epochs", "three"), ("Invalid value for '--epochs'", "valid integer")),
    Case("flag-out-of-range", run("--epochs", "0"), ("epochs must be at least 1",)),
    Case("flag-not-a-choice", run("--device", "tpu"), ("'tpu' is not one of", "'cpu'")),
    Case("flag-unknown-option", run("--epoch", "3"), ("No such option: --epoch", "--epochs")),
    Case("flag-bad-split", run("--split", "blocks:x", *TINY), ("split", "blocks:K")),
    Case("flag-schedule-not-offered", run("--method", "sgd", "--schedule", "sequential"),
         ("runs with schedule end_to_end", "not 'sequential'")),
    Case("flag-unknown-aux-head", run("--aux", "nohead", *TINY), ("unknown auxiliary head 'nohead'", "conv")),
    Case("flag-include-missing", run("--include", "no_such_file.py"), ("no such file or folder", ".py file")),
    Case("flag-include-not-python", lambda tmp, mp: ["run", "--include", write(tmp / "notes.txt", "x"),
                                                     "--out", tmp / "runs"], ("not a Python file", ".py")),
    Case("flag-include-empty-folder", include_folder_without_python, ("holds no .py file",)),
    Case("list-without-a-name", lambda tmp, mp: ["list", "method"], ("needs a name", "bench list methods")),
    Case("sweep-bad-seeds", lambda tmp, mp: ["sweep", "--seeds", "a,b", "--dry-run"],
         ("--seeds expects comma-separated integers",)),
    Case("sweep-bad-grid", lambda tmp, mp: ["sweep", "--grid", "gamma", "--dry-run"], ("key=v1,v2",)),
    # --- config files
    Case("config-missing", run("--config", "no_such.toml"), ("config file no_such.toml does not exist",)),
    Case("config-invalid-toml", config_file("c.toml", "epochs = = 3\n"), ("is not valid TOML", "line 1")),
    Case("config-invalid-json", config_file("c.json", "{\"epochs\": 3,}"), ("is not valid JSON",)),
    Case("config-not-a-table", config_file("c.json", "[1, 2]"), ("must hold a table of key = value", "list")),
    Case("config-unknown-key", config_file("c.toml", "epochz = 3\n"),
         ("unknown setting(s) epochz", "Config keys:", "epochs")),
    Case("config-wrong-type", config_file("c.toml", "epochs = \"many\"\n"), ("epochs: expected an integer",)),
    Case("config-hparams-not-a-table", config_file("c.toml", "hparams = 3\n"), ("'hparams' must be a mapping",)),
    # --- --set values
    Case("set-without-equals", run("--set", "novalue"), ("--set expects key=value", "novalue")),
    Case("set-unknown-key", run("--set", "no_such_key=1"), ("unknown setting(s) no_such_key", "bench list method")),
    Case("set-not-a-number", run("--method", "greedydib", "--set", "alpha=abc"),
         ("alpha of method 'greedydib'", "expected a number")),
    Case("set-list-for-a-number", run("--method", "greedydib", "--set", "alpha=[1,2]"),
         ("alpha of method 'greedydib'", "takes no list")),
    Case("set-not-a-choice", run("--set", "lr_schedule=linear"), ("lr_schedule 'linear' is not one of", "cosine")),
    Case("set-integer-field", run("--set", "seed=1.5"), ("seed: expected an integer", "1.5")),
    Case("set-out-of-range", run("--set", "val_split=1.5"), ("val_split must be a fraction in [0, 1)",)),
    Case("set-method-choice", run("--method", "greedydib", "--set", "regularizer=bogus", *TINY),
         ("regularizer 'bogus' is not one of entropy, ixt, markov",)),
    Case("set-per-module-length", run("--method", "greedydib", "--set", "gamma=[0.1,0.2]", *TINY),
         ("gamma has 2 values but the network has 3 modules",)),
    Case("set-dataset-unknown-option", run("--set", "data.foo=1"),
         ("unknown option(s) foo for dataset 'signs'", "num_classes", "--set data.KEY=VALUE")),
    Case("set-dataset-option-range", run("--set", "data.num_classes=1"),
         ("num_classes of dataset 'signs'", "int in [2, 20]")),
    Case("set-dataset-option-list", run("--set", "data.image_size=[16,32]"), ("image_size", "takes no list")),
    # --- dataset files
    Case("data-missing", cifar(), ("cifar10 not found", "cifar-10-batches-py", "Download and extract")),
    Case("data-truncated-pickle", cifar(_truncate), ("data_batch_1", "truncated", "fresh extract")),
    Case("data-wrong-shape-array", cifar(_wrong_shape), ("(N, 3072)", "(3, 100)", "fresh extract")),
    Case("data-labels-out-of-range", cifar(_bad_labels), ("labels outside 0..9", "fresh extract")),
    Case("data-csv-without-a-column", gtsrb(_drop_column), ("missing column(s) ClassId", "get the file again")),
    Case("data-listed-image-missing", gtsrb(_remove_image), ("00001.ppm", "is missing", "restore it")),
    Case("data-box-outside-its-image", gtsrb(_box_outside), ("is not a box inside its", "correct the row")),
    Case("data-corrupt-image", gtsrb(_corrupt_image), ("corrupt GTSRB image", "00000_00001.ppm", "restore it")),
    # --- result files
    Case("result-corrupt-json", result_file("{\"schema_version\": 1, \"run", "plot"),
         ("not valid JSON", "run it again")),
    Case("result-unknown-schema", result_file({**OK_RESULT, "schema_version": 99}, "plot"),
         ("unknown schema_version 99", "another version of layerbench")),
    Case("result-missing-keys", result_file({"schema_version": 1, "status": "ok"}, "plot"),
         ("missing keys", "run it again")),
    Case("result-corrupt-json-in-results", result_file("{\"schema", "results"), ("cannot be read", "not valid JSON")),
    Case("result-unknown-status", result_file({**OK_RESULT, "status": "great"}, "results"),
         ("status 'great' is not one of", "run it again")),
    # --- plugins
    Case("plugin-import-error", plugin("import not_a_module_xyz\n"),
         ("failed to import (line 1)", "No module named 'not_a_module_xyz'", "install what it imports")),
    Case("plugin-syntax-error", plugin("def broken(:\n    pass\n"), ("failed to import (line 1)", "SyntaxError")),
    Case("plugin-entry-point-import-error", entry_point_import_error,
         ("fake-bench-plugin 0.3.0", "failed to import", "missing dependency xyz", "Reinstall or fix")),
    Case("plugin-missing-attributes", plugin("""
        from bench import register_method

        class NoTrain:
            name, version = "p", "1"

        register_method(NoTrain())
    """, "--method", "p"), ("does not implement the Method protocol", "missing description, default_schedule, "
                                                                         "train", "docs/plugins.md")),
    Case("plugin-bad-schedule", plugin(method().replace('"end_to_end"', '"layerwise"'), "--method", "p"),
         ("default_schedule 'layerwise' is not one of", "sequential")),
    Case("plugin-bad-default", plugin(method().replace("Param(0.1,", "Param(2.0,"), "--method", "p"),
         ("the default of smoothing does not satisfy its own declaration",)),
    Case("plugin-name-of-a-builtin", plugin(method().replace('"p", "1"', '"sgd", "1"')),
         ("name of a built-in method", "choose another name")),
    Case("plugin-list-for-a-float", plugin(method(), "--method", "p", "--set", "smoothing=[0.1,0.2]"),
         ("smoothing of method 'p'", "takes no list")),
    Case("plugin-value-out-of-range", plugin(method(), "--method", "p", "--set", "smoothing=1"),
         ("smoothing of method 'p'", "float in [0, 1)")),
    Case("plugin-exception-in-validation",
         plugin(method("def validate(self, cfg):\n            raise ValueError('smoothing must be in [0, 1)')"),
                "--method", "p"),
         ("method 'p' (from file", "raised ValueError while checking its settings", "smoothing must be in",
          "bench.ConfigError")),
    Case("plugin-config-error-in-validation",
         plugin(method("def validate(self, cfg):\n            raise ConfigError('p needs --epochs 2 or more')"),
                "--method", "p"), ("method 'p' (from file", "p needs --epochs 2 or more")),
    Case("plugin-config-error-in-train", plugin(method(train="raise ConfigError('p cannot run on 16x16 images')"),
                                                "--method", "p"), ("p cannot run on 16x16 images",)),
    Case("plugin-exception-in-train", plugin(method(train="raise RuntimeError('the plugin broke')"),
                                             "--method", "p"),
         ("training failed: method 'p' (from file", "RuntimeError: the plugin broke", "status 'failed'",
          "error.log", "--debug"), code=1),
    Case("plugin-dataset-unknown-option", plugin(dataset(""), "--data", "pdata", "--set", "data.bogus=1"),
         ("unknown option(s) bogus for dataset 'pdata'", "accepted: n")),
    Case("plugin-exception-building-dataset", plugin(dataset("raise RuntimeError('server down')"), "--data", "pdata"),
         ("dataset 'pdata' (from file", "RuntimeError: server down", "report it to the plugin's author")),
    Case("plugin-dataset-wrong-shape", plugin(dataset("x = x.permute(0, 2, 3, 1).contiguous()"), "--data", "pdata"),
         ("dataset 'pdata'", "train_images must be a uint8 tensor (N, 3, S, S)", "(64, 16, 16, 3)")),
    Case("plugin-dataset-labels-out-of-range", plugin(dataset("y = y + 1"), "--data", "pdata"),
         ("train_labels must be in 0..3", "found 1..4")),
    Case("plugin-dataset-mean-in-pixels", plugin(dataset("mean = (127.0, 127.0, 127.0)"), "--data", "pdata"),
         ("mean must be in [0, 1] units",)),
    Case("plugin-dataset-box-outside", plugin(dataset("boxes = torch.tensor([[0.0, 0.0, 20.0, 8.0]] * n)"),
                                              "--data", "pdata"), ("train box 0", "is not inside its 16x16 image")),
    Case("plugin-dataset-not-a-dataset", plugin(dataset("return {'x': x}"), "--data", "pdata"),
         ("expected a bench.ImageDataset, got dict",)),
    Case("plugin-exception-building-arch", plugin(arch("raise RuntimeError('no weights')"), "--arch", "parch"),
         ("architecture 'parch' (from file", "RuntimeError: no weights", "--debug")),
    Case("plugin-arch-not-staged", plugin(arch("return nn.Sequential(*stages, head)"), "--arch", "parch"),
         ("expected a bench.StagedNet", "got Sequential")),
    Case("plugin-arch-wrong-head", plugin(arch(classes="3"), "--arch", "parch"),
         ("its head must return logits of shape (batch, 10)", "(2, 3)")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_message_not_a_traceback(case, tmp_path, monkeypatch):
    argv = [str(a) for a in case.argv(tmp_path, monkeypatch)]
    res = runner.invoke(app, argv)
    text = " ".join(res.output.split())
    assert res.exit_code == case.code, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    for needle in case.needles:
        assert needle in text, f"{needle!r} not in: {res.output}"
    for path in tmp_path.rglob("result.json"):
        if "runs" in path.parts and path.parent.name != "r":  # "r": a result file the case itself wrote
            assert json.loads(path.read_text())["status"] != "ok"


def test_a_crash_in_train_is_recorded_with_its_traceback_in_the_run_folder(tmp_path):
    argv = plugin(method(train="raise RuntimeError('the plugin broke')"), "--method", "p")(tmp_path, None)
    res = runner.invoke(app, [str(a) for a in argv])
    assert res.exit_code == 1 and "Traceback" not in res.output
    (path,) = (tmp_path / "runs").rglob("result.json")
    result = json.loads(path.read_text())
    assert result["status"] == "failed" and result["message"] == "RuntimeError: the plugin broke"
    log = (path.parent / "error.log").read_text()
    assert "Traceback" in log and "plugin.py" in log and "the plugin broke" in log
    debug = runner.invoke(app, [*map(str, argv), "--debug"])
    assert debug.exit_code == 1 and "Traceback" in debug.output and "RuntimeError: the plugin broke" in debug.output


def test_the_catalogue_is_in_the_docs():
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", DOC.read_text(), re.M))
    assert listed == {c.id for c in CASES}
    assert len(CASES) >= 30
