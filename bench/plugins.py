"""The contracts between the harness and the datasets and architectures it is given, checked where they meet.

Every dataset and architecture, built-in or plugin, goes through these functions, so that a plugin's mistake is a
message naming the plugin (exit 2) instead of a traceback deep inside training:

- :func:`resolve_dataset_options`: ``--set data.KEY=VALUE`` options checked against the dataset's declared options
  (``options`` of :func:`bench.registry.register_dataset`, or the loader's ``options`` attribute, or else the
  keyword arguments of its signature) before the loader runs;
- :func:`build_dataset`: the loader called, any exception it raises turned into a DatasetError naming it, and
  what it returned checked by :func:`check_dataset` (types, shapes, dtypes, label range, boxes inside the images);
- :func:`build_network`: the architecture built, exceptions turned into an ArchitectureError naming it, and the
  result checked by :func:`check_network` (a StagedNet whose head gives one logit per class).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from bench.data.base import ImageDataset
from bench.errors import ArchitectureError, BenchError, ConfigError, DatasetError
from bench.params import Param, check_declarations, resolve
from bench.registry import ARCHITECTURES, BUILT_IN, DATASETS, plugin_label
from bench.staged import StagedNet

LOADER_ARGUMENTS = ("root", "allow_subset", "download")
"""What the harness passes to every dataset loader besides the options."""


# ---------------------------------------------------------------------------------------------------- datasets


def dataset_options(name: str) -> dict[str, Param] | None:
    """The declared options of dataset ``name`` (name -> Param), or None when it takes any keyword (``**options``
    without a declaration: the loader checks them itself)."""
    loader = DATASETS.get(name)
    meta = DATASETS.meta(name)
    who = plugin_label("dataset", name, DATASETS.origin(name))
    declared = meta.get("options")
    if declared is None:
        declared = getattr(loader, "options", None)
    if declared is not None:
        return check_declarations(declared, where=who)
    try:
        signature = inspect.signature(loader)
    except (TypeError, ValueError):
        return None
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {
        p.name: Param(None if p.default is inspect.Parameter.empty else p.default)
        for p in params
        if p.name not in LOADER_ARGUMENTS
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def resolve_dataset_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` checked against the options dataset ``name`` declares, coerced to their types (only the given
    options are returned: the loader's defaults apply to the others).

    Raises:
        ConfigError: an option the dataset does not take, or a value of the wrong type, range or choice.
    """
    declared = dataset_options(name)
    if declared is None:
        return dict(given)
    who = plugin_label("dataset", name, DATASETS.origin(name))
    try:
        return resolve(given, declared, where=who, fill_defaults=False, noun="option")
    except ConfigError as e:
        raise ConfigError(f"{e}. Dataset options are given as --set data.KEY=VALUE; `bench list dataset {name}` "
                          "shows them.") from None


def build_dataset(name: str, root: str, *, allow_subset: bool, download: bool, options: dict[str, Any]) -> ImageDataset:
    """Call dataset ``name``'s loader and check what it returns (:func:`check_dataset`).

    Raises:
        DatasetError: the loader failed (any exception but a ConfigError or DatasetError it raised on purpose is
            reported as the loader's failure, naming it) or returned something that breaks the contract.
    """
    loader = DATASETS.get(name)
    origin = DATASETS.origin(name)
    who = plugin_label("dataset", name, origin)
    try:
        dataset = loader(root, allow_subset=allow_subset, download=download, **options)
    except BenchError as e:
        if origin == BUILT_IN:
            raise
        raise type(e)(f"{who}: {e}") from e
    except Exception as e:
        hint = ("check its files and options" if origin == BUILT_IN
                else "check the options given with --set data.KEY=VALUE, or report it to the plugin's author")
        raise DatasetError(
            f"{who} failed while building its data: {type(e).__name__}: {e}. {hint[0].upper() + hint[1:]}; "
            "--debug shows the traceback."
        ) from e
    check_dataset(dataset, who)
    return dataset


