"""Batches from whole uint8 tensors held on the training device, augmented there (airbench-style).

No per-sample PIL transforms and no worker processes on the hot path: the dataset is one uint8 tensor per split on
the device; each batch is cropped (pad + random offsets), flipped where the label allows, and normalised as a whole.
The validation split (:func:`bench.data.base.validation_split`) is carved from the training set here: training
batches never contain a held-out image.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

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
        self.mean = torch.tensor(dataset.mean, device=self.device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(dataset.std, device=self.device).view(1, -1, 1, 1) * 255.0
        self.hflip = dataset.hflip
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
        """Random crop (zero or reflection padding) and, where the label allows, a random horizontal flip."""
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
        if self.hflip:
            flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x

    def train_batches(
        self, batch_size: int, generator: torch.Generator, *, augment: bool = True, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled, augmented, normalised training batches ``(x, y)``."""
        order = torch.randperm(self.train_size, generator=generator).to(self.device)
        for start in range(0, self.train_size, batch_size):
            idx = order[start : start + batch_size]
            if drop_last and idx.numel() < batch_size:
                break
            images = self.train_images[idx]
            if augment:
                images = self.augment(images, generator)
            yield self.normalize(images), self.train_labels[idx]

    def test_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The test images in order, normalised, not augmented."""
        return self._plain_batches(self.test_images, self.test_labels, batch_size)

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The held-out validation images in order, normalised, not augmented (none when ``val_split`` is 0)."""
        return self._plain_batches(self.val_images, self.val_labels, batch_size)

    def _plain_batches(self, images, labels, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, int(labels.numel()), batch_size):
            yield self.normalize(images[start : start + batch_size]), labels[start : start + batch_size]


def _take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[idx]``, as a view when ``idx`` is 0..n-1 (no copy of the whole training set)."""
    n = int(idx.numel())
    if n == 0 or (int(idx[0]) == 0 and int(idx[-1]) == n - 1 and n <= t.shape[0]):
        return t[:n]
    return t[idx]
