"""The localize task: box transforms, IoU and GIoU, the box heads of every method, metrics, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from bench import leaderboard
from bench.boxes import (
    BoxRegressor,
    LocalizeHead,
    box_iou,
    box_loss,
    check_task,
    constant_box_floor,
    decode_boxes,
    flip_boxes,
    generalized_box_iou,
    resize_boxes,
    shift_boxes,
)
from bench.cli import app
from bench.config import RunConfig
from bench.data.base import ImageDataset
from bench.data.gtsrb import load_gtsrb
from bench.data.loader import DeviceData
from bench.engine import LocalStep, train_local
from bench.errors import ConfigError, DatasetError
from bench.evaluate import evaluate
from bench.runner import resolve_config
from tests.test_data import write_cifar10, write_gtsrb
from tests.tiny import tiny_run

BUILTIN = ("sgd", "greedy_ce", "dgl", "infopro", "greedydib")
# 4 sign classes at 16x16, 3 epochs: a few seconds per method. crop_padding=2: at 16 px the default 4-px crop moves
# the sign by up to a quarter of the image, which slows the box down more than these few steps allow.
BUDGET = [
    "--task", "localize", "--arch", "cifar_resnet20", "--split", "stages", "--epochs", "3", "--batch-size", "64",
    "--lr", "0.1", "--set", "data.num_classes=4", "--set", "data.train_size=3000", "--set", "data.test_size=300",
    "--set", "data.image_size=16", "--set", "crop_padding=2", "--quiet",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small CPU runs: one intra-op thread is faster than two on a shared 2-core machine (no contention)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- geometry -----------------------------------------------------------------------------------------------------


def test_iou_and_giou_of_hand_computed_cases():
    a = torch.tensor([[0.0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 4, 4], [1, 1, 3, 2], [0, 0, 1, 1]])
    b = torch.tensor([[1.0, 1, 3, 3], [2, 0, 3, 1], [1, 1, 3, 3], [1, 1, 3, 2], [1, 1, 2, 2]])
    # overlap 1 of union 7, hull 9; disjoint (union 2, hull 3); nested 4 of 16; identical; touching at a corner
    iou = [1 / 7, 0.0, 0.25, 1.0, 0.0]
    giou = [1 / 7 - 2 / 9, -1 / 3, 0.25, 1.0, 0.0 - (4 - 2) / 4]
    assert box_iou(a, b).tolist() == pytest.approx(iou, abs=1e-6)
    assert generalized_box_iou(a, b).tolist() == pytest.approx(giou, abs=1e-6)
    assert box_iou(b, a).tolist() == pytest.approx(iou, abs=1e-6)  # symmetric


def test_box_losses_are_zero_on_the_target_and_push_towards_it():
    target = torch.tensor([[0.2, 0.1, 0.7, 0.9]])
    for kind in ("smooth_l1", "giou", "smooth_l1+giou"):
        assert float(box_loss(target, target, kind)) == pytest.approx(0.0, abs=1e-6)
        pred = torch.tensor([[0.3, 0.2, 0.6, 0.6]], requires_grad=True)
        loss = box_loss(pred, target, kind)
        loss.backward()
        assert loss > 0 and torch.isfinite(pred.grad).all()
        moved = pred.detach() - 0.01 * pred.grad.sign()
        assert float(box_loss(moved, target, kind)) < loss.item()  # the gradient points towards the target
    # SmoothL1 (beta 0.05): linear beyond 0.05, summed over the coordinates: |0.5 - 0| - 0.025 on one coordinate
    assert float(box_loss(torch.tensor([[0.5, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))) == \
        pytest.approx(0.475)
    with pytest.raises(ConfigError, match="box_loss"):
        box_loss(target, target, "l2")


def test_decoded_boxes_are_never_inverted_and_the_head_starts_at_the_given_box():
    raw = torch.randn(64, 4) * 5
    boxes = decode_boxes(raw)
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert (centre >= 0).all() and (centre <= 1).all()
    head = BoxRegressor((8, 4, 4))
    torch.nn.init.zeros_(head.regressor[-1].weight)
    head.start_at(torch.tensor([0.1, 0.2, 0.7, 0.9]))
    assert torch.allclose(head(torch.randn(3, 8, 4, 4)), torch.tensor([[0.1, 0.2, 0.7, 0.9]] * 3), atol=1e-5)


def test_shift_clip_flip_and_resize_of_pixel_boxes():
    boxes = torch.tensor([[2.0, 3, 10, 12], [0, 0, 16, 16]])
    assert shift_boxes(boxes, torch.tensor([3, -2]), torch.tensor([-4, 1]), 16, 16).tolist() == [
        [5, 0, 13, 8], [0, 1, 14, 16]]  # moved, then clipped to the 16x16 image
    assert flip_boxes(boxes, 16, torch.tensor([True, False])).tolist() == [[6, 3, 14, 12], [0, 0, 16, 16]]
    assert resize_boxes(torch.tensor([[5.0, 4, 35, 27]]), (40, 30), (32, 32))[0].tolist() == pytest.approx(
        [4.0, 4 * 32 / 30, 28.0, 27 * 32 / 30])


def _rectangles(boxes: list[tuple[int, int, int, int]], size: int = 16, hflip: bool = False) -> ImageDataset:
    """Black images with one white rectangle each, exactly at its box."""
    n = len(boxes)
    images = torch.zeros(n, 3, size, size, dtype=torch.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        images[i, :, y1:y2, x1:x2] = 255
    b = torch.tensor(boxes, dtype=torch.float32)
    labels = torch.arange(n) % 2
    return ImageDataset("rects", 2, images, labels, images.clone(), labels.clone(), (0.5,) * 3, (0.5,) * 3,
                        hflip=hflip, train_boxes=b, test_boxes=b.clone())


def _white_box(image: torch.Tensor) -> list[float]:
    """Bounding box (x1, y1, x2, y2), pixel edges, of the white pixels of one (3, H, W) image."""
    ys, xs = torch.nonzero(image[0] > 127, as_tuple=True)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


@pytest.mark.parametrize(("hflip", "mode"), [(False, "zeros"), (True, "zeros"), (False, "reflect")])
def test_random_crop_and_flip_keep_each_box_on_its_object_and_inside_the_image(hflip, mode):
    boxes = [(0, 0, 5, 6), (11, 10, 16, 16), (4, 5, 12, 11), (2, 9, 7, 16), (9, 1, 15, 7), (6, 6, 10, 10)] * 8
    data = DeviceData(_rectangles(boxes, hflip=hflip), "cpu", crop_padding=4, padding_mode=mode)
    g = torch.Generator().manual_seed(1)
    images, moved = data.augment_with_boxes(data.train_images, data.train_boxes, g)
    assert ((moved >= 0) & (moved <= 16)).all()
    clipped = 0
    for image, box, orig in zip(images, moved, data.train_boxes, strict=True):
        if mode == "reflect":  # the padding mirrors the sign into the border: check the box, not the pixels
            inside = image[0, int(box[1]):int(box[3]), int(box[0]):int(box[2])]
            assert (inside > 127).all()
        else:
            assert _white_box(image) == box.tolist()
        clipped += int((box[2] - box[0]) < (orig[2] - orig[0]))
    assert clipped > 0  # some boxes were cut by the image border
    # the same random numbers as the image-only augmentation: same images
    assert torch.equal(data.augment(data.train_images, torch.Generator().manual_seed(1)), images)
    if hflip:
        assert any(_white_box(im)[0] > 8 for im in images[:: 6])  # a box of the left edge went to the right


def test_batches_with_boxes_are_the_classification_batches_plus_normalised_boxes():
    boxes = [(1, 2, 9, 12), (5, 5, 15, 14), (0, 3, 8, 16)] * 20
    data = DeviceData(_rectangles(boxes), "cpu", crop_padding=2, val_split=0.2)
    plain = list(data.train_batches(16, torch.Generator().manual_seed(3)))
    boxed = list(data.train_batches_with_boxes(16, torch.Generator().manual_seed(3)))
    assert len(plain) == len(boxed) == math.ceil(data.train_size / 16)
    for (x, y), (xb, yb, b) in zip(plain, boxed, strict=True):
        assert torch.equal(x, xb) and torch.equal(y, yb)
        assert b.shape == (len(y), 4) and b.min() >= 0 and b.max() <= 1
        for image, box in zip(data.denormalize(xb), b, strict=True):
            assert _white_box((image * 255).round()) == pytest.approx((box * 16).tolist(), abs=1e-4)
    (xv, yv, bv), = data.val_batches_with_boxes(100)
    assert torch.equal(bv * 16, data.val_boxes) and len(yv) == data.val_size == 12
    no_boxes = DeviceData(dataclass_without_boxes(data.dataset), "cpu")
    with pytest.raises(ValueError, match="no boxes"):
        next(no_boxes.train_batches_with_boxes(8, torch.Generator()))


def dataclass_without_boxes(ds: ImageDataset) -> ImageDataset:
    import dataclasses

    return dataclasses.replace(ds, train_boxes=None, test_boxes=None)


def test_gtsrb_resize_keeps_the_box_on_the_sign(tmp_path: Path):
    """A white sign drawn exactly inside its ROI in a 48x40 original: after the loader's resize to 16x16 the ROI
    it returns still frames the sign (within the bilinear filter's one-pixel blur)."""
    base = tmp_path / "gtsrb"
    written = write_gtsrb(base)
    folder = base / "GTSRB" / "Training" / "00002"
    x1, y1, x2, y2, w, h = 9, 6, 39, 33, 48, 40
    pixels = np.zeros((h, w, 3), np.uint8)
    pixels[y1:y2, x1:x2] = 255
    Image.fromarray(pixels).save(folder / "00001_00001.ppm")
    rows = [("00001_00000.ppm", 25, 28, 3, 3, 22, 25, 2), ("00001_00001.ppm", w, h, x1, y1, x2, y2, 2)]
    (folder / "GT-00002.csv").write_text("Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
                                         + "\n".join(";".join(map(str, r)) for r in rows) + "\n")
    ds = load_gtsrb(tmp_path, image_size=16, cache=False)
    assert len(ds.train_labels) == len(written["train"])
    box = ds.train_boxes[-1]
    assert box.tolist() == pytest.approx([x1 * 16 / w, y1 * 16 / h, x2 * 16 / w, y2 * 16 / h])
    bright = _white_box(ds.train_images[-1])
    assert all(abs(a - b) <= 1.0 for a, b in zip(bright, box.tolist(), strict=True)), (bright, box)


# --- bad input ----------------------------------------------------------------------------------------------------


def test_localize_on_a_dataset_without_boxes_is_a_clear_error(tmp_path: Path):
    write_cifar10(tmp_path, counts=(64, 0, 0, 0, 0), test=4)
    res = CliRunner().invoke(app, ["run", "--method", "sgd", "--data", "cifar10", "--data-root", str(tmp_path),
                                   "--task", "localize", "--batch-size", "8", "--out", str(tmp_path / "runs"),
                                   "--quiet"])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "cifar10" in text and "gtsrb" in text and "signs" in text and "Traceback" not in text
    assert not list((tmp_path / "runs").rglob("result.json"))
    res = CliRunner().invoke(app, ["run", "--task", "detect", "--quiet", "--out", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "classify, localize" in " ".join(res.output.split())
    with pytest.raises(ConfigError, match="lambda_box"):
        resolve_config({"method": "sgd"}, sets=["lambda_box=-1"])
    with pytest.raises(ConfigError, match="box_loss"):
        resolve_config({"method": "sgd"}, sets=["box_loss=iou"])


def test_a_gtsrb_roi_outside_its_image_names_the_file_and_line(tmp_path: Path):
    write_gtsrb(tmp_path / "gtsrb")
    csv = tmp_path / "gtsrb" / "GTSRB" / "Training" / "00000" / "GT-00000.csv"
    lines = csv.read_text().splitlines()
    assert lines[2].startswith("00000_00001.ppm;50;50;")
    lines[2] = "00000_00001.ppm;50;50;6;6;51;45;0"  # Roi.X2 past the width
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="line 3") as err:
        load_gtsrb(tmp_path, cache=False)
    assert str(csv) in str(err.value) and "Roi.X2=51" in str(err.value) and "50x50" in str(err.value)
    lines[2] = "00000_00001.ppm;50;50;30;6;20;45;0"  # inverted
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="line 3"):
        load_gtsrb(tmp_path, cache=False)


def test_a_plugin_dataset_with_bad_boxes_is_refused():
    ds = _rectangles([(1, 1, 5, 5), (2, 2, 6, 6)])
    cfg = RunConfig(task="localize")
    check_task(cfg, ds)  # fine
    ds.test_boxes = torch.tensor([[1.0, 1, 5, 5], [2, 2, 17, 6]])
    with pytest.raises(DatasetError, match=r"test_boxes\[1\]"):
        check_task(cfg, ds)
    ds.test_boxes = torch.zeros(2, 3)
    with pytest.raises(DatasetError, match=r"shape \(2, 4\)"):
        check_task(cfg, ds)
    check_task(RunConfig(task="classify"), ds)  # classification does not look at boxes


# --- the engine ---------------------------------------------------------------------------------------------------


def _localize_run(schedule: str, **kw):
    run = tiny_run(schedule, epochs=1, task="localize", **kw)
    ds = run.data.dataset
    n_train, n_test = len(ds.train_labels), len(ds.test_labels)
    g = torch.Generator().manual_seed(0)
    ds.train_boxes = torch.tensor([2.0, 3, 12, 13]) + torch.rand(n_train, 4, generator=g)
    ds.test_boxes = torch.tensor([2.0, 3, 12, 13]) + torch.rand(n_test, 4, generator=g)
    run.data = DeviceData(ds, "cpu", crop_padding=2)
    return run


def test_every_head_gets_a_box_head_and_local_losses_see_the_boxes():
    run = _localize_run("simultaneous")
    seen = []

    def local_loss(step: LocalStep):
        assert not isinstance(step.head, LocalizeHead)  # the method sees its own classifier
        seen.append((step.k, step.boxes, step.box_head))
        logits = step.head(step.features)
        return F.cross_entropy(logits, step.y), logits

    outcome = train_local(run, make_head=lambda k, s: torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(s[0], 4)), local_loss=local_loss)
    assert isinstance(run.net.head, LocalizeHead)  # the network's box head beside its classifier
    assert all(isinstance(h, LocalizeHead) for h in outcome.aux_heads)
    assert {k for k, _, _ in seen} == {0, 1, 2}
    for k, boxes, box_head in seen:
        assert box_head is outcome.aux_heads[k].box_head
        assert boxes.shape[1] == 4 and 0 <= boxes.min() and boxes.max() <= 1
    metrics = evaluate(run.net, run.data, aux_heads=outcome.aux_heads)
    assert len(metrics["module_miou"]) == 3 and metrics["module_miou"][-1] == metrics["test_miou"]
    assert metrics["test_det_acc50"] <= min(metrics["test_top1"], metrics["test_box_acc50"])
    assert metrics["test_det_acc75"] <= min(metrics["test_det_acc50"], metrics["test_box_acc75"])
    assert 0 < metrics["test_miou_floor"] <= 1
    assert all(r["test_miou"] is None for r in outcome.history)  # no per-epoch evaluation asked


