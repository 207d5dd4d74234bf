#!/usr/bin/env python
"""Timing of the matrix-based Renyi entropy estimators (bench.info) at realistic batch and feature sizes.

For each batch size n it prints the median wall time in ms (over --repeats runs, after --warmup runs) of:

  gram          gram_matrix(x, "median")                       -- the (n x d) @ (d x n) product dominates on CPU
  eig           matrix_entropy(A, alpha, method="eig")          -- exact: eigvalsh in float64
  eig32         matrix_entropy(A, alpha, method="eig32")        -- eigvalsh in float32, trace-rescaled
  frob(a=2)     matrix_entropy(A, 2.0)                          -- closed form -log2 ||A||_F^2, no eigvalsh
  fb:*          feature_entropy(x, ...) forward + backward to the features (what a training step pays)
  err32         |S_eig32 - S_eig| in bits on that batch

Then, with --arch (default cifar_resnet20, 3 stages, 32x32 inputs) and --step-batch (default 128), the time of one
local training step of each module (forward of the module on its detached input, auxiliary head, loss, backward,
optimizer step) for greedy_ce and for greedydib with the exact entropy (alpha 1.01, eigvalsh), eig32 and the
alpha = 2 closed form, measured interleaved in one run, and the ratio greedydib / greedy_ce per module and summed.

The entropy-only columns run on a Gram matrix that requires grad, so the eigendecomposition computes the
eigenvectors as it does in training. Features are ReLU(N(0, 1)) of shape (n, C, H, W).

    .venv/bin/python scripts/bench_info.py                      # CPU-friendly defaults
    .venv/bin/python scripts/bench_info.py --device cuda --repeats 10 --batch-sizes 128 1024
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from bench.errors import BenchError
from bench.info import feature_entropy, gram_matrix, matrix_entropy
from bench.runner import resolve_device

STEP_VARIANTS = {
    "greedy_ce": None,
    "greedydib eig a=1.01": {"alpha": 1.01, "entropy_method": "eig"},
    "greedydib eig32 a=1.01": {"alpha": 1.01, "entropy_method": "eig32"},
    "greedydib frob a=2": {"alpha": 2.0, "entropy_method": "auto"},
}


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that wall time covers the work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], *, device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def forward_backward(x: torch.Tensor, alpha: float, method: str) -> Callable[[], None]:
    """A closure running feature_entropy forward and backward to a fresh leaf copy of ``x``."""

    def run() -> None:
        leaf = x.detach().requires_grad_()
        feature_entropy(leaf, alpha, "median", method=method).backward()

    return run


def bench_batch(
    n: int,
    shape: tuple[int, ...],
    *,
    alpha: float,
    device: torch.device,
    dtype: torch.dtype,
    repeats: int,
    warmup: int,
    seed: int = 0,
) -> dict[str, float]:
    """All timings (ms) and the eig32 error (bits) for one batch size."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(n, *shape, generator=gen)).to(device=device, dtype=dtype)
    timer = {"device": device, "repeats": repeats, "warmup": warmup}
    a = gram_matrix(x, "median").detach().requires_grad_()

    row: dict[str, float] = {"n": n}
    row["gram"] = time_ms(lambda: gram_matrix(x, "median"), **timer)
    row["eig"] = time_ms(lambda: matrix_entropy(a, alpha, method="eig"), **timer)
    row["eig32"] = time_ms(lambda: matrix_entropy(a, alpha, method="eig32"), **timer)
    row["frob(a=2)"] = time_ms(lambda: matrix_entropy(a, 2.0), **timer)
    row["fb:eig"] = time_ms(forward_backward(x, alpha, "eig"), **timer)
    row["fb:eig32"] = time_ms(forward_backward(x, alpha, "eig32"), **timer)
    row["fb:frob"] = time_ms(forward_backward(x, 2.0, "auto"), **timer)
    with torch.no_grad():
        exact = matrix_entropy(a.double(), alpha, method="eig").item()
        row["S_eig"] = exact
        row["err32"] = abs(matrix_entropy(a.double(), alpha, method="eig32").item() - exact)
    return row


