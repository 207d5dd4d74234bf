"""End-to-end backpropagation: the reference every layer-wise method is compared with.

The whole network is one module trained with its own classifier and cross-entropy, with SGD (momentum, weight
decay; ``--set nesterov=true``) and a cosine, step or constant learning-rate schedule (``--set lr_schedule=step``),
optionally with linear warm-up. In the engine this is the one-module case of local learning (``end_to_end``).
"""

from __future__ import annotations

from bench.engine import cross_entropy_loss, train_local
from bench.method import RunContext, TrainOutcome


class EndToEndSGD:
    name = "sgd"
    version = "1.0"
    description = "End-to-end backprop with SGD + momentum, weight decay, cosine/step schedule (the reference)."
    default_schedule = "end_to_end"
    schedules = ("end_to_end",)
    default_aux = None
    hparams: dict = {}

    def train(self, run: RunContext) -> TrainOutcome:
        return train_local(run, local_loss=cross_entropy_loss)


method = EndToEndSGD()