def test_a_partial_evaluation_scores_the_trained_modules_boxes_as_the_full_one():
    run = _localize_run("sequential")
    outcome = train_local(run, make_head=lambda k, s: torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(s[0], 4)))
    full = evaluate(run.net, run.data, aux_heads=outcome.aux_heads)
    part = evaluate(run.net, run.data, aux_heads=outcome.aux_heads, upto=1)
    assert part["module_miou"][:2] == full["module_miou"][:2] and part["module_miou"][2] is None
    assert part["module_top1"][:2] == full["module_top1"][:2] and part["module_top1"][2] is None
    assert part["test_top1"] is None and part["test_miou"] is None and part["test_det_acc50"] is None


def test_the_engine_box_term_can_be_left_to_the_method():
    def run_with(add_box_term: bool):
        run = _localize_run("end_to_end", seed=3)
        calls = []

        def local_loss(step: LocalStep):
            logits = step.head(step.features)
            calls.append(step.box_head is not None)
            return F.cross_entropy(logits, step.y), logits

        train_local(run, local_loss=local_loss, add_box_term=add_box_term)
        return run.net.head.box_head.regressor[-1].weight.detach().clone(), calls

    before = _localize_net_box_weight(_localize_run("end_to_end", seed=3))
    with_term, calls = run_with(True)
    without, _ = run_with(False)
    assert all(calls)
    assert not torch.equal(with_term, before)  # the engine's box term trained the box head
    assert torch.equal(without, before)  # left to a method that ignores it: the box head gets no gradient


