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

Settings that choose between the authors' code and a cleaner alternative (both recorded in the result with the
other hyperparameters):

- ``reconstruction_loss``: ``authors`` (default) computes sigmoid, then ``nn.BCELoss`` semantics, as the authors'
  decoder does: each log is clamped at -100, so a pixel whose logit is past about 17 (sigmoid exactly 1 in
  float32) adds ``100 * (1 - x)`` to the loss and passes no gradient. ``exact`` computes the same cross-entropy
  from the logits (``binary_cross_entropy_with_logits``): no clamp, and saturated pixels keep their gradient.
  Both run in float32 or wider, also under bf16 autocast. The authors' form is the default because it is the loss
  behind the published numbers, and the difference is not academic: with the authors' initialisation some decoder
  logits pass 17 from the first step (on 32 CIFAR-10 images in cross-entropy mode, the first module's initial
  loss is 4% (K = 4) to 10% (K = 8) higher than the exact form's).
- ``aux_init``: ``authors`` (default) re-initialises the decoder and the 1c2f nets with the authors' init loop
  (``bench.heads.init_like_authors``: convs Kaiming normal fan-out, BN weight 1 / bias 0, Linear layers left at
  PyTorch's defaults), because the authors' loop runs over the whole network, auxiliary nets included.
  ``pytorch`` keeps PyTorch's default initialisation of the auxiliary nets.

Departures: in contrastive mode the harness adds a 1c2f probe classifier trained with CE on the *detached*
features, only so that each module's auxiliary accuracy can be reported; it never changes the module's training,
and it runs after the module's backward (``LocalStep.defer``), so it is not counted in the activation memory. One
SGD optimiser per module (the same hyperparameters for every method) instead of one for the network: SGD updates
each parameter from its own gradient and state, so this gives the same updates.
"""

from __future__ import annotations

import torch.nn.functional as F

from bench.engine import HeadFactory, LocalLoss, LocalStep, configured_heads, train_local
from bench.errors import ConfigError
from bench.heads import (
    AUX_INITS,
    RECONSTRUCTION_LOSSES,
    infopro_lambdas,
    infopro_local_loss,
    infopro_published_weights,
    init_like_authors,
)
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


def _check_choice(hp: dict, key: str, choices: tuple[str, ...]) -> str:
    value = hp[key]
    if value not in choices:
        raise ConfigError(f"{key} {value!r} is not one of {', '.join(choices)}")
    return value


class InfoPro:
    name = "infopro"
    version = "1.1"
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
        "reconstruction_loss": "authors",
        "aux_init": "authors",
    }

    def train(self, run: RunContext) -> TrainOutcome:
        hp = run.hp
        _check_choice(hp, "loss_mode", LOSS_MODES)
        _check_choice(hp, "reconstruction_loss", RECONSTRUCTION_LOSSES)
        _check_choice(hp, "aux_init", AUX_INITS)
        if run.cfg.aux != "infopro":
            raise ConfigError("infopro needs its own head (decoder + 1c2f): use --aux infopro (the default)")
        weights, source = resolve_weights(hp, run.cfg.arch, run.net.num_modules)
        outcome = train_local(run, make_head=self.make_head(run), local_loss=self.make_local_loss(run, weights))
        outcome.extra_metrics["infopro_weights"] = {**weights, "weights_source": source}
        return outcome

    def make_head(self, run: RunContext) -> HeadFactory:
        """The decoder + 1c2f head of module k, initialised as ``aux_init`` says."""
        base = configured_heads(run, loss_mode=run.hp["loss_mode"])
        if run.hp["aux_init"] == "pytorch":
            return base
        return lambda k, shape: init_like_authors(base(k, shape))

    def make_local_loss(self, run: RunContext, weights: dict[str, float]) -> LocalLoss:
        """The local loss of every module: InfoPro's on modules 0..K-2, plain CE on the last one."""
        hp = run.hp
        mean, std = run.data.dataset.mean, run.data.dataset.std
        temperature = float(hp["temperature"])
        reconstruction_loss = hp["reconstruction_loss"]

        def local_loss(step: LocalStep):
            lam_rec, lam_ce = infopro_lambdas(step.k, step.num_modules, **weights)
            if step.is_last:  # the network's own classifier, plain CE
                logits = step.head(step.features)
                return lam_ce * F.cross_entropy(logits, step.y), logits
            return infopro_local_loss(
                step.head, step.features, step.x, step.y, mean, std, lam_rec, lam_ce,
                temperature=temperature, reconstruction_loss=reconstruction_loss,
                defer=getattr(step, "defer", None),  # engines without LocalStep.defer: the probe joins the loss
            )

        return local_loss


method = InfoPro()
