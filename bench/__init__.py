"""layerbench: a benchmark harness for layer-wise training of CNNs.

The import name is ``bench``; the distribution is ``layerbench``. The plugin API (:mod:`bench.api`) is available
from here too, imported on first use: ``from bench import register_method, Param, train_local``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = (
    "REQUIRED_ATTRIBUTES", "ArchitectureError", "BenchError", "ConfigError", "DatasetError", "HeadFactory",
    "ImageDataset", "LocalLoss", "LocalStep", "Method", "Param", "RunConfig", "RunContext", "StagedNet",
    "TrainOutcome", "build_head", "channel_mean_std", "check_dataset", "check_network", "configured_heads",
    "cross_entropy_loss", "load_includes", "register_architecture", "register_dataset", "register_method",
    "train_local",
)
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