def check_dataset(dataset: Any, who: str = "the dataset") -> ImageDataset:
    """Check the :class:`~bench.data.base.ImageDataset` contract; DatasetError naming ``who`` and the field."""

    def bad(what: str) -> DatasetError:
        return DatasetError(f"{who} returned a dataset that breaks the contract: {what} (docs/plugins.md, "
                            "'The dataset contract')")

    if not isinstance(dataset, ImageDataset):
        raise bad(f"expected a bench.ImageDataset, got {type(dataset).__name__}")
    k = dataset.num_classes
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise bad(f"num_classes must be an integer >= 2, got {k!r}")
    size = None
    for split in ("train", "test"):
        images = getattr(dataset, f"{split}_images")
        labels = getattr(dataset, f"{split}_labels")
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 \
                or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise bad(f"{split}_images must be a uint8 tensor (N, 3, S, S), got {_describe(images)}")
        if images.shape[0] == 0:
            raise bad(f"{split}_images holds no image")
        if size is not None and images.shape[2] != size:
            raise bad(f"test images are {images.shape[2]}x{images.shape[3]}, training images {size}x{size}")
        size = images.shape[2]
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise bad(f"{split}_labels must be an int64 tensor ({images.shape[0]},), one per image, got "
                      f"{_describe(labels)}")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= k:
            raise bad(f"{split}_labels must be in 0..{k - 1} (num_classes {k}), found {low}..{high}")
        boxes = getattr(dataset, f"{split}_boxes")
        if boxes is not None:
            if not isinstance(boxes, torch.Tensor) or not boxes.is_floating_point() \
                    or boxes.shape != (images.shape[0], 4):
                raise bad(f"{split}_boxes must be a float tensor ({images.shape[0]}, 4) or None, got "
                          f"{_describe(boxes)}")
            x1, y1, x2, y2 = boxes.unbind(1)
            outside = ~((0 <= x1) & (x1 <= x2) & (x2 <= size) & (0 <= y1) & (y1 <= y2) & (y2 <= size))
            if bool(outside.any()):
                i = int(outside.nonzero()[0, 0])
                raise bad(f"{split} box {i} ({', '.join(f'{v:g}' for v in boxes[i].tolist())}) is not inside its "
                          f"{size}x{size} image (x1 <= x2, y1 <= y2, all in [0, {size}])")
    for key in ("mean", "std"):
        value = getattr(dataset, key)
        try:
            numbers = np.asarray(value.tolist() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
        except (TypeError, ValueError):
            numbers = np.zeros(0)
        if numbers.shape != (3,) or not np.isfinite(numbers).all():
            raise bad(f"{key} must be 3 numbers (one per channel), got {value!r}")
        if (numbers < 0).any() or (numbers > 1).any() or (key == "std" and (numbers <= 0).any()):
            raise bad(f"{key} must be in [0, 1] units (a fraction of 255{', and > 0' if key == 'std' else ''}), "
                      f"got {tuple(numbers.tolist())}")
    if not isinstance(dataset.hflip, bool):
        raise bad(f"hflip must be True or False, got {dataset.hflip!r}")
    mirror = dataset.hflip_labels
    if mirror is not None and (
        len(mirror) != k or any(not isinstance(c, int) or isinstance(c, bool) or not -1 <= c < k for c in mirror)
    ):
        raise bad(f"hflip_labels must be None or {k} class indices (-1: not flipped), one per class, got {mirror!r}")
    if dataset.class_names and len(dataset.class_names) != k:
        raise bad(f"class_names lists {len(dataset.class_names)} names for {k} classes")
    groups = dataset.train_groups
    if groups is not None and (not isinstance(groups, torch.Tensor) or groups.shape != dataset.train_labels.shape):
        raise bad(f"train_groups must be None or an integer tensor ({dataset.train_labels.numel()},), got "
                  f"{_describe(groups)}")
    return dataset


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a numpy {value.dtype} array of shape {value.shape} (convert it with torch.from_numpy)"
    return f"{type(value).__name__}"


def channel_mean_std(images: torch.Tensor | np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and std of uint8 images (N, 3, H, W), in [0, 1] units: what ``ImageDataset.mean`` and
    ``std`` hold (computed on the training images)."""
    from bench.data._stats import channel_mean_std as stats

    array = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    try:
        return stats(array)
    except ValueError as e:
        raise DatasetError(str(e)) from None


# ----------------------------------------------------------------------------------------------- architectures


def build_network(name: str, *, num_classes: int, split: str, image_size: int, cifar_stem: bool | None) -> StagedNet:
    """Build architecture ``name`` and check it (:func:`check_network`).

    Raises:
        ArchitectureError: the builder failed (naming it) or returned something that breaks the contract.
        ConfigError: the builder refused a setting on purpose (e.g. a split it does not support).
    """
    builder = ARCHITECTURES.get(name)
    origin = ARCHITECTURES.origin(name)
    who = plugin_label("architecture", name, origin)
    try:
        net = builder(num_classes=num_classes, split=split, image_size=image_size, cifar_stem=cifar_stem)
    except BenchError as e:
        if origin == BUILT_IN:
            raise
        raise type(e)(f"{who}: {e}") from e
    except Exception as e:
        if origin == BUILT_IN:
            raise
        raise ArchitectureError(
            f"{who} failed to build (num_classes={num_classes}, split={split!r}, image_size={image_size}): "
            f"{type(e).__name__}: {e}. Check --split and the dataset's image size, or report it to the plugin's "
            "author; --debug shows the traceback."
        ) from e
    if origin != BUILT_IN:
        check_network(net, who, num_classes=num_classes, image_size=image_size)
    return net


def check_network(net: Any, who: str, *, num_classes: int, image_size: int) -> StagedNet:
    """Check the architecture contract: a StagedNet for (3, S, S) inputs whose head maps the last module's output to
    ``(batch, num_classes)`` logits. ArchitectureError naming ``who`` otherwise."""

    def bad(what: str) -> ArchitectureError:
        return ArchitectureError(f"{who} returned a network that breaks the contract: {what} (docs/plugins.md, "
                                 "'The architecture contract')")

    if not isinstance(net, StagedNet):
        raise bad(f"expected a bench.StagedNet (its local modules and its classifier), got {type(net).__name__}")
    if net.num_classes != num_classes:
        raise bad(f"it was asked for {num_classes} classes and says num_classes={net.num_classes}")
    if tuple(net.input_shape) != (3, image_size, image_size):
        raise bad(f"its input_shape is {tuple(net.input_shape)}, the dataset's images are (3, {image_size}, "
                  f"{image_size}): pass input_shape=(3, image_size, image_size) to StagedNet")
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            logits = net.head(torch.zeros(2, *net.feature_shapes[-1]))
    except Exception as e:
        raise bad(f"its head fails on the last module's output {tuple(net.feature_shapes[-1])}: "
                  f"{type(e).__name__}: {e}") from e
    finally:
        net.train(was_training)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (2, num_classes):
        raise bad(f"its head must return logits of shape (batch, {num_classes}), got {_describe(logits)} for a "
                  "batch of 2")
    return net
