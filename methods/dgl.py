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
``bench/heads.py``). Departures, each a setting (authors' value in brackets; docs/baselines.md has the table):
the backbone modules are the harness's StagedNet modules; the last module classifies with the backbone's own
GAP + linear (``--set last_head=aux``: the authors' pool-to-2x2 + 2-layer MLP); the optimiser recipe is the
protocol's, the same for every method (the authors': SGD lr 0.1, momentum 0.9, weight decay 5e-4, 50 epochs,
``--set lr_schedule=step step_every_epochs=15 step_gamma=0.2``); crops are zero-padded, as the authors'.
DGL's asynchronous variant with a replay buffer is not implemented.
"""

from __future__ import annotations

from bench.engine import configured_heads, train_local
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
        # the --aux head on every module but the last, cross-entropy. Under --set last_head=aux the last module
        # classifies with the authors' top classifier: auxillary_classifier2(n_lin=0, mlp_layers=2), i.e. pool to
        # 2x2 and a 2-layer MLP (auxiliary_nets_study/models.py, Net.__init__).
        def make_last_head(k, shape):
            if run.cfg.aux != "mlp_sr":
                return configured_heads(run)(k, shape)
            return configured_heads(run, n_conv=0, mlp_layers=2)(k, shape)

        return train_local(run, make_last_head=make_last_head)


method = DecoupledGreedy()
