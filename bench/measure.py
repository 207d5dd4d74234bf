"""Measurement shared by every run: saved-activation bytes, trainable-state bytes, FLOPs, time, GPU memory.

- Peak activation bytes: the bytes of tensors autograd saves for backward during one local step, counted with
  ``torch.autograd.graph.saved_tensors_hooks``, each storage once, parameters excluded. It depends only on the
  network, the batch and the method, not on the device or allocator, so CPU and GPU runs report the same number.
- Peak trainable-state bytes: parameters, gradients and optimizer state of what is being trained at that moment.
- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on the first step of each training phase (forward, loss and
  backward of everything the step runs, frozen prefix included), scaled by the images each phase processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def storage_key(t: torch.Tensor) -> tuple[str, int]:
    storage = t.untyped_storage()
    return (str(t.device), storage.data_ptr())


def tensor_storage_bytes(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes()


class SavedTensorCounter:
    """Counts the bytes autograd saves for backward inside ``counting()``, each storage once.

    Parameters (anything whose storage is in ``exclude``) are not activations and are not counted.
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self.excluded = {storage_key(p) for p in exclude}
        self.seen: set[tuple[str, int]] = set()
        self.bytes = 0

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        if t.layout == torch.strided and t.device.type != "meta":
            key = storage_key(t)
            if key not in self.excluded and key not in self.seen:
                self.seen.add(key)
                self.bytes += tensor_storage_bytes(t)
        return t

    @contextmanager
    def counting(self) -> Iterator[SavedTensorCounter]:
        self.seen.clear()
        self.bytes = 0
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield self


def saved_activation_bytes(fn, exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes saved for backward while ``fn()`` runs (a forward pass). Convenience for tests and scripts."""
    counter = SavedTensorCounter(exclude)
    with counter.counting():
        fn()
    return counter.bytes


def trainable_state_bytes(modules: Iterable[nn.Module], optimizers: Iterable[torch.optim.Optimizer]) -> int:
    """Bytes of trainable parameters, their gradients and the optimizers' state tensors."""
    total = 0
    seen: set[tuple[str, int]] = set()
    for module in modules:
        for p in module.parameters():
            if not p.requires_grad:
                continue
            for t in (p, p.grad):
                if t is not None and storage_key(t) not in seen:
                    seen.add(storage_key(t))
                    total += tensor_storage_bytes(t)
    for opt in optimizers:
        for state in opt.state.values():
            for v in state.values():
                if torch.is_tensor(v) and v.numel() > 1 and storage_key(v) not in seen:
                    seen.add(storage_key(v))
                    total += tensor_storage_bytes(v)
    return total


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Meter:
    """Collects the measurements of one run; the engine feeds it, the runner reads ``metrics()``."""

    def __init__(self, device: torch.device, exclude_params: Iterable[torch.Tensor] = ()) -> None:
        self.device = device
        self.counter = SavedTensorCounter(exclude_params)
        self.peak_activation_bytes = 0
        self.peak_trainable_state_bytes = 0
        self.train_flops = 0.0
        self.train_seconds = 0.0
        self.images_trained = 0
        """Images passed through a trained module (a sequential schedule passes each image once per module)."""
        self._t0: float | None = None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def exclude(self, params: Iterable[torch.Tensor]) -> None:
        self.counter.excluded.update(storage_key(p) for p in params)

    @contextmanager
    def activations(self) -> Iterator[None]:
        """Wrap the forward and loss of one local step."""
        with self.counter.counting():
            yield
        self.peak_activation_bytes = max(self.peak_activation_bytes, self.counter.bytes)

    def record_trainable_state(self, modules: Iterable[nn.Module], optimizers: Iterable[torch.optim.Optimizer]):
        self.peak_trainable_state_bytes = max(
            self.peak_trainable_state_bytes, trainable_state_bytes(modules, optimizers)
        )

    @contextmanager
    def count_flops(self, enabled: bool = True) -> Iterator[FlopCounterMode | None]:
        if not enabled:
            yield None
            return
        with FlopCounterMode(display=False) as mode:
            yield mode

    def start(self) -> None:
        synchronize(self.device)
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        synchronize(self.device)
        if self._t0 is not None:
            self.train_seconds += time.perf_counter() - self._t0
            self._t0 = None

    def metrics(self) -> dict:
        peak_gpu = None
        if self.device.type == "cuda":
            peak_gpu = int(torch.cuda.max_memory_allocated(self.device))
        return {
            "train_seconds": round(self.train_seconds, 3),
            "train_images_per_second": round(self.images_trained / self.train_seconds, 2)
            if self.train_seconds > 0
            else None,
            "peak_activation_bytes": int(self.peak_activation_bytes),
            "peak_trainable_state_bytes": int(self.peak_trainable_state_bytes),
            "peak_gpu_bytes": peak_gpu,
            "train_flops": float(self.train_flops),
        }