def _localize_net_box_weight(run) -> torch.Tensor:
    from bench.engine import build_units

    build_units(run, None)
    return run.net.head.box_head.regressor[-1].weight.detach().clone()


def test_floor_is_the_mean_training_box():
    train = torch.tensor([[0.0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]])
    floor = constant_box_floor(train, torch.tensor([[0.25, 0.25, 0.75, 0.75], [0, 0, 0.5, 0.5]]))
    assert floor["miou"] == pytest.approx((1 + 1 / 7) / 2, abs=1e-4)
    assert (floor["acc50"], floor["acc75"]) == (50.0, 50.0)


# --- every method learns the box -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("localize")
    runner = CliRunner()
    found = {}
    for name in BUILTIN:
        res = runner.invoke(app, ["run", "--method", name, *BUDGET, "--out", str(out / name)])
        assert res.exit_code == 0, res.output
        assert "test mean IoU" in res.output
        (path,) = Path(out / name).rglob("result.json")
        found[name] = json.loads(path.read_text())
    return found


@pytest.mark.parametrize("name", BUILTIN)
def test_every_method_learns_the_box_on_signs(results, name):
    m = results[name]["metrics"]
    assert results[name]["config"]["task"] == "localize"
    # the constant training-mean box scores about 0.61 on these signs; a box head that learned nothing, no better
    assert m["test_miou"] >= m["test_miou_floor"] + 0.04, m
    assert m["test_top1"] >= 2 * 25.0 * 0.8, m  # and the class is learned too (chance 25 %)
    assert m["test_det_acc50"] <= min(m["test_top1"], m["test_box_acc50"])
    assert m["val_miou"] is not None and m["val_miou_floor"] is not None


