"""CIFAR-10 and CIFAR-100 from the official python-pickle releases.

Layouts read (the ones the official archives extract to)::

    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    <root>/cifar-100-python/{train, test, meta}

``root`` may also be the batches folder itself. Full downloads are verified against the MD5s that torchvision
publishes for these files (the values of ``torchvision.datasets.CIFAR10/CIFAR100``).

Subsets: a folder whose files are all well-formed pickles of the official shape (uint8 ``data`` of shape
(N, 3072), N labels in range) but hold *fewer* images than the official files (like the offline copy in
``shared/data``, where some batches hold 0 images) is accepted as a subset: ``is_subset=True``, the MD5 check
is skipped and a warning says so. Files that hold the full official image count but do not match the published
MD5 (a modified or damaged "full" release), or more images than the official files, are refused unless
``allow_subset=True``.

The pickles are read with a restricted unpickler that only rebuilds numpy arrays and plain containers, so a
tampered file cannot run code; anything else is reported as a corrupt file.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.data.base import ImageDataset
from bench.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

_PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class _Spec:
    """What one CIFAR release looks like on disk."""

    name: str
    folder: str
    url: str
    archive: str
    archive_md5: str
    train_files: tuple[tuple[str, str], ...]  # (file name, published MD5)
    test_files: tuple[tuple[str, str], ...]
    meta_file: tuple[str, str]
    per_file_count: dict[str, int]  # official number of images in each data file
    label_key: str  # key of the labels used by default
    num_classes: int


# URLs and published MD5s: the values of torchvision.datasets.CIFAR10/CIFAR100, copied rather than imported
# because importing torchvision.datasets takes seconds; tests/test_data.py checks that they still agree.
_SPECS = {
    "cifar10": _Spec(
        name="cifar10",
        folder="cifar-10-batches-py",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        archive="cifar-10-python.tar.gz",
        archive_md5="c58f30108f718f92721af3b95e74349a",
        train_files=(
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ),
        test_files=(("test_batch", "40351d587109b95175f43aff81a1287e"),),
        meta_file=("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
        per_file_count={f"data_batch_{i}": 10_000 for i in range(1, 6)} | {"test_batch": 10_000},
        label_key="labels",
        num_classes=10,
    ),
    "cifar100": _Spec(
        name="cifar100",
        folder="cifar-100-python",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        archive="cifar-100-python.tar.gz",
        archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
        train_files=(("train", "16019d7e3df5f24257cddd939b257f8d"),),
        test_files=(("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
        meta_file=("meta", "7973b15100ade9c7d40fb424638fde48"),
        per_file_count={"train": 50_000, "test": 10_000},
        label_key="fine_labels",
        num_classes=100,
    ),
}


# -------------------------------------------------------------------------------------------------- reading
class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and builtin containers only (no arbitrary code)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol 0-2 pickles written by Python 3
        ("__builtin__", "bytes"),  # empty bytes in protocol 0-2 pickles
        ("builtins", "bytes"),
        ("builtins", "bytearray"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")


def _read_pickle(path: Path) -> dict[str, Any]:
    """Load one CIFAR pickle as a dict with str keys; DatasetError naming the file when it cannot be read."""
    if not path.is_file():
        raise DatasetError(f"missing file {path}: the CIFAR folder {path.parent} is incomplete")
    try:
        with path.open("rb") as f:
            obj = _SafeUnpickler(f, encoding="latin1").load()
    except Exception as exc:  # any failure means a corrupt file
        raise DatasetError(f"corrupt CIFAR file {path}: not a readable CIFAR pickle ({exc})") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"corrupt CIFAR file {path}: expected a dict, found {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _labels(path: Path, d: dict[str, Any], key: str, n: int, num_classes: int) -> np.ndarray:
    if key not in d:
        raise DatasetError(f"corrupt CIFAR file {path}: no '{key}' entry (found keys {sorted(d)})")
    try:
        labels = np.asarray(d[key])
    except Exception as exc:
        raise DatasetError(f"corrupt CIFAR file {path}: '{key}' is not a list of integers") from exc
    if labels.shape != (n,) or (n > 0 and not np.issubdtype(labels.dtype, np.integer)):
        raise DatasetError(
            f"corrupt CIFAR file {path}: '{key}' should hold {n} integer labels, found shape {labels.shape} "
            f"of {labels.dtype}"
        )
    labels = labels.astype(np.int64)
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"corrupt CIFAR file {path}: '{key}' has labels outside 0..{num_classes - 1} "
            f"(min {labels.min()}, max {labels.max()})"
        )
    return labels


def _read_batch(path: Path, label_keys: dict[str, int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Images (N, 3, 32, 32) uint8 and each requested label array of one data file, validated."""
    d = _read_pickle(path)
    data = d.get("data")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != _PIXELS
    ):
        desc = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DatasetError(
            f"corrupt CIFAR file {path}: 'data' should be a uint8 array (N, {_PIXELS}), found {desc}"
        )
    n = data.shape[0]
    labels = {key: _labels(path, d, key, n, k) for key, k in label_keys.items()}
    return data.reshape(n, 3, 32, 32), labels


