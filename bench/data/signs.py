"""``signs``: the built-in, generated traffic-sign dataset (GTSRB-like, no download needed).

Each class is a sign design: an outer shape (circle, triangle, inverted triangle, octagon, diamond, square)
with a border colour, a fill colour and a pictogram (bar, arrows, cross, seven-segment numbers, dot, ring...).
Every image shows one sign under a random pose (position, scale, rotation up to about 17 degrees, horizontal
squeeze as if seen at an angle), with colour fading and shading, on a cluttered background (two-colour
gradient, soft blobs, translucent rectangles), then brightness/contrast changes, blur and pixel noise. Several
classes differ only in the pictogram (30/50/80, left/right/ahead arrows), so the task is learnable but not
trivial; mirrored classes make horizontal flips label-changing (``hflip=False``).

Determinism: all randomness comes from numpy's PCG64 with a fixed internal seed (separate streams for train
and test, so the test split does not depend on ``train_size``), drawn with ``Generator.random`` only.
Per-pixel maths uses only IEEE-exact operations (+, -, *, /, sqrt, min/max, floor) element-wise -- no libm
transcendental functions, no reductions, no BLAS -- and rotations use the rational parametrisation
cos = (1 - t^2) / (1 + t^2), sin = 2t / (1 + t^2). The same parameters therefore give bit-identical tensors on
every machine (tests/test_data.py pins a digest).

Shapes and pictograms are drawn as signed distance functions with analytic antialiasing
(coverage = clip(0.5 - distance_in_pixels, 0, 1)), vectorised over chunks of images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.data._stats import channel_mean_std
from bench.data.base import ImageDataset
from bench.errors import ConfigError

SIGNS_VERSION = 1
"""Bump when the generator changes in a way that changes the images (results are then not comparable)."""
_SEED = 0x5167_4E53  # "SIGNS", fixed: the dataset is the same everywhere
_CHUNK = 512  # images rendered at once; fixed because the per-pixel noise is drawn chunk by chunk

_S2 = 0.7071067811865476  # sqrt(1/2)
_C30 = 0.8660254037844386  # cos(30 deg) = sqrt(3)/2
_C225, _S225 = 0.9238795325112867, 0.3826834323650898  # cos, sin of 22.5 deg

_COLOURS = {
    "red": (0.78, 0.09, 0.11),
    "blue": (0.07, 0.27, 0.70),
    "yellow": (0.97, 0.76, 0.07),
    "white": (0.93, 0.93, 0.91),
    "black": (0.07, 0.07, 0.08),
    "grey": (0.50, 0.50, 0.50),
}


@dataclass(frozen=True)
class SignClass:
    """One sign design."""

    name: str
    shape: str
    border: str
    fill: str
    pictogram: str
    ink: str


SIGN_CLASSES: tuple[SignClass, ...] = (
    SignClass("speed limit 30", "circle", "red", "white", "digits30", "black"),
    SignClass("speed limit 50", "circle", "red", "white", "digits50", "black"),
    SignClass("speed limit 80", "circle", "red", "white", "digits80", "black"),
    SignClass("no entry", "circle", "red", "red", "hbar", "white"),
    SignClass("general caution", "triangle", "red", "white", "exclamation", "black"),
    SignClass("yield", "inv_triangle", "red", "white", "none", "black"),
    SignClass("stop", "octagon", "white", "red", "text", "white"),
    SignClass("ahead only", "circle", "blue", "blue", "arrow_up", "white"),
    SignClass("turn right", "circle", "blue", "blue", "arrow_right", "white"),
    SignClass("turn left", "circle", "blue", "blue", "arrow_left", "white"),
    SignClass("priority road", "diamond", "white", "yellow", "none", "black"),
    SignClass("crossroads", "triangle", "red", "white", "cross", "black"),
    SignClass("no vehicles", "circle", "red", "white", "none", "black"),
    SignClass("end of limits", "circle", "grey", "white", "slashes", "black"),
    SignClass("parking", "square", "blue", "blue", "letter_p", "white"),
    SignClass("road narrows", "triangle", "red", "white", "two_bars", "black"),
    SignClass("one way", "square", "white", "blue", "arrow_up", "white"),
    SignClass("roundabout", "circle", "blue", "blue", "ring", "white"),
    SignClass("curve left", "triangle", "red", "white", "arrow_left", "black"),
    SignClass("no stopping zone", "diamond", "black", "white", "dot", "black"),
)
MAX_CLASSES = len(SIGN_CLASSES)

# Per shape: border width and the pictogram frame (scale, vertical offset), in shape units (radius 1).
_SHAPE_BORDER = {
    "circle": 0.20,
    "triangle": 0.17,
    "inv_triangle": 0.17,
    "octagon": 0.08,
    "diamond": 0.16,
    "square": 0.10,
}
_PICTO_FRAME = {
    "circle": (0.70, 0.0),
    "octagon": (0.74, 0.0),
    "square": (0.66, 0.0),
    "diamond": (0.42, 0.0),
    "triangle": (0.36, 0.30),
    "inv_triangle": (0.36, -0.30),
}


# ------------------------------------------------------------------------------------------ distance fields
def _box(u: np.ndarray, v: np.ndarray, cx: float, cy: float, hx: float, hy: float) -> np.ndarray:
    return np.maximum(np.abs(u - cx) - hx, np.abs(v - cy) - hy)


def _disk(u: np.ndarray, v: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    return np.sqrt((u - cx) * (u - cx) + (v - cy) * (v - cy)) - r


def _union(*fields: np.ndarray) -> np.ndarray:
    out = fields[0]
    for f in fields[1:]:
        out = np.minimum(out, f)
    return out


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Upward equilateral triangle, vertices (0, -0.75), (+-0.866, 0.75) (image y points down)."""
    w = v - 0.25
    return np.maximum(w, _C30 * np.abs(u) - 0.5 * w) - 0.5


