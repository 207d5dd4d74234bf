"""Dataset loaders: tiny files in the official formats, error messages, caching, the real subsets, signs."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import BUILTIN_DATASETS, load_dataset
from bench.data import cifar as cifar_mod
from bench.data import gtsrb as gtsrb_mod
from bench.data.base import ImageDataset, validation_split
from bench.data.cifar import load_cifar10, load_cifar100
from bench.data.gtsrb import load_gtsrb, track_of
from bench.data.loader import DeviceData
from bench.data.signs import SIGNS_VERSION, generate_signs, load_signs
from bench.errors import ConfigError, DatasetError, UnknownNameError

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------------- CIFAR
def _dump(path: Path, obj: object, protocol: int = 2) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def _batch(n: int, num_classes: int = 10, key: str = "labels") -> dict:
    return {
        "batch_label": "test batch",
        key: RNG.integers(0, num_classes, n).tolist(),
        "data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }


def write_cifar10(root: Path, counts: tuple[int, ...] = (3, 2, 0, 1, 0), test: int = 4) -> dict[str, dict]:
    """A CIFAR-10 folder in the official layout (bytes keys in the meta, as in the Python 2 originals)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i + 1}": _batch(n) for i, n in enumerate(counts)} | {"test_batch": _batch(test)}
    for i, (name, b) in enumerate(batches.items()):
        _dump(folder / name, b, protocol=i % 6)  # every pickle protocol
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    _dump(folder / "batches.meta", {b"num_cases_per_batch": 10000, b"label_names": names, b"num_vis": 3072})
    return batches


def write_cifar100(root: Path, train: int = 5, test: int = 3) -> dict[str, dict]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    files = {}
    for name, n in (("train", train), ("test", test)):
        b = _batch(n, 100, "fine_labels")
        b["coarse_labels"] = [f // 5 for f in b["fine_labels"]]
        _dump(folder / name, b, protocol=4)
        files[name] = b
    meta = {
        "fine_label_names": [f"fine{i}" for i in range(100)],
        "coarse_label_names": [f"coarse{i}" for i in range(20)],
    }
    _dump(folder / "meta", meta)
    return files


def _images(*batches: dict) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32))


def test_cifar10_reads_exact_pixels_and_labels(tmp_path: Path) -> None:
    batches = write_cifar10(tmp_path)
    ds = load_cifar10(tmp_path)
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    assert ds.train_images.dtype == torch.uint8 and ds.train_images.shape == (6, 3, 32, 32)
    assert torch.equal(ds.train_images, _images(*train))
    assert ds.train_labels.dtype == torch.int64
    assert ds.train_labels.tolist() == sum((b["labels"] for b in train), [])
    assert torch.equal(ds.test_images, _images(batches["test_batch"]))
    assert ds.test_labels.tolist() == batches["test_batch"]["labels"]
    assert ds.class_names[:2] == ["airplane", "automobile"] and ds.num_classes == 10
    assert ds.is_subset and ds.hflip and ds.mean == cifar_mod.CIFAR10_MEAN
    assert ds.source == str(tmp_path / "cifar-10-batches-py")
    # root may also be the batches folder itself
    assert torch.equal(load_cifar10(tmp_path / "cifar-10-batches-py").test_images, ds.test_images)


