"""Auxiliary heads and InfoPro loss helpers (bench/heads.py): shapes, gradients, exact weights, a tiny fit."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bench.errors import ConfigError
from bench.heads import (
    HEADS,
    INFOPRO_DEFAULTS,
    InfoProHead,
    build_head,
    infopro_lambdas,
    infopro_local_loss,
    infopro_published_weights,
    infopro_reconstruction_loss,
    supervised_contrastive_loss,
)

SHAPES = [(16, 32, 32), (64, 8, 8), (512, 1, 1), (40, 3, 5), (24, 2, 2)]
NAMES = ["conv", "mlp_sr", "infopro", "linear"]
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def small_options(name: str, shape) -> dict:
    """Keep the 512-channel MLP-SR small (its authors' width 4C = 2048 is slow on 2 CPU cores)."""
    return {"mlp_width": 64} if name == "mlp_sr" and shape[0] >= 256 else {}


def test_registry_lists_the_four_heads():
    assert set(HEADS) == set(NAMES)
    for builder, description in HEADS.values():
        assert callable(builder) and isinstance(description, str) and description


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_logits_shape_and_gradient_to_features(name, shape):
    torch.manual_seed(0)
    head = build_head(name, shape, 7, image_shape=(3, 16, 12), **small_options(name, shape))
    t = torch.randn(4, *shape, requires_grad=True)
    logits = head(t)
    assert logits.shape == (4, 7)
    logits.square().sum().backward()
    assert t.grad is not None and t.grad.abs().sum() > 0
    head.eval()
    with torch.no_grad():
        assert head(t[:1]).shape == (1, 7)


def test_wide_timm_channels_with_narrower_options():
    """2048 channels at 1x1 (a ResNet-50 stage at 32x32 input); the options shrink the authors' widths."""
    options = {"conv": {"width": 64}, "mlp_sr": {"mlp_width": 64}, "infopro": {"widen": 0.125}, "linear": {}}
    t = torch.randn(2, 2048, 1, 1, requires_grad=True)
    for name, opts in options.items():
        head = build_head(name, (2048, 1, 1), 10, **opts)
        assert head(t).shape == (2, 10)
    assert head.classifier.in_features == 2048


def test_authors_structures_at_cifar_shapes():
    # layerCNN: 128 channels @ 32x32 -> 2 convs of width 128, pooled to 2x2 -> Linear(512 -> 10).
    conv = build_head("conv", (128, 32, 32), 10)
    convs = [m for m in conv.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(128, 128, (3, 3))] * 2
    assert conv.classifier.in_features == 128 * 4
    # DGL MLP-SR: 32x32 -> 8x8 first, three 1x1 convs, MLP of width 4C, 3 hidden layers + output.
    mlp = build_head("mlp_sr", (128, 32, 32), 10)
    assert mlp.reduced_size == (8, 8)
    convs = [m for m in mlp.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(128, 128, (1, 1))] * 3
    linears = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 512)] * 3 + [(512, 10)]
    # InfoPro 1c2f: 16 -> 32 (stride 2), 32 -> 64 (stride 2), 64 -> 64 (stride 1); fc 128 hidden.
    for c, out, stride in [(16, 32, 2), (32, 64, 2), (64, 64, 1)]:
        head = build_head("infopro", (c, 32, 32), 10)
        conv0 = head.classifier[0]
        assert (conv0.in_channels, conv0.out_channels, conv0.stride) == (c, out, (stride, stride))
        assert head.classifier[-3].out_features == 128 and head.projector[-1].out_features == 128
        dec = [m for m in head.decoder if isinstance(m, torch.nn.Conv2d)]
        assert [(m.in_channels, m.out_channels) for m in dec] == [(c, 12), (12, 3)]
    assert build_head("infopro", (16, 32, 32), 10, loss_mode="cross_entropy").projector is None


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_infopro_decoder_reconstructs_image_shape(shape):
    head = build_head("infopro", shape, 10, image_shape=(3, 32, 24))
    t = torch.randn(2, *shape, requires_grad=True)
    assert head.reconstruct(t).shape == (2, 3, 32, 24)
    z = head.project(t)
    assert z.shape == (2, 128)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(2))


