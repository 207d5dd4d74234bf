"""Shared pytest fixtures."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real dataset subsets: ``$LAYERBENCH_SHARED_DATA``, else ``<repo>/../shared/data``.

    Skips the test when the folder is absent.
    """
    env = os.environ.get("LAYERBENCH_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data subsets not found at {path} (set LAYERBENCH_SHARED_DATA)")
    return path


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as a module (the scripts are not a package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
