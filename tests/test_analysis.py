"""`bench analyze`: information-flow analysis through the real CLI and the API, on tiny budgets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from typer.testing import CliRunner

from bench import analysis as an
from bench.cli import app

runner = CliRunner()
TOL = 1e-6

DATA = ["--data", "signs", "--set", "data.num_classes=4", "--set", "data.test_size=128", "--set",
        "data.image_size=16"]
COMMON = ["--arch", "cifar_resnet20", *DATA, "--batch-size", "64", "--probe-size", "64", "--device", "cpu",
          "--quiet"]
# sgd: 512 train images, 3 epochs (I(T_last;Y) rises by ~0.3 bits on seeds 0 and 1); greedydib: 256, 2 per module.
SGD = ["--method", "sgd", "--set", "data.train_size=512", "--epochs", "3", *COMMON]
DIB = ["--method", "greedydib", "--set", "data.train_size=256", "--epochs", "2", *COMMON]


def invoke(*args: str):
    return runner.invoke(app, ["analyze", *args])


def assert_user_error(res, *needles: str, code: int = 2):
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in res.output, res.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One sgd and one greedydib analysis through the CLI (about 5 s together)."""
    out = tmp_path_factory.mktemp("analysis")
    dirs = {}
    for name, args in (("sgd", SGD), ("greedydib", DIB)):
        res = invoke(*args, "--out", str(out))
        assert res.exit_code == 0, res.output
        assert "I(T;Y)" in res.output and "information_plane.png" in res.output
        dirs[name] = out / f"analysis_{name}_cifar_resnet20_signs_seed0"
    return dirs


def png_ok(path: Path, size_inches: tuple[float, float]) -> None:
    img = imread(path)
    w, h = round(size_inches[0] * an.DPI), round(size_inches[1] * an.DPI)
    assert img.shape[:2] == (h, w), (path, img.shape)
    assert float(img[..., :3].std()) > 0.05, f"{path} looks blank"


@pytest.mark.parametrize("name", ["sgd", "greedydib"])
def test_run_folder_has_every_file_and_the_timeline(runs, name):
    d = runs[name]
    for f in ("analysis.json", "layers.csv", "mi_matrix.csv", *an.PICTURES):
        assert (d / f).is_file(), f
    assert not list(d.glob(".*.tmp"))
    a = an.load_analysis(d)
    assert (a["method"], a["arch"], a["data"], a["probe_size"], a["alpha"]) == (
        name, "cifar_resnet20", "signs", 64, 1.01)
    assert a["layers"] == ["T1", "T2", "T3"] and a["nodes"] == ["X", "T1", "T2", "T3", "Y"]
    labels = [p["label"] for p in a["points"]]
    if name == "sgd":
        assert labels == ["init", "e1", "e2", "e3"]
    else:
        assert labels == ["init", "m1 e1", "m1 e2", "m2 e1", "m2 e2", "m3 e1", "m3 e2"]
        assert a["points"][3] == {"index": 3, "label": "m2 e1", "phase": 1, "epoch": 0}
    assert a["points"][0]["phase"] is None
    # the normal training result is written by execute, under --out
    assert Path(a["result_path"]).is_file() and Path(a["result_path"]).parent.parent == d.parent
    assert json.loads(Path(a["result_path"]).read_text())["status"] == "ok"