def test_reconstruction_loss_is_bce_against_unnormalised_image():
    torch.manual_seed(0)
    head = InfoProHead((8, 4, 4), 10, image_shape=(3, 8, 8))
    images = torch.rand(3, 3, 8, 8)
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    x = (images - mean) / std
    t = torch.randn(3, 8, 4, 4, requires_grad=True)
    loss = infopro_reconstruction_loss(head, t, x, CIFAR_MEAN, CIFAR_STD)
    # the default is the authors' decoder: Sigmoid, then nn.BCELoss against the un-normalised image
    expected = torch.nn.BCELoss()(torch.sigmoid(head.reconstruct(t)), images)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    # "exact" is the cross-entropy of the logits (the same values off saturation; tests/test_parity.py: at it)
    exact = infopro_reconstruction_loss(head, t, x, CIFAR_MEAN, CIFAR_STD, mode="exact")
    torch.testing.assert_close(exact, F.binary_cross_entropy_with_logits(head.reconstruct(t), images),
                               rtol=1e-5, atol=1e-6)
    loss.backward()
    assert t.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="0..255"):
        infopro_reconstruction_loss(head, t, x, [v * 255 for v in CIFAR_MEAN], [v * 255 for v in CIFAR_STD])


def test_infopro_lambdas_authors_defaults():
    w = INFOPRO_DEFAULTS["cifar10"]
    # K = 2 (ResNet-32: ixx_1=5, ixy_1=1): one local module, ratio 0 -> the first-module weights; then plain
    # CE.
    assert infopro_lambdas(0, 2, **w["resnet32"][2]) == (5.0, 1.0)
    assert infopro_lambdas(1, 2, **w["resnet32"][2]) == (0.0, 1.0)
    # K = 4 (ResNet-32: ixx 6 -> 1, ixy 0 -> 2): ratio = k / 2 for k = 0, 1, 2.
    got = [infopro_lambdas(k, 4, **w["resnet32"][4]) for k in range(4)]
    assert got == [(6.0, 0.0), (3.5, 1.0), (1.0, 2.0), (0.0, 1.0)]
    # K = 4 (ResNet-110: ixx 1 -> 0, ixy 0 -> 1).
    got = [infopro_lambdas(k, 4, **w["resnet110"][4]) for k in range(3)]
    assert got == [(1.0, 0.0), (0.5, 0.5), (0.0, 1.0)]
    # K = 16 (ResNet-32: ixx 5 -> 0.2, ixy 0.05 -> 0.5), module 7: ratio 7/14 = 0.5.
    lam = infopro_lambdas(7, 16, **w["resnet32"][16])
    assert lam == pytest.approx((2.6, 0.275))
    expected = {"ixx_1": 5.0, "ixy_1": 0.0, "ixx_2": 0.0, "ixy_2": 1.0}
    assert infopro_published_weights("cifar_resnet110", 8) == expected
    with pytest.raises(ConfigError, match="K=3"):
        infopro_published_weights("resnet32", 3)
    with pytest.raises(ConfigError):
        infopro_lambdas(4, 4, 1, 1, 1, 1)


def _supcon_by_loops(z, y, temperature):
    """An independent per-anchor statement of the SupCon loss (Khosla et al. 2020, eq. 2), to cross-check."""
    z = F.normalize(z, dim=1)
    n, terms = len(y), []
    for i in range(n):
        others = [a for a in range(n) if a != i]
        log_den = torch.logsumexp(torch.stack([z[i] @ z[a] / temperature for a in others]), 0)
        pos = [p for p in others if y[p] == y[i]]
        total = sum((z[i] @ z[p] / temperature - log_den for p in pos), torch.tensor(0.0))
        terms.append(total / max(1, len(pos)))
    return -torch.stack(terms).mean()


def test_supervised_contrastive_loss():
    torch.manual_seed(0)
    y = torch.arange(32) % 4
    centers = F.normalize(torch.randn(4, 16), dim=1)
    clustered = centers[y] + 0.05 * torch.randn(32, 16)
    random = torch.randn(32, 16)
    assert supervised_contrastive_loss(clustered, y) < supervised_contrastive_loss(random, y) - 1.0
    y_odd = torch.tensor([0, 0, 1, 2, 2, 3])  # 1 and 3 have no positive: they count as 0 in the mean
    z = torch.randn(6, 5)
    torch.testing.assert_close(supervised_contrastive_loss(z, y_odd, 0.5, base_temperature=0.5),
                               _supcon_by_loops(z, y_odd, 0.5))
    torch.testing.assert_close(supervised_contrastive_loss(z, y_odd), _supcon_by_loops(z, y_odd, 0.07))
    z.requires_grad_(True)
    supervised_contrastive_loss(z, y_odd).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("loss_mode", ["contrast", "cross_entropy"])
