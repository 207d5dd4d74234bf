"""Tests of the matrix-based Renyi entropy estimators in bench.info, against closed forms and a NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.info import (
    feature_entropy,
    gram_matrix,
    joint_entropy,
    joint_gram,
    kernel_width,
    label_gram,
    matrix_entropy,
    mutual_information,
    pairwise_sq_dists,
)

ALPHAS = [0.5, 1.0, 1.01, 2.0, 3.0]
F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _features(n: int = 12, shape: tuple[int, ...] = (3, 2, 2), seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *shape, generator=_gen(seed), dtype=F64)


def _random_gram(n: int = 10, d: int = 5, seed: int = 0) -> torch.Tensor:
    return gram_matrix(torch.randn(n, d, generator=_gen(seed), dtype=F64), "median")


# ----------------------------------------------------------------------------------------------------------------
# independent NumPy reference
# ----------------------------------------------------------------------------------------------------------------


def np_sqdists(x: np.ndarray) -> np.ndarray:
    f = x.reshape(x.shape[0], -1).astype(np.float64)
    diff = f[:, None, :] - f[None, :, :]
    return (diff**2).sum(axis=-1)


def np_width(x: np.ndarray, rule: str, k: int = 10) -> float:
    n = x.shape[0]
    dist = np.sqrt(np_sqdists(x))
    if rule == "median":
        return float(np.median(dist[np.triu_indices(n, 1)]))
    if rule == "knn":
        k = min(k, n - 1)
        others = np.array([np.sort(np.delete(dist[i], i)) for i in range(n)])
        return float(others[:, k - 1].mean())
    if rule == "silverman":
        f = x.reshape(n, -1)
        return float(1.06 * f.std(axis=0, ddof=1).mean() * n ** (-1.0 / (4 + f.shape[1])))
    raise AssertionError(rule)


def np_gram(x: np.ndarray, sigma: float) -> np.ndarray:
    k = np.exp(-np_sqdists(x) / (2 * sigma**2))
    return k / np.trace(k)


def np_entropy(a: np.ndarray, alpha: float) -> float:
    lam = np.clip(np.linalg.eigvalsh(a), 0, None)
    if abs(alpha - 1) < 1e-6:
        lam = lam[lam > 0]
        return float(-(lam * np.log2(lam)).sum())
    return float(np.log2((lam**alpha).sum()) / (1 - alpha))


def np_joint(a: np.ndarray, b: np.ndarray, alpha: float) -> float:
    h = a * b
    return np_entropy(h / np.trace(h), alpha)


# ----------------------------------------------------------------------------------------------------------------
# closed forms
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", [4, 16])
def test_uniform_spectrum_gives_log2_n(alpha: float, n: int) -> None:
    a = torch.eye(n, dtype=F64) / n
    assert matrix_entropy(a, alpha).item() == pytest.approx(math.log2(n), abs=1e-9)
    assert matrix_entropy(a, alpha, method="eig").item() == pytest.approx(math.log2(n), abs=1e-9)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_rank_one_gives_zero(alpha: float) -> None:
    a = torch.ones(8, 8, dtype=F64) / 8
    assert matrix_entropy(a, alpha).item() == pytest.approx(0.0, abs=1e-9)
    # an all-equal batch has a rank-one Gram matrix, whatever the width rule (the epsilon guard keeps it finite)
    x = torch.full((8, 5), 3.0, dtype=F64)
    for rule in ["median", "knn", "silverman", 1.0]:
        assert feature_entropy(x, alpha, rule).item() == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_alpha2_closed_form_equals_eigenvalue_path(seed: int) -> None:
    a = _random_gram(seed=seed)
    closed = matrix_entropy(a, 2.0, method="frobenius")
    assert matrix_entropy(a, 2.0).item() == closed.item()  # auto picks the closed form
    assert closed.item() == pytest.approx(matrix_entropy(a, 2.0, method="eig").item(), abs=1e-10)
    # integer orders via traces of matrix powers
    for alpha in (2.0, 3.0, 4.0):
        trace = matrix_entropy(a, alpha, method="trace").item()
        assert trace == pytest.approx(matrix_entropy(a, alpha, method="eig").item(), abs=1e-10)


def test_shannon_limit_is_continuous() -> None:
    a = _random_gram(seed=4)
    s1 = matrix_entropy(a, 1.0).item()
    assert matrix_entropy(a, 1.0 + 1e-7).item() == s1  # inside the tolerance: Shannon formula
    assert matrix_entropy(a, 1.0 + 1e-4).item() == pytest.approx(s1, abs=1e-3)
    assert matrix_entropy(a, 1.0 - 1e-4).item() == pytest.approx(s1, abs=1e-3)
    # Renyi entropies are non-increasing in alpha
    values = [matrix_entropy(a, al).item() for al in (0.5, 1.0, 1.01, 2.0, 3.0)]
    assert all(u >= v - 1e-12 for u, v in zip(values, values[1:], strict=False))


def test_method_validation() -> None:
    a = _random_gram()
    with pytest.raises(ValueError, match="alpha == 2"):
        matrix_entropy(a, 1.5, method="frobenius")
    with pytest.raises(ValueError, match="integer alpha"):
        matrix_entropy(a, 2.5, method="trace")
    with pytest.raises(ValueError, match="unknown entropy method"):
        matrix_entropy(a, 1.01, method="lanczos")
    with pytest.raises(ValueError, match="alpha"):
        matrix_entropy(a, 0.0)
    with pytest.raises(ValueError, match="n >= 2"):
        feature_entropy(torch.randn(1, 4))
    with pytest.raises(ValueError, match="unknown kernel width rule"):
        gram_matrix(torch.randn(4, 3), "scott")
    with pytest.raises(ValueError, match="positive"):
        gram_matrix(torch.randn(4, 3), -1.0)


# ----------------------------------------------------------------------------------------------------------------
# mutual information: identities, invariances, bounds
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.01, 2.0])
def test_self_information(alpha: float) -> None:
    # I(A;A) = S(A) exactly when A o A is proportional to A: 0/1 kernels such as the label Gram
    a = label_gram(torch.tensor([0, 1, 1, 2, 2, 2, 0, 3]), dtype=F64)
    assert mutual_information(a, a, alpha).item() == pytest.approx(matrix_entropy(a, alpha).item(), abs=1e-9)
    # for a Gaussian Gram, A o A renormalised is the Gram of width sigma / sqrt(2), so
    # I(A;A) = 2 S(A) - S(A_{sigma/sqrt 2}) <= S(A), not S(A)
    x = _features(seed=1)
    sigma = kernel_width(x)
    a = gram_matrix(x, sigma)
    narrow = matrix_entropy(gram_matrix(x, sigma / math.sqrt(2)), alpha).item()
    s = matrix_entropy(a, alpha).item()
    assert mutual_information(a, a, alpha).item() == pytest.approx(2 * s - narrow, abs=1e-9)
    assert 0 < mutual_information(a, a, alpha).item() < s


@pytest.mark.parametrize("alpha", [1.01, 2.0])
def test_permutation_invariance(alpha: float) -> None:
    x, y = _features(seed=2), _features(seed=3)
    perm = torch.randperm(x.shape[0], generator=_gen(0))
    s, sp = feature_entropy(x, alpha), feature_entropy(x[perm], alpha)
    assert sp.item() == pytest.approx(s.item(), abs=1e-10)
    a, b = gram_matrix(x), gram_matrix(y)
    ap, bp = a[perm][:, perm], b[perm][:, perm]
    assert torch.allclose(gram_matrix(x[perm]), ap, atol=1e-14)
    i, ip = mutual_information(a, b, alpha), mutual_information(ap, bp, alpha)
    assert ip.item() == pytest.approx(i.item(), abs=1e-10)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.01, 2.0, 3.0])
@pytest.mark.parametrize("seed", range(4))
def test_mutual_information_bounds(alpha: float, seed: int) -> None:
    g = _gen(seed)
    x = torch.randn(16, 6, generator=g, dtype=F64)
    y = x[:, :2] + 0.5 * torch.randn(16, 2, generator=g, dtype=F64)  # dependent on x
    z = torch.randn(16, 3, generator=g, dtype=F64)  # independent of x
    for b in (gram_matrix(y), gram_matrix(z, "knn")):
        a = gram_matrix(x)
        i = mutual_information(a, b, alpha).item()
        assert -1e-6 <= i <= min(matrix_entropy(a, alpha).item(), matrix_entropy(b, alpha).item()) + 1e-6


def test_joint_entropy_of_several_matrices() -> None:
    a, b, c = (_random_gram(seed=s) for s in (5, 6, 7))
    three = joint_entropy([a, b, c], alpha=1.01).item()
    assert three == pytest.approx(joint_entropy(joint_gram([a, b]), c, 1.01).item(), abs=1e-10)
    assert three >= joint_entropy(a, b, 1.01).item() - 1e-9
    h = joint_gram([a, b])
    assert torch.trace(h).item() == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# agreement with the NumPy reference
# ----------------------------------------------------------------------------------------------------------------


def test_pairwise_sq_dists_matches_numpy() -> None:
    x = _features(n=9, shape=(2, 3, 3), seed=8)
    d = pairwise_sq_dists(x)
    np.testing.assert_allclose(d.numpy(), np_sqdists(x.numpy()), rtol=1e-10, atol=1e-10)
    assert torch.equal(d, d.T) and torch.all(torch.diagonal(d) == 0) and torch.all(d >= 0)


def test_pairwise_sq_dists_is_accurate_with_a_large_offset_in_float32() -> None:
    # ||x||^2 ~ 6e7 here: without centring, ||a||^2 + ||b||^2 - 2ab cancels catastrophically in float32
    x = torch.randn(8, 64, generator=_gen(9)) + 1e3
    ref = np_sqdists(x.double().numpy())
    np.testing.assert_allclose(pairwise_sq_dists(x).double().numpy(), ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("rule", ["median", "knn", "silverman"])
@pytest.mark.parametrize("n", [7, 12])  # odd and even number of pairs for the median (21 and 66)
def test_width_rules_match_numpy(rule: str, n: int) -> None:
    x = _features(n=n, seed=10 + n)
    ref = np_width(x.numpy(), rule)
    assert kernel_width(x, rule).item() == pytest.approx(ref, rel=1e-10)
    if rule != "silverman":
        d = pairwise_sq_dists(x)
        assert kernel_width(d, rule, is_sqdists=True).item() == pytest.approx(ref, rel=1e-10)
    np.testing.assert_allclose(gram_matrix(x, rule).numpy(), np_gram(x.numpy(), ref), rtol=1e-10, atol=1e-14)


def test_knn_width_caps_k_and_uses_k() -> None:
    x = _features(n=6, seed=11)
    assert kernel_width(x, "knn", k=50).item() == pytest.approx(np_width(x.numpy(), "knn", k=5), rel=1e-10)
    assert kernel_width(x, "knn", k=2).item() == pytest.approx(np_width(x.numpy(), "knn", k=2), rel=1e-10)
    with pytest.raises(ValueError, match="silverman"):
        kernel_width(pairwise_sq_dists(x), "silverman", is_sqdists=True)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_entropy_joint_and_mi_match_numpy(alpha: float) -> None:
    x, y = _features(n=10, seed=12), _features(n=10, shape=(4,), seed=13)
    sx, sy = np_width(x.numpy(), "median"), np_width(y.numpy(), "knn")
    a_np, b_np = np_gram(x.numpy(), sx), np_gram(y.numpy(), sy)
    a, b = gram_matrix(x, "median"), gram_matrix(y, "knn")
    s_a, s_b, s_ab = np_entropy(a_np, alpha), np_entropy(b_np, alpha), np_joint(a_np, b_np, alpha)
    assert matrix_entropy(a, alpha).item() == pytest.approx(s_a, abs=1e-9)
    assert feature_entropy(x, alpha, "median").item() == pytest.approx(s_a, abs=1e-9)
    assert joint_entropy(a, b, alpha).item() == pytest.approx(s_ab, abs=1e-9)
    assert mutual_information(a, b, alpha).item() == pytest.approx(s_a + s_b - s_ab, abs=1e-9)


@pytest.mark.parametrize("alpha", [0.5, 1.01, 2.0])
def test_eig32_is_close_to_exact(alpha: float) -> None:
    x = torch.relu(torch.randn(64, 256, generator=_gen(14)))
    a = gram_matrix(x)
    exact = matrix_entropy(a, alpha, method="eig").item()
    assert matrix_entropy(a, alpha, method="eig32").item() == pytest.approx(exact, abs=1e-4)


# ----------------------------------------------------------------------------------------------------------------
# scale invariance and the collapse trap
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["median", "knn", "silverman"])
@pytest.mark.parametrize("c", [0.1, 10.0])
def test_scale_invariance_with_batch_width(rule: str, c: float) -> None:
    t = _features(n=16, seed=15)
    s = feature_entropy(t, 1.01, rule).item()
    assert feature_entropy(c * t, 1.01, rule).item() == pytest.approx(s, abs=1e-9)
    # detaching the width changes the gradient, not the value
    assert feature_entropy(c * t, 1.01, rule, detach_width=True).item() == pytest.approx(s, abs=1e-9)
    # a fixed width is not scale invariant
    assert abs(feature_entropy(c * t, 1.01, 3.0).item() - feature_entropy(t, 1.01, 3.0).item()) > 0.1


@pytest.mark.parametrize("alpha", [1.01, 2.0])
@pytest.mark.parametrize("rule", ["median", "knn", "silverman"])
def test_detached_width_rewards_shrinking_features(alpha: float, rule: str) -> None:
    # Silverman's width is far below the typical distance in more than a few dimensions (the entropy saturates
    # at log2 n and every gradient is tiny): use 1-d features for it
    t = _features(n=16, shape=(1,) if rule == "silverman" else (3, 2, 2), seed=16)
    scale = torch.ones((), dtype=F64, requires_grad=True)

    (g_invariant,) = torch.autograd.grad(feature_entropy(scale * t, alpha, rule), scale)
    (g_detached,) = torch.autograd.grad(feature_entropy(scale * t, alpha, rule, detach_width=True), scale)
    assert abs(g_invariant.item()) < 1e-8
    # entropy grows with the scale at a fixed width: gradient descent on it shrinks every feature (collapse)
    assert g_detached.item() > 0.05


# ----------------------------------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------------------------------


def _spd_unit_trace(n: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=_gen(seed), dtype=F64))
    lam = torch.linspace(1.0, 3.0, n, dtype=F64) ** 2  # distinct, well separated
    return (q * (lam / lam.sum())) @ q.T


@pytest.mark.parametrize(("alpha", "method"), [(0.5, "eig"), (1.0, "eig"), (1.01, "eig"), (2.0, "frobenius"),
                                                (2.0, "eig"), (3.0, "trace")])  # fmt: skip
def test_gradcheck_matrix_entropy(alpha: float, method: str) -> None:
    a = _spd_unit_trace(5, seed=17).requires_grad_()
    assert torch.autograd.gradcheck(lambda m: matrix_entropy(m, alpha, method=method), (a,))


def test_eig32_gradient_is_close_to_exact() -> None:
    # float32 eigenvalues are too coarse for finite differences: compare with the exact path's gradient instead
    x = torch.relu(torch.randn(32, 64, generator=_gen(25)))
    grads = []
    for method in ("eig", "eig32"):
        xx = x.clone().requires_grad_()
        feature_entropy(xx, 1.01, method=method).backward()
        grads.append(xx.grad)
    assert torch.linalg.norm(grads[1] - grads[0]) <= 1e-4 * torch.linalg.norm(grads[0])


@pytest.mark.parametrize("width", [1.5, "median", "knn", "silverman"])
@pytest.mark.parametrize("alpha", [1.01, 2.0])
def test_gradcheck_feature_entropy(width: float | str, alpha: float) -> None:
    # generic random points: the median / k-th neighbour is a single, isolated pair (differentiable there)
    x = torch.randn(7, 3, generator=_gen(18), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: feature_entropy(z, alpha, width, k=3), (x,))


def test_gradcheck_mutual_information() -> None:
    g = _gen(19)
    x = torch.randn(6, 3, generator=g, dtype=F64, requires_grad=True)
    y = torch.randn(6, 2, generator=g, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda u, v: mutual_information(gram_matrix(u), gram_matrix(v, 2.0), 1.01), (x, y)
    )


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.01, 2.0])
def test_gradients_stay_finite_in_degenerate_batches(alpha: float) -> None:
    # duplicated samples (zero distances), a dead (constant) dimension, a rank-deficient Gram matrix
    base = torch.randn(4, 5, generator=_gen(20), dtype=F64)
    x = torch.cat([base, base, base]).clone()
    x[:, 0] = 0.0
    for rule in ["median", "knn", "silverman"]:
        xx = x.clone().requires_grad_()
        feature_entropy(xx, alpha, rule, k=2).backward()
        assert torch.isfinite(xx.grad).all()
    # all-equal batch
    xx = torch.ones(6, 3, dtype=F64, requires_grad=True)
    feature_entropy(xx, alpha).backward()
    assert torch.isfinite(xx.grad).all()


# ----------------------------------------------------------------------------------------------------------------
# labels and dtypes
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.0, 1.01, 2.0])
def test_label_information_equals_label_entropy(alpha: float) -> None:
    y = torch.arange(16) % 4  # 4 balanced classes
    ay = label_gram(y, 4, dtype=F64)
    assert torch.trace(ay).item() == pytest.approx(1.0)
    assert matrix_entropy(ay, alpha).item() == pytest.approx(2.0, abs=1e-9)
    t = torch.nn.functional.one_hot(y, 4).to(F64)
    at = gram_matrix(t, 0.05)  # narrow kernel: the Gaussian Gram of one-hot features is the label Gram
    assert mutual_information(at, ay, alpha).item() == pytest.approx(2.0, abs=1e-9)
    assert mutual_information(label_gram(t), ay, alpha).item() == pytest.approx(2.0, abs=1e-9)


def test_label_entropy_of_unbalanced_classes() -> None:
    y = torch.tensor([0] * 8 + [1] * 4 + [2] * 2 + [3] * 2)
    p = np.array([8, 4, 2, 2]) / 16
    ay = label_gram(y[torch.randperm(16, generator=_gen(21))], num_classes=5, dtype=F64)
    assert matrix_entropy(ay, 1.0).item() == pytest.approx(float(-(p * np.log2(p)).sum()), abs=1e-9)  # 1.75
    assert matrix_entropy(ay, 2.0).item() == pytest.approx(float(-np.log2((p**2).sum())), abs=1e-9)
    with pytest.raises(ValueError, match="labels must lie"):
        label_gram(y, num_classes=3)


def test_float32_in_float32_out_and_image_shaped_input() -> None:
    x = torch.randn(8, 4, 3, 3, generator=_gen(22))
    s = feature_entropy(x, 1.01)
    assert s.dtype == torch.float32 and s.dim() == 0
    assert s.item() == pytest.approx(feature_entropy(x.double(), 1.01).item(), abs=1e-4)
    assert feature_entropy(x.half(), 2.0).dtype == torch.float32  # half features get a float32 kernel


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    x, y = _features(n=12, seed=23), _features(n=12, seed=24)
    for alpha in (1.0, 1.01, 2.0):
        for rule in ("median", "knn", "silverman"):
            cpu = feature_entropy(x, alpha, rule).item()
            assert feature_entropy(x.cuda(), alpha, rule).item() == pytest.approx(cpu, abs=1e-9)
        mi_cpu = mutual_information(gram_matrix(x), gram_matrix(y), alpha).item()
        mi_gpu = mutual_information(gram_matrix(x.cuda()), gram_matrix(y.cuda()), alpha).item()
        assert mi_gpu == pytest.approx(mi_cpu, abs=1e-9)
    xg = x.cuda().float().requires_grad_()
    feature_entropy(xg, 1.01, method="eig32").backward()
    assert xg.grad.is_cuda and torch.isfinite(xg.grad).all()


# ----------------------------------------------------------------------------------------------------------------
# the DIB reference code's kernel width
# ----------------------------------------------------------------------------------------------------------------


def dib_reference_gram(x: np.ndarray) -> np.ndarray:
    """yuxi120407/DIB transcribed: main.py ``train`` computes sigma from scipy's pdist/squareform (Euclidean),
    ``np.mean(np.mean(np.sort(k[:, :10], 1)))``; utils.py ``calculate_gram_mat`` is ``exp(-sqdist / sigma)``,
    normalised by its trace in ``reyi_entropy``."""
    f = x.reshape(x.shape[0], -1).astype(np.float64)
    k = np.sqrt(((f[:, None, :] - f[None, :, :]) ** 2).sum(-1))  # squareform(pdist(f, 'euclidean'))
    sigma = np.mean(np.mean(np.sort(k[:, :10], 1)))
    gram = np.exp(-(k**2) / sigma)
    return gram / np.trace(gram)


@pytest.mark.parametrize("n", [32, 6])  # n < 10: every column is used
def test_dib_width_gives_the_reference_codes_gram_matrix(n: int) -> None:
    x = _features(n=n, shape=(5, 2), seed=30)
    dist = np.sqrt(np_sqdists(x.numpy()))
    m = dist[:, : min(10, n)].mean()  # by hand: mean distance of each sample to the first 10 (self included)
    assert kernel_width(x, "dib").item() == pytest.approx(math.sqrt(m / 2), rel=1e-10)
    np.testing.assert_allclose(gram_matrix(x, "dib").numpy(), dib_reference_gram(x.numpy()), rtol=1e-9, atol=1e-14)
    # k sets how many leading samples; the rule is not homogeneous: sigma(c x) = sqrt(c) sigma(x)
    assert kernel_width(x, "dib", k=3).item() == pytest.approx(math.sqrt(dist[:, :3].mean() / 2), rel=1e-10)
    assert kernel_width(4.0 * x, "dib").item() == pytest.approx(2.0 * kernel_width(x, "dib").item(), rel=1e-10)


def test_gradcheck_feature_entropy_with_the_dib_width() -> None:
    x = torch.randn(12, 3, generator=_gen(31), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: feature_entropy(z, 1.01, "dib"), (x,))


# ----------------------------------------------------------------------------------------------------------------
# mixed precision: the estimators opt out of autocast
# ----------------------------------------------------------------------------------------------------------------


def test_estimators_run_in_full_precision_under_bf16_autocast() -> None:
    x = torch.relu(torch.randn(64, 512, generator=_gen(32))) + 2.0
    y = torch.arange(64) % 4
    plain_d = pairwise_sq_dists(x)
    plain_s = feature_entropy(x, 1.01, "median")
    plain_i = mutual_information(gram_matrix(x, "dib"), label_gram(y, dtype=torch.float32), 1.01)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = pairwise_sq_dists(x)
        s = feature_entropy(x, 1.01, "median")
        i = mutual_information(gram_matrix(x, "dib"), label_gram(y, dtype=torch.float32), 1.01)
        bf16_product = (x - x.mean(0)) @ (x - x.mean(0)).mT  # what autocast does to an unguarded product
    assert bf16_product.dtype == torch.bfloat16
    assert d.dtype == torch.float32 and torch.equal(d, plain_d)
    assert s.dtype == torch.float32 and s.item() == plain_s.item()
    assert i.item() == plain_i.item()
