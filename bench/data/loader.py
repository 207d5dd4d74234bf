"""Batches from whole uint8 tensors held on the training device, augmented there (airbench-style).

No per-sample PIL transforms and no worker processes on the hot path: the dataset is one uint8 tensor per split on
the device; each batch is cropped (pad + random offsets), flipped where the label allows, and normalised as a whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from bench.data.base import ImageDataset


class DeviceData:
    """One dataset on one device, with seeded shuffling and augmentation.

    Args:
        dataset: the loaded dataset.
        device: where the tensors live and batches are made.
        crop_padding: pixels of padding for the random crop (0 disables cropping).
        padding_mode: ``zeros`` (torchvision's ``RandomCrop(padding=4)``) or ``reflect`` (InfoPro's).
        max_train_samples: keep only the first N training images (a quick budget knob).
    """

    def __init__(
        self,
        dataset: ImageDataset,
        device: torch.device | str,
        *,
        crop_padding: int = 4,
        padding_mode: str = "zeros",
        max_train_samples: int | None = None,
        max_test_samples: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.device = torch.device(device)
        n = dataset.train_labels.numel()
        if max_train_samples is not None:
            n = min(n, max_train_samples)
        self.train_images = dataset.train_images[:n].to(self.device)
        self.train_labels = dataset.train_labels[:n].to(self.device)
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

    def steps_per_epoch(self, batch_size: int, drop_last: bool = False) -> int:
        n = self.train_size
        return n // batch_size if drop_last else -(-n // batch_size)

    def normalize(self, images_u8: torch.Tensor) -> torch.Tensor:
        return (images_u8.float() - self.mean) / self.std

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
        for start in range(0, self.test_size, batch_size):
            yield (
                self.normalize(self.test_images[start : start + batch_size]),
                self.test_labels[start : start + batch_size],
            )
