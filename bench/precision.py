"""Mixed precision (bfloat16 autocast) and the channels-last memory format, on CPU and CUDA alike.

``amp`` and ``channels_last`` are tri-state settings (true | false | auto). ``auto`` turns bfloat16 autocast on where
the hardware computes in bfloat16 natively: a CUDA GPU with bf16 support, or a CPU with AMX (``amx_bf16``) or
AVX512-BF16 (``avx512_bf16``) instructions, where oneDNN runs bf16 convolutions and matrix products at up to twice
the fp32 rate. Elsewhere bf16 would be emulated (slower than fp32), so ``auto`` leaves it off; ``true`` forces it.
``channels_last: auto`` follows the resolved ``amp``: the bf16 convolution kernels of oneDNN and cuDNN work in the
NHWC layout, and converting the network and its input once avoids a layout conversion around every convolution.

Under autocast, parameters, gradients and optimizer state stay float32; convolutions and matrix products run in
bfloat16. Whatever must stay exact opts out explicitly: the matrix-based entropy estimators (``bench.info``) run
with autocast disabled in float32/float64, and InfoPro's reconstruction loss in float32.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from bench.config import AUTO

CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""``/proc/cpuinfo`` flags of x86 CPUs that compute in bfloat16 natively."""


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU has AMX or AVX512-BF16 (asked from torch, else read from ``/proc/cpuinfo``)."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    answers = []
    for probe in probes:
        if probe is None:
            continue
        try:
            answers.append(bool(probe()))
        except Exception:  # a private helper that changed its signature: fall back to the flags
            continue
    if any(answers):
        return True
    return bool(cpuinfo_flags() & set(CPU_BF16_FLAGS))


def cpuinfo_flags(path: str | Path = "/proc/cpuinfo") -> set[str]:
    """The feature flags of the first CPU listed in ``path`` (empty where the file does not exist)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (what ``amp: auto`` turns on)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def resolve_amp(value: bool | str, device: torch.device) -> bool:
    """The ``amp`` setting as it runs on ``device``: ``auto`` -> :func:`bf16_native`."""
    return bf16_native(device) if value == AUTO else bool(value)


def resolve_channels_last(value: bool | str, amp: bool) -> bool:
    """The ``channels_last`` setting as it runs: ``auto`` -> the resolved ``amp``."""
    return bool(amp) if value == AUTO else bool(value)


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on ``device`` when ``enabled``, a no-op context otherwise."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bool(enabled))


def full_precision(device_type: str):
    """A context with autocast disabled on ``device_type`` (for computations that must stay float32/64)."""
    return torch.autocast(device_type=device_type, enabled=False)