_SHAPES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": lambda u, v: np.sqrt(u * u + v * v) - 1.0,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) - 0.85,
    "diamond": lambda u, v: (np.abs(u) + np.abs(v) - 1.0) * _S2,
    "octagon": lambda u, v: (
        np.maximum(np.maximum(np.abs(u), np.abs(v)), (np.abs(u) + np.abs(v)) * _S2) - 0.93
    ),
    "triangle": _triangle,
    "inv_triangle": lambda u, v: _triangle(u, -v),
}

_R8 = 0.93 / _C225
_VERTICES: dict[str, list[tuple[float, float]]] = {
    "square": [(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)],
    "diamond": [(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)],
    "octagon": [
        (sx * _R8 * a, sy * _R8 * b)
        for sx in (-1, 1)
        for sy in (-1, 1)
        for a, b in ((_C225, _S225), (_S225, _C225))
    ],
    "triangle": [(0.0, -0.75), (_C30, 0.75), (-_C30, 0.75)],
    "inv_triangle": [(0.0, 0.75), (_C30, -0.75), (-_C30, -0.75)],
}

# Seven-segment digits: segments a (top), b (top right), c (bottom right), d (bottom), e, f, g (middle).
_DIGIT_SEGMENTS = {"0": "abcdef", "3": "abcdg", "5": "afgcd", "8": "abcdefg", "P": "abfge"}


def _digit(u: np.ndarray, v: np.ndarray, ch: str, cx: float) -> np.ndarray:
    w, h, t = 0.22, 0.42, 0.075  # half width, half height, half stroke
    segs = {
        "a": (cx, -h, w, t),
        "d": (cx, h, w, t),
        "g": (cx, 0.0, w, t),
        "b": (cx + w, -h / 2, t, h / 2),
        "c": (cx + w, h / 2, t, h / 2),
        "f": (cx - w, -h / 2, t, h / 2),
        "e": (cx - w, h / 2, t, h / 2),
    }
    return _union(*(_box(u, v, *segs[s]) for s in _DIGIT_SEGMENTS[ch]))


def _arrow(u: np.ndarray, v: np.ndarray, direction: str) -> np.ndarray:
    """Arrow drawn pointing up, with the frame turned for other directions."""
    if direction == "right":
        u, v = v, -u
    elif direction == "left":
        u, v = v, u
    shaft = _box(u, v, 0.0, 0.2, 0.12, 0.42)
    # Head: apex (0, -0.72), base at v = -0.2 with half width 0.42; edge normals (0.52, -0.42) normalised.
    n = 1.0 / np.sqrt(0.52 * 0.52 + 0.42 * 0.42)
    head = np.maximum(v + 0.2, (0.52 * np.abs(u) - 0.42 * (v + 0.72)) * n)
    return np.minimum(shaft, head)