@pytest.mark.parametrize("name", [m for m in BUILTIN if m != "sgd"])
def test_each_modules_box_head_is_scored(results, name):
    m = results[name]["metrics"]
    assert len(m["module_miou"]) == len(m["module_top1"]) == 3
    assert m["module_miou"][-1] == m["test_miou"]
    assert all(v > m["test_miou_floor"] for v in m["module_miou"]), m["module_miou"]


@pytest.mark.parametrize("name", BUILTIN)
def test_parameter_counts_include_the_box_heads(results, name):
    """``architecture.params`` is the network as evaluated, box head included; ``aux_params`` the local heads."""
    from bench.runner import build_network

    arch = results[name]["architecture"]
    cfg, _ = resolve_config({"method": name, "arch": "cifar_resnet20", "split": "stages", "out": "unused"})
    plain = sum(p.numel() for p in build_network(cfg, 4, 16).parameters())  # the same network, classify task
    assert arch["params"] >= plain + 4 * 64, (arch, plain)  # a box head on 64 features: 4 outputs per feature
    assert (arch["aux_params"] > 0) == (name != "sgd"), arch


def test_leaderboard_shows_the_box_columns_and_the_floor(results, tmp_path):
    page = leaderboard.render_protocol("adhoc", list(results.values()))
    assert "Constant-box floor" in page and "Mean IoU" in page and "Class+box @0.5 (%)" in page
    floor = results["sgd"]["metrics"]["test_miou_floor"]
    assert f"mean IoU {floor:.3f}" in page
    row = next(line for line in page.splitlines()
               if line.startswith("|") and line.split("|")[2].strip().strip("*") == "sgd")
    assert f"{results['sgd']['metrics']['test_miou']:.3f} ± –" in row
    classify = leaderboard.render_protocol("adhoc", [{**results["sgd"], "metrics": {
        k: v for k, v in results["sgd"]["metrics"].items() if not any(t in k for t in ("iou", "acc50", "acc75"))}}])
    assert "Constant-box floor" not in classify and "Mean IoU" not in classify


