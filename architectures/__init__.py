"""Backbones for layerbench: timm CNNs split into K local modules (``StagedNet``).

Importing this package registers the CIFAR ResNets (``cifar_resnet20/32/56/110``) into timm's model registry, so
``timm.create_model('cifar_resnet32', num_classes=10)`` works.

Public API:

* ``build_staged(name, *, num_classes, split='stages', image_size=32, in_chans=3, cifar_stem=None) -> StagedNet``
* ``list_architectures() -> list[dict]`` (name, family, num_stages, num_atoms, params)
* ``supported_family(name) -> str | None``
* ``split_model(model, split, ...)`` for an already built timm model, ``count_atoms(name)``, ``describe_atoms(name)``
"""

from bench.architectures.cifar_resnet import INFOPRO_CUTS, CifarResNet, infopro_cut_points
from bench.architectures.families import FAMILIES, Body, apply_cifar_stem, body_of
from bench.architectures.split import (
    BUILTIN_ARCHITECTURES,
    UnknownArchitectureError,
    activation_costs,
    build_staged,
    count_atoms,
    describe_atoms,
    list_architectures,
    parse_split,
    split_model,
    supported_family,
)

__all__ = [
    "BUILTIN_ARCHITECTURES",
    "FAMILIES",
    "INFOPRO_CUTS",
    "Body",
    "CifarResNet",
    "UnknownArchitectureError",
    "activation_costs",
    "apply_cifar_stem",
    "body_of",
    "build_staged",
    "count_atoms",
    "describe_atoms",
    "infopro_cut_points",
    "list_architectures",
    "parse_split",
    "split_model",
    "supported_family",
]
