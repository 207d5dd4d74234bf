"""The public API for writing plugins: everything a method, dataset or architecture needs, in one place.

Also importable from ``bench`` itself (``from bench import register_method, Param``). docs/plugins.md is the guide
to the contracts these names make up.

Methods
    :class:`Method` (the protocol), :class:`RunContext` (what ``train(run)`` is given), :class:`TrainOutcome`
    (what it returns), :func:`train_local` (the shared engine), :class:`LocalStep` (what a local loss sees),
    :func:`cross_entropy_loss`, :func:`configured_heads` and :func:`build_head` (the auxiliary heads),
    :class:`Param` (a declared hyperparameter), :func:`register_method`.
Datasets
    :class:`ImageDataset`, :func:`channel_mean_std`, :func:`register_dataset`, :class:`Param` (a declared option).
Architectures
    :class:`StagedNet`, :func:`register_architecture`.
Errors
    :class:`ConfigError` (refuse a setting: exit 2, no result), :class:`DatasetError`, :class:`ArchitectureError`,
    :class:`BenchError` (their base).
Loading plugins from files
    :func:`load_includes` (what ``--include PATH`` does).
"""

from __future__ import annotations

from bench.config import RunConfig
from bench.data.base import ImageDataset
from bench.engine import HeadFactory, LocalLoss, LocalStep, configured_heads, cross_entropy_loss, train_local
from bench.errors import ArchitectureError, BenchError, ConfigError, DatasetError
from bench.heads import build_head
from bench.method import REQUIRED_ATTRIBUTES, Method, RunContext, TrainOutcome
from bench.params import Param
from bench.plugins import channel_mean_std, check_dataset, check_network
from bench.registry import load_includes, register_architecture, register_dataset, register_method
from bench.staged import StagedNet

__all__ = [
    "REQUIRED_ATTRIBUTES",
    "ArchitectureError",
    "BenchError",
    "ConfigError",
    "DatasetError",
    "HeadFactory",
    "ImageDataset",
    "LocalLoss",
    "LocalStep",
    "Method",
    "Param",
    "RunConfig",
    "RunContext",
    "StagedNet",
    "TrainOutcome",
    "build_head",
    "channel_mean_std",
    "check_dataset",
    "check_network",
    "configured_heads",
    "cross_entropy_loss",
    "load_includes",
    "register_architecture",
    "register_dataset",
    "register_method",
    "train_local",
]
