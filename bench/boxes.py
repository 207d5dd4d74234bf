"""Boxes for the ``localize`` task: their parametrisation, IoU and GIoU, the box losses, the box-aware image
transforms and the box head that every classifier gets beside it.

Parametrisation
---------------
A dataset stores each image's box in pixels of the stored image, ``(x1, y1, x2, y2)`` with ``x1 < x2`` and
``y1 < y2``, inclusive-exclusive (``ImageDataset.train_boxes``; GTSRB's ROI columns scaled to the stored size).
Everything the network sees or predicts is **normalised**: ``(x1 / W, y1 / H, x2 / W, y2 / H)`` in ``[0, 1]``
(:func:`normalize_boxes`). A box head (:class:`BoxRegressor`) predicts four raw numbers that :func:`decode_boxes`
turns into a centre and a size through a sigmoid, ``cx, cy, w, h = sigmoid(raw)``, then into corners
``(cx - w/2, cy - h/2, cx + w/2, cy + h/2)``: a predicted box is never empty or inverted, so GIoU is always
defined, and its centre stays inside the image (a corner may lie up to half a box outside it; the metrics clip
the prediction to the image first).

Losses (``box_loss``, a config setting; the weight ``lambda_box`` is a recipe setting)
-------------------------------------------------------------------------------------
- ``smooth_l1``: SmoothL1 of the normalised corners with ``beta`` = :data:`SMOOTH_L1_BETA` (0.05 of the image side,
  1.6 px at 32 px), summed over the four coordinates, averaged over the batch;
- ``giou``: ``1 - GIoU(pred, target)`` averaged over the batch (Rezatofighi et al., CVPR 2019);
- ``smooth_l1+giou``: the sum of the two.

Metrics (:func:`box_iou` of the prediction clipped to the image): mean IoU, accuracy at IoU >= 0.5 (box only), the
detection-style score (class correct and IoU >= 0.5), and the same two at the stricter IoU >= 0.75. The floor is
the score of a constant predictor, the training set's mean box (:func:`constant_box_floor`): GTSRB's ROI is a nearly
fixed margin around the sign and fills most of each crop (56 % of the area on average), so the constant box scores a
mean IoU of 0.852 on its test set, IoU >= 0.5 on every test image and IoU >= 0.75 on 89 % of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError, DatasetError

TASKS = ("classify", "localize")
"""``classify``: class labels only (the default). ``localize``: class label and box, for a dataset with boxes."""
BOX_LOSSES = ("smooth_l1", "giou", "smooth_l1+giou")
SMOOTH_L1_BETA = 0.05
"""Where SmoothL1 turns from quadratic to linear, in normalised units (a fraction of the image side)."""
IOU_THRESHOLD = 0.5
STRICT_IOU_THRESHOLD = 0.75
"""COCO's second threshold. On GTSRB the constant mean box already has IoU >= 0.5 with every test box (its ROI is a
nearly fixed margin around the sign), so accuracy at 0.5 cannot separate methods there; 0.75 can."""
DATASETS_WITH_BOXES = ("gtsrb", "signs")
"""Built-in datasets that carry a box per image (a plugin dataset may too: it sets ``train_boxes``/``test_boxes``)."""
_EPS = 1e-7

__all__ = [
    "BOX_LOSSES",
    "DATASETS_WITH_BOXES",
    "IOU_THRESHOLD",
    "SMOOTH_L1_BETA",
    "STRICT_IOU_THRESHOLD",
    "TASKS",
    "BoxRegressor",
    "LocalizeHead",
    "box_iou",
    "box_head_of",
    "box_loss",
    "box_summary_rows",
    "check_dataset_boxes",
    "check_task",
    "classifier_of",
    "clip_boxes",
    "constant_box_floor",
    "decode_boxes",
    "flip_boxes",
    "generalized_box_iou",
    "is_localize",
    "normalize_boxes",
    "resize_boxes",
    "shift_boxes",
    "validate_box_settings",
]


# --- settings ---------------------------------------------------------------------------------------------------


def is_localize(cfg: Any) -> bool:
    """True when the run's ``task`` is ``localize`` (configs without the field classify)."""
    return getattr(cfg, "task", "classify") == "localize"


