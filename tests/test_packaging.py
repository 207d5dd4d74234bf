"""What `pip install layerbench` puts on sys.path: one import package, ``bench``, with the methods and the
architectures inside it (``bench.methods``, ``bench.architectures``) and the package data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("bench", "methods", "architectures"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheel"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
         str(out), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("layerbench-*.whl")
    return wheel


def test_a_fresh_install_exposes_only_the_bench_namespace(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"bench"}
    for path in ("bench/methods/greedydib.py", "bench/methods/__init__.py", "bench/architectures/cifar_resnet.py",
                 "bench/architectures/__init__.py", "bench/api.py", "bench/py.typed",
                 "bench/reference_data/infopro_iclr2021_tables.csv"):
        assert path in names, path
    packages = [p.relative_to(ROOT).parent for p in ROOT.glob("bench/**/__init__.py")]
    packages += [Path("bench/methods"), Path("bench/architectures")]
    for package in packages:  # pyproject.toml lists the packages: a new one must be listed there too
        assert f"{package.as_posix()}/__init__.py" in names, f"{package} is not in the wheel"
    (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")] or [None]
    if top_level is not None:
        assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["bench"]

    # installed on its own, it imports under bench.* and nothing else
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(site), str(wheel)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    importable = [p.name for p in site.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin"]
    assert importable == ["bench"]  # (bin/ holds the `bench` command)
    check = (
        "import importlib.util, bench, bench.methods.greedydib, bench.architectures\n"
        "from bench.registry import METHODS, ARCHITECTURES\n"
        f"assert bench.__file__.startswith({str(site)!r}), bench.__file__\n"
        "assert METHODS.get('greedydib').name == 'greedydib'\n"
        "assert type(METHODS.get('sgd')).__module__ == 'bench.methods.sgd'\n"
        "assert ARCHITECTURES.get('cifar_resnet20')(num_classes=10, split='stages', image_size=32,"
        " cifar_stem=None).num_modules == 3\n"
    )
    proc = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
