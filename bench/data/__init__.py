"""Datasets: each loader returns an :class:`~bench.data.base.ImageDataset` of whole uint8 tensors.

Built-in datasets are listed in :data:`BUILTIN_DATASETS` as ``"module:attr"`` loader paths, imported only when
used. Every loader has the signature ``(root, *, allow_subset, download, **options) -> ImageDataset``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from bench.data.base import ImageDataset
from bench.errors import UnknownNameError

__all__ = ["BUILTIN_DATASETS", "DEFAULT_DATA_ROOT", "ImageDataset", "load_dataset"]

DEFAULT_DATA_ROOT = Path("data")
"""Root used by the file-based datasets when none is given (relative to the working directory)."""

BUILTIN_DATASETS: dict[str, dict[str, Any]] = {
    "signs": {
        "loader": "bench.data.signs:load_signs",
        "description": "generated GTSRB-like traffic signs (default 10 classes, 5,000/1,000 images, 32x32), "
        "deterministic, no download",
        "num_classes": 10,
    },
    "cifar10": {
        "loader": "bench.data.cifar:load_cifar10",
        "description": "CIFAR-10, 50,000/10,000 32x32 images, 10 classes (official python pickles)",
        "num_classes": 10,
    },
    "cifar100": {
        "loader": "bench.data.cifar:load_cifar100",
        "description": "CIFAR-100, 50,000/10,000 32x32 images, 100 fine classes (option labels='coarse': 20)",
        "num_classes": 100,
    },
    "gtsrb": {
        "loader": "bench.data.gtsrb:load_gtsrb",
        "description": "German Traffic Sign Recognition Benchmark, 39,209/12,630 images resized to 32x32, "
        "43 classes, with ROI boxes",
        "num_classes": 43,
    },
}


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    allow_subset: bool = False,
    download: bool = False,
    **options: Any,
) -> ImageDataset:
    """Load a built-in dataset by name (case-insensitive; ``-``/``_`` ignored, so ``CIFAR-10`` works).

    Args:
        name: one of :data:`BUILTIN_DATASETS`.
        root: folder holding the dataset's files; ``None`` means ``./data`` (ignored by ``signs``).
        allow_subset: accept files that are not the verified official release (see each loader).
        download: fetch the official files when they are missing and the network allows.
        options: dataset-specific options (e.g. ``num_classes`` for signs, ``labels`` for cifar100).

    Raises:
        UnknownNameError: unknown dataset name.
        DatasetError: missing or corrupt data. ConfigError: bad option.
    """
    key = name.strip().lower().replace("-", "").replace("_", "")
    entry = BUILTIN_DATASETS.get(key)
    if entry is None:
        raise UnknownNameError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(BUILTIN_DATASETS))}"
        )
    loader = _resolve(entry["loader"])
    if root is None and key != "signs":
        root = DEFAULT_DATA_ROOT
    return loader(root, allow_subset=allow_subset, download=download, **options)
