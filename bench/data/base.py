"""The in-memory form every dataset takes: uint8 image tensors plus labels (and boxes where known)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ImageDataset:
    """A small image dataset held as whole tensors (airbench-style), ready to move to the training device.

    Images are uint8 of shape (N, 3, H, W); labels int64 of shape (N,). Boxes, where the dataset has them, are float32
    (N, 4) as (x1, y1, x2, y2) in pixel coordinates of the stored (resized) image, inclusive-exclusive like the
    official GTSRB ROI columns scaled to the stored size.
    """

    name: str
    num_classes: int
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hflip: bool
    """Whether a horizontal flip keeps the label (True for CIFAR, False for traffic signs)."""
    class_names: list[str] = field(default_factory=list)
    train_boxes: torch.Tensor | None = None
    test_boxes: torch.Tensor | None = None
    source: str = ""
    """Where the data came from: a folder, or 'generated'."""
    is_subset: bool = False
    """True when the files on disk are a valid subset of the official release (fewer images)."""

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[-1])

    def summary(self) -> dict:
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "train_size": int(self.train_labels.numel()),
            "test_size": int(self.test_labels.numel()),
            "image_size": self.image_size,
            "source": self.source,
            "is_subset": self.is_subset,
        }
