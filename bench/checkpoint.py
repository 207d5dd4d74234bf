"""Checkpoints at the end of every epoch (and so of every module of a sequential schedule), and resuming from one.

A checkpoint holds what the engine needs to continue as if it had not stopped: the weights and buffers of the network
and of every auxiliary head, the optimizer and learning-rate schedule of the modules in training, the data generator's
state (the next epoch sees the same batches and augmentations), torch's global RNG state, the history so far and the
meter's counters. A resumed run ends with the same weights and metrics as an uninterrupted run of the same seed on
the same machine (time aside); ``tests/test_checkpoint.py`` kills a real run and checks it.

The file is ``<run folder>/checkpoint.pt``, written atomically (temporary file + rename) and read with
``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only. It carries the run id (config hash
and method identity), so a checkpoint of another config is never loaded, and it is removed once the result is written.
Checkpoints cover methods trained through ``bench.engine.train_local`` (every built-in method).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from bench.results import write_bytes_atomic

CHECKPOINT_FILENAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1


class Checkpointer:
    """Saves and loads the training state of one run (``run.checkpointer``; None when checkpointing is off)."""

    def __init__(self, run_dir: str | Path, run_id: str, *, resume: bool = False) -> None:
        self.path = Path(run_dir) / CHECKPOINT_FILENAME
        self.run_id = run_id
        self.resume_state: dict[str, Any] | None = self.load() if resume else None
        self.saved = 0

    def load(self) -> dict[str, Any] | None:
        """The saved state of this run, or None (no file, another run's, or unreadable: start from scratch)."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:  # truncated or foreign file: training starts again and the file is replaced
            return None
        if not isinstance(state, dict) or state.get("run_id") != self.run_id:
            return None
        return state if state.get("version") == CHECKPOINT_VERSION else None

    def save(self, state: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save({**state, "run_id": self.run_id, "version": CHECKPOINT_VERSION}, buffer)
        write_bytes_atomic(self.path, buffer.getvalue())
        self.saved += 1

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(generator: torch.Generator, state: dict[str, Any]) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


METER_FIELDS = ("peak_activation_bytes", "peak_trainable_state_bytes", "train_flops", "train_seconds",
                "images_trained")


def meter_state(meter) -> dict[str, Any]:
    return {name: getattr(meter, name) for name in METER_FIELDS}


def set_meter_state(meter, state: dict[str, Any]) -> None:
    for name in METER_FIELDS:
        setattr(meter, name, state[name])
