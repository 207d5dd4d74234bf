"""Protocols: named, versioned recipes (dataset, architecture, split, epochs, batch, optimizer, schedule, seeds).

``bench run --protocol NAME --method M`` runs one cell of a protocol; ``bench list protocols`` shows them. A
protocol fixes everything but the method (and the seed, drawn from ``seeds``); flags given on top still apply and
are recorded, but the leaderboards only average runs whose config matches the protocol.

``cpu-*`` protocols run to the end on a laptop CPU and are what the committed leaderboards hold; ``paper-*``
protocols follow published GPU recipes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    description: str
    settings: dict[str, Any]
    seeds: tuple[int, ...] = (0, 1, 2)
    method_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-method overrides inside the protocol (e.g. GreedyDIB's gamma chosen by a sweep), recorded with it."""
    source: str = ""


_INFOPRO_RECIPE = {
    # Experiments on CIFAR-SVHN-STL10/train.py of github.com/blackfeather-wang/InfoPro-Pytorch, as every published
    # CIFAR-10 command runs it (comand.sh: --cos_lr, batch 1024, lr 0.8).
    "epochs": 160,
    "batch_size": 1024,
    "lr": 0.8,
    "lr_schedule": "infopro",  # adjust_learning_rate with --cos_lr: per epoch, 10-epoch warm-up from 0.01
    "warmup_epochs": 0,
    "nesterov": True,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "optimizer": "sgd",
    "crop_padding": 4,
    "crop_padding_mode": "reflect",  # F.pad(..., (4, 4, 4, 4), mode='reflect') then RandomCrop(32)
    "eval_every": 1,  # train.py evaluates every epoch and reports the best accuracy as well as the last
}

_V1_PINNED = {"val_split": 0.0, "amp": False, "channels_last": False}
"""Version 1 of the cpu protocols predates validation splits and CPU mixed precision: pinned off, so that its
committed results keep reproducing (bf16 halves the activation bytes)."""

_LOCALIZE = {"task": "localize", "lambda_box": 1.0, "box_loss": "smooth_l1+giou"}
"""Class and box (``bench.boxes``); ``lambda_box`` as chosen on the validation split (docs/localize.md)."""

_GTSRB_RESNET18 = {
    "data": "gtsrb",
    "arch": "resnet18",
    "split": "stages",
    "epochs": 30,
    "batch_size": 128,
    "lr": 0.05,
    "lr_schedule": "cosine",
    "weight_decay": 5e-4,
    "momentum": 0.9,
}
"""The GreedyDIB seed paper's GTSRB setting as far as it is known (ResNet-18, CIFAR stem; the budget is ours)."""

