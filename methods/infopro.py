"""InfoPro: Wang, Ni, Song, Yang, Huang, "Revisiting Locally Supervised Learning: an Alternative to End-to-end
Training", ICLR 2021 (code: github.com/blackfeather-wang/InfoPro-Pytorch, folder "Experiments on CIFAR-SVHN-STL10").

Local loss of module k < K (its features T_k; decoder w_k and 1c2f head of ``--aux infopro``, ``bench/heads.py``):

    L_k = lambda1_k * BCE(sigmoid(w_k(T_k)), x in [0, 1])          # keep the information about the input
        + lambda2_k * SupCon(normalize(1c2f_k(T_k)), y; tau=0.07)   # keep the information about the label
                                                                    # (or CE with --set loss_mode=cross_entropy)

with the weights interpolated linearly with depth exactly as in the authors' code (``infopro_lambdas``):
    ratio = k / (K - 2)  (0 when K = 2),
    lambda1_k = ixx_1 * (1 - ratio) + ixx_2 * ratio,   lambda2_k = ixy_1 * (1 - ratio) + ixy_2 * ratio.
The last module is trained with the network's own classifier and plain CE.

Schedule: simultaneous (all modules step on every batch, each on its own loss), as in the authors' code.

Defaults: ``ixx_1, ixy_1, ixx_2, ixy_2`` = the authors' published values for the architecture and K when they
exist (CIFAR-10 ResNet-32/110 with K = 2, 4, 8, 16, from their ``comand.sh``); otherwise the ResNet-32 K = 4 values
(6, 0, 1, 2), recorded in the result as ``weights_source``. Set any of them with ``--set ixx_1=...``.

Departures: in contrastive mode the harness adds a linear-probe-like 1c2f classifier trained with CE on the
*detached* features, only so that each module's auxiliary accuracy can be reported; it never changes the module's
training. One SGD optimiser per module (the same hyperparameters for every method) instead of one for the network.
"""

from __future__ import annotations

import torch.nn.functional as F

from bench.engine import LocalStep, configured_heads, train_local
from bench.errors import ConfigError
from bench.heads import infopro_lambdas, infopro_local_loss, infopro_published_weights
from bench.method import RunContext, TrainOutcome

FALLBACK_WEIGHTS = {"ixx_1": 6.0, "ixy_1": 0.0, "ixx_2": 1.0, "ixy_2": 2.0}  # authors' ResNet-32, K = 4
LOSS_MODES = ("contrast", "cross_entropy")


def resolve_weights(hp: dict, arch: str, num_modules: int) -> tuple[dict[str, float], str]:
    """The loss weights to use, and where they came from."""
    try:
        weights, source = infopro_published_weights(arch, num_modules), f"published for {arch}, K={num_modules}"
    except ConfigError:
        weights, source = dict(FALLBACK_WEIGHTS), "fallback: the authors' ResNet-32, K=4 values"
    overridden = {k: float(hp[k]) for k in FALLBACK_WEIGHTS if hp.get(k) is not None}
    if overridden:
        weights.update(overridden)
        source += f"; set: {', '.join(sorted(overridden))}"
    return weights, source


class InfoPro:
    name = "infopro"
    version = "1.0"
    description = "InfoPro: local reconstruction (BCE) + supervised contrastive loss, weights by depth (Wang 2021)."
    default_schedule = "simultaneous"
    schedules = ("simultaneous", "sequential")
    default_aux = "infopro"
    hparams = {
        "loss_mode": "contrast",
        "temperature": 0.07,
        "ixx_1": None,
        "ixy_1": None,
        "ixx_2": None,
        "ixy_2": None,
    }

    def train(self, run: RunContext) -> TrainOutcome:
        hp = run.hp
        if hp["loss_mode"] not in LOSS_MODES:
            raise ConfigError(f"loss_mode {hp['loss_mode']!r} is not one of {', '.join(LOSS_MODES)}")
        if run.cfg.aux != "infopro":
            raise ConfigError("infopro needs its own head (decoder + 1c2f): use --aux infopro (the default)")
        num_modules = run.net.num_modules
        weights, source = resolve_weights(hp, run.cfg.arch, num_modules)
        dataset = run.data.dataset

        def local_loss(step: LocalStep):
            lam_rec, lam_ce = infopro_lambdas(step.k, step.num_modules, **weights)
            if step.is_last:  # the network's own classifier, plain CE
                logits = step.head(step.features)
                return lam_ce * F.cross_entropy(logits, step.y), logits
            return infopro_local_loss(
                step.head, step.features, step.x, step.y, dataset.mean, dataset.std, lam_rec, lam_ce,
                temperature=float(hp["temperature"]),
            )

        outcome = train_local(run, make_head=configured_heads(run, loss_mode=hp["loss_mode"]), local_loss=local_loss)
        outcome.extra_metrics["infopro_weights"] = {**weights, "weights_source": source}
        return outcome


method = InfoPro()
