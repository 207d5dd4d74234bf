"""Our side of the golden parity checks against the baselines' published code.

``scripts/reference_parity.py`` runs these functions *and* the authors' code on the same stored CIFAR-10 batch,
from the same initial weights (ours, copied into theirs), and writes what the authors' code computed to
``tests/fixtures/parity.json`` (the batch itself to ``tests/fixtures/parity_batch.npz``). ``tests/test_parity.py``
runs these functions again and compares with the fixture, so the tests need neither the authors' code nor the
dataset.

Every case is 3 optimisation steps on one fixed batch (no augmentation), and records, per step: each module's
loss, the gradient norm of every parameter tensor (just before the optimizer step), and checksums of every
parameter and BatchNorm running statistic after the step (index 0: the initial state).

* ``infopro``: the ``infopro`` method itself (``methods/infopro.py`` through the engine's ``train_local``, simultaneous
  schedule), on ``cifar_resnet32`` split with ``blocks:K``.
* ``conv`` / ``mlp_sr``: one greedy module, the first block of the authors' CIFAR network (conv3x3 3 -> 128 + BN +
  ReLU) with our auxiliary head (``build_head``), trained with cross-entropy by SGD.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from bench.architectures.cifar_resnet import CIFAR_MEAN as INFOPRO_MEAN
from bench.architectures.cifar_resnet import CIFAR_STD as INFOPRO_STD
from bench.config import RunConfig
from bench.engine import make_optimizer
from bench.heads import build_head
from bench.measure import Meter
from bench.method import RunContext
from bench.methods.infopro import InfoPro
from bench.runner import build_network

FIXTURE_DIR = Path(__file__).parent / "fixtures"
BATCH_FILE = FIXTURE_DIR / "parity_batch.npz"
CASES_FILE = FIXTURE_DIR / "parity.json"

BELILOVSKY_MEAN = (0.4914, 0.4822, 0.4465)
"""Normalisation of layerCNN's ``cifar.py`` and DGL's ``cifar_dgl.py``."""
BELILOVSKY_STD = (0.2023, 0.1994, 0.2010)

NUM_CLASSES = 10
STEPS = 3
DTYPE = "float64"
"""The cases run in float64 (one float32 case apart) (weights initialised in float32, then converted; the batch normalised in float32, as the
authors' pipelines do, then converted). In float32 the rounding differences of two correct implementations, or of
one on two machines, grow about 10^4-fold per SGD step on these networks (1e-7 after step 1, 1e-3 after step 2);
in float64 they stay far below the tolerance."""

# InfoPro train.py (resnet, cifar10): momentum 0.9, nesterov, weight decay 1e-4; with --cos_lr the learning rate of
# the first epoch is 0.01 (adjust_learning_rate at epoch 1), the one used here, held fixed.
INFOPRO_OPTIM = {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}
# layerCNN cifar.py and DGL cifar_dgl.py: SGD, lr 0.1 for the first epochs, momentum 0.9, weight decay 5e-4.
BELILOVSKY_OPTIM = {"lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4}


def infopro_case(k: int, loss_mode: str, seed: int = 0, *, dtype: str = DTYPE, steps: int = STEPS) -> dict[str, Any]:
    suffix = "" if (dtype, steps) == (DTYPE, STEPS) else f"_{dtype}_{steps}step"
    return {
        "name": f"infopro_resnet32_k{k}_{loss_mode}{suffix}", "kind": "infopro", "seed": seed, "steps": steps,
        "k": k, "loss_mode": loss_mode, "reconstruction_loss": "authors", "aux_init": "authors",
        "optim": INFOPRO_OPTIM, "normalisation": {"mean": INFOPRO_MEAN, "std": INFOPRO_STD}, "dtype": dtype,
    }


def head_case(head: str, seed: int = 0) -> dict[str, Any]:
    name = {"conv": "layercnn_conv_head", "mlp_sr": "dgl_mlp_sr_head"}[head]
    return {
        "name": name, "kind": "head", "head": head, "seed": seed, "steps": STEPS, "channels": 128,
        # layerCNN's first block has no conv bias with --bn 1; DGL's Net has one.
        "block_conv_bias": head == "mlp_sr",
        "optim": BELILOVSKY_OPTIM, "normalisation": {"mean": BELILOVSKY_MEAN, "std": BELILOVSKY_STD},
        "dtype": DTYPE,
    }


CASES = [infopro_case(k, mode) for k in (2, 4, 8) for mode in ("contrast", "cross_entropy")]
# One float32 step: on this batch some decoder logits of module 1 pass ~17 at initialisation, where the float32
# sigmoid is exactly 1 and the authors' BCELoss clamps log(0) at -100 (float64 saturates only past ~37). One step
# only: float32 rounding differences would grow over more (see DTYPE).
CASES += [infopro_case(4, "cross_entropy", dtype="float32", steps=1)]
CASES += [head_case("conv"), head_case("mlp_sr")]


def normalise(images_u8: torch.Tensor, mean, std, dtype: str = "float32") -> torch.Tensor:
    """torchvision's ``ToTensor`` + ``Normalize`` (in float32), as the authors' data pipelines compute it."""
    x = images_u8.float().div(255)
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    return x.to(getattr(torch, dtype))


def load_batch(path: Path = BATCH_FILE) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(path) as f:
        return torch.from_numpy(f["images"].copy()), torch.from_numpy(f["labels"].astype(np.int64))


def load_cases(path: Path = CASES_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


# --- recording ----------------------------------------------------------------------------------------------------


def checksums(t: torch.Tensor) -> list[float]:
    """``[sum, sum of squares, sum of absolute values]`` in float64 (the last one scales the first's tolerance)."""
    t = t.detach().double()
    return [t.sum().item(), t.square().sum().item(), t.abs().sum().item()]


def state_of(named: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Parameters and BatchNorm running statistics of each module, as ``prefix.name`` (``num_batches_tracked`` left
    out: an integer count that is the same everywhere)."""
    return {
        f"{prefix}.{key}": value
        for prefix, module in named.items()
        for key, value in module.state_dict(keep_vars=True).items()
        if not key.endswith("num_batches_tracked")
    }


@dataclass
class Record:
    """What one case computed. ``losses[s][k]``: module k's loss at step s; ``grad_norms[s][name]``;
    ``checksums[s][name]``: after step s (s = 0: initial)."""

    losses: list[list[float]] = field(default_factory=list)
    grad_norms: list[dict[str, float]] = field(default_factory=list)
    checksums: list[dict[str, list[float]]] = field(default_factory=list)
    initial_state: dict[str, torch.Tensor] = field(default_factory=dict)
    """Initial parameters and buffers (cloned), by name: what the reference script copies into the authors' model."""
    extra: dict[str, Any] = field(default_factory=dict)

    def snapshot(self, state: dict[str, torch.Tensor]) -> None:
        self.checksums.append({name: checksums(t) for name, t in state.items()})


# --- InfoPro through the method and the engine --------------------------------------------------------------------


class FixedBatchData:
    """The slice of ``DeviceData`` the engine and InfoPro use, serving one fixed batch ``steps`` times."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, steps: int, mean, std) -> None:
        self.x, self.y, self.steps = x, y, steps
        self.dataset = type("Stats", (), {"mean": tuple(mean), "std": tuple(std), "num_classes": NUM_CLASSES})()

    @property
    def train_size(self) -> int:
        return int(self.y.numel()) * self.steps

    def steps_per_epoch(self, batch_size: int, drop_last: bool = False) -> int:
        return self.steps

    def train_batches(self, batch_size: int, generator, **kwargs) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.steps):
            yield self.x, self.y


class _DeferringStep:
    """A LocalStep stand-in that collects deferred work, for engines whose LocalStep has no ``defer``."""

    def __init__(self, step) -> None:
        self._step = step
        self.deferred: list[Callable[[], tuple[torch.Tensor, torch.Tensor]]] = []

    def __getattr__(self, name: str):
        return getattr(self._step, name)

    def defer(self, fn) -> None:
        self.deferred.append(fn)


class RecordingInfoPro(InfoPro):
    """The InfoPro method, recording the heads it builds and the module losses it returns."""

    def __init__(
        self, record: Record, heads: dict[int, nn.Module], dtype: torch.dtype, *, engine_defer: bool = True
    ) -> None:
        self.record = record
        self.dtype = dtype
        self.heads = heads
        self.engine_defer = engine_defer
        """False: run the probe inside the local loss even when the engine offers ``LocalStep.defer``."""

    def make_head(self, run):
        factory = super().make_head(run)

        def make(k, shape):
            head = factory(k, shape).to(self.dtype)
            self.heads[k] = head
            self.record.initial_state.update(
                {n: t.detach().clone() for n, t in state_of({f"aux{k}": head}).items()}
            )
            return head

        return make

    def make_local_loss(self, run, weights):
        inner = super().make_local_loss(run, weights)

        def local_loss(step):
            if step.k == 0:
                self.record.losses.append([])
            if self.engine_defer and hasattr(step, "defer"):
                loss, logits = inner(step)
                self.record.losses[-1].append(loss.item())
                return loss, logits
            proxy = _DeferringStep(step)
            loss, logits = inner(proxy)
            self.record.losses[-1].append(loss.item())  # the module's loss, without the probe
            for fn in proxy.deferred:
                extra, extra_logits = fn()
                loss = loss + extra
                logits = extra_logits if logits is None else logits
            return loss, logits

        return local_loss


def _global_step_hooks(pre, post):
    return register_optimizer_step_pre_hook(pre), register_optimizer_step_post_hook(post)


def infopro_config(case: dict[str, Any], batch_size: int) -> RunConfig:
    hparams = dict(InfoPro.hparams)
    hparams.update({key: case[key] for key in ("loss_mode", "reconstruction_loss", "aux_init")})
    return RunConfig(
        method="infopro", arch="cifar_resnet32", data="cifar10", split=f"blocks:{case['k']}",
        schedule="simultaneous", aux="infopro", epochs=1, batch_size=batch_size, lr_schedule="constant",
        warmup_epochs=0, max_steps=case["steps"], seed=case["seed"], device="cpu", amp=False, hparams=hparams,
        **case["optim"],
    )


def run_infopro(
    case: dict[str, Any], images_u8: torch.Tensor, labels: torch.Tensor, *, engine_defer: bool = True
) -> tuple[Record, RunContext]:
    """Train ``cifar_resnet32`` with the infopro method for ``case['steps']`` steps on one batch; record it.

    ``record.extra['module_activation_bytes']``: the activation meter's count of each local step, in order.
    """
    norm = case["normalisation"]
    x, y = normalise(images_u8, norm["mean"], norm["std"], case["dtype"]), labels
    cfg = infopro_config(case, int(y.numel()))
    torch.manual_seed(cfg.seed)
    net = build_network(cfg, NUM_CLASSES, int(images_u8.shape[-1])).to(x.dtype)
    record = Record()
    record.initial_state.update({n: t.detach().clone() for n, t in state_of({"net": net}).items()})
    heads: dict[int, nn.Module] = {}
    names: dict[int, str] = {}
    data = FixedBatchData(x, y, case["steps"], norm["mean"], norm["std"])
    meter = Meter(torch.device("cpu"), exclude_params=list(net.parameters()))
    run = RunContext(cfg, net, data, torch.device("cpu"), meter, torch.Generator().manual_seed(cfg.seed))
    method = RecordingInfoPro(record, heads, x.dtype, engine_defer=engine_defer)
    activation_bytes = record.extra.setdefault("module_activation_bytes", [])
    last_param = net.head.fc.weight

    def all_state():
        return state_of({"net": net, **{f"aux{k}": h for k, h in sorted(heads.items())}})

    def pre(optimizer, args, kwargs):
        if not names:
            names.update({id(p): n for n, p in all_state().items()})
        activation_bytes.append(run.meter.counter.bytes)  # this module's forward and loss (the meter's count)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        while len(record.grad_norms) < len(record.losses):  # a new step began (module 0's loss was recorded)
            record.grad_norms.append({})
        for p in params:
            if p.grad is not None:
                record.grad_norms[-1][names[id(p)]] = p.grad.detach().double().norm().item()

    def post(optimizer, args, kwargs):
        if any(p is last_param for g in optimizer.param_groups for p in g["params"]):
            record.snapshot(all_state())  # the last module stepped: the whole network has taken the step

    handles = _global_step_hooks(pre, post)
    try:
        method.train(run)
    finally:
        for h in handles:
            h.remove()
    record.checksums.insert(0, {n: checksums(t) for n, t in record.initial_state.items()})
    return record, run


# --- one greedy module with a layerCNN / DGL head -----------------------------------------------------------------


def first_block(channels: int, bias: bool) -> nn.Sequential:
    """The first block of layerCNN's and DGL's CIFAR networks: conv3x3 (3 -> C, stride 1) + BN + ReLU."""
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=bias), nn.BatchNorm2d(channels), nn.ReLU())


def run_head(case: dict[str, Any], images_u8: torch.Tensor, labels: torch.Tensor) -> tuple[Record, nn.Module]:
    """Train the first block + our ``case['head']`` head with CE by SGD for ``case['steps']`` steps; record it."""
    norm = case["normalisation"]
    x, y = normalise(images_u8, norm["mean"], norm["std"], case["dtype"]), labels
    torch.manual_seed(case["seed"])
    c = case["channels"]
    block = first_block(c, case["block_conv_bias"]).to(x.dtype)
    head = build_head(case["head"], (c, *images_u8.shape[-2:]), NUM_CLASSES).to(x.dtype)
    model = nn.ModuleDict({"block": block, "head": head})
    record = Record()
    state = state_of({"block": block, "head": head})
    record.initial_state = {n: t.detach().clone() for n, t in state.items()}
    params = dict(model.named_parameters())
    cfg = RunConfig(optimizer="sgd", **case["optim"])
    optimizer = make_optimizer(list(params.values()), cfg)
    model.train()
    record.snapshot(state)
    for _ in range(case["steps"]):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(block(x)), y)
        loss.backward()
        record.losses.append([loss.item()])
        record.grad_norms.append(
            {n: p.grad.double().norm().item() for n, p in params.items() if p.grad is not None}
        )
        optimizer.step()
        record.snapshot(state)
    return record, model


def run_case(case: dict[str, Any], images_u8: torch.Tensor, labels: torch.Tensor) -> Record:
    if case["kind"] == "infopro":
        return run_infopro(case, images_u8, labels)[0]
    return run_head(case, images_u8, labels)[0]


# --- comparison ---------------------------------------------------------------------------------------------------

GRAD_FLOOR = 1e-9
"""Gradient norms below this fraction of the step's largest are rounding noise (see :func:`relative_differences`)."""


def relative_differences(record: Record, expected: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """Largest relative difference of ``record`` from the fixture ``expected``, per quantity, with where it is.

    Losses are compared relative to the expected value. Gradient norms too, with a floor of ``GRAD_FLOOR`` times
    the step's largest gradient norm: a gradient that is zero in exact arithmetic (the bias of a conv that feeds a
    training-mode BatchNorm, such as InfoPro's first decoder conv) holds only rounding noise, which is compared as
    zero. A checksum's sum is compared relative to the expected sum of absolute values (a sum of mixed signs can be
    near 0), the sum of squares relative to itself. Raises KeyError when the record lacks a name the fixture has.
    """
    worst = {"loss": (0.0, ""), "grad_norm": (0.0, ""), "checksum": (0.0, "")}

    def note(kind, got, want, scale, where):
        rel = abs(got - want) / max(abs(scale), 1e-30) if got != want else 0.0
        if rel > worst[kind][0] or (rel != rel):  # NaN counts as the worst
            worst[kind] = (rel, where)

    for s, (got, want) in enumerate(zip(record.losses, expected["losses"], strict=True)):
        for k, (g, w) in enumerate(zip(got, want, strict=True)):
            note("loss", g, w, w, f"step {s + 1}, module {k}")
    for s, want in enumerate(expected["grad_norms"]):
        floor = GRAD_FLOOR * max(want)
        for name, w in zip(expected["param_names"], want, strict=True):
            note("grad_norm", record.grad_norms[s][name], w, max(w, floor), f"step {s + 1}, {name}")
    for s, want in enumerate(expected["checksums"]):
        for name, (w_sum, w_sq, w_abs) in zip(expected["state_names"], want, strict=True):
            g_sum, g_sq, _ = record.checksums[s][name]
            note("checksum", g_sum, w_sum, w_abs, f"after step {s}, sum of {name}")
            note("checksum", g_sq, w_sq, w_sq, f"after step {s}, sum of squares of {name}")
    return worst