def test_classification_results_have_no_box_metrics(tmp_path):
    cfg, method = resolve_config({"method": "sgd", "epochs": 1, "out": str(tmp_path)},
                                 sets=["data.num_classes=2", "data.train_size=64", "data.test_size=16",
                                       "data.image_size=16", "batch_size=32"])
    from bench.runner import execute

    result, _ = execute(cfg, method)
    assert cfg.task == "classify"
    assert not [k for k in result["metrics"] if "iou" in k or "acc50" in k]


def test_analyze_runs_the_localize_task(tmp_path):
    res = CliRunner().invoke(app, [
        "analyze", "--method", "greedy_ce", "--task", "localize", "--epochs", "1", "--batch-size", "32",
        "--set", "data.num_classes=2", "--set", "data.train_size=128", "--set", "data.test_size=32",
        "--set", "data.image_size=16", "--probe-size", "16", "--out", str(tmp_path), "--quiet",
        "--run-dir", str(tmp_path / "an"),
    ])
    assert res.exit_code == 0, res.output
    analysis = json.loads((tmp_path / "an" / "analysis.json").read_text())
    assert analysis["task"] == "localize" and analysis["test_miou"] is not None
    assert analysis["nodes"][-1] == "Y" and len(analysis["layers"]) == 3


def test_mirror_flip_relabels_mirror_pairs_keeps_symmetric_signs_and_never_flips_the_others():
    """``hflip_labels``: class 0's mirror is class 1 and back, class 2 is symmetric, class 3 is never flipped. An
    image whose left half is white shows which images flipped; its box must follow."""
    n = 400
    images = torch.zeros(n, 3, 8, 8, dtype=torch.uint8)
    images[:, :, :, :3] = 255
    labels = torch.arange(n) % 4
    boxes = torch.tensor([[0.0, 0, 3, 8]]).repeat(n, 1)
    ds = ImageDataset("mirror", 4, images, labels, images.clone(), labels.clone(), (0.5,) * 3, (0.5,) * 3,
                      hflip=False, hflip_labels=(1, 0, 2, -1), train_boxes=boxes, test_boxes=boxes.clone())
    data = DeviceData(ds, "cpu", crop_padding=0)
    x, y = data.augment_with_labels(data.train_images, data.train_labels, torch.Generator().manual_seed(0))
    flipped = x[:, 0, 0, -1] == 255
    assert torch.equal(flipped, x[:, 0, 0, 0] == 0)  # whole image mirrored or not at all
    assert not flipped[labels == 3].any()
    for c, mirror in ((0, 1), (1, 0), (2, 2)):
        sel = labels == c
        assert 0.3 < flipped[sel].float().mean() < 0.7
        assert (y[sel & flipped] == mirror).all() and (y[sel & ~flipped] == c).all()
    # training batches carry the new labels and the mirrored boxes
    g = torch.Generator().manual_seed(1)
    for xb, yb, bb in data.train_batches_with_boxes(64, g, augment=True):
        white_right = xb[:, 0, 0, -1] > 0
        assert white_right.any() and (bb[white_right, 0] > 0.5).all() and (bb[~white_right, 0] == 0).all()
        assert (yb[white_right] != 3).all()
    # without the map (hflip False): nothing flips, labels unchanged
    plain = DeviceData(_rectangles([(0, 0, 3, 8)] * 8, size=8), "cpu", crop_padding=0)
    xp, yp = plain.augment_with_labels(plain.train_images, plain.train_labels, torch.Generator().manual_seed(0))
    assert torch.equal(xp, plain.train_images) and torch.equal(yp, plain.train_labels)


