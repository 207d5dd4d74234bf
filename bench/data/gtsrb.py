"""GTSRB (German Traffic Sign Recognition Benchmark) from the layouts of the official archives.

Layouts read (``<base>`` is ``<root>/gtsrb`` or ``<root>`` itself)::

    <base>/GTSRB/Training/000NN/*.ppm + GT-000NN.csv          (torchvision's GTSRB-Training_fixed.zip)
    <base>/GTSRB/Final_Training/Images/000NN/*.ppm + GT-000NN.csv   (GTSRB_Final_Training_Images.zip)
    <base>/GTSRB/Final_Test/Images/*.ppm                      (GTSRB_Final_Test_Images.zip)
    <base>/GT-final_test.csv                                  (GTSRB_Final_Test_GT.zip; also accepted inside
                                                               Final_Test/Images or GTSRB/)

The CSVs are semicolon-separated: ``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``.

Choices:

- Every image is resized to ``image_size`` x ``image_size`` (default 32) with Pillow's bilinear filter. Pillow
  widens the bilinear kernel when shrinking, so downscaling is antialiased (like torchvision's
  ``resize(..., antialias=True)``); GTSRB images range from 15 to 250 px, so most are shrunk. The aspect ratio
  is not kept (GTSRB crops are close to square).
- The ROI box of each image is scaled to the stored image: x by ``image_size / Width``, y by
  ``image_size / Height``, using the CSV's ``Width``/``Height`` (the size the ROI refers to;
  ``bench.boxes.resize_boxes``). A ROI that is not a box inside its image (``0 <= X1 < X2 <= Width``,
  ``0 <= Y1 < Y2 <= Height``) is a DatasetError naming the CSV file and line; the official files have none.
- Mean and std are computed from the training images as loaded (after resizing), not taken from a publication,
  so they match whatever subset is on disk (the validation images included: the statistics are a property of
  the dataset, not of a split).
- Tracks: a training file is named ``TTTTT_FFFFF.ppm`` inside its class folder ``000CC``: track ``TTTTT`` (one
  physical sign) and frame ``FFFFF`` (about 30 frames per track). The track number becomes the image's
  ``train_groups`` id, so that a validation split holds out whole tracks (``bench.data.base.validation_split``);
  a file name without a track number makes the image a group of its own.
- Decoded tensors are cached in an ``.npz`` file keyed by the names, sizes and mtimes of the data files and
  the image size. The cache lives in the user cache folder (``$LAYERBENCH_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/layerbench``, else ``~/.cache/layerbench``) so data folders, often shared and read-only,
  are never written to; only if that folder cannot be written is ``<base>/.layerbench-cache`` tried. Writes
  are atomic (temporary file + rename); an unreadable or inconsistent cache file is ignored and rebuilt.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.boxes import resize_boxes
from bench.data._stats import channel_mean_std
from bench.data.base import ImageDataset
from bench.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

DOWNLOAD_PAGE = "https://benchmark.ini.rub.de/gtsrb_dataset.html"
# The official archives on the mirror torchvision.datasets.GTSRB uses; the test MD5s are torchvision's values.
# No MD5 is published for the training zip (torchvision fetches GTSRB-Training_fixed.zip instead); zip CRCs
# still catch a damaged download.
_MIRROR = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
_ARCHIVES: tuple[tuple[str, str | None], ...] = (
    ("GTSRB_Final_Training_Images.zip", None),
    ("GTSRB_Final_Test_Images.zip", "c7e4e6327067d32654124b0fe9e82185"),
    ("GTSRB_Final_Test_GT.zip", "fe31e9c9270bbcd7b84b7f21a9d9d9e5"),
)
OFFICIAL_TRAIN_SIZE = 39_209
OFFICIAL_TEST_SIZE = 12_630
_CACHE_VERSION = 2  # 2: the cache holds the training images' track ids
_TRACK_NAME = re.compile(r"^(\d+)_(\d+)\.[A-Za-z0-9]+$")

GTSRB_CLASS_NAMES = [
    "Speed limit (20km/h)",
    "Speed limit (30km/h)",
    "Speed limit (50km/h)",
    "Speed limit (60km/h)",
    "Speed limit (70km/h)",
    "Speed limit (80km/h)",
    "End of speed limit (80km/h)",
    "Speed limit (100km/h)",
    "Speed limit (120km/h)",
    "No passing",
    "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection",
    "Priority road",
    "Yield",
    "Stop",
    "No vehicles",
    "Vehicles over 3.5 metric tons prohibited",
    "No entry",
    "General caution",
    "Dangerous curve to the left",
    "Dangerous curve to the right",
    "Double curve",
    "Bumpy road",
    "Slippery road",
    "Road narrows on the right",
    "Road work",
    "Traffic signals",
    "Pedestrians",
    "Children crossing",
    "Bicycles crossing",
    "Beware of ice/snow",
    "Wild animals crossing",
    "End of all speed and passing limits",
    "Turn right ahead",
    "Turn left ahead",
    "Ahead only",
    "Go straight or right",
    "Go straight or left",
    "Keep right",
    "Keep left",
    "Roundabout mandatory",
    "End of no passing",
    "End of no passing by vehicles over 3.5 metric tons",
]
NUM_CLASSES = len(GTSRB_CLASS_NAMES)  # 43

_CSV_COLUMNS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
_SEP = rb"(?:\s|#[^\r\n]*[\r\n])+"  # whitespace and '#' comments, as allowed in a PPM header
_PPM_HEADER = re.compile(rb"P6" + _SEP + rb"(\d+)" + _SEP + rb"(\d+)" + _SEP + rb"(\d+)\s")


@dataclass(frozen=True)
class _Layout:
    base: Path
    train_dir: Path
    test_dir: Path
    test_csv: Path


def _expected_layout(root: Path) -> str:
    base = root / "gtsrb"
    return (
        f"expected {base}/GTSRB/Training/000NN/*.ppm with GT-000NN.csv in each class folder, "
        f"{base}/GTSRB/Final_Test/Images/*.ppm and {base}/GT-final_test.csv (the layout of the official "
        "archives GTSRB_Final_Training_Images.zip, GTSRB_Final_Test_Images.zip and GTSRB_Final_Test_GT.zip "
        f"from {DOWNLOAD_PAGE}; --data-root may also point at the gtsrb folder itself)"
    )


def _locate(root: Path) -> _Layout:
    """Find the training folder, test images and test CSV under ``root``; DatasetError if any is missing."""
    for base in (root / "gtsrb", root):
        gtsrb = base / "GTSRB"
        train_dir = next(
            (d for d in (gtsrb / "Training", gtsrb / "Final_Training" / "Images") if d.is_dir()), None
        )
        if train_dir is None:
            continue
        test_dir = gtsrb / "Final_Test" / "Images"
        if not test_dir.is_dir():
            raise DatasetError(
                f"GTSRB test images missing: found {train_dir} but not {test_dir}; " + _expected_layout(root)
            )
        candidates = (base / "GT-final_test.csv", test_dir / "GT-final_test.csv", gtsrb / "GT-final_test.csv")
        test_csv = next((c for c in candidates if c.is_file()), None)
        if test_csv is None:
            only_unlabelled = (test_dir / "GT-final_test.test.csv").is_file()
            raise DatasetError(
                f"GTSRB test labels missing: no GT-final_test.csv at {candidates[0]} (or in {test_dir})"
                + (" -- GT-final_test.test.csv has no ClassId column" if only_unlabelled else "")
                + f". It comes in GTSRB_Final_Test_GT.zip from {DOWNLOAD_PAGE}; extract it into {base}."
            )
        return _Layout(base, train_dir, test_dir, test_csv)
    raise DatasetError(f"GTSRB not found under {root}: " + _expected_layout(root) + ".")


def _download(root: Path) -> None:
    """Fetch and extract the official archives into ``root/gtsrb`` with torchvision's helper."""
    from torchvision.datasets.utils import download_and_extract_archive

    for name, md5 in _ARCHIVES:
        download_and_extract_archive(_MIRROR + name, download_root=str(root / "gtsrb"), md5=md5)


