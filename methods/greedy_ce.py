"""Greedy layer-wise cross-entropy: Belilovsky, Eickenberg, Oyallon, "Greedy Layerwise Learning Can Scale to
ImageNet", ICML 2019 (code: github.com/eugenium/layerCNN).

Algorithm (sequential schedule, the paper's):
    for k = 1..K:
        train module k and its auxiliary classifier aux_k on  CE(aux_k(T_k), y),  T_k = module_k(frozen prefix(x))
        freeze module k
    the last module is trained with the network's own classifier.

The auxiliary classifier is the paper's convolutional head (``--aux conv``, see ``bench/heads.py``).
Departures from the authors' code, each a setting (docs/baselines.md has the table): the backbone modules are the
harness's StagedNet modules (stages or blocks of a timm/CIFAR ResNet) instead of the paper's own stack of conv
layers; the last module classifies with the backbone's own GAP + linear (``--set last_head=aux``: the conv head, as
the authors' last auxillary_classifier); all methods share the protocol's optimiser recipe so that only the local
objective differs (the authors': SGD lr 0.1, momentum 0.9, weight decay 5e-4, 50 epochs per module, the rate
divided by 5 every 15 epochs and restarted per module: ``--set lr_schedule=step step_every_epochs=15
step_gamma=0.2``; they also rebuild the optimizer, dropping its momentum, at each decay). ``--schedule
simultaneous`` is available too (the InfoPro paper's "Greedy SL", with ``--aux linear``).
"""

from __future__ import annotations

from bench.engine import train_local
from bench.method import RunContext, TrainOutcome


class GreedyCrossEntropy:
    name = "greedy_ce"
    version = "1.0"
    description = "Greedy layer-wise CE with a conv auxiliary head, modules trained one after another (Belilovsky 2019)."
    default_schedule = "sequential"
    schedules = ("sequential", "simultaneous")
    default_aux = "conv"
    hparams: dict = {}

    def train(self, run: RunContext) -> TrainOutcome:
        return train_local(run)  # the --aux head on every module but the last, cross-entropy


method = GreedyCrossEntropy()