def test_gtsrb_mirror_map_is_an_involution_on_real_class_names_and_bad_values_are_refused(tmp_path):
    from bench.data.gtsrb import GTSRB_CLASS_NAMES, MIRROR_CLASSES
    from bench.plugins import check_dataset

    assert len(MIRROR_CLASSES) == 43
    for c, m in enumerate(MIRROR_CLASSES):
        if m >= 0:
            assert MIRROR_CLASSES[m] == c
        if m >= 0 and m != c:  # a mirror pair: the names differ only by left <-> right
            swapped = GTSRB_CLASS_NAMES[c].replace("left", "@").replace("right", "left").replace("@", "right")
            assert swapped == GTSRB_CLASS_NAMES[m]
    assert sum(m == c for c, m in enumerate(MIRROR_CLASSES)) == 10 and sum(m >= 0 for m in MIRROR_CLASSES) == 18
    write_gtsrb(tmp_path / "gtsrb")
    assert load_gtsrb(tmp_path, cache=False, flip="mirror").hflip_labels == MIRROR_CLASSES
    assert load_gtsrb(tmp_path, cache=False).hflip_labels is None
    with pytest.raises(ConfigError, match="flip must be 'none' or 'mirror'"):
        load_gtsrb(tmp_path, cache=False, flip="both")
    bad = load_gtsrb(tmp_path, cache=False)
    bad.hflip_labels = (0,) * 42 + (43,)
    with pytest.raises(DatasetError, match="hflip_labels"):
        check_dataset(bad, "gtsrb")


def test_contrast_stretch_maps_each_image_to_the_full_range_and_keeps_flat_images(tmp_path):
    from bench.data.gtsrb import stretch_contrast

    images = np.array([[[[10, 20], [30, 40]], [[10, 10], [10, 10]], [[40, 40], [40, 40]]]], np.uint8)
    assert stretch_contrast(images)[0].tolist() == [[[0, 85], [170, 255]], [[0, 0], [0, 0]], [[255, 255], [255, 255]]]
    flat = np.full((2, 3, 2, 2), 7, np.uint8)
    assert (stretch_contrast(flat) == 7).all()
    write_gtsrb(tmp_path / "gtsrb")
    plain, stretched = load_gtsrb(tmp_path, cache=False), load_gtsrb(tmp_path, cache=False, contrast="stretch")
    for split in ("train_images", "test_images"):
        x = getattr(stretched, split)
        assert (x.amin((1, 2, 3)) == 0).all() and (x.amax((1, 2, 3)) == 255).all()
    assert stretched.mean != plain.mean and torch.equal(stretched.train_boxes, plain.train_boxes)
    with pytest.raises(ConfigError, match="contrast must be"):
        load_gtsrb(tmp_path, cache=False, contrast="equalize")
