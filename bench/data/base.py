"""The in-memory form every dataset takes: uint8 image tensors plus labels (and boxes where known), and the
validation split carved from its training set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from bench.errors import ConfigError

VAL_SEED = 0
"""Seed of the held-out group choice of :func:`validation_split` (fixed: the split never depends on the run's seed)."""


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
    hflip_labels: tuple[int, ...] | None = None
    """Where ``hflip`` is False: the class of each class's mirror image (-1 where the mirror is no class), so that
    training may flip an image and relabel it (GTSRB's ``flip=mirror`` option); None: never flipped."""
    class_names: list[str] = field(default_factory=list)
    train_boxes: torch.Tensor | None = None
    test_boxes: torch.Tensor | None = None
    source: str = ""
    """Where the data came from: a folder, or 'generated'."""
    is_subset: bool = False
    """True when the files on disk are a valid subset of the official release (fewer images)."""
    train_groups: torch.Tensor | None = None
    """Optional int64 (N,) group id of each training image: images of one group (GTSRB: the 30 frames of one
    physical sign's track) are held out for validation together, never split between training and validation.
    Ids need only be distinct within a class. None: every image is independent (the validation split is then a
    fixed slice at the end of the training set)."""

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


@dataclass(frozen=True)
class ValidationSplit:
    """Which training images train and which validate (indices into ``ImageDataset.train_images``)."""

    train_indices: torch.Tensor
    """int64, ascending: the images that train."""
    val_indices: torch.Tensor
    """int64, ascending: the held-out images (empty when there is no validation split)."""
    fraction: float
    rule: str
    """How the held-out images were chosen, in words (recorded in the result)."""

    @property
    def digest(self) -> str:
        """First 16 hex digits of the SHA-256 of the held-out indices (int64, little-endian): two results with
        the same digest validated on the same images."""
        data = self.val_indices.to(torch.int64).numpy().astype("<i8").tobytes()
        return hashlib.sha256(data).hexdigest()[:16]

    def summary(self) -> dict:
        return {
            "val_split": self.fraction,
            "val_size": int(self.val_indices.numel()),
            "val_rule": self.rule,
            "val_digest": self.digest,
        }


def validation_split(dataset: ImageDataset, fraction: float) -> ValidationSplit:
    """Carve a fixed validation split of about ``fraction`` of the training images.

    - Datasets with ``train_groups`` (GTSRB: tracks) hold out whole groups, class by class: of the groups of each
      class, ``round(fraction * count)`` (at least 1, and never all of them; a class with a single group keeps it
      for training) chosen by a permutation seeded with ``(VAL_SEED, class)``, so the choice of one class does not
      depend on the others. Frames of one track are near-duplicates: holding out single frames of a track that
      also trains would measure memorisation, not generalisation.
    - Other datasets (CIFAR, generated signs, plugins) hold out the last ``round(fraction * N)`` training images
      (at least 1, at most N - 1): the training files are in random order, so the slice is a random sample, and
      it is the same slice on every machine.

    ``fraction`` 0 gives an empty validation split. Raises ConfigError unless 0 <= fraction < 1.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ConfigError(f"val_split must be a fraction in [0, 1), got {fraction!r}")
    fraction = float(fraction)
    n = int(dataset.train_labels.numel())
    everything = torch.arange(n, dtype=torch.int64)
    if fraction == 0.0 or n < 2:
        return ValidationSplit(everything, torch.zeros(0, dtype=torch.int64), fraction, "none")
    if dataset.train_groups is None:
        n_val = min(n - 1, max(1, round(fraction * n)))
        return ValidationSplit(
            everything[: n - n_val], everything[n - n_val :], fraction,
            f"the last {n_val} of the {n} training images",
        )
    groups = dataset.train_groups.to(torch.int64).numpy()
    labels = dataset.train_labels.to(torch.int64).numpy()
    if groups.shape != labels.shape:
        raise ValueError(f"train_groups has shape {groups.shape}, the training labels {labels.shape}")
    held = np.zeros(n, dtype=bool)
    held_groups = total_groups = 0
    for c in np.unique(labels):
        in_class = labels == c
        ids = np.unique(groups[in_class])  # sorted: the permutation below does not depend on file order
        total_groups += len(ids)
        if len(ids) < 2:
            continue
        k = min(len(ids) - 1, max(1, round(fraction * len(ids))))
        rng = np.random.Generator(np.random.PCG64([VAL_SEED, int(c)]))
        chosen = ids[rng.permutation(len(ids))[:k]]
        held |= in_class & np.isin(groups, chosen)
        held_groups += k
    val = torch.from_numpy(np.flatnonzero(held).astype(np.int64))
    train = torch.from_numpy(np.flatnonzero(~held).astype(np.int64))
    rule = (
        f"whole groups (tracks) held out per class: {held_groups} of {total_groups} groups, "
        f"{int(val.numel())} of {n} images (seed {VAL_SEED})"
    )
    return ValidationSplit(train, val, fraction, rule)