@pytest.mark.parametrize("name", ["sgd", "greedydib"])
def test_numbers_obey_the_estimator_bounds(runs, name):
    a = an.load_analysis(runs[name])
    s, nodes = a["series"], a["nodes"]
    s_y, s_x = a["S_Y"], a["S_X"]
    assert 1.8 < s_y <= 2.0 + TOL  # 4 roughly balanced classes
    for e in range(len(a["points"])):
        m = np.asarray(a["mi_matrices"][e])
        assert np.array_equal(m, m.T)
        assert np.allclose(np.diag(m), [s["S"][v][e] for v in nodes], atol=0, rtol=0)
        assert (m >= 0).all()
        for i in range(len(nodes)):
            for j in range(len(nodes)):
                assert m[i, j] <= min(m[i, i], m[j, j]) + TOL
        for v in a["layers"]:
            st, ixt, ity = s["S"][v][e], s["I_XT"][v][e], s["I_TY"][v][e]
            assert 0 <= ity <= s_y + TOL and ity <= st + TOL
            assert 0 <= ixt <= s_x + TOL and ixt <= st + TOL
            assert 0 < st <= np.log2(a["probe_size"]) + TOL
    c = np.asarray(a["convergence"])
    assert c.shape == (3, len(a["points"]))
    assert (c >= 0).all() and (c <= 1 + TOL).all()
    assert (c[:, -1] == 1.0).all()
    # the raw self-information of a Gaussian Gram is below S(T): why the diagonal is a convention
    assert all(0 < x < 1 for x in a["convergence_ceiling"])


def test_frozen_modules_are_identical_to_their_final_state(runs):
    a = an.load_analysis(runs["greedydib"])
    c = np.asarray(a["convergence"])
    # module 1 is frozen after point 2 (m1 e2), module 2 after point 4 (m2 e2)
    assert (c[0, 2:] == 1.0).all() and (c[1, 4:] == 1.0).all()
    assert c[0, 0] < 1 and c[2, 5] < 1
    assert len(set(a["series"]["S"]["T1"][2:])) == 1