def _diag(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frame turned by 45 degrees."""
    return (u + v) * _S2, (u - v) * _S2


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.minimum(_box(a, b, 0.0, 0.0, 0.8, 0.13), _box(a, b, 0.0, 0.0, 0.13, 0.8))


_PICTOGRAMS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "none": lambda u, v: np.full_like(u, 10.0),
    "hbar": lambda u, v: _box(u, v, 0.0, 0.0, 0.78, 0.2),
    "exclamation": lambda u, v: np.minimum(_box(u, v, 0.0, -0.22, 0.13, 0.5), _disk(u, v, 0.0, 0.6, 0.16)),
    "text": lambda u, v: _union(*(_box(u, v, cx, 0.0, 0.08, 0.24) for cx in (-0.54, -0.18, 0.18, 0.54))),
    "arrow_up": lambda u, v: _arrow(u, v, "up"),
    "arrow_right": lambda u, v: _arrow(u, v, "right"),
    "arrow_left": lambda u, v: _arrow(u, v, "left"),
    "cross": lambda u, v: _cross(*_diag(u, v)),
    "slashes": lambda u, v: _union(*(_box(*_diag(u, -v), 0.0, o, 0.95, 0.06) for o in (-0.26, 0.0, 0.26))),
    "letter_p": lambda u, v: _digit(u, v, "P", 0.0),
    "two_bars": lambda u, v: np.minimum(_box(u, v, -0.3, 0.0, 0.12, 0.6), _box(u, v, 0.3, 0.0, 0.12, 0.6)),
    "ring": lambda u, v: np.abs(_disk(u, v, 0.0, 0.0, 0.5)) - 0.14,
    "dot": lambda u, v: _disk(u, v, 0.0, 0.0, 0.32),
    "digits30": lambda u, v: np.minimum(_digit(u, v, "3", -0.3), _digit(u, v, "0", 0.3)),
    "digits50": lambda u, v: np.minimum(_digit(u, v, "5", -0.3), _digit(u, v, "0", 0.3)),
    "digits80": lambda u, v: np.minimum(_digit(u, v, "8", -0.3), _digit(u, v, "0", 0.3)),
}


# ----------------------------------------------------------------------------------------------- generation
def _uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return (lo + (hi - lo) * rng.random(n)).astype(np.float32)


def _colour_table(names: list[str]) -> np.ndarray:
    return np.array([_COLOURS[c] for c in names], np.float32)


def _blur121(img: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur over the last two axes, edges replicated (fixed summation order)."""
    p = np.concatenate([img[..., :1, :], img, img[..., -1:, :]], axis=-2)
    img = (p[..., :-2, :] + 2.0 * p[..., 1:-1, :] + p[..., 2:, :]) * 0.25
    p = np.concatenate([img[..., :1], img, img[..., -1:]], axis=-1)
    return (p[..., :-2] + 2.0 * p[..., 1:-1] + p[..., 2:]) * 0.25


def _draw_params(rng: np.random.Generator, n: int, num_classes: int, size: int) -> dict[str, np.ndarray]:
    """Every per-image random parameter, drawn in a fixed order for the whole split."""
    s = float(size)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    t = _uniform(rng, -0.15, 0.15, n)  # tan(angle / 2): up to ~17 degrees
    p = {
        "labels": labels,
        "cos": ((1 - t * t) / (1 + t * t)).astype(np.float32),
        "sin": ((2 * t) / (1 + t * t)).astype(np.float32),
        "cx": s * (0.5 + _uniform(rng, -0.14, 0.14, n)),
        "cy": s * (0.5 + _uniform(rng, -0.14, 0.14, n)),
        "r": s * _uniform(rng, 0.24, 0.46, n),
        "ax": _uniform(rng, 0.78, 1.0, n),
        "ay": _uniform(rng, 0.92, 1.0, n),
        "fade": _uniform(rng, 0.7, 1.05, n),
        "tint": _uniform(rng, 0.9, 1.1, 3 * n).reshape(n, 3),
        "shade_u": _uniform(rng, -0.18, 0.18, n),
        "shade_v": _uniform(rng, -0.18, 0.18, n),
        # background: gradient between two colours, 5 soft blobs, 2 translucent rectangles
        "bg0": _uniform(rng, 0.05, 0.9, 3 * n).reshape(n, 3),
        "bg1": _uniform(rng, 0.05, 0.9, 3 * n).reshape(n, 3),
        "grey0": _uniform(rng, 0.2, 1.0, n),
        "grey1": _uniform(rng, 0.2, 1.0, n),
        "gx": _uniform(rng, -1.2, 1.2, n),
        "gy": _uniform(rng, -1.2, 1.2, n),
        "blob_x": s * _uniform(rng, -0.2, 1.2, 5 * n).reshape(n, 5),
        "blob_y": s * _uniform(rng, -0.2, 1.2, 5 * n).reshape(n, 5),
        "blob_r": s * _uniform(rng, 0.1, 0.55, 5 * n).reshape(n, 5),
        "blob_a": _uniform(rng, 0.2, 0.9, 5 * n).reshape(n, 5),
        "blob_c": _uniform(rng, 0.0, 1.0, 15 * n).reshape(n, 5, 3),
        "rect_x": s * _uniform(rng, 0.0, 1.0, 2 * n).reshape(n, 2),
        "rect_y": s * _uniform(rng, 0.0, 1.0, 2 * n).reshape(n, 2),
        "rect_w": s * _uniform(rng, 0.03, 0.5, 2 * n).reshape(n, 2),
        "rect_h": s * _uniform(rng, 0.03, 0.7, 2 * n).reshape(n, 2),
        "rect_a": _uniform(rng, 0.0, 0.8, 2 * n).reshape(n, 2),
        "rect_c": _uniform(rng, 0.0, 1.0, 6 * n).reshape(n, 2, 3),
        # photometric
        "contrast": _uniform(rng, 0.5, 1.15, n),
        "brightness": _uniform(rng, -0.22, 0.15, n),
        "blur": _uniform(rng, 0.0, 1.6, n),
        "noise": _uniform(rng, 0.0, 0.08, n),
    }
    return p


def _boxes(p: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Exact boxes (x1, y1, x2, y2) of the outer sign shapes in pixel coordinates, clipped to the image."""
    n = len(p["labels"])
    boxes = np.empty((n, 4), np.float32)
    shapes = np.array([SIGN_CLASSES[c].shape for c in p["labels"]])
    c, s, rx, ry = p["cos"], p["sin"], p["r"] * p["ax"], p["r"] * p["ay"]
    for shape in np.unique(shapes):
        i = shapes == shape
        if shape == "circle":  # ellipse with radii rx, ry rotated by the angle
            hx = np.sqrt(rx[i] * c[i] * rx[i] * c[i] + ry[i] * s[i] * ry[i] * s[i])
            hy = np.sqrt(rx[i] * s[i] * rx[i] * s[i] + ry[i] * c[i] * ry[i] * c[i])
            boxes[i] = np.stack([p["cx"][i] - hx, p["cy"][i] - hy, p["cx"][i] + hx, p["cy"][i] + hy], 1)
            continue
        q = np.array(_VERTICES[shape], np.float32)  # (k, 2)
        qu, qv = rx[i, None] * q[None, :, 0], ry[i, None] * q[None, :, 1]
        px = p["cx"][i, None] + c[i, None] * qu - s[i, None] * qv
        py = p["cy"][i, None] + s[i, None] * qu + c[i, None] * qv
        boxes[i] = np.stack([px.min(1), py.min(1), px.max(1), py.max(1)], 1)
    return np.clip(boxes, 0.0, float(size))


def _render_chunk(
    p: dict[str, np.ndarray], sl: slice, size: int, noise_rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 3, S, S) uint8 and sign coverage masks (n, S, S) float32 of the images ``sl``."""
    q = {k: v[sl] for k, v in p.items()}
    n = len(q["labels"])
    coords = np.arange(size, dtype=np.float32) + 0.5
    X, Y = coords[None, None, :], coords[None, :, None]  # (1, 1, S), (1, S, 1) pixel centres

    def col(a: np.ndarray) -> np.ndarray:  # (n, k) -> (n, k, 1, 1)
        return a[..., None, None]

    # Background: gradient between two partly desaturated colours.
    def desaturate(rgb: np.ndarray, keep: np.ndarray) -> np.ndarray:  # blend towards the grey of the colour
        grey = (rgb[:, 0] + rgb[:, 1] + rgb[:, 2]) * np.float32(1 / 3)
        return rgb * keep[:, None] + (grey * (1 - keep))[:, None]

    g0, g1 = desaturate(q["bg0"], q["grey0"]), desaturate(q["bg1"], q["grey1"])
    t = np.clip(
        col(q["gx"][:, None]) * (X / size - 0.5) + col(q["gy"][:, None]) * (Y / size - 0.5) + 0.5, 0, 1
    )
    img = col(g0) + (col(g1) - col(g0)) * t  # (n, 3, S, S)
    for k in range(q["blob_x"].shape[1]):  # soft blobs
        bx, by, br = (col(q[key][:, k : k + 1]) for key in ("blob_x", "blob_y", "blob_r"))
        d2 = (X - bx) * (X - bx) + (Y - by) * (Y - by)
        w = np.clip(1.0 - d2 / (br * br), 0.0, 1.0)
        w = w * w * col(q["blob_a"][:, k : k + 1])
        img = img + (col(q["blob_c"][:, k]) - img) * w
    for k in range(q["rect_x"].shape[1]):  # translucent rectangles (poles, walls)
        d = np.maximum(
            np.abs(X - col(q["rect_x"][:, k : k + 1])) - col(q["rect_w"][:, k : k + 1]) * 0.5,
            np.abs(Y - col(q["rect_y"][:, k : k + 1])) - col(q["rect_h"][:, k : k + 1]) * 0.5,
        )
        w = np.clip(0.5 - d, 0.0, 1.0) * col(q["rect_a"][:, k : k + 1])
        img = img + (col(q["rect_c"][:, k]) - img) * w

    # Sign frame coordinates (shape units, radius 1).
    cx, cy = col(q["cx"][:, None]), col(q["cy"][:, None])
    c, s = col(q["cos"][:, None]), col(q["sin"][:, None])
    rx, ry = col((q["r"] * q["ax"])[:, None]), col((q["r"] * q["ay"])[:, None])
    dx, dy = X - cx, Y - cy
    u = ((c * dx + s * dy) / rx)[:, 0]  # (n, S, S)
    v = ((c * dy - s * dx) / ry)[:, 0]
    px_per_unit = (q["r"] * np.minimum(q["ax"], q["ay"]))[:, None, None]

    outer = np.empty((n, size, size), np.float32)
    inner = np.empty_like(outer)
    picto = np.empty_like(outer)
    border_c = np.empty((n, 3), np.float32)
    fill_c = np.empty_like(border_c)
    ink_c = np.empty_like(border_c)
    for label in np.unique(q["labels"]):
        i = q["labels"] == label
        sc = SIGN_CLASSES[label]
        ui, vi = u[i], v[i]
        sdf = _SHAPES[sc.shape](ui, vi)
        outer[i] = sdf
        inner[i] = sdf + _SHAPE_BORDER[sc.shape]
        scale, dv = _PICTO_FRAME[sc.shape]
        picto[i] = _PICTOGRAMS[sc.pictogram](ui / scale, (vi - dv) / scale) * scale
        border_c[i], fill_c[i], ink_c[i] = _colour_table([sc.border, sc.fill, sc.ink])
    a_out = np.clip(0.5 - outer * px_per_unit, 0.0, 1.0)
    a_in = np.clip(0.5 - inner * px_per_unit, 0.0, 1.0)
    a_p = np.clip(0.5 - picto * px_per_unit, 0.0, 1.0) * a_in

    tint = q["tint"] * q["fade"][:, None]
    sign = col(border_c * tint) + col((fill_c - border_c) * tint) * a_in[:, None]
    sign = sign + (col(ink_c * tint) - sign) * a_p[:, None]
    shade = 1.0 + col(q["shade_u"][:, None]) * u[:, None] + col(q["shade_v"][:, None]) * v[:, None]
    img = img + (sign * shade - img) * a_out[:, None]

    # Photometric: contrast/brightness, blur, noise, quantisation.
    img = (img - 0.5) * col(q["contrast"][:, None]) + 0.5 + col(q["brightness"][:, None])
    blur = q["blur"]
    img = img + (_blur121(img) - img) * col(np.minimum(blur, 1.0)[:, None])
    img = img + (_blur121(img) - img) * col(np.maximum(blur - 1.0, 0.0)[:, None])
    r1 = noise_rng.random((n, 3, size, size), dtype=np.float32)
    r2 = noise_rng.random((n, 3, size, size), dtype=np.float32)
    img = img + (r1 + r2 - 1.0) * col(q["noise"][:, None])
    out = np.floor(np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return out, a_out


def generate_signs(
    n: int, *, num_classes: int = 10, image_size: int = 32, split: str = "train", return_masks: bool = False
) -> dict[str, np.ndarray]:
    """Render ``n`` sign images deterministically.

    Returns a dict with ``images`` uint8 (n, 3, S, S), ``labels`` int64 (n,) (balanced: every class appears
    ``n // num_classes`` or one more times), ``boxes`` float32 (n, 4) and, with ``return_masks``, ``masks``
    float32 (n, S, S): the sign's coverage of each pixel. ``split`` ("train" or "test") selects the random
    stream.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    seq = np.random.SeedSequence([_SEED, SIGNS_VERSION, 0 if split == "train" else 1])
    param_seed, noise_seed = seq.spawn(2)
    params = _draw_params(np.random.Generator(np.random.PCG64(param_seed)), n, num_classes, image_size)
    noise_rng = np.random.Generator(np.random.PCG64(noise_seed))
    images = np.empty((n, 3, image_size, image_size), np.uint8)
    masks = np.empty((n, image_size, image_size), np.float32) if return_masks else None
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        images[sl], m = _render_chunk(params, sl, image_size, noise_rng)
        if masks is not None:
            masks[sl] = m
    out = {"images": images, "labels": params["labels"], "boxes": _boxes(params, image_size)}
    if masks is not None:
        out["masks"] = masks
    return out


def load_signs(
    root: str | Path | None = None,
    *,
    allow_subset: bool = False,
    download: bool = False,
    num_classes: int = 10,
    train_size: int = 5000,
    test_size: int = 1000,
    image_size: int = 32,
    **options: Any,
) -> ImageDataset:
    """The generated ``signs`` dataset (see the module docstring); ``root``, ``allow_subset``, ``download``
    are unused.

    Args:
        num_classes: number of sign designs, 2..20 (the first ``num_classes`` of :data:`SIGN_CLASSES`).
        train_size, test_size: number of images per split (balanced over the classes).
        image_size: side of the square images, 16..128.
    """
    del root, allow_subset, download  # nothing to read or fetch
    if options:
        raise ConfigError(
            f"unknown option(s) {', '.join(sorted(options))} for dataset signs "
            "(accepted: num_classes, train_size, test_size, image_size)"
        )
    checks = (
        ("num_classes", num_classes, 2, MAX_CLASSES),
        ("train_size", train_size, num_classes, 1_000_000),
        ("test_size", test_size, num_classes, 1_000_000),
        ("image_size", image_size, 16, 128),
    )
    for key, value, lo, hi in checks:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(f"signs option {key} must be an integer in {lo}..{hi}, not {value!r}")
    train = generate_signs(train_size, num_classes=num_classes, image_size=image_size, split="train")
    test = generate_signs(test_size, num_classes=num_classes, image_size=image_size, split="test")
    mean, std = channel_mean_std(train["images"])
    return ImageDataset(
        name="signs",
        num_classes=num_classes,
        train_images=torch.from_numpy(train["images"]),
        train_labels=torch.from_numpy(train["labels"]),
        test_images=torch.from_numpy(test["images"]),
        test_labels=torch.from_numpy(test["labels"]),
        mean=mean,
        std=std,
        hflip=False,
        class_names=[c.name for c in SIGN_CLASSES[:num_classes]],
        train_boxes=torch.from_numpy(train["boxes"]),
        test_boxes=torch.from_numpy(test["boxes"]),
        source=f"generated (signs v{SIGNS_VERSION})",
        is_subset=False,
    )
