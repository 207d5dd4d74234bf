"""Evaluation: top-1/top-5 of the network's own classifier and each module's auxiliary top-1, on the test set or
the validation split; under ``--task localize`` also the boxes (mean IoU, accuracy at IoU >= 0.5, the detection
score: class correct and IoU >= 0.5, per module too, and the constant-box floor); and how precisely a test set of
n images measures a top-1."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from bench.boxes import (
    IOU_THRESHOLD,
    STRICT_IOU_THRESHOLD,
    box_head_of,
    box_iou,
    clip_boxes,
    constant_box_floor,
)
from bench.data.loader import DeviceData
from bench.precision import autocast
from bench.staged import StagedNet

SPLITS = ("test", "val")


@torch.no_grad()
def evaluate(
    net: StagedNet,
    data: DeviceData,
    *,
    batch_size: int = 500,
    aux_heads: list[nn.Module | None] | None = None,
    split: str = "test",
    amp: bool = False,
    upto: int | None = None,
) -> dict:
    """Accuracy in percent on ``split`` (``test`` or ``val``), under bfloat16 autocast when ``amp``.

    Keys for the test set: ``test_top1``, ``test_top5``, ``module_top1``; for the validation split: ``val_top1``,
    ``val_top5``, ``module_val_top1``. ``module_top1[k]`` is the accuracy of module k's auxiliary head on its
    output (the last entry is the network's own classifier, i.e. ``test_top1``); None without auxiliary heads.
    An empty split gives None everywhere.

    Localisation (the network's head is a :class:`~bench.boxes.LocalizeHead` and the data have boxes), with
    ``s`` = ``test`` or ``val``: ``s_miou`` (mean IoU of the network's box head, a fraction), ``s_box_acc50``
    (percent of images with IoU >= 0.5), ``s_det_acc50`` (percent with the class right *and* IoU >= 0.5),
    ``s_box_acc75`` and ``s_det_acc75`` (the same at IoU >= 0.75), ``module_miou`` / ``module_val_miou`` (each
    module's box head, like ``module_top1``), and the floor ``s_miou_floor``, ``s_box_acc50_floor``,
    ``s_box_acc75_floor``: the scores of always predicting the mean training box. A predicted box is clipped to the
    image before it is scored.

    ``upto`` = k < the last module: run the images through modules 0..k only and score their auxiliary heads (a
    sequential schedule training module k: the modules after it are untrained); the network's own keys are then
    None, and so are the per-module entries after k.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    last = net.num_modules - 1
    upto = last if upto is None else int(upto)
    if not 0 <= upto <= last:
        raise ValueError(f"upto must be a module index in 0..{last}, got {upto}")
    if upto < last and aux_heads is None:
        raise ValueError("evaluating up to a module needs its auxiliary head")
    module_key = "module_top1" if split == "test" else "module_val_top1"
    if box_head_of(net.head) is not None and data.has_boxes:
        return _evaluate_localize(net, data, batch_size=batch_size, aux_heads=aux_heads, split=split, amp=amp,
                                  upto=upto)
    batches = data.test_batches(batch_size) if split == "test" else data.val_batches(batch_size)
    top1, top5, modules = _accuracy(net, batches, aux_heads, amp=amp, device=data.device, upto=upto)
    return {f"{split}_top1": top1, f"{split}_top5": top5, module_key: modules}


def evaluate_all(
    net: StagedNet,
    data: DeviceData,
    *,
    batch_size: int = 500,
    aux_heads: list[nn.Module | None] | None = None,
    amp: bool = False,
    upto: int | None = None,
    test: bool = True,
) -> dict:
    """:func:`evaluate` on the test set (unless ``test`` is False), plus the validation split's keys when the data
    has one."""
    out = {}
    if test:
        out.update(evaluate(net, data, batch_size=batch_size, aux_heads=aux_heads, amp=amp, upto=upto))
    if data.val_size > 0:
        out.update(evaluate(net, data, batch_size=batch_size, aux_heads=aux_heads, amp=amp, split="val", upto=upto))
    return out


def _accuracy(
    net: StagedNet,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    aux_heads: list[nn.Module | None] | None,
    *,
    amp: bool,
    device: torch.device,
    upto: int,
) -> tuple[float | None, float | None, list[float | None] | None]:
    net.eval()
    heads = list(aux_heads) if aux_heads is not None else None
    if heads is not None:
        for h in heads:
            if h is not None:
                h.eval()
    correct1 = correct5 = total = 0
    module_correct = [0] * net.num_modules
    k5 = min(5, net.num_classes)
    last = net.num_modules - 1
    for x, y in batches:
        with autocast(device, amp):
            h = x
            for k, stage in enumerate(net.stages[: upto + 1]):
                h = stage(h)
                if heads is not None and heads[k] is not None and k < last:
                    module_correct[k] += int((heads[k](h).argmax(1) == y).sum())
            if upto < last:
                total += y.numel()
                continue
            logits = net.head(h)
        top = logits.float().topk(k5, dim=1).indices
        correct1 += int((top[:, 0] == y).sum())
        correct5 += int((top == y[:, None]).any(1).sum())
        total += y.numel()
    if total == 0:
        return None, None, None
    modules = None
    if heads is not None:
        module_correct[-1] = correct1
        modules = [
            round(100.0 * c / total, 3) if (heads[k] is not None or k == last) and k <= upto else None
            for k, c in enumerate(module_correct)
        ]
    if upto < last:
        return None, None, modules
    return round(100.0 * correct1 / total, 3), round(100.0 * correct5 / total, 3), modules


def _evaluate_localize(net, data: DeviceData, *, batch_size: int, aux_heads, split: str, amp: bool, upto: int) -> dict:
    """:func:`evaluate` of a network with box heads: the classification keys, computed as for classification, and
    the box keys."""
    batches = data.test_batches_with_boxes(batch_size) if split == "test" else data.val_batches_with_boxes(batch_size)
    net.eval()
    heads = list(aux_heads) if aux_heads is not None else None
    for h in heads or []:
        if h is not None:
            h.eval()
    k_last = net.num_modules - 1
    box_heads = [box_head_of(h) if h is not None and k < k_last else None for k, h in enumerate(heads or [])]
    correct1 = correct5 = total = 0
    module_correct = [0] * net.num_modules
    module_iou = [0.0] * net.num_modules
    iou_sum = box_hits = det_hits = box_hits75 = det_hits75 = 0
    k5 = min(5, net.num_classes)
    for x, y, boxes in batches:
        with autocast(data.device, amp):
            h = x
            for k, stage in enumerate(net.stages[: upto + 1]):
                h = stage(h)
                if heads is not None and heads[k] is not None and k < k_last:
                    module_correct[k] += int((heads[k](h).argmax(1) == y).sum())
                    if box_heads[k] is not None:
                        module_iou[k] += float(box_iou(clip_boxes(box_heads[k](h).float(), 1, 1), boxes).sum())
            if upto < k_last:
                total += y.numel()
                continue
            logits = net.head(h)
            predicted = clip_boxes(net.head.box_head(h).float(), 1, 1)
        top = logits.float().topk(k5, dim=1).indices
        right = top[:, 0] == y
        correct1 += int(right.sum())
        correct5 += int((top == y[:, None]).any(1).sum())
        iou = box_iou(predicted, boxes)
        hit = iou >= IOU_THRESHOLD
        strict = iou >= STRICT_IOU_THRESHOLD
        iou_sum += float(iou.sum())
        box_hits += int(hit.sum())
        det_hits += int((hit & right).sum())
        box_hits75 += int(strict.sum())
        det_hits75 += int((strict & right).sum())
        total += y.numel()
    module_key, iou_key = ("module_top1", "module_miou") if split == "test" else ("module_val_top1", "module_val_miou")
    keys = [f"{split}_top1", f"{split}_top5", module_key, f"{split}_miou", f"{split}_box_acc50",
            f"{split}_det_acc50", f"{split}_box_acc75", f"{split}_det_acc75", iou_key, f"{split}_miou_floor",
            f"{split}_box_acc50_floor", f"{split}_box_acc75_floor"]
    if total == 0:
        return dict.fromkeys(keys)
    modules = miou_modules = None
    if heads is not None:
        module_correct[-1] = correct1
        module_iou[-1] = iou_sum
        present = [(heads[k] is not None or k == k_last) and k <= upto for k in range(net.num_modules)]
        modules = [round(100.0 * c / total, 3) if p else None for c, p in zip(module_correct, present, strict=True)]
        miou_modules = [
            round(v / total, 4) if (k == k_last or box_heads[k] is not None) and k <= upto else None
            for k, v in enumerate(module_iou)
        ]
    if upto < k_last:  # the network's own heads were not run
        return {**dict.fromkeys(keys), module_key: modules, iou_key: miou_modules}
    evaluated = data.test_boxes if split == "test" else data.val_boxes
    floor = constant_box_floor(data.normalize_boxes(data.train_boxes), data.normalize_boxes(evaluated))
    pct = [round(100.0 * c / total, 3) for c in (correct1, correct5, box_hits, det_hits, box_hits75, det_hits75)]
    values = [pct[0], pct[1], modules, round(iou_sum / total, 4), *pct[2:], miou_modules, floor["miou"],
              floor["acc50"], floor["acc75"]]
    return dict(zip(keys, values, strict=True))


def top1_standard_error(top1: float, n: int) -> float:
    r"""Binomial sampling standard error, in percentage points, of a top-1 of ``top1`` percent measured on ``n``
    test images: :math:`100\sqrt{p(1-p)/n}` with :math:`p` = ``top1`` / 100.

    It is how much a single run's top-1 would move if the test images were drawn again from the same
    distribution: 1,000 CIFAR test images at 70 % give 1.45 points, 12,630 GTSRB test images at 97 % give 0.15.
    Differences between methods smaller than about twice this cannot be resolved by the test set, however many
    seeds are run. Raises ValueError for n < 1 or a top-1 outside [0, 100].
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of test images, got {n!r}")
    if not (isinstance(top1, (int, float)) and 0.0 <= top1 <= 100.0):
        raise ValueError(f"top1 must be a percentage in [0, 100], got {top1!r}")
    p = top1 / 100.0
    return 100.0 * math.sqrt(p * (1.0 - p) / n)


def precision_note(top1: float, n: int) -> str:
    """One sentence for a leaderboard: ``"A single run's top-1 has a sampling standard error of about 1.4 points
    (1,000 test images, at 70.0 %)."`` (see :func:`top1_standard_error`)."""
    se = top1_standard_error(top1, n)
    digits = 1 if se >= 0.95 else 2
    return (
        f"A single run's top-1 has a sampling standard error of about {se:.{digits}f} points "
        f"({n:,} test images, at {top1:.1f} %)."
    )
