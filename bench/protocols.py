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
"""Class and box (``bench.boxes``); ``lambda_box`` as chosen on the validation split under cpu-gtsrb-loc version 1's
optimiser (docs/localize.md); cpu-gtsrb-loc version 3 overrides it with its own choice."""

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

_CPU_V2 = {
    "arch": "cifar_resnet20",
    "split": "balanced:4",
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "lr_schedule": "cosine",
    "crop_padding": 4,
    "crop_padding_mode": "reflect",
    "val_split": 0.1,
    "amp": "auto",
    "channels_last": "auto",
    "eval_every": 1,
}
"""Version 2 of the cpu protocols: the recipe of a plain PyTorch loop that reaches the targets (scripts/plain_loop.py:
SGD lr 0.1 with Nesterov momentum, weight decay 5e-4, linear warm-up then cosine, reflection-padded crops), a
validation split for every selection, bf16 and channels_last where the CPU has native bf16, evaluation every epoch
(validation curves; ``test_top1_at_val_best``). The budget (``epochs``) is the one where doubling it moves ``sgd``'s
validation top-1 by less than a point (docs/protocols.md, Budgets)."""

_CPU_V2_TEXT = (
    "lr 0.1 Nesterov, warm-up + cosine, reflection-padded crops. Budget convention: every module sees the "
    "protocol's epochs; sequential schedules train each module for that many epochs (as their authors do), so they "
    "make more passes than sgd (the train FLOPs and time columns show how many more); the simultaneous greedy row "
    "(greedy_ce, schedule simultaneous) is the equal-pass layer-wise baseline. Runs on a 2-core CPU."
)
_CPU_V2_SOURCE = "ours; budget and recipe from the evidence in docs/protocols.md"

_CPU_METHOD_SETTINGS = {
    # Chosen on the validation split of cpu-cifar10 v2 (seed 0, 10 epochs per module): regulariser in {entropy, ixt,
    # markov} x gamma in {0.01, 0.1}, best validation top-1 among gamma > 0 (the gamma = 0 control scored higher;
    # docs/greedydib.md)
    "greedydib": {"regularizer": "ixt", "gamma": 0.01},
}

_GTSRB_METHOD_SETTINGS = {
    # Chosen on the validation split of cpu-gtsrb v2 (seed 0, 2 epochs per module): regulariser in {entropy, ixt,
    # markov} x gamma in {0.01, 0.1}, best validation top-1 (docs/greedydib.md)
    "greedydib": {"regularizer": "ixt", "gamma": 0.01},
}