def validate_box_settings(cfg: Any) -> None:
    """Range and choice checks of ``task``, ``box_loss`` and ``lambda_box`` (ConfigError)."""
    task = getattr(cfg, "task", "classify")
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is not one of {', '.join(TASKS)}")
    loss = getattr(cfg, "box_loss", "smooth_l1")
    if loss not in BOX_LOSSES:
        raise ConfigError(f"box_loss {loss!r} is not one of {', '.join(BOX_LOSSES)}")
    lam = getattr(cfg, "lambda_box", 1.0)
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= float(lam) < float("inf"):
        raise ConfigError(f"lambda_box must be a non-negative number, got {lam!r}")


def check_task(cfg: Any, dataset: Any) -> None:
    """Under ``--task localize``, the dataset must carry a box per image (ConfigError naming those that do)."""
    if not is_localize(cfg):
        return
    if getattr(dataset, "train_boxes", None) is None or getattr(dataset, "test_boxes", None) is None:
        raise ConfigError(
            f"--task localize needs a dataset with a box per image; {getattr(dataset, 'name', cfg.data)!r} has "
            f"none. Datasets with boxes: {', '.join(DATASETS_WITH_BOXES)} (or a plugin dataset that sets "
            "train_boxes and test_boxes); or use --task classify"
        )
    check_dataset_boxes(dataset)