_CPU_METHOD_SETTINGS = {
    # GreedyDIB's gamma: best of {0.003, 0.01, 0.03, 0.1} on seed 0 of each cpu protocol (docs/greedydib.md)
    "greedydib": {"gamma": 0.01},
}

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol(
            "cpu-cifar10",
            1,
            "CIFAR-10 (the 4,000/1,000 real subset or a full download), CIFAR ResNet-20 in its 3 stages; "
            "runs to the end on a 2-core CPU.",
            {
                "data": "cifar10",
                "arch": "cifar_resnet20",
                "split": "stages",
                "epochs": 6,
                "batch_size": 128,
                "lr": 0.05,
                "lr_schedule": "cosine",
                "weight_decay": 5e-4,
                "momentum": 0.9,
                "max_train_samples": 4000,
                **_V1_PINNED,
            },
            method_settings=_CPU_METHOD_SETTINGS,
        ),
        Protocol(
            "cpu-gtsrb",
            1,
            "GTSRB at 32x32 (the 2,580-image real training subset, official test set), CIFAR ResNet-20 in its "
            "3 stages; runs to the end on a 2-core CPU.",
            {
                "data": "gtsrb",
                "arch": "cifar_resnet20",
                "split": "stages",
                "epochs": 15,
                "batch_size": 128,
                "lr": 0.05,
                "lr_schedule": "cosine",
                "weight_decay": 5e-4,
                "momentum": 0.9,
                "max_train_samples": 2580,
                **_V1_PINNED,
            },
            method_settings=_CPU_METHOD_SETTINGS,
        ),
        Protocol(
            "cpu-gtsrb-loc",
            1,
            "Traffic-sign localisation: class and box on the complete GTSRB at 32x32 (official test set, 10% of "
            "the training tracks held out for validation), CIFAR ResNet-20 cut in 4 modules of balanced memory, "
            "bf16 where native; sequential methods train each module for the protocol's epochs. Scores top-1, "
            "mean IoU, box accuracy and class + box accuracy at IoU >= 0.5, against the constant-box floor; runs "
            "on a 2-core CPU.",
            {
                "data": "gtsrb",
                "arch": "cifar_resnet20",
                "split": "balanced:4",
                "epochs": 6,
                "batch_size": 128,
                "lr": 0.05,
                "lr_schedule": "cosine",
                "weight_decay": 5e-4,
                "momentum": 0.9,
                "val_split": 0.1,
                "amp": "auto",
                "channels_last": "auto",
                **_LOCALIZE,
            },
            method_settings=_CPU_METHOD_SETTINGS,
            source="GreedyDIB seed paper (2025): traffic signs with classification and regression heads; the "
            "recipe is ours",
        ),
        Protocol(
            "paper-cifar10-resnet32",
            2,
            "InfoPro's CIFAR-10 recipe: ResNet-32, K local modules (set --split blocks:K, K in 2,4,8,16), "
            "160 epochs, batch 1024, lr 0.8 with the authors' per-epoch warm-up + cosine, Nesterov, weight decay 1e-4, "
            "reflection-padded crops, evaluated every epoch (GPU).",
            {"data": "cifar10", "arch": "cifar_resnet32", "split": "blocks:4", **_INFOPRO_RECIPE},
            source="Wang et al., ICLR 2021 (InfoPro), Sec. 4 and the authors' code",
        ),
        Protocol(
            "paper-cifar10-resnet110",
            2,
            "InfoPro's CIFAR-10 recipe on ResNet-110 (K in 2,4,8,16 through --split blocks:K) (GPU).",
            {"data": "cifar10", "arch": "cifar_resnet110", "split": "blocks:4", **_INFOPRO_RECIPE},
            source="Wang et al., ICLR 2021 (InfoPro), Sec. 4 and the authors' code",
        ),
        Protocol(
            "paper-cifar100-resnet32",
            2,
            "InfoPro's recipe on CIFAR-100 with ResNet-32 (GPU).",
            {"data": "cifar100", "arch": "cifar_resnet32", "split": "blocks:4", **_INFOPRO_RECIPE},
            source="Wang et al., ICLR 2021 (InfoPro) recipe applied to CIFAR-100",
        ),
        Protocol(
            "paper-gtsrb-resnet18",
            1,
            "ResNet-18 (CIFAR stem) on GTSRB at 32x32, split in its 4 stages, 30 epochs, batch 128, SGD lr 0.05 "
            "cosine (GPU); the GreedyDIB seed paper's setting as far as it is known.",
            dict(_GTSRB_RESNET18),
            source="GreedyDIB seed paper (2025): architecture and dataset; the budget is ours",
        ),
        Protocol(
            "paper-gtsrb-loc-resnet18",
            1,
            "Traffic-sign localisation on GPU: paper-gtsrb-resnet18's recipe (ResNet-18, CIFAR stem, GTSRB at "
            "32x32, its 4 stages, 30 epochs, batch 128, SGD lr 0.05 cosine) with a box head beside every "
            "classifier, 10% of the training tracks held out for validation.",
            {
                **_GTSRB_RESNET18,
                "val_split": 0.1,
                "eval_every": 1,
                **_LOCALIZE,
            },
            source="GreedyDIB seed paper (2025): traffic signs with classification and regression heads, "
            "ResNet-18; the budget is ours",
        ),
    ]
}