# ------------------------------------------------------------------------------------------------- decoding
def _read_image(path: Path, listed_in: Path) -> np.ndarray:
    """(H, W, 3) uint8 pixels of one image: binary 8-bit PPM parsed directly (fast), anything else by PIL."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DatasetError(f"GTSRB image {path} listed in {listed_in} is missing: restore it (get the archive "
                           f"again from {DOWNLOAD_PAGE}) or remove its line from {listed_in.name}") from exc
    except OSError as exc:
        raise DatasetError(f"cannot read GTSRB image {path}: {exc}") from exc
    m = _PPM_HEADER.match(data)
    if m is not None:
        w, h, maxval = int(m.group(1)), int(m.group(2)), int(m.group(3))
        start = m.end()
        if maxval == 255 and len(data) - start >= w * h * 3 and w > 0 and h > 0:
            return np.frombuffer(data, np.uint8, w * h * 3, start).reshape(h, w, 3)
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # any decoder failure is a corrupt file
        raise DatasetError(f"corrupt GTSRB image {path}: {exc}; restore it (get the archive again from "
                           f"{DOWNLOAD_PAGE}) or remove its line from {listed_in.name}") from exc


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8, bilinear (antialiased when shrinking) via Pillow."""
    if pixels.shape[0] == size and pixels.shape[1] == size:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))