def check_dataset_boxes(dataset: Any) -> None:
    """The boxes of a dataset are (N, 4) per split, finite, non-empty and inside the image (DatasetError naming
    the first bad box)."""
    h, w = int(dataset.train_images.shape[-2]), int(dataset.train_images.shape[-1])
    for split in ("train", "test"):
        boxes = getattr(dataset, f"{split}_boxes")
        n = int(getattr(dataset, f"{split}_labels").numel())
        where = f"dataset {dataset.name!r}: {split}_boxes"
        if not isinstance(boxes, torch.Tensor) or tuple(boxes.shape) != (n, 4):
            shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
            raise DatasetError(f"{where} must be a float tensor of shape ({n}, 4), got {shape}")
        b = boxes.float()
        bad = ~torch.isfinite(b).all(1) | (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > w) | (b[:, 3] > h)
        bad |= (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise DatasetError(
                f"{where}[{i}] = {[round(float(v), 3) for v in b[i]]} is not a box inside the {w}x{h} image "
                "(x1 < x2 <= width, y1 < y2 <= height, all >= 0)"
            )


# --- geometry -----------------------------------------------------------------------------------------------------


def normalize_boxes(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Pixel boxes ``(x1, y1, x2, y2)`` of a ``width`` x ``height`` image -> fractions of the image side."""
    scale = boxes.new_tensor([width, height, width, height], dtype=torch.float32)
    return boxes.float() / scale


def resize_boxes(boxes: torch.Tensor, from_size: tuple[float, float], to_size: tuple[float, float]) -> torch.Tensor:
    """Boxes of an image of ``from_size`` = (width, height) pixels, as the same boxes after resizing it to
    ``to_size`` (each axis scaled on its own, as an aspect-changing resize does): ``x * to_w / from_w`` in float64,
    returned as float32."""
    to = torch.tensor([to_size[0], to_size[1], to_size[0], to_size[1]], dtype=torch.float64)
    frm = torch.tensor([from_size[0], from_size[1], from_size[0], from_size[1]], dtype=torch.float64)
    return (boxes.double().cpu() * to / frm).float().to(boxes.device)


def clip_boxes(boxes: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Boxes clipped to ``[0, width] x [0, height]`` (a box entirely outside collapses to an empty box on the
    border)."""
    x = boxes[..., 0::2].clamp(0.0, float(width))
    y = boxes[..., 1::2].clamp(0.0, float(height))
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def shift_boxes(boxes: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Pixel boxes moved by ``(dx, dy)`` (one offset per box, or one for all), then clipped to the image: what a
    crop does to the boxes when it moves the image content by ``(dx, dy)`` pixels."""
    dx = torch.as_tensor(dx, dtype=torch.float32, device=boxes.device).reshape(-1)
    dy = torch.as_tensor(dy, dtype=torch.float32, device=boxes.device).reshape(-1)
    offset = torch.stack([dx, dy, dx, dy], dim=-1)
    return clip_boxes(boxes.float() + offset, width, height)


def flip_boxes(boxes: torch.Tensor, width: float, flip: torch.Tensor | bool = True) -> torch.Tensor:
    """Pixel boxes after a horizontal flip of a ``width``-pixel image (``flip``: one flag per box, or one)."""
    flipped = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=-1)
    flip = torch.as_tensor(flip, device=boxes.device).reshape(-1, 1)
    return torch.where(flip, flipped, boxes)


def _area(b: torch.Tensor) -> torch.Tensor:
    return (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of corresponding boxes: (N, 4), (N, 4) -> (N,), in float32. Two empty boxes give 0."""
    a, b = a.float(), b.float()
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    union = _area(a) + _area(b) - inter
    return inter / union.clamp(min=_EPS)


def generalized_box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU of corresponding boxes (Rezatofighi et al., CVPR 2019): ``IoU - (C - U) / C`` with C the area of the
    smallest box enclosing both and U their union; in [-1, 1], differentiable. (N, 4), (N, 4) -> (N,)."""
    a, b = a.float(), b.float()
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    union = _area(a) + _area(b) - inter
    iou = inter / union.clamp(min=_EPS)
    enclose = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).clamp(min=0).prod(1)
    return iou - (enclose - union) / enclose.clamp(min=_EPS)


def box_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "smooth_l1") -> torch.Tensor:
    """The box loss ``kind`` (:data:`BOX_LOSSES`) of normalised predictions against normalised targets, a scalar
    in float32 (also under autocast)."""
    pred, target = pred.float(), target.float()
    if kind not in BOX_LOSSES:
        raise ConfigError(f"box_loss {kind!r} is not one of {', '.join(BOX_LOSSES)}")
    loss = pred.new_zeros(())
    if kind in ("smooth_l1", "smooth_l1+giou"):
        loss = loss + F.smooth_l1_loss(pred, target, beta=SMOOTH_L1_BETA, reduction="none").sum(1).mean()
    if kind in ("giou", "smooth_l1+giou"):
        loss = loss + (1.0 - generalized_box_iou(pred, target)).mean()
    return loss


def decode_boxes(raw: torch.Tensor) -> torch.Tensor:
    """Four raw outputs per image -> normalised corners, through ``cx, cy, w, h = sigmoid(raw)``."""
    c = torch.sigmoid(raw.float())
    half = c[:, 2:] / 2
    return torch.cat([c[:, :2] - half, c[:, :2] + half], dim=1)


def constant_box_floor(train_boxes: torch.Tensor, eval_boxes: torch.Tensor) -> dict[str, float]:
    """Mean IoU (``miou``) and accuracy at IoU >= 0.5 and 0.75 (``acc50``, ``acc75``, percent) of always predicting
    the mean of ``train_boxes`` (normalised boxes) on ``eval_boxes``: what a box head that ignores the image
    scores."""
    mean = train_boxes.float().mean(0, keepdim=True)
    iou = box_iou(mean.expand_as(eval_boxes), eval_boxes.float())
    return {
        "miou": round(float(iou.mean()), 4),
        "acc50": round(100.0 * float((iou >= IOU_THRESHOLD).float().mean()), 3),
        "acc75": round(100.0 * float((iou >= STRICT_IOU_THRESHOLD).float().mean()), 3),
    }


def box_summary_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, text)`` rows of a run summary for the box metrics of a localize run (none for classification)."""
    if metrics.get("test_miou") is None:
        return []
    rows = [
        ("test mean IoU", f"{metrics['test_miou']:.3f} (constant-box floor {metrics.get('test_miou_floor', 0):.3f})"),
        ("test box acc@IoU0.5", f"{metrics['test_box_acc50']:.2f}% (floor {metrics.get('test_box_acc50_floor', 0):.2f}%)"),
        ("test class + IoU0.5", f"{metrics['test_det_acc50']:.2f}%"),
        ("test box acc@IoU0.75", f"{metrics['test_box_acc75']:.2f}% (floor {metrics.get('test_box_acc75_floor', 0):.2f}%)"),
        ("test class + IoU0.75", f"{metrics['test_det_acc75']:.2f}%"),
    ]
    if metrics.get("module_miou"):
        rows.append(("module mean IoU", " / ".join(f"{v:.3f}" for v in metrics["module_miou"] if v is not None)))
    return rows


# --- heads --------------------------------------------------------------------------------------------------------


class BoxRegressor(nn.Module):
    """A small box head on a module's output T of shape (C, H, W)::

        conv3x3(C -> min(C, 64), no bias) -> BN -> ReLU -> adaptive avg-pool to 4x4 -> flatten
        -> Linear(-> hidden) -> ReLU -> Linear(-> 4) -> decode_boxes

    It keeps a 4 x 4 spatial layout (global pooling would discard where the sign is). Returns normalised
    ``(x1, y1, x2, y2)`` boxes (see :func:`decode_boxes`).
    """

    def __init__(self, in_shape: Iterable[int], *, width: int = 64, pool: int = 4, hidden: int = 128) -> None:
        super().__init__()
        c = int(tuple(in_shape)[0])
        width = min(c, width)
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(pool), nn.Flatten(),
        )
        self.regressor = nn.Sequential(nn.Linear(width * pool * pool, hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, 4))

    @torch.no_grad()
    def start_at(self, box: torch.Tensor) -> BoxRegressor:
        """Set the last layer's bias so that a zero input to it predicts ``box`` (normalised corners): the head
        starts near the constant-box floor (the training set's mean box) instead of an arbitrary box."""
        box = box.float().reshape(4).clamp(0.0, 1.0)
        centre, size = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]).clamp(min=1e-3)
        target = torch.cat([centre, size]).clamp(1e-3, 1 - 1e-3)
        last = self.regressor[-1]
        last.bias.copy_(torch.logit(target).to(last.bias))
        return self

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return decode_boxes(self.regressor(self.features(t)))


class LocalizeHead(nn.Module):
    """A classifier and a box head side by side on the same features.

    ``head(t)`` returns the classifier's logits, exactly as the classifier alone would, so everything that reads
    class logits (evaluation, analysis, a method's local loss) works unchanged; ``head.box_head(t)`` returns the
    normalised boxes. Attributes the wrapper does not have are looked up on the classifier (InfoPro's
    ``head.reconstruct``, ``head.project``).
    """

    def __init__(self, classifier: nn.Module, box_head: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier
        self.box_head = box_head

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.classifier(t)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get("_modules")
            if not modules or "classifier" not in modules or name.startswith("__"):
                raise
            return getattr(modules["classifier"], name)


def classifier_of(head: nn.Module | None) -> nn.Module | None:
    """The class head inside a :class:`LocalizeHead` (the head itself otherwise)."""
    return head.classifier if isinstance(head, LocalizeHead) else head


def box_head_of(head: nn.Module | None) -> nn.Module | None:
    """The box head of a :class:`LocalizeHead`, None for a plain classifier."""
    return head.box_head if isinstance(head, LocalizeHead) else None