def test_csv_files_match_the_json(runs):
    d = runs["greedydib"]
    a = an.load_analysis(d)
    with open(d / "layers.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["point", "label", "layer", "S", "I_XT", "I_TY"]
    assert len(rows) == len(a["points"]) * len(a["nodes"])
    row = next(r for r in rows if r["label"] == "m2 e1" and r["layer"] == "T3")
    assert float(row["I_TY"]) == a["series"]["I_TY"]["T3"][3] and row["point"] == "3"
    with open(d / "mi_matrix.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["point", "label", "i", "j", "mi"]
    assert len(rows) == len(a["points"]) * len(a["nodes"]) ** 2
    row = next(r for r in rows if r["point"] == "6" and r["i"] == "T1" and r["j"] == "Y")
    assert float(row["mi"]) == a["mi_matrices"][6][1][4]


@pytest.mark.parametrize("name", ["sgd", "greedydib"])
def test_pictures_decode_at_the_expected_size_and_are_not_blank(runs, name):
    d = runs[name]
    png_ok(d / "information_plane.png", an.PLANE_FIGSIZE)
    png_ok(d / "mi_matrix.png", (an.MI_PANEL_WIDTH * 3 + an.MI_EXTRA_WIDTH, an.MI_HEIGHT))
    png_ok(d / "convergence.png", an.CONVERGENCE_FIGSIZE)


def test_training_raises_what_the_last_layer_knows_about_the_labels(runs):
    a = an.load_analysis(runs["sgd"])
    ity = a["series"]["I_TY"][a["layers"][-1]]
    assert ity[-1] > ity[0] + 0.15, ity


def test_from_redraws_without_training(runs, monkeypatch):
    d = runs["greedydib"]
    before = (d / "analysis.json").read_bytes()
    for p in an.PICTURES:
        (d / p).unlink()

    def no_training(*args, **kwargs):
        raise AssertionError("--from must not train")

    monkeypatch.setattr("bench.runner.execute", no_training)
    res = invoke("--from", str(d), "--epochs-to-plot", "init, m2 e1")
    assert res.exit_code == 0, res.output
    assert "I(T;Y)" in res.output
    for p in an.PICTURES:
        assert (d / p).is_file()
    assert (d / "analysis.json").read_bytes() == before
    png_ok(d / "mi_matrix.png", (an.MI_PANEL_WIDTH * 2 + an.MI_EXTRA_WIDTH, an.MI_HEIGHT))
    res = invoke("--from", str(d))  # back to the default panels
    assert res.exit_code == 0, res.output


def test_compare_draws_two_information_planes(runs, tmp_path):
    res = invoke("--compare", str(runs["sgd"]), str(runs["greedydib"]), "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    png_ok(tmp_path / an.COMPARE_FILENAME, (an.COMPARE_PANEL_WIDTH * 2 + 1, an.COMPARE_HEIGHT))
    res = invoke("--compare", str(runs["greedydib"]), str(runs["sgd"]))
    assert res.exit_code == 0, res.output
    assert (runs["greedydib"] / an.COMPARE_FILENAME).is_file()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--method", "sgdd"], ["Unknown method 'sgdd'"]),
        (["--probe-size", "1"], ["probe size", "at least 2"]),
        (["--probe-size", "129"], ["probe size 129", "128"]),
        (["--alpha", "0"], ["alpha"]),
        (["--data", "cifar10", "--data-root", "NOWHERE"], ["cifar-10-batches-py"]),
    ],
)
def test_training_mistakes_are_messages_not_tracebacks(tmp_path, args, needles):
    base = ["--method", "sgd", "--arch", "cifar_resnet20", "--epochs", "1", "--batch-size", "64", "--probe-size",
            "64", "--device", "cpu", "--quiet"]
    if "--data" not in args:
        base += [*DATA, "--set", "data.train_size=64"]
    args = [str(tmp_path / "nowhere") if a == "NOWHERE" else a for a in args]
    res = invoke(*base, *args, "--out", str(tmp_path / "out"))
    assert_user_error(res, *needles)
    assert not list((tmp_path / "out").rglob("analysis.json"))


def test_bad_folders_are_messages_not_tracebacks(runs, tmp_path):
    assert_user_error(invoke("--from", str(tmp_path / "missing")), "not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(invoke("--from", str(empty)), "no analysis.json")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "analysis.json").write_text('{"schema": "layerbench.analysis", "schema_ver')
    assert_user_error(invoke("--from", str(corrupt)), "not valid JSON")
    (corrupt / "analysis.json").write_text(json.dumps({"schema": "layerbench.analysis", "schema_version": 1}))
    assert_user_error(invoke("--from", str(corrupt)), "missing keys")
    assert_user_error(invoke("--compare", str(runs["sgd"]), str(empty)), "no analysis.json")
    assert_user_error(invoke("--from", str(runs["sgd"]), "--epochs-to-plot", "m9 e9"), "no point 'm9 e9'", "e3")
    assert_user_error(invoke("--from", str(runs["sgd"]), "--compare", str(runs["sgd"]), str(runs["sgd"])),
                      "only one")
    res = invoke("--compare", str(runs["sgd"]))
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_select_points():
    labels = ["init", "m1 e1", "m1 e2", "m2 e1", "m2 e2"]
    assert an.select_points(labels) == [0, 2, 4]
    assert an.select_points(labels, "init,final,-1, M2  E1 ,1") == [0, 4, 3, 1]
    assert an.select_points(labels[:2]) == [0, 1]
    with pytest.raises(an.ConfigError):
        an.select_points(labels, "5")
    with pytest.raises(an.ConfigError):
        an.select_points(labels, " , ")


def test_recorder_restores_training_modes_and_leaves_the_rng_alone():
    from tests.tiny import tiny_run

    run = tiny_run("sequential")
    rec = an.InfoRecorder(probe_size=16, alpha=1.01)
    rec.on_start(run)
    run.net.stages[0].eval()  # as the sequential schedule leaves a frozen module
    run.net.stages[1].train()
    modes = [m.training for m in run.net.modules()]
    state = run.generator.get_state()
    torch_state = torch.get_rng_state()
    rec(run, 1, 0, None)
    assert [m.training for m in run.net.modules()] == modes
    assert torch.equal(run.generator.get_state(), state) and torch.equal(torch.get_rng_state(), torch_state)
    out = rec.finish()
    assert [p["label"] for p in out["points"]] == ["init", "m2 e1"]
    assert out["convergence"][0] == [1.0, 1.0]  # nothing trained: identical representations


def test_probe_size_is_checked_before_anything_runs():
    with pytest.raises(an.ConfigError):
        an.InfoRecorder(probe_size=1)
    with pytest.raises(an.ConfigError):
        an.check_probe_size(300, test_size=128)