def test_infopro_local_loss(loss_mode):
    torch.manual_seed(0)
    head = build_head("infopro", (16, 8, 8), 5, image_shape=(3, 16, 16), loss_mode=loss_mode)
    t = torch.randn(8, 16, 8, 8, requires_grad=True)
    x, y = torch.randn(8, 3, 16, 16).clamp(-1.5, 1.5), torch.arange(8) % 5
    loss, logits = infopro_local_loss(head, t, x, y, CIFAR_MEAN, CIFAR_STD, 2.0, 0.5)
    assert logits.shape == (8, 5) and math.isfinite(loss.item())
    loss.backward()
    assert t.grad.abs().sum() > 0
    # With both weights zero the module gets no gradient (the contrast-mode probe reads detached features).
    t.grad = None
    loss, _ = infopro_local_loss(head, t, x, y, CIFAR_MEAN, CIFAR_STD, 0.0, 0.0)
    loss.backward()
    assert t.grad is None or t.grad.abs().sum() == 0


def test_infopro_probe_is_deferred_when_the_step_offers_it():
    torch.manual_seed(0)
    head = build_head("infopro", (16, 8, 8), 5, image_shape=(3, 16, 16))
    t = torch.randn(8, 16, 8, 8, requires_grad=True)
    x, y = torch.randn(8, 3, 16, 16).clamp(-1.5, 1.5), torch.arange(8) % 5
    inline, logits = infopro_local_loss(head, t, x, y, CIFAR_MEAN, CIFAR_STD, 2.0, 0.5)
    deferred = []
    loss, none = infopro_local_loss(head, t, x, y, CIFAR_MEAN, CIFAR_STD, 2.0, 0.5, defer=deferred.append)
    assert none is None and len(deferred) == 1
    probe_loss, probe_logits = deferred[0]()
    # the module's loss is the authors' (no probe); the probe's CE is what the inline form added
    torch.testing.assert_close(loss + probe_loss, inline)
    torch.testing.assert_close(probe_logits, logits)
    probe_loss.backward()  # the probe trains only the probe
    assert t.grad is None
    assert all(p.grad is None for p in [*head.decoder.parameters(), *head.projector.parameters()])
    assert all(p.grad is not None for p in head.classifier.parameters())
    # cross-entropy mode has no probe: nothing is deferred
    head = build_head("infopro", (16, 8, 8), 5, image_shape=(3, 16, 16), loss_mode="cross_entropy")
    _, logits = infopro_local_loss(head, t, x, y, CIFAR_MEAN, CIFAR_STD, 2.0, 0.5, defer=deferred.append)
    assert logits is not None and len(deferred) == 1


@pytest.mark.parametrize("mode", ["authors", "exact"])
def test_infopro_local_loss_under_autocast(mode):
    head = build_head("infopro", (16, 8, 8), 5, image_shape=(3, 16, 16))
    t = torch.randn(8, 16, 8, 8, requires_grad=True)
    x, y = torch.randn(8, 3, 16, 16).clamp(-1.5, 1.5), torch.arange(8) % 5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = infopro_local_loss(head, t, x, y, CIFAR_MEAN, CIFAR_STD, 5.0, 1.0, reconstruction_loss=mode)
    assert loss.dtype == torch.float32 and math.isfinite(loss.item())
    loss.backward()
    assert t.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["conv", "mlp_sr"])
def test_head_fits_separable_features(name):
    torch.manual_seed(0)
    num_classes, shape = 4, (8, 4, 4)
    means = torch.randn(num_classes, *shape)  # class-dependent means, unit noise
    y = torch.arange(128) % num_classes
    t = means[y] + torch.randn(128, *shape)
    head = build_head(name, shape, num_classes)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(head(t), y).backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        acc = (head(t).argmax(1) == y).float().mean().item()
    assert acc > 0.9


def test_unknown_name_and_option():
    with pytest.raises(ConfigError, match="conv, infopro, linear, mlp_sr"):
        build_head("nope", (16, 8, 8), 10)
    with pytest.raises(ConfigError, match="accepted"):
        build_head("conv", (16, 8, 8), 10, nonsense=1)
    with pytest.raises(ConfigError):
        build_head("linear", (16, 8), 10)


def test_supervised_contrastive_loss_stays_float32_under_bf16_autocast():
    torch.manual_seed(0)
    z, y = torch.randn(32, 16), torch.randint(0, 4, (32,))
    exact = supervised_contrastive_loss(z, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = supervised_contrastive_loss(z.to(torch.bfloat16), y)
    assert under.dtype == torch.float32
    # only the bf16 rounding of the embeddings themselves remains
    assert torch.allclose(under, supervised_contrastive_loss(z.to(torch.bfloat16).float(), y), rtol=1e-6)
    assert torch.allclose(under, exact, rtol=1e-2)