_GTSRB_V4_METHOD_SETTINGS = {
    # Chosen on the validation split of cpu-gtsrb v4 (batch 64; seed 0, 2 epochs per module): the same grid as
    # version 2's, best validation top-1 among gamma > 0 (the gamma = 0 control scored higher; docs/greedydib.md,
    # evidence/gtsrb-greedydib-bs64)
    "greedydib": {"regularizer": "entropy", "gamma": 0.01},
}

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol(
            "cpu-cifar10",
            3,
            "CIFAR-10 (the 4,000/1,000 real subset or a full download; 10% of the training images held out for "
            "validation), CIFAR ResNet-20 cut in 4 modules of balanced activation memory, bf16 where native, the "
            "test set scored once at the end, "
            + _CPU_V2_TEXT
            + " Budget: 60 epochs, a fixed budget that is not converged by the doubling rule (sgd gains 3.25 "
            "validation points from 60 to 120 epochs on the 4,000-image subset; docs/protocols.md).",
            {
                "data": "cifar10",
                "max_train_samples": 4000,
                **_CPU_V2,
                # budget sweep (seed 0, validation top-1 of sgd): 15 -> 30 epochs +6.5 points, 30 -> 60 +2.25,
                # 60 -> 120 +3.25: no budget a 2-core grid affords meets the doubling rule; 60 is where sgd passes
                # 70 % (docs/protocols.md, Budgets)
                "epochs": 60,
                "warmup_epochs": 3,
                # version 3: version 2 with the test set scored once at the end (the same statistics, bit for bit:
                # training never reads the test set), which takes about a tenth off the grid's time
                "eval_test": "end",
            },
            method_settings=_CPU_METHOD_SETTINGS,
            source=_CPU_V2_SOURCE,
        ),
        Protocol(
            "cpu-gtsrb",
            5,
            "The complete GTSRB at 32x32 (39,209 training images, 10% of the training tracks held out for "
            "validation, the official 12,630 test images), CIFAR ResNet-20 cut in 4 modules of balanced activation "
            "memory, bf16 where native, batch 64 (chosen on validation), 12 epochs, the test set scored once at the "
            "end, "
            + _CPU_V2_TEXT,
            {
                "data": "gtsrb",
                **_CPU_V2,
                # version 5: 12 epochs. At version 4's 6, sgd met the doubling rule (+0.49 validation points from 6 to
                # 12, 3 seeds) but stayed under its target (97.99 % test), and the layer-wise rows were still
                # climbing (InfoPro +1.08 validation points, DGL +1.00 test points from 6 to 12, seed 0), so that
                # their order was the budget's (docs/protocols.md, Budgets; evidence/cpu-gtsrb-v4-12-epochs)
                "epochs": 12,
                "warmup_epochs": 1,
                # version 4: chosen on the validation split (sgd, 6 epochs, seeds 0 and 1): batch 64 gives a mean
                # validation top-1 of 99.21 against 98.36 at version 2's 128 and above GTSRB's mirror flips and
                # contrast stretch (docs/protocols.md, Budgets; evidence/gtsrb-recipe); version 3 was a withdrawn
                # draft with those two options
                "batch_size": 64,
                "eval_test": "end",  # the same statistics as scoring test every epoch, at less evaluation cost
            },
            method_settings=_GTSRB_V4_METHOD_SETTINGS,
            source=_CPU_V2_SOURCE,
        ),
        Protocol(
            "cpu-gtsrb-loc",
            3,
            "Traffic-sign localisation: class and box on cpu-gtsrb's data and recipe (version 2: the complete GTSRB "
            "at 32x32, 10% of the training tracks held out for validation, CIFAR ResNet-20 in 4 modules of balanced "
            "memory, bf16 where native, its budget and budget convention), lambda_box 3 as chosen on validation under "
            "this recipe, the test set scored once at the end. Scores top-1, mean IoU, box accuracy and class + box "
            "accuracy at IoU >= 0.5 and 0.75, against the constant-box floor; runs on a 2-core CPU.",
            {
                "data": "gtsrb",
                **_CPU_V2,
                "epochs": 6,
                "warmup_epochs": 1,
                **_LOCALIZE,
                # version 3: chosen on the validation split under this recipe (sgd and greedy_ce, seed 0, 2 epochs,
                # lambda_box in {0.3, 1, 3, 10}: docs/localize.md); version 2 kept version 1's choice (1)
                "lambda_box": 3.0,
                "eval_test": "end",  # the same statistics as scoring test every epoch, at less evaluation cost
            },
            method_settings=_GTSRB_METHOD_SETTINGS,
            source="GreedyDIB seed paper (2025): traffic signs with classification and regression heads; the "
            "recipe is ours (cpu-gtsrb version 2)",
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

SUPERSEDED: dict[tuple[str, int], str] = {
    ("cpu-cifar10", 1): "6 epochs, far from converged (a plain loop reaches about 68 % in 20); ResNet-20 split in its 3 "
    "stages; no validation split, GreedyDIB's gamma chosen on the test set. Do not read a ranking from it.",
    ("cpu-cifar10", 2): "scores the test set after every epoch, about a tenth of the grid's time; version 3 is the "
    "same recipe with the test set scored once at the end, which gives every cell's numbers to the last digit (test "
    "top-1 at the last epoch and at the best validation epoch, every validation top-1; tests/test_committed_grids.py) "
    "at less cost (docs/protocols.md). The grid is complete (3 seeds per row); its numbers stand.",
    ("cpu-gtsrb", 1): "made on a 2,580-image training subset of GTSRB (60 per class at original size) that the data "
    "folder no longer holds: it cannot be reproduced on the complete set; 15 epochs on that subset, far from "
    "converged; no validation split, GreedyDIB's gamma chosen on the test set. Do not read a ranking from it.",
    ("cpu-gtsrb", 2): "batch 128; the same recipe at batch 64 scores higher on the validation split (mean of two "
    "seeds of sgd: 99.21 against 98.36), which version 4 uses (docs/protocols.md). The grid is complete (3 seeds per "
    "row); its ranking stands for batch 128.",
    ("cpu-gtsrb", 4): "6 epochs: sgd's test top-1 stays under the 98 % target (97.99 over 3 seeds), and at twice the "
    "budget InfoPro and DGL gain 1 to 1.25 points (seed 0) while the top two rows gain under 0.5, so that the order "
    "below the top two is the budget's; version 5 trains 12 epochs (docs/protocols.md, Budgets). The grid is "
    "complete (3 seeds per row); read its lower rows as 'at 6 epochs'.",
    ("cpu-gtsrb-loc", 2): "its lambda_box = 1 was chosen on validation under version 1's optimiser (lr 0.05, no "
    "Nesterov, no warm-up); the same selection under version 2's own recipe chooses lambda_box = 3, which version 3 "
    "uses (docs/localize.md). The grid is complete (3 seeds per row); its ranking stands for lambda_box = 1.",
}
"""Why an older protocol version was replaced; its committed results keep their own leaderboard page."""