def format_table(rows: list[dict[str, float]]) -> str:
    """Fixed-width text table: times with one decimal, entropies with 4, errors in scientific notation."""
    cols = list(rows[0])
    cells = []
    for row in rows:
        line = []
        for c in cols:
            v = row[c]
            if c == "n":
                line.append(str(int(v)))
            elif c == "err32":
                line.append(f"{v:.1e}")
            elif c == "S_eig":
                line.append(f"{v:.4f}")
            else:
                line.append(f"{v:.1f}")
        cells.append(line)
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    out = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    out += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def step_times(
    arch: str, batch: int, *, device: torch.device, repeats: int, warmup: int, gamma: float = 0.01
) -> tuple[list[str], dict[str, list[float]]]:
    """Median ms of one local step per module for each of STEP_VARIANTS, measured interleaved (round-robin)."""
    import torch.nn.functional as F

    from bench.engine import LocalStep
    from bench.heads import build_head
    from bench.methods.greedydib import GreedyDIB, dib_regularizer
    from bench.registry import ARCHITECTURES

    torch.manual_seed(0)
    net = ARCHITECTURES.get(arch)(num_classes=10, split="stages", image_size=32, cifar_stem=None).to(device)
    net.train()
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    with torch.no_grad():
        inputs = [x, *net.forward_features(x)[:-1]]
    heads = [
        build_head("conv", shape, 10, image_shape=(3, 32, 32)).to(device) if k < net.num_modules - 1 else net.head
        for k, shape in enumerate(net.feature_shapes)
    ]
    names = [f"module {k + 1}" for k in range(net.num_modules)]
    times: dict[str, list[list[float]]] = {v: [[] for _ in names] for v in STEP_VARIANTS}
    for k in range(net.num_modules):
        params = [*net.stages[k].parameters(), *heads[k].parameters()]
        opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)

        def step(hp, k=k, opt=opt):
            feats = net.stages[k](inputs[k])
            loss = F.cross_entropy(heads[k](feats), y)
            if hp is not None:
                ls = LocalStep(k, net.num_modules, x, y, inputs[k], feats, heads[k], k == net.num_modules - 1, None)
                loss = loss + gamma * dib_regularizer(ls, {**GreedyDIB.hparams, **hp})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(warmup):
            for hp in STEP_VARIANTS.values():
                step(hp)
        for _ in range(repeats):
            for variant, hp in STEP_VARIANTS.items():
                synchronize(device)
                start = time.perf_counter()
                step(hp)
                synchronize(device)
                times[variant][k].append((time.perf_counter() - start) * 1e3)
    return names, {v: [statistics.median(t) for t in per] for v, per in times.items()}


def format_steps(names: list[str], med: dict[str, list[float]]) -> str:
    base = med["greedy_ce"]
    head = f"{'variant':<24}" + "".join(f"{n:>12}" for n in names) + f"{'sum':>10}{'ratio':>8}"
    lines = [head]
    for variant, vals in med.items():
        ratio = sum(vals) / sum(base)
        lines.append(f"{variant:<24}" + "".join(f"{v:>12.1f}" for v in vals) + f"{sum(vals):>10.1f}{ratio:>8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--shape", type=int, nargs="+", default=[64, 16, 16], help="per-sample feature shape")
    parser.add_argument("--alpha", type=float, default=1.01, help="order of the non-closed-form entropies")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="feature dtype")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument("--arch", default="cifar_resnet20", help="network of the step-time comparison")
    parser.add_argument("--step-batch", type=int, default=128, help="batch of the step-time comparison (0: skip)")
    parser.add_argument("--step-repeats", type=int, default=20, help="timed steps per module and variant")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except BenchError as e:
        raise SystemExit(f"error: {e}") from None
    dtype = getattr(torch, args.dtype)
    shape = tuple(args.shape)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads"
    )
    dim = 1
    for s in shape:
        dim *= s
    print(
        f"bench.info timings, median ms of {args.repeats} (warm-up {args.warmup}); {where}; torch {torch.__version__}"
    )
    print(f"features ReLU(N(0,1)) {shape} = {dim} dims, {args.dtype}; alpha = {args.alpha}; width = median")
    rows = []
    for n in args.batch_sizes:
        rows.append(
            bench_batch(
                n,
                shape,
                alpha=args.alpha,
                device=device,
                dtype=dtype,
                repeats=args.repeats,
                warmup=args.warmup,
            )
        )
        print(f"  n = {n} done", flush=True)
    print(format_table(rows))
    if args.step_batch:
        names, med = step_times(args.arch, args.step_batch, device=device, repeats=args.step_repeats,
                                warmup=args.warmup)
        print()
        print(f"one local step, median ms of {args.step_repeats} (interleaved); {args.arch} in stages, "
              f"batch {args.step_batch}, gamma 0.01; ratio = sum / greedy_ce's sum")
        print(format_steps(names, med))


if __name__ == "__main__":
    main()
