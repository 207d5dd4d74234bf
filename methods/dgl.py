"""Decoupled Greedy Learning: Belilovsky, Eickenberg, Oyallon, "Decoupled Greedy Learning of CNNs", ICML 2020
(code: github.com/eugenium/DGL).

Algorithm (simultaneous / decoupled schedule, the paper's):
    for each batch (x, y):
        h_0 = x
        for k = 1..K:
            T_k = module_k(detach(h_{k-1}))
            step module k and aux_k on  CE(aux_k(T_k), y)
            h_k = T_k
    the last module is trained with the network's own classifier.

Every module updates on every batch, without waiting for a backward pass from above (no update locking). The
auxiliary classifier is DGL's MLP-SR head (``--aux mlp_sr``: spatial reduction, then a small MLP; see
``bench/heads.py``). Departures: the backbone modules are the harness's StagedNet modules, and the optimiser recipe
is the harness's (one SGD optimiser per module, the same hyperparameters for every method). DGL's asynchronous
variant with a replay buffer is not implemented.
"""

from __future__ import annotations

from bench.engine import train_local
from bench.method import RunContext, TrainOutcome


class DecoupledGreedy:
    name = "dgl"
    version = "1.0"
    description = "Decoupled greedy learning: all modules step on every batch with MLP-SR heads (Belilovsky 2020)."
    default_schedule = "simultaneous"
    schedules = ("simultaneous", "sequential")
    default_aux = "mlp_sr"
    hparams: dict = {}

    def train(self, run: RunContext) -> TrainOutcome:
        return train_local(run)  # the --aux head on every module but the last, cross-entropy


method = DecoupledGreedy()