def _read_names(path: Path, key: str, count: int) -> list[str]:
    d = _read_pickle(path)
    names = d.get(key)
    if not isinstance(names, (list, tuple)) or len(names) != count:
        raise DatasetError(f"corrupt CIFAR meta file {path}: '{key}' should list {count} class names")
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------- locating
def _locate(spec: _Spec, root: Path, download: bool) -> Path:
    """The batches folder under ``root`` (or ``root`` itself), downloading the archive if asked."""
    for candidate in (root / spec.folder, root):
        if (candidate / spec.meta_file[0]).is_file():
            return candidate
    folder = root / spec.folder
    hint = (
        f"{spec.name} not found: expected the folder {folder} (the official python version, extracted from "
        f"{spec.url}). Download and extract that archive, or pass --data-root pointing at a folder "
        f"containing {spec.folder}/"
    )
    if not download:
        raise DatasetError(hint + ", or enable downloading.")
    try:
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(spec.url, str(root), filename=spec.archive, md5=spec.archive_md5)
    except Exception as exc:  # offline, refused, bad checksum, full disk...
        raise DatasetError(hint + f". The download failed ({type(exc).__name__}: {exc}).") from exc
    if not (folder / spec.meta_file[0]).is_file():
        raise DatasetError(hint + f". The downloaded archive did not produce {folder / spec.meta_file[0]}.")
    return folder


