"""Batches from whole uint8 tensors held on the training device, augmented there (airbench-style).

No per-sample PIL transforms and no worker processes on the hot path: the dataset is one uint8 tensor per split on
the device; each batch is cropped (pad + random offsets), flipped where the label allows, and normalised as a whole.
The validation split (:func:`bench.data.base.validation_split`) is carved from the training set here: training
batches never contain a held-out image.

Boxes (``--task localize``): when the dataset has them, the ``*_with_boxes`` batch methods also yield each image's
box, normalised to ``[0, 1]`` (``bench.boxes``), moved with the image by the same random crop (shifted by the crop
offset, then clipped to the image) and mirrored by the same horizontal flip; ``train_batches`` and the other
``(x, y)`` methods draw the same random numbers and give the same images. GTSRB and the generated signs do not flip
by default (``ImageDataset.hflip`` is False: traffic signs are not mirror-symmetric), in either task. A dataset may
instead say which class each class's mirror image belongs to (``ImageDataset.hflip_labels``; GTSRB with
``--set data.flip=mirror``): then an image whose mirror is a sign is flipped with probability 1/2 and relabelled
("turn left" becomes "turn right", "yield" stays "yield"), and an image whose mirror is no sign is never flipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from bench.boxes import flip_boxes, normalize_boxes, shift_boxes
from bench.data.base import ImageDataset, ValidationSplit, validation_split


class DeviceData:
    """One dataset on one device, with seeded shuffling and augmentation.

    Args:
        dataset: the loaded dataset.
        device: where the tensors live and batches are made.
        crop_padding: pixels of padding for the random crop (0 disables cropping).
        padding_mode: ``zeros`` (torchvision's ``RandomCrop(padding=4)``) or ``reflect`` (InfoPro's).
        val_split: fraction of the training set held out for validation (0: none); see
            :func:`~bench.data.base.validation_split`.
        max_train_samples: keep only the first N of the remaining training images (a quick budget knob; it
            never changes the validation split).
        max_test_samples: evaluate on the first N test images only.
        memory_format: memory format of the normalised batches (``torch.channels_last`` for networks converted
            to it).
    """

    def __init__(
        self,
        dataset: ImageDataset,
        device: torch.device | str,
        *,
        crop_padding: int = 4,
        padding_mode: str = "zeros",
        val_split: float = 0.0,
        max_train_samples: int | None = None,
        max_test_samples: int | None = None,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> None:
        self.dataset = dataset
        self.device = torch.device(device)
        self.split: ValidationSplit = validation_split(dataset, val_split)
        train_idx = self.split.train_indices
        if max_train_samples is not None:
            train_idx = train_idx[:max_train_samples]
        self.train_images = _take(dataset.train_images, train_idx).to(self.device)
        self.train_labels = _take(dataset.train_labels, train_idx).to(self.device)
        self.val_images = dataset.train_images[self.split.val_indices].to(self.device)
        self.val_labels = dataset.train_labels[self.split.val_indices].to(self.device)
        self.memory_format = memory_format
        m = dataset.test_labels.numel() if max_test_samples is None else min(dataset.test_labels.numel(), max_test_samples)
        self.test_images = dataset.test_images[:m].to(self.device)
        self.test_labels = dataset.test_labels[:m].to(self.device)
        self.has_boxes = dataset.train_boxes is not None and dataset.test_boxes is not None
        """Whether every image has a box (``train_boxes``, ``val_boxes``, ``test_boxes``: float32 (N, 4) pixel
        boxes of the stored image, on the device; None without)."""
        self.train_boxes = self.val_boxes = self.test_boxes = None
        if self.has_boxes:
            self.train_boxes = _take(dataset.train_boxes, train_idx).float().to(self.device)
            self.val_boxes = dataset.train_boxes[self.split.val_indices].float().to(self.device)
            self.test_boxes = dataset.test_boxes[:m].float().to(self.device)
        self.mean = torch.tensor(dataset.mean, device=self.device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(dataset.std, device=self.device).view(1, -1, 1, 1) * 255.0
        self.hflip = dataset.hflip
        self.flip_labels = (
            None if dataset.hflip or dataset.hflip_labels is None
            else torch.tensor(dataset.hflip_labels, dtype=torch.long, device=self.device)
        )
        """Class of each class's mirror image (-1: not flipped), or None (``hflip`` decides alone)."""
        self.crop_padding = crop_padding
        if padding_mode not in ("zeros", "reflect"):
            raise ValueError(f"padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.num_classes = dataset.num_classes

    @property
    def train_size(self) -> int:
        return int(self.train_labels.numel())

    @property
    def test_size(self) -> int:
        return int(self.test_labels.numel())

    @property
    def val_size(self) -> int:
        return int(self.val_labels.numel())

    def validation_summary(self) -> dict:
        """``val_split``, ``val_size``, ``val_rule``, ``val_digest`` (see :class:`ValidationSplit`)."""
        return self.split.summary()

    def steps_per_epoch(self, batch_size: int, drop_last: bool = False) -> int:
        n = self.train_size
        return n // batch_size if drop_last else -(-n // batch_size)

    def normalize(self, images_u8: torch.Tensor) -> torch.Tensor:
        x = (images_u8.float() - self.mean) / self.std
        return x if self.memory_format == torch.contiguous_format else x.contiguous(memory_format=self.memory_format)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Back to [0, 1] pixel intensities (InfoPro reconstructs the input in that range)."""
        return (x * self.std + self.mean) / 255.0

    def augment(self, images_u8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop (zero or reflection padding) and, where the label allows, a random horizontal flip (a
        relabelling flip needs the labels: :meth:`augment_with_labels`)."""
        return self._augment(images_u8, generator)[0]

    def augment_with_labels(
        self, images_u8: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`augment` with the labels, relabelled where a flip changes the class (``hflip_labels``)."""
        x, _, y = self._augment(images_u8, generator, labels=labels)
        return x, y

    def augment_with_boxes(
        self, images_u8: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`augment` of the images and the same transform of their pixel boxes: shifted by the crop offset
        and clipped to the image, mirrored with a flipped image. Draws the same random numbers as :meth:`augment`."""
        return self._augment(images_u8, generator, boxes)[:2]

    def _augment(self, images_u8: torch.Tensor, generator: torch.Generator, boxes: torch.Tensor | None = None,
                 labels: torch.Tensor | None = None):
        b, _, h, w = images_u8.shape
        x = images_u8
        p = self.crop_padding
        if p > 0:
            if self.padding_mode == "reflect":  # reflection is not implemented for integer tensors
                padded = F.pad(x.float(), (p, p, p, p), mode="reflect").to(x.dtype)
            else:
                padded = F.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (b,), generator=generator).to(x.device)
            dx = torch.randint(0, 2 * p + 1, (b,), generator=generator).to(x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
            batch = torch.arange(b, device=x.device)[:, None, None, None]
            chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[batch, chans, rows, cols]
            if boxes is not None:  # output pixel (r, c) is input pixel (r + dy - p, c + dx - p)
                boxes = shift_boxes(boxes, p - dx, p - dy, w, h)
        if self.hflip or (self.flip_labels is not None and labels is not None):
            flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
            if not self.hflip:  # flip only where the mirror image is a sign, and relabel it
                mirrored = self.flip_labels[labels]
                flip = flip & (mirrored >= 0)
                labels = torch.where(flip, mirrored, labels)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            if boxes is not None:
                boxes = flip_boxes(boxes, w, flip)
        return x, boxes, labels

    def normalize_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """Pixel boxes of the stored images -> fractions of the image side (``bench.boxes``)."""
        h, w = self.train_images.shape[-2:]
        return normalize_boxes(boxes, int(w), int(h))

    def train_batches(
        self, batch_size: int, generator: torch.Generator, *, augment: bool = True, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled, augmented, normalised training batches ``(x, y)``."""
        for x, y, _ in self._train_batches(batch_size, generator, augment, drop_last, with_boxes=False):
            yield x, y

    def train_batches_with_boxes(
        self, batch_size: int, generator: torch.Generator, *, augment: bool = True, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """:meth:`train_batches` with each image's normalised box, transformed with the image: ``(x, y, boxes)``.
        Same images, same order, same random numbers as :meth:`train_batches`. ValueError without boxes."""
        self._need_boxes()
        yield from self._train_batches(batch_size, generator, augment, drop_last, with_boxes=True)

    def _train_batches(self, batch_size, generator, augment, drop_last, *, with_boxes: bool):
        order = torch.randperm(self.train_size, generator=generator).to(self.device)
        for start in range(0, self.train_size, batch_size):
            idx = order[start : start + batch_size]
            if drop_last and idx.numel() < batch_size:
                break
            images, labels = self.train_images[idx], self.train_labels[idx]
            boxes = self.train_boxes[idx] if with_boxes else None
            if augment:
                images, boxes, labels = self._augment(images, generator, boxes, labels)
            yield self.normalize(images), labels, (
                None if boxes is None else self.normalize_boxes(boxes)
            )

    def _need_boxes(self) -> None:
        if not self.has_boxes:
            raise ValueError(f"dataset {self.dataset.name!r} has no boxes")

    def test_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The test images in order, normalised, not augmented."""
        return self._plain_batches(self.test_images, self.test_labels, batch_size)

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The held-out validation images in order, normalised, not augmented (none when ``val_split`` is 0)."""
        return self._plain_batches(self.val_images, self.val_labels, batch_size)

    def test_batches_with_boxes(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """:meth:`test_batches` with the normalised boxes: ``(x, y, boxes)``."""
        self._need_boxes()
        return self._plain_batches(self.test_images, self.test_labels, batch_size, self.test_boxes)

    def val_batches_with_boxes(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """:meth:`val_batches` with the normalised boxes: ``(x, y, boxes)``."""
        self._need_boxes()
        return self._plain_batches(self.val_images, self.val_labels, batch_size, self.val_boxes)

    def _plain_batches(self, images, labels, batch_size: int, boxes=None):
        for start in range(0, int(labels.numel()), batch_size):
            sl = slice(start, start + batch_size)
            if boxes is None:
                yield self.normalize(images[sl]), labels[sl]
            else:
                yield self.normalize(images[sl]), labels[sl], self.normalize_boxes(boxes[sl])


def _take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[idx]``, as a view when ``idx`` is 0..n-1 (no copy of the whole training set)."""
    n = int(idx.numel())
    if n == 0 or (int(idx[0]) == 0 and int(idx[-1]) == n - 1 and n <= t.shape[0]):
        return t[:n]
    return t[idx]
