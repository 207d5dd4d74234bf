"""GreedyDIB: greedy layer-wise training with a deterministic information bottleneck on every module.

Source: "Information-Theoretic Greedy Layer-wise Training for Traffic Sign Recognition" (2025), the seed paper of
this harness. Its full text is not at hand, so every choice below is a documented, configurable default.

Objective. The deterministic information bottleneck minimises H(T) - beta I(T;Y). The cross-entropy of an
auxiliary classifier bounds -I(T;Y) from above (up to H(Y)), so module k minimises

    L_k = CE(aux_k(T_k), y) + gamma_k * R(T_k)

where R is measured with the matrix-based Renyi alpha-order entropy functional (``bench/info``) on the batch:

    K_ij = exp(-||t_i - t_j||^2 / (2 sigma^2)),   A = K / tr(K),   S_alpha(A) = log2(sum_i lambda_i(A)^alpha) / (1 - alpha)

Algorithm (sequential schedule by default, like greedy_ce):
    for k = 1..K:
        train module k and aux_k on  CE(aux_k(T_k), y) + gamma_k * R(T_k)
        freeze module k
    the last module is trained with the network's own classifier (and the same regulariser on its output).

Hyperparameters (``--set key=value``; all recorded in the result file):
    gamma        weight of the DIB term: one value, or a list with one value per module.
    alpha        order of the Renyi entropy (default 1.01, the predecessor code's; 2 uses the closed form
                 S_2(A) = -log2 ||A||_F^2 with no eigendecomposition).
    width        kernel-width rule: "median" (of pairwise distances), "knn", "silverman", "dib", or a number.
                 "dib" is the rule of the DIB reference code (github.com/yuxi120407/DIB, main.py): the mean
                 distance of each sample to the batch's first 10 samples, m, in their kernel exp(-d^2 / m); with
                 detach_width=true it is their recipe (they compute m without gradient). See
                 ``bench.info.kernel_width``.
    detach_width hold the width out of the gradient. Off by default, and it must stay off for training: with a
                 detached width, shrinking every feature lowers the entropy for free and training collapses
                 (measured on cpu-cifar10: gamma 0.5 -> 10.0%, chance, against 26.6% with the width attached;
                 docs/greedydib.md). With the width following the features the term is invariant to a global
                 rescaling of T.
    regularizer  "entropy": S(T_k) (default); "ixt": I(X;T_k); "markov": I(T_{k-1};T_k).
    entropy_method  how S_alpha is computed: "auto" (closed form for alpha = 2, eigvalsh otherwise) or another
                 method offered by ``bench.info.matrix_entropy``.

With gamma = 0 the method is greedy_ce exactly (same seed, same numbers): the term is skipped, not multiplied by 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bench import info
from bench.engine import LocalStep, train_local
from bench.errors import ConfigError
from bench.method import RunContext, TrainOutcome

REGULARIZERS = ("entropy", "ixt", "markov")


def gamma_for(gamma, k: int, num_modules: int) -> float:
    if isinstance(gamma, (list, tuple)):
        if len(gamma) != num_modules:
            raise ConfigError(f"gamma has {len(gamma)} values but the network has {num_modules} modules")
        return float(gamma[k])
    return float(gamma)


def parse_width(width):
    """A width rule name, or a fixed kernel width given as a number (also as text from ``--set``).

    Raises ConfigError for anything else (an unknown rule, a non-positive or non-finite number)."""
    if isinstance(width, bool):
        raise ConfigError(f"width must be one of {', '.join(info.WIDTH_RULES)} or a positive number, not {width!r}")
    try:
        value = float(width)
    except (TypeError, ValueError):
        if width not in info.WIDTH_RULES:
            raise ConfigError(
                f"width {width!r} is not one of {', '.join(info.WIDTH_RULES)} or a positive number"
            ) from None
        return width
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"a fixed kernel width must be a positive number, got {width!r}")
    return value


def dib_regularizer(step: LocalStep, hp: dict) -> torch.Tensor:
    """R(T_k) in bits, differentiable with respect to the module's features."""
    alpha, width, method = hp["alpha"], parse_width(hp["width"]), hp["entropy_method"]
    a_t = info.gram_matrix(step.features.float(), width, detach_width=hp["detach_width"])
    if hp["regularizer"] == "entropy":
        return info.matrix_entropy(a_t, alpha, method=method)
    with torch.no_grad():  # the other variable is fixed data for this module
        other = step.x if hp["regularizer"] == "ixt" else step.inputs
        a_o = info.gram_matrix(other.float(), width)
    return info.mutual_information(a_o, a_t, alpha, method=method)


class GreedyDIB:
    name = "greedydib"
    version = "1.0"
    description = "Greedy layer-wise CE + gamma * matrix-based Renyi entropy of each module's features (DIB)."
    default_schedule = "sequential"
    schedules = ("sequential", "simultaneous")
    default_aux = "conv"
    per_module = ("gamma",)  # gamma: one value, or a list with one value per module
    hparams = {
        "gamma": 0.01,
        "alpha": 1.01,
        "width": "median",
        "detach_width": False,
        "regularizer": "entropy",
        "entropy_method": "auto",
    }

    def train(self, run: RunContext) -> TrainOutcome:
        hp = run.hp
        if hp["regularizer"] not in REGULARIZERS:
            raise ConfigError(f"regularizer {hp['regularizer']!r} is not one of {', '.join(REGULARIZERS)}")
        if not hp["alpha"] > 0:
            raise ConfigError(f"alpha must be positive, got {hp['alpha']}")
        parse_width(hp["width"])
        num_modules = run.net.num_modules
        gammas = [gamma_for(hp["gamma"], k, num_modules) for k in range(num_modules)]
        if any(g < 0 for g in gammas):
            raise ConfigError(f"gamma must be non-negative, got {hp['gamma']}")

        def local_loss(step: LocalStep):
            logits = step.head(step.features)
            loss = F.cross_entropy(logits, step.y)
            if gammas[step.k] != 0.0:
                loss = loss + gammas[step.k] * dib_regularizer(step, hp)
            return loss, logits

        return train_local(run, local_loss=local_loss)


method = GreedyDIB()