# -------------------------------------------------------------------------------------------------- loading
def _load(
    name: str, root: str | Path | None, allow_subset: bool, download: bool, labels: str
) -> ImageDataset:
    spec = _SPECS[name]
    folder = _locate(spec, Path("data") if root is None else Path(root).expanduser(), download)

    label_keys = {"labels": 10} if name == "cifar10" else {"fine_labels": 100, "coarse_labels": 20}
    use_key = spec.label_key if labels == "fine" else "coarse_labels"
    num_classes = label_keys[use_key]

    def read_split(files: tuple[tuple[str, str], ...]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        images, ys, counts = [], [], {}
        for fname, _ in files:
            x, y = _read_batch(folder / fname, label_keys)
            images.append(x)
            ys.append(y[use_key])
            counts[fname] = x.shape[0]
        return np.concatenate(images), np.concatenate(ys), counts

    meta_path = folder / spec.meta_file[0]
    try:
        train_x, train_y, train_counts = read_split(spec.train_files)
        test_x, test_y, test_counts = read_split(spec.test_files)
        if name == "cifar10":
            class_names = _read_names(meta_path, "label_names", 10)
        else:
            class_names = _read_names(meta_path, f"{labels}_label_names", num_classes)
    except DatasetError as exc:
        raise DatasetError(f"{exc}. Replace {folder} with a fresh extract of the official archive ({spec.url})") \
            from exc

    counts = {**train_counts, **test_counts}
    fewer = {f: n for f, n in counts.items() if n < spec.per_file_count[f]}
    more = {f: n for f, n in counts.items() if n > spec.per_file_count[f]}
    is_subset = False
    if more:
        listing = ", ".join(f"{f}: {n} > {spec.per_file_count[f]}" for f, n in more.items())
        if not allow_subset:
            raise DatasetError(
                f"{folder} is not the official {name} release: files hold more images than the official ones "
                f"({listing}). Pass allow_subset=True to use it anyway."
            )
        is_subset = True
        logger.warning(
            "%s: %s is not the official release (%s); used because allow_subset is set", name, folder, listing
        )
    elif fewer:
        is_subset = True
        logger.warning(
            "%s: %s holds a subset of the official release (%d train / %d test images instead of %d / %d); "
            "MD5 check skipped",
            name,
            folder,
            len(train_y),
            len(test_y),
            sum(spec.per_file_count[f] for f, _ in spec.train_files),
            sum(spec.per_file_count[f] for f, _ in spec.test_files),
        )
    else:
        bad = [
            fname
            for fname, md5 in spec.train_files + spec.test_files + (spec.meta_file,)
            if _md5(folder / fname) != md5
        ]
        if bad:
            paths = ", ".join(str(folder / f) for f in bad)
            if not allow_subset:
                raise DatasetError(
                    f"MD5 mismatch for {paths}: these files have the official size but differ from the "
                    f"published {name} release (damaged or modified). Re-download {spec.url}, or pass "
                    "allow_subset=True to use them anyway."
                )
            is_subset = True
            logger.warning("%s: MD5 mismatch for %s; used because allow_subset is set", name, paths)

    mean, std = (CIFAR10_MEAN, CIFAR10_STD) if name == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
    return ImageDataset(
        name=name if labels == "fine" else f"{name}-coarse",
        num_classes=num_classes,
        train_images=torch.from_numpy(np.ascontiguousarray(train_x)),
        train_labels=torch.from_numpy(train_y),
        test_images=torch.from_numpy(np.ascontiguousarray(test_x)),
        test_labels=torch.from_numpy(test_y),
        mean=mean,
        std=std,
        hflip=True,
        class_names=class_names,
        source=str(folder),
        is_subset=is_subset,
    )


def _check_options(name: str, options: dict[str, Any], accepted: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        ok = ", ".join(accepted) if accepted else "none"
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for dataset {name} (accepted: {ok})")


def load_cifar10(
    root: str | Path | None = None, *, allow_subset: bool = False, download: bool = False, **options: Any
) -> ImageDataset:
    """CIFAR-10 (50,000 train / 10,000 test images, 10 classes) from ``<root>/cifar-10-batches-py``.

    Args:
        root: folder containing ``cifar-10-batches-py/`` (or that folder itself); ``None`` means ``./data``.
        allow_subset: also accept files that hold the official image count but fail the MD5 check, or more
            images than the official files. Well-formed files with fewer images are accepted either way.
        download: fetch and extract the official archive into ``root`` when the folder is missing.
    """
    _check_options("cifar10", options, ())
    return _load("cifar10", root, allow_subset, download, "fine")


def load_cifar100(
    root: str | Path | None = None,
    *,
    allow_subset: bool = False,
    download: bool = False,
    labels: str = "fine",
    **options: Any,
) -> ImageDataset:
    """CIFAR-100 (50,000 train / 10,000 test images) from ``<root>/cifar-100-python``.

    Args:
        root, allow_subset, download: as for :func:`load_cifar10`.
        labels: ``"fine"`` (100 classes, the default) or ``"coarse"`` (the 20 superclasses; the dataset is
            then named ``cifar100-coarse``).
    """
    _check_options("cifar100", options, ("labels",))
    if labels not in ("fine", "coarse"):
        raise ConfigError(f"cifar100 option labels must be 'fine' or 'coarse', not {labels!r}")
    return _load("cifar100", root, allow_subset, download, labels)
