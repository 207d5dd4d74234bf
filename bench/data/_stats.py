"""Small helpers shared by the dataset loaders."""

from __future__ import annotations

import numpy as np


def channel_mean_std(images: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and std (in [0, 1] units) of uint8 images (N, 3, H, W).

    Sums are exact 64-bit integer sums, so the result does not depend on the machine's summation order.
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected uint8 images (N, 3, H, W), got {images.dtype} {images.shape}")
    n_pix = images.shape[0] * images.shape[2] * images.shape[3]
    if n_pix == 0:
        raise ValueError("cannot compute mean/std of an empty image set")
    s1 = images.sum(axis=(0, 2, 3), dtype=np.int64)
    s2 = np.einsum("nchw,nchw->c", images, images, dtype=np.int64)
    mean = s1.astype(np.float64) / n_pix
    var = np.maximum(s2.astype(np.float64) / n_pix - mean**2, 0.0)
    m, s = mean / 255.0, np.sqrt(var) / 255.0
    return (float(m[0]), float(m[1]), float(m[2])), (float(s[0]), float(s[1]), float(s[2]))