def _read_csv(path: Path) -> list[tuple[str, float, float, float, float, float, float, int]]:
    """Rows of a GTSRB annotation CSV; DatasetError naming the file and line when malformed."""
    if not path.is_file():
        raise DatasetError(f"missing GTSRB annotation file {path} (every class folder has its GT-000NN.csv)")
    rows = []
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f, delimiter=";", skipinitialspace=True)
            missing = [c for c in _CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(
                    f"malformed GTSRB annotation file {path}: missing column(s) {', '.join(missing)} "
                    f"(expected {';'.join(_CSV_COLUMNS)}); get the file again from {DOWNLOAD_PAGE}"
                )
            for row in reader:
                try:
                    parsed = (
                        row["Filename"].strip(),
                        float(row["Width"]),
                        float(row["Height"]),
                        float(row["Roi.X1"]),
                        float(row["Roi.Y1"]),
                        float(row["Roi.X2"]),
                        float(row["Roi.Y2"]),
                        int(row["ClassId"]),
                    )
                except (TypeError, ValueError, AttributeError) as exc:
                    raise DatasetError(
                        f"malformed GTSRB annotation file {path}, line {reader.line_num}: {exc}"
                    ) from exc
                _check_roi(parsed, path, reader.line_num)
                rows.append(parsed)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read GTSRB annotation file {path}: {exc}") from exc
    return rows


def _check_roi(row: tuple, path: Path, line: int) -> None:
    """DatasetError naming the file and line unless the ROI is a non-empty box inside its Width x Height image."""
    fname, w, h, x1, y1, x2, y2, _ = row
    if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
        raise DatasetError(
            f"GTSRB annotation file {path}, line {line}: the ROI of {fname} "
            f"(Roi.X1={x1:g}, Roi.Y1={y1:g}, Roi.X2={x2:g}, Roi.Y2={y2:g}) is not a box inside its "
            f"{w:g}x{h:g} image (0 <= X1 < X2 <= Width, 0 <= Y1 < Y2 <= Height); correct the row, or get the file "
            f"again from {DOWNLOAD_PAGE}"
        )


def track_of(filename: str) -> int | None:
    """The track number of a training file name ``TTTTT_FFFFF.ppm`` (``00012_00029.ppm`` -> 12), else None."""
    m = _TRACK_NAME.match(filename)
    return int(m.group(1)) if m else None


def _load_split(
    folder_rows: list[tuple[Path, list[tuple[str, float, float, float, float, float, float, int]], Path]],
    size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode the listed images: (N, 3, S, S) uint8, (N,) int64 labels, (N, 4) float32 boxes, (N,) int64 track
    ids (:func:`track_of`; a name without a track number gets a negative id of its own)."""
    total = sum(len(rows) for _, rows, _ in folder_rows)
    images = np.empty((total, size, size, 3), np.uint8)
    labels = np.empty(total, np.int64)
    boxes = np.empty((total, 4), np.float32)
    tracks = np.empty(total, np.int64)
    i = 0
    for folder, rows, csv_path in folder_rows:
        for fname, w, h, x1, y1, x2, y2, cls in rows:
            if not 0 <= cls < NUM_CLASSES:
                raise DatasetError(
                    f"GTSRB annotation file {csv_path}: ClassId {cls} of {fname} is not in 0..42"
                )
            if w <= 0 or h <= 0:
                raise DatasetError(f"GTSRB annotation file {csv_path}: {fname} has Width/Height {w:g}x{h:g}")
            images[i] = _resize(_read_image(folder / fname, csv_path), size)
            labels[i] = cls
            boxes[i] = resize_boxes(torch.tensor([[x1, y1, x2, y2]]), (w, h), (size, size))[0].numpy()
            track = track_of(fname)
            tracks[i] = -(i + 1) if track is None else track
            i += 1
    np.clip(boxes, 0.0, float(size), out=boxes)
    return images.transpose(0, 3, 1, 2).copy(), labels, boxes, tracks


def _decode(layout: _Layout, size: int) -> dict[str, np.ndarray]:
    class_dirs = sorted(d for d in layout.train_dir.iterdir() if d.is_dir() and d.name.isdigit())
    if not class_dirs:
        raise DatasetError(
            f"GTSRB training folder {layout.train_dir} has no class folders 00000..00042 (each with its "
            f"GT-000NN.csv); get GTSRB_Final_Training_Images.zip from {DOWNLOAD_PAGE}"
        )
    train = [(d, _read_csv(d / f"GT-{d.name}.csv"), d / f"GT-{d.name}.csv") for d in class_dirs]
    test = [(layout.test_dir, _read_csv(layout.test_csv), layout.test_csv)]
    tr_x, tr_y, tr_b, tr_t = _load_split(train, size)
    te_x, te_y, te_b, _ = _load_split(test, size)
    if len(tr_y) == 0 or len(te_y) == 0:
        raise DatasetError(
            f"GTSRB at {layout.base} lists no {'training' if len(tr_y) == 0 else 'test'} images"
        )
    mean, std = channel_mean_std(tr_x)
    return {
        "train_images": tr_x,
        "train_labels": tr_y,
        "train_boxes": tr_b,
        "train_tracks": tr_t,
        "test_images": te_x,
        "test_labels": te_y,
        "test_boxes": te_b,
        "mean": np.asarray(mean, np.float64),
        "std": np.asarray(std, np.float64),
    }


# -------------------------------------------------------------------------------------------------- caching
def user_cache_dir() -> Path:
    """``$LAYERBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/layerbench``, else ``~/.cache/layerbench``."""
    if os.environ.get("LAYERBENCH_CACHE_DIR"):
        return Path(os.environ["LAYERBENCH_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "layerbench"


def _cache_key(layout: _Layout, size: int) -> str:
    """Hash of every data file's path (relative to the base), size and mtime, plus the image size."""
    h = hashlib.sha256(f"gtsrb v{_CACHE_VERSION} size={size}\n".encode())

    def add(path: Path, st: os.stat_result) -> None:
        h.update(f"{path.relative_to(layout.base).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())

    def walk(folder: Path) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.is_dir():
                walk(Path(e.path))
            elif e.is_file():
                add(Path(e.path), e.stat())

    walk(layout.train_dir)
    walk(layout.test_dir)
    if layout.test_csv.parent != layout.test_dir:
        add(layout.test_csv, layout.test_csv.stat())
    return h.hexdigest()[:24]


def _read_cache(path: Path, size: int) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is absent, unreadable or inconsistent."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        for split in ("train", "test"):
            x, y, b = arrays[f"{split}_images"], arrays[f"{split}_labels"], arrays[f"{split}_boxes"]
            n = len(y)
            ok = (
                x.dtype == np.uint8
                and x.shape == (n, 3, size, size)
                and y.dtype == np.int64
                and y.ndim == 1
                and b.shape == (n, 4)
                and n > 0
            )
            if not ok or y.min() < 0 or y.max() >= NUM_CLASSES:
                raise ValueError(f"inconsistent {split} arrays")
        if arrays["mean"].shape != (3,) or arrays["std"].shape != (3,):
            raise ValueError("bad mean/std")
        tracks = arrays["train_tracks"]
        if tracks.dtype != np.int64 or tracks.shape != arrays["train_labels"].shape:
            raise ValueError("inconsistent train_tracks")
        return arrays
    except Exception as exc:  # truncated zip, missing keys, wrong shapes: rebuild
        logger.warning("ignoring unreadable GTSRB cache %s (%s); rebuilding it", path, exc)
        return None


def _write_cache(folder: Path, name: str, arrays: dict[str, np.ndarray]) -> Path | None:
    """Write atomically into ``folder``; None (no exception) when the folder cannot be written."""
    tmp_name = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", suffix=".tmp", delete=False) as f:
            tmp_name = f.name
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, folder / name)
        return folder / name
    except OSError as exc:
        logger.info("cannot write GTSRB cache into %s (%s)", folder, exc)
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        return None


def _mirror_classes() -> tuple[int, ...]:
    symmetric = (11, 12, 13, 15, 17, 18, 22, 26, 30, 35)  # intersection, priority road, yield, no vehicles, no entry,
    # general caution, bumpy road, traffic signals, ice/snow, ahead only: the mirror image is the same sign
    pairs = ((19, 20), (33, 34), (36, 37), (38, 39))  # curve left/right, turn right/left ahead, straight or
    # right/left, keep right/left: the mirror image is the other sign of the pair
    out = [-1] * NUM_CLASSES
    for c in symmetric:
        out[c] = c
    for a, b in pairs:
        out[a], out[b] = b, a
    return tuple(out)


def stretch_contrast(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 3, H, W), each mapped linearly so that its smallest value over all pixels and channels
    becomes 0 and its largest 255 (a flat image is left as it is)."""
    x = images.astype(np.float32)
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    hi = x.max(axis=(1, 2, 3), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    out = np.where(hi > lo, (x - lo) * (255.0 / span), x)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


MIRROR_CLASSES = _mirror_classes()
"""The class of each GTSRB class's mirror image, -1 where the mirror image is no sign (digits, "road narrows on
the right", "roundabout"...). The lists are those of the flip augmentation of A. Staravoitau's GTSRB classifier
(github.com/alexstaravoitau/traffic-signs, 2017, "Flipping"), checked here against GTSRB's class names."""


# --------------------------------------------------------------------------------------------------- public
def load_gtsrb(
    root: str | Path | None = None,
    *,
    allow_subset: bool = False,
    download: bool = False,
    image_size: int = 32,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    flip: str = "none",
    contrast: str = "none",
    **options: Any,
) -> ImageDataset:
    """GTSRB, 43 classes, images resized to ``image_size`` px, with ROI boxes scaled to that size and the
    training images' track numbers as ``train_groups`` (a validation split holds out whole tracks).

    Args:
        root: folder containing ``gtsrb/`` (or the gtsrb folder itself); ``None`` means ``./data``.
        allow_subset: accepted for a uniform loader signature; GTSRB has no published checksums of the
            extracted files, so a well-formed folder with fewer images is always accepted and flagged
            ``is_subset``.
        download: fetch the three official archives (from the mirror torchvision uses) into ``root/gtsrb``
            when the data are missing.
        image_size: side of the stored square images.
        cache: read/write the decoded tensors from/to an ``.npz`` cache (see the module docstring).
        cache_dir: where the cache lives (default: the user cache folder).
        flip: ``none`` (default): never flipped; ``mirror``: a training image whose mirror image is a sign is
            flipped with probability 1/2 and relabelled (:data:`MIRROR_CLASSES`: 10 symmetric signs keep their
            class, 4 pairs such as "turn left"/"turn right" swap; the other 25 classes are never flipped).
        contrast: ``none`` (default) or ``stretch``: every image, training and test alike, is stretched so that
            its darkest pixel value becomes 0 and its brightest 255 (one range for the three channels, so hues are
            kept), :func:`stretch_contrast`; the normalisation statistics are those of the stretched images.
    """
    del allow_subset  # see docstring
    if options:
        raise ConfigError(
            f"unknown option(s) {', '.join(sorted(options))} for dataset gtsrb "
            "(accepted: image_size, cache, cache_dir, flip, contrast)"
        )
    if contrast not in ("none", "stretch"):
        raise ConfigError(f"gtsrb contrast must be 'none' or 'stretch', not {contrast!r}")
    if flip not in ("none", "mirror"):
        raise ConfigError(f"gtsrb flip must be 'none' or 'mirror', not {flip!r}")
    if not isinstance(image_size, int) or not 8 <= image_size <= 512:
        raise ConfigError(f"gtsrb image_size must be an integer in 8..512, not {image_size!r}")
    root_path = Path("data") if root is None else Path(root).expanduser()
    try:
        layout = _locate(root_path)
    except DatasetError as missing:
        if not download:
            raise DatasetError(f"{missing} Or enable downloading.") from None
        try:
            _download(root_path)
        except Exception as exc:  # offline, refused, bad checksum, full disk...
            raise DatasetError(f"{missing} The download failed ({type(exc).__name__}: {exc}).") from exc
        layout = _locate(root_path)

    arrays = None
    if cache:
        name = f"gtsrb-{image_size}px-{_cache_key(layout, image_size)}.npz"
        folders = (
            [Path(cache_dir).expanduser()]
            if cache_dir is not None
            else [
                user_cache_dir(),
                layout.base / ".layerbench-cache",
            ]
        )
        for folder in folders:
            arrays = _read_cache(folder / name, image_size)
            if arrays is not None:
                logger.debug("GTSRB loaded from cache %s", folder / name)
                break
    if arrays is None:
        arrays = _decode(layout, image_size)
        if cache and not any(_write_cache(folder, name, arrays) for folder in folders):
            logger.warning("GTSRB: no writable cache folder among %s; decoding again next time", folders)

    n_train, n_test = len(arrays["train_labels"]), len(arrays["test_labels"])
    if contrast == "stretch":
        arrays = dict(arrays)
        arrays["train_images"] = stretch_contrast(arrays["train_images"])
        arrays["test_images"] = stretch_contrast(arrays["test_images"])
        arrays["mean"], arrays["std"] = channel_mean_std(arrays["train_images"])
    return ImageDataset(
        name="gtsrb",
        num_classes=NUM_CLASSES,
        train_images=torch.from_numpy(arrays["train_images"]),
        train_labels=torch.from_numpy(arrays["train_labels"]),
        test_images=torch.from_numpy(arrays["test_images"]),
        test_labels=torch.from_numpy(arrays["test_labels"]),
        mean=tuple(float(v) for v in arrays["mean"]),
        std=tuple(float(v) for v in arrays["std"]),
        hflip=False,
        hflip_labels=MIRROR_CLASSES if flip == "mirror" else None,
        class_names=list(GTSRB_CLASS_NAMES),
        train_boxes=torch.from_numpy(arrays["train_boxes"]),
        test_boxes=torch.from_numpy(arrays["test_boxes"]),
        source=str(layout.base),
        is_subset=n_train < OFFICIAL_TRAIN_SIZE or n_test < OFFICIAL_TEST_SIZE,
        train_groups=torch.from_numpy(arrays["train_tracks"]),
    )