def test_cifar100_fine_and_coarse(tmp_path: Path) -> None:
    files = write_cifar100(tmp_path)
    ds = load_cifar100(tmp_path)
    assert ds.num_classes == 100 and ds.is_subset and ds.mean == cifar_mod.CIFAR100_MEAN
    assert torch.equal(ds.train_images, _images(files["train"]))
    assert ds.train_labels.tolist() == files["train"]["fine_labels"]
    assert ds.test_labels.tolist() == files["test"]["fine_labels"]
    assert ds.class_names[:2] == ["fine0", "fine1"]
    coarse = load_cifar100(tmp_path, labels="coarse")
    assert coarse.num_classes == 20 and coarse.name == "cifar100-coarse"
    assert coarse.test_labels.tolist() == files["test"]["coarse_labels"]
    assert coarse.class_names[0] == "coarse0"
    with pytest.raises(ConfigError, match="labels"):
        load_cifar100(tmp_path, labels="medium")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(b"this is not a pickle"), "corrupt CIFAR file"),
        (lambda p: _dump(p, {"data": np.zeros((2, 3071), np.uint8), "labels": [0, 1]}), "uint8 array"),
        (lambda p: _dump(p, {"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}), "uint8 array"),
        (lambda p: _dump(p, {"data": np.zeros((2, 3072), np.uint8), "labels": [0]}), "2 integer labels"),
        (lambda p: _dump(p, {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}), "outside 0..9"),
        (lambda p: _dump(p, [1, 2, 3]), "expected a dict"),
        (lambda p: p.unlink(), "missing file"),
    ],
)
def test_cifar_damaged_file_is_named(tmp_path: Path, damage, message: str) -> None:
    write_cifar10(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    damage(bad)
    with pytest.raises(DatasetError, match=message) as err:
        load_cifar10(tmp_path, allow_subset=True)
    assert str(bad) in str(err.value)


def test_cifar_pickle_cannot_run_code(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    _dump(tmp_path / "cifar-10-batches-py" / "test_batch", {"data": Evil(), "labels": []})
    with pytest.raises(DatasetError, match="test_batch"):
        load_cifar10(tmp_path)
    assert not marker.exists()


def test_cifar_missing_folder_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_cifar10(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg and "--data-root" in msg


def test_cifar_failed_download_is_a_dataset_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(DatasetError, match="download failed.*network unreachable") as err:
        load_cifar100(tmp_path, download=True)
    assert str(tmp_path / "cifar-100-python") in str(err.value)


def _pretend_full(
    monkeypatch: pytest.MonkeyPatch, counts: dict[str, int], md5s: dict[str, str] | None = None
) -> None:
    """Make the tiny files the 'official' size (and optionally the official MD5s)."""
    spec = cifar_mod._SPECS["cifar10"]
    md5s = md5s or {}
    new = dataclasses.replace(
        spec,
        per_file_count=counts,
        train_files=tuple((f, md5s.get(f, m)) for f, m in spec.train_files),
        test_files=tuple((f, md5s.get(f, m)) for f, m in spec.test_files),
        meta_file=(spec.meta_file[0], md5s.get(spec.meta_file[0], spec.meta_file[1])),
    )
    monkeypatch.setitem(cifar_mod._SPECS, "cifar10", new)


def test_cifar_full_size_with_wrong_md5_needs_allow_subset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cifar10(tmp_path, counts=(2, 2, 2, 2, 2), test=2)
    folder = tmp_path / "cifar-10-batches-py"
    counts = {f"data_batch_{i}": 2 for i in range(1, 6)} | {"test_batch": 2}
    _pretend_full(monkeypatch, counts)
    with pytest.raises(DatasetError, match="MD5 mismatch") as err:
        load_cifar10(tmp_path)
    assert str(folder / "data_batch_1") in str(err.value)
    assert load_cifar10(tmp_path, allow_subset=True).is_subset
    # with matching MD5s the same files are the (pretend) official release
    md5s = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    _pretend_full(monkeypatch, counts, md5s)
    assert not load_cifar10(tmp_path).is_subset
    # more images than the official files: refused unless allow_subset
    _pretend_full(monkeypatch, counts | {"test_batch": 1}, md5s)
    with pytest.raises(DatasetError, match="more images"):
        load_cifar10(tmp_path)
    assert load_cifar10(tmp_path, allow_subset=True).is_subset


def test_cifar_checksums_match_torchvision() -> None:
    from torchvision.datasets import CIFAR10, CIFAR100

    for name, cls in (("cifar10", CIFAR10), ("cifar100", CIFAR100)):
        spec = cifar_mod._SPECS[name]
        assert (spec.url, spec.archive, spec.archive_md5, spec.folder) == (
            cls.url,
            cls.filename,
            cls.tgz_md5,
            cls.base_folder,
        )
        assert [list(x) for x in spec.train_files] == cls.train_list
        assert [list(x) for x in spec.test_files] == cls.test_list
        assert spec.meta_file == (cls.meta["filename"], cls.meta["md5"])


# ---------------------------------------------------------------------------------------------------- GTSRB
def _save_ppm(path: Path, pixels: np.ndarray, comment: bool = False) -> None:
    h, w, _ = pixels.shape
    header = f"P6\n# written by a test\n{w} {h}\n255\n" if comment else f"P6\n{w} {h}\n255\n"
    path.write_bytes(header.encode() + pixels.tobytes())


def _csv(path: Path, rows: list[tuple]) -> None:
    lines = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"] + [
        ";".join(map(str, r)) for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def write_gtsrb(base: Path, train_dir: str = "Training", csv_in_images: bool = False) -> dict[str, list]:
    """A tiny GTSRB in the official layout under ``base`` (= <root>/gtsrb): 2 classes, 3 test images."""
    spec = {
        "train": [
            (0, "00000_00000.ppm", 40, 30, (5, 4, 35, 27)),
            (0, "00000_00001.ppm", 50, 50, (6, 6, 44, 45)),
            (0, "00000_00002.ppm", 32, 32, (2, 3, 30, 29)),
            (2, "00001_00000.ppm", 25, 28, (3, 3, 22, 25)),
            (2, "00001_00001.ppm", 64, 48, (8, 5, 57, 44)),
        ],
        "test": [
            (2, "00000.ppm", 33, 36, (4, 5, 29, 31)),
            (0, "00001.ppm", 32, 32, (0, 0, 32, 32)),
            (2, "00002.ppm", 100, 90, (10, 9, 91, 80)),
        ],
    }
    out: dict[str, list] = {"train": [], "test": []}
    gt = base / "GTSRB"
    rows_by_class: dict[int, list] = {}
    for k, (cls, fname, w, h, roi) in enumerate(spec["train"]):
        folder = gt / train_dir / f"{cls:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
        _save_ppm(folder / fname, pixels, comment=k == 1)
        rows_by_class.setdefault(cls, []).append((fname, w, h, *roi, cls))
        out["train"].append((pixels, cls, w, h, roi))
    for cls, rows in rows_by_class.items():
        _csv(gt / train_dir / f"{cls:05d}" / f"GT-{cls:05d}.csv", rows)
    images = gt / "Final_Test" / "Images"
    images.mkdir(parents=True)
    rows = []
    for cls, fname, w, h, roi in spec["test"]:
        pixels = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / fname)  # written by Pillow
        rows.append((fname, w, h, *roi, cls))
        out["test"].append((pixels, cls, w, h, roi))
    _csv((images if csv_in_images else base) / "GT-final_test.csv", rows)
    return out


def _expected(items: list, size: int = 32) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    imgs, labels, boxes = [], [], []
    for pixels, cls, w, h, (x1, y1, x2, y2) in items:
        im = Image.fromarray(pixels)
        if (w, h) != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        imgs.append(torch.from_numpy(np.asarray(im).transpose(2, 0, 1).copy()))
        labels.append(cls)
        boxes.append([x1 * size / w, y1 * size / h, x2 * size / w, y2 * size / h])
    return torch.stack(imgs), labels, torch.tensor(boxes, dtype=torch.float32)


def test_gtsrb_reads_pixels_labels_and_scaled_boxes(tmp_path: Path) -> None:
    written = write_gtsrb(tmp_path / "data" / "gtsrb")
    ds = load_gtsrb(tmp_path / "data", cache_dir=tmp_path / "cache")
    for split in ("train", "test"):
        images, labels, boxes = _expected(written[split])
        assert torch.equal(getattr(ds, f"{split}_images"), images)
        assert getattr(ds, f"{split}_labels").tolist() == labels
        assert torch.allclose(getattr(ds, f"{split}_boxes"), boxes)
    assert ds.train_images.dtype == torch.uint8 and ds.train_images.shape == (5, 3, 32, 32)
    assert ds.train_boxes.dtype == torch.float32 and ds.train_boxes.shape == (5, 4)
    assert ds.num_classes == 43 and len(ds.class_names) == 43 and ds.class_names[14] == "Stop"
    assert not ds.hflip and ds.is_subset
    assert ds.train_groups.tolist() == [0, 0, 0, 1, 1]  # TTTTT of TTTTT_FFFFF.ppm
    cached = load_gtsrb(tmp_path / "data", cache_dir=tmp_path / "cache")  # the cache keeps the tracks
    assert torch.equal(cached.train_groups, ds.train_groups)
    expected_mean = ds.train_images.double().mean(dim=(0, 2, 3)) / 255
    assert np.allclose(ds.mean, expected_mean.numpy())


@pytest.mark.parametrize("variant", ["root_is_gtsrb", "csv_in_images", "final_training"])
def test_gtsrb_accepts_layout_variants(tmp_path: Path, variant: str) -> None:
    base = tmp_path / "gtsrb"
    write_gtsrb(
        base,
        train_dir="Final_Training/Images" if variant == "final_training" else "Training",
        csv_in_images=variant == "csv_in_images",
    )
    root = base if variant == "root_is_gtsrb" else tmp_path
    ds = load_gtsrb(root, cache=False)
    assert ds.train_labels.tolist() == [0, 0, 0, 2, 2] and ds.test_labels.tolist() == [2, 0, 2]


def test_gtsrb_missing_data_names_layout_and_download_page(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_gtsrb(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "gtsrb" / "GTSRB" / "Training") in msg
    assert "https://benchmark.ini.rub.de/gtsrb_dataset.html" in msg and "GT-final_test.csv" in msg


def test_gtsrb_failed_download_is_a_dataset_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(DatasetError, match="download failed.*network unreachable") as err:
        load_gtsrb(tmp_path, download=True)
    assert "https://benchmark.ini.rub.de/gtsrb_dataset.html" in str(err.value)


def test_gtsrb_missing_or_bad_csv_is_named(tmp_path: Path) -> None:
    write_gtsrb(tmp_path / "gtsrb")
    class_csv = tmp_path / "gtsrb" / "GTSRB" / "Training" / "00002" / "GT-00002.csv"
    class_csv.unlink()
    with pytest.raises(DatasetError, match="missing GTSRB annotation file") as err:
        load_gtsrb(tmp_path, cache=False)
    assert str(class_csv) in str(err.value)
    class_csv.write_text("Filename;Width\nx.ppm;3\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_gtsrb(tmp_path, cache=False)
    (tmp_path / "gtsrb" / "GT-final_test.csv").unlink()
    with pytest.raises(DatasetError, match="GTSRB_Final_Test_GT.zip") as err:
        load_gtsrb(tmp_path, cache=False)
    assert str(tmp_path / "gtsrb" / "GT-final_test.csv") in str(err.value)


def test_gtsrb_missing_image_is_named(tmp_path: Path) -> None:
    write_gtsrb(tmp_path / "gtsrb")
    image = tmp_path / "gtsrb" / "GTSRB" / "Final_Test" / "Images" / "00001.ppm"
    image.unlink()
    with pytest.raises(DatasetError, match="missing") as err:
        load_gtsrb(tmp_path, cache=False)
    assert str(image) in str(err.value)


def test_gtsrb_cache_is_used_invalidated_and_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_gtsrb(tmp_path / "gtsrb")
    cache = tmp_path / "cache"
    first = load_gtsrb(tmp_path, cache_dir=cache)
    (cache_file,) = cache.glob("gtsrb-32px-*.npz")
    assert not list(cache.glob("*.tmp"))

    real_decode = gtsrb_mod._decode
    calls = []
    monkeypatch.setattr(gtsrb_mod, "_decode", lambda *a: calls.append(1) or real_decode(*a))
    second = load_gtsrb(tmp_path, cache_dir=cache)
    assert calls == [] and torch.equal(second.train_images, first.train_images)
    assert torch.equal(second.test_boxes, first.test_boxes) and second.mean == first.mean

    cache_file.write_bytes(b"garbage")  # corrupt cache: ignored and rewritten
    third = load_gtsrb(tmp_path, cache_dir=cache)
    assert calls == [1] and torch.equal(third.test_images, first.test_images)
    assert load_gtsrb(tmp_path, cache_dir=cache) and calls == [1]

    # a changed data file changes the key
    image = tmp_path / "gtsrb" / "GTSRB" / "Training" / "00000" / "00000_00002.ppm"
    _save_ppm(image, np.zeros((32, 32, 3), np.uint8))
    fourth = load_gtsrb(tmp_path, cache_dir=cache)
    assert calls == [1, 1] and fourth.train_images[2].sum() == 0
    assert len(list(cache.glob("gtsrb-32px-*.npz"))) == 2


def test_gtsrb_unwritable_cache_still_loads(tmp_path: Path) -> None:
    write_gtsrb(tmp_path / "gtsrb")
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    ds = load_gtsrb(tmp_path, cache_dir=blocker / "cache")
    assert len(ds.train_labels) == 5


# ------------------------------------------------------------------------------------------------- registry
def test_load_dataset_dispatch_and_unknown_name(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    ds = load_dataset("CIFAR-10", tmp_path)
    assert ds.name == "cifar10" and len(ds.train_labels) == 6
    small = load_dataset("signs", num_classes=3, train_size=30, test_size=9)
    assert small.num_classes == 3 and len(small.test_labels) == 9
    with pytest.raises(UnknownNameError, match="cifar10.*gtsrb.*signs"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="unknown option"):
        load_dataset("cifar10", tmp_path, flavour="x")
    for name, entry in BUILTIN_DATASETS.items():
        assert {"loader", "description", "num_classes"} <= set(entry), name
        assert ":" in entry["loader"]


# ------------------------------------------------------------------------------------------------ real data
def test_real_cifar10_subset(shared_data: Path) -> None:
    ds = load_cifar10(shared_data)
    assert len(ds.train_labels) == 4000 and len(ds.test_labels) == 1000
    assert ds.test_labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert ds.is_subset and ds.class_names[3] == "cat"


def test_real_cifar100_format_sample(shared_data: Path) -> None:
    ds = load_cifar100(shared_data)
    assert len(ds.test_labels) == 20 and len(ds.train_labels) == 0 and ds.is_subset


@pytest.fixture(scope="module")
def real_gtsrb(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageDataset:
    return load_gtsrb(shared_data, cache_dir=tmp_path_factory.mktemp("gtsrb_cache"))


def test_real_gtsrb_is_the_complete_benchmark(real_gtsrb: ImageDataset) -> None:
    """../shared/data/gtsrb holds the complete official GTSRB at 32x32: recognised as complete, not a subset."""
    ds = real_gtsrb
    assert len(ds.train_labels) == 39209 and len(ds.test_labels) == 12630 and not ds.is_subset
    counts = ds.train_labels.bincount(minlength=43)
    assert int(counts.min()) == 210 and int(counts.max()) == 2250  # the official class imbalance
    assert ds.train_labels.unique().numel() == 43 and ds.test_labels.unique().numel() == 43
    assert ds.train_images.shape[1:] == (3, 32, 32) and ds.test_images.shape[1:] == (3, 32, 32)
    for boxes in (ds.train_boxes, ds.test_boxes):
        assert boxes.min() >= 0 and boxes.max() <= 32
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


# ---------------------------------------------------------------------------------------------------- signs
def _digest(d: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in ("images", "labels", "boxes"):
        h.update(np.ascontiguousarray(d[key]).tobytes())
    return h.hexdigest()


def test_signs_deterministic() -> None:
    a = generate_signs(64, num_classes=20, split="test")
    b = generate_signs(64, num_classes=20, split="test")
    assert _digest(a) == _digest(b)
    assert _digest(generate_signs(64, num_classes=20, split="train")) != _digest(a)
    # Pinned: the same bytes on every machine. Update only together with SIGNS_VERSION.
    assert SIGNS_VERSION == 1
    assert _digest(a) == "20912ae67bbaefa1eae50d732afe4b0848b35bdeb01dc724982093328d73c79f"


def test_signs_shapes_classes_and_boxes() -> None:
    ds = load_signs(num_classes=12, train_size=240, test_size=60, image_size=32)
    assert ds.train_images.shape == (240, 3, 32, 32) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (60, 3, 32, 32) and ds.test_labels.dtype == torch.int64
    assert ds.train_labels.bincount().tolist() == [20] * 12 and set(ds.test_labels.tolist()) == set(range(12))
    assert (
        not ds.hflip
        and ds.num_classes == 12
        and len(ds.class_names) == 12
        and ds.source.startswith("generated")
    )
    expected_mean = ds.train_images.double().mean(dim=(0, 2, 3)) / 255
    assert np.allclose(ds.mean, expected_mean.numpy())
    for boxes in (ds.train_boxes, ds.test_boxes):
        assert boxes.shape[1] == 4 and boxes.min() >= 0 and boxes.max() <= 32
        assert ((boxes[:, 2] - boxes[:, 0]) > 8).all() and ((boxes[:, 3] - boxes[:, 1]) > 8).all()
    # the test split does not depend on the train size
    assert torch.equal(load_signs(num_classes=12, train_size=24, test_size=60).test_images, ds.test_images)
    with pytest.raises(ConfigError, match="num_classes"):
        load_signs(num_classes=50)
    with pytest.raises(ConfigError, match="unknown option"):
        load_signs(colour="red")


def test_signs_boxes_cover_the_drawn_sign() -> None:
    g = generate_signs(200, num_classes=20, return_masks=True)
    for mask, box in zip(g["masks"], g["boxes"], strict=True):
        ys, xs = np.nonzero(mask >= 0.5)
        cx, cy = xs + 0.5, ys + 0.5  # pixel centres
        assert (cx >= box[0]).all() and (cx <= box[2]).all() and (cy >= box[1]).all() and (cy <= box[3]).all()
        # tight: within 2.5 px of the covered pixels (sharp triangle tips cover less than half a pixel)
        assert cx.min() - box[0] < 2.5 and box[2] - cx.max() < 2.5
        assert cy.min() - box[1] < 2.5 and box[3] - cy.max() < 2.5


def test_signs_learnable_by_nearest_class_mean() -> None:
    ds = load_signs(num_classes=10, train_size=1000, test_size=400)
    x = ds.train_images.flatten(1).float() / 255
    xt = ds.test_images.flatten(1).float() / 255
    means = torch.stack([x[ds.train_labels == c].mean(0) for c in range(10)])
    acc = (torch.cdist(xt, means).argmin(1) == ds.test_labels).float().mean().item()
    assert acc > 0.2, acc  # chance is 0.1; about 0.3 measured: learnable, far from trivial


def test_real_gtsrb_validation_holds_out_whole_tracks(real_gtsrb: ImageDataset) -> None:
    """About 10% of the tracks of every class are held out; no track has frames on both sides."""
    ds = real_gtsrb
    pairs = ds.train_labels * 100_000 + ds.train_groups  # (class, track)
    assert int(pairs.unique().numel()) == 1307  # 39,209 images in tracks of 30 frames (one of 29)
    split = validation_split(ds, 0.1)
    train, val = set(pairs[split.train_indices].tolist()), set(pairs[split.val_indices].tolist())
    assert not train & val
    assert len(val) == sum(
        max(1, round(0.1 * len(set(pairs[ds.train_labels == c].tolist())))) for c in range(43)
    )
    assert 0.09 < split.val_indices.numel() / len(ds.train_labels) < 0.12
    assert ds.train_labels[split.val_indices].unique().numel() == 43  # every class is validated
    assert ds.train_labels[split.train_indices].unique().numel() == 43  # and still trains
    assert split.digest == validation_split(ds, 0.1).digest  # fixed


# ------------------------------------------------------------------------------------------- validation split
def _dataset(labels: list[int], groups: list[int] | None = None, n_test: int = 4) -> ImageDataset:
    n = len(labels)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    return ImageDataset(
        "toy", 10, images, torch.tensor(labels), torch.zeros(n_test, 3, 4, 4, dtype=torch.uint8),
        torch.zeros(n_test, dtype=torch.int64), (0.5,) * 3, (0.25,) * 3, hflip=False,
        train_groups=None if groups is None else torch.tensor(groups),
    )


def test_validation_split_without_groups_is_the_last_slice() -> None:
    ds = _dataset([i % 3 for i in range(50)])
    split = validation_split(ds, 0.1)
    assert split.val_indices.tolist() == list(range(45, 50)) and split.train_indices.tolist() == list(range(45))
    assert split.summary() == {"val_split": 0.1, "val_size": 5, "val_rule": "the last 5 of the 50 training images",
                               "val_digest": split.digest}
    assert validation_split(ds, 0.001).val_indices.tolist() == [49]  # at least one image
    none = validation_split(ds, 0.0)
    assert none.val_indices.numel() == 0 and none.train_indices.numel() == 50 and none.rule == "none"
    assert split.digest != validation_split(ds, 0.2).digest
    for bad in (1.0, -0.1, True, "0.1"):
        with pytest.raises(ConfigError, match="val_split"):
            validation_split(ds, bad)


def test_validation_split_with_groups_holds_out_whole_groups_per_class() -> None:
    # class 0: 10 groups of 3 images; class 1: 4 groups of 2; class 2: a single group of 5 images
    labels = [0] * 30 + [1] * 8 + [2] * 5
    groups = [i // 3 for i in range(30)] + [i // 2 for i in range(8)] + [7] * 5
    ds = _dataset(labels, groups)
    split = validation_split(ds, 0.2)
    val = split.val_indices.tolist()
    key = list(zip(labels, groups, strict=True))
    held = {key[i] for i in val}
    assert {key[i] for i in split.train_indices.tolist()}.isdisjoint(held)
    assert sum(1 for c, _ in held if c == 0) == 2  # round(0.2 * 10)
    assert sum(1 for c, _ in held if c == 1) == 1  # round(0.8) = 1
    assert (2, 7) not in held  # a class's only group keeps training
    assert len(val) == 2 * 3 + 2 and sorted(val) == val
    assert "3 of 15 groups, 8 of 43 images" in split.rule
    # the choice is fixed, and one class's choice does not depend on the others
    assert validation_split(ds, 0.2).val_indices.tolist() == val
    only_class_0 = _dataset(labels[:30], groups[:30])
    assert validation_split(only_class_0, 0.2).val_indices.tolist() == [i for i in val if i < 30]


def test_device_data_trains_on_the_rest_and_validates_on_the_held_out_images() -> None:
    ds = _dataset([i % 3 for i in range(40)])
    data = DeviceData(ds, "cpu", val_split=0.25, max_train_samples=20)
    assert (data.train_size, data.val_size) == (20, 10)
    assert data.train_images[:, 0, 0, 0].tolist() == list(range(20))  # max_train_samples cuts the rest
    assert data.val_images[:, 0, 0, 0].tolist() == list(range(30, 40))
    batches = list(data.val_batches(4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x = torch.cat([b for b, _ in batches])
    assert torch.allclose(x, data.normalize(data.val_images))  # not augmented
    seen = torch.cat([data.denormalize(xb)[:, 0, 2, 2] for xb, _ in data.train_batches(8, torch.Generator())])
    assert seen.mul(255).round().max() < 30  # no held-out image is ever a training batch
    assert DeviceData(ds, "cpu").val_size == 0 and list(DeviceData(ds, "cpu").val_batches(4)) == []
    cl = DeviceData(ds, "cpu", val_split=0.25, memory_format=torch.channels_last)
    xb, _ = next(cl.train_batches(8, torch.Generator()))
    assert xb.is_contiguous(memory_format=torch.channels_last) and not xb.is_contiguous()
    assert next(cl.val_batches(8))[0].is_contiguous(memory_format=torch.channels_last)


def test_track_of_parses_gtsrb_training_names() -> None:
    assert track_of("00012_00029.ppm") == 12 and track_of("00000_00000.ppm") == 0
    assert track_of("00001.ppm") is None and track_of("frame_1.png") is None
