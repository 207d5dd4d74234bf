"""Golden parity with the baselines' published code, and the two InfoPro settings that follow the authors.

The fixture (``tests/fixtures/parity.json``, batch in ``parity_batch.npz``) holds what the authors' code computed
-- InfoPro-Pytorch on ResNet-32 (K = 2, 4, 8, both loss modes), layerCNN's conv head, DGL's MLP-SR head -- in 3 SGD
steps on a stored CIFAR-10 batch, starting from our seeded initial weights; ``scripts/reference_parity.py`` wrote
it. Here our code alone runs the same steps (``tests/parity.py``) and must agree to 1e-5 relative.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from types import SimpleNamespace

import pytest
import torch

from bench.errors import ConfigError
from bench.heads import InfoProHead, build_head, infopro_reconstruction_loss, init_like_authors
from bench.methods.infopro import InfoPro
from tests import parity

FIXTURE = parity.load_cases() if parity.CASES_FILE.exists() else None
CASES = FIXTURE["cases"] if FIXTURE else []
TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def one_thread():
    """Small float64 steps gain nothing from intra-op threads, and lose much on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_fixture_is_present_and_covers_every_case():
    assert FIXTURE is not None, f"missing {parity.CASES_FILE}: run scripts/reference_parity.py"
    assert [c["name"] for c in CASES] == [c["name"] for c in parity.CASES]
    digest = hashlib.sha256(parity.BATCH_FILE.read_bytes()).hexdigest()
    assert digest == FIXTURE["batch"]["sha256"]
    images, labels = parity.load_batch()
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32) and labels.shape == images.shape[:1]
    for case in CASES:
        assert re.fullmatch(r"[0-9a-f]{40}", case["authors"]["commit"])
        assert len(case["losses"]) == len(case["grad_norms"]) == case["steps"] == len(case["checksums"]) - 1


@pytest.mark.parametrize("case", parity.CASES, ids=lambda c: c["name"])
def test_matches_the_authors_code(case):
    expected = next(c for c in CASES if c["name"] == case["name"])
    assert {key: expected[key] for key in case} == json.loads(json.dumps(case)), "the fixture is of other settings"
    images, labels = parity.load_batch()
    record = parity.run_case(case, images, labels)

    # Every tensor of ours is compared, except the contrast-mode probe (not part of the authors' model).
    probe = re.compile(r"aux\d+\.classifier\.") if case.get("loss_mode") == "contrast" else None
    ours_only = set(record.grad_norms[0]) - set(expected["param_names"])
    assert all(probe and probe.match(n) for n in ours_only), sorted(ours_only)
    assert not set(expected["param_names"]) - set(record.grad_norms[0])
    assert all(probe and probe.match(n) for n in set(record.checksums[0]) - set(expected["state_names"]))

    worst = parity.relative_differences(record, expected)
    for kind, (rel, where) in worst.items():
        assert rel <= TOLERANCE, f"{kind} differs from the authors' code by {rel:.3g} relative at {where}"


def test_a_different_initialisation_is_detected():
    """The comparison is not vacuous: another seed gives other numbers."""
    expected = next(c for c in CASES if c["name"] == "dgl_mlp_sr_head")
    case = {**parity.head_case("mlp_sr"), "seed": 1}
    images, labels = parity.load_batch()
    worst = parity.relative_differences(parity.run_case(case, images, labels), expected)
    assert all(rel > 1e-3 for rel, _ in worst.values())


# --- reconstruction_loss ----------------------------------------------------------------------------------------


def saturated_head(logit: float) -> InfoProHead:
    """An InfoPro head whose decoder outputs ``logit`` at every pixel (last conv: weight 0, bias ``logit``)."""
    head = InfoProHead((4, 4, 4), 10, image_shape=(3, 8, 8))
    with torch.no_grad():
        head.decoder[3].weight.zero_()
        head.decoder[3].bias.fill_(logit)
    return head


def test_authors_reconstruction_loss_clamps_the_log_at_minus_100():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 8, 8)  # the target, in [0, 1]
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    x = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    t = torch.randn(2, 4, 4, 4)
    target = images.clamp(0, 1)

    head = saturated_head(30.0)  # sigmoid(30) == 1.0 in float32
    assert torch.sigmoid(torch.tensor(30.0)) == 1.0
    loss = infopro_reconstruction_loss(head, t, x, mean, std, mode="authors")
    # each pixel adds 100 * (1 - t): log(1 - sigmoid) = log(0) clamped at -100, as nn.BCELoss does
    torch.testing.assert_close(loss, (100.0 * (1 - target)).mean(), rtol=1e-5, atol=0)
    loss.backward()
    assert head.decoder[3].bias.grad is not None and torch.all(head.decoder[3].bias.grad == 0)

    head = saturated_head(30.0)
    exact = infopro_reconstruction_loss(head, t, x, mean, std, mode="exact")
    # softplus(30) - 30 t per pixel: no clamp, and the gradient sigmoid(30) - t survives
    torch.testing.assert_close(exact, (torch.nn.functional.softplus(torch.tensor(30.0)) - 30.0 * target).mean(),
                               rtol=1e-5, atol=0)
    exact.backward()
    expected_grad = (1.0 - target).sum(dim=(0, 2, 3)) / target.numel()
    torch.testing.assert_close(head.decoder[3].bias.grad, expected_grad, rtol=1e-4, atol=0)

    # away from saturation the two forms agree
    head = saturated_head(2.0)
    a = infopro_reconstruction_loss(head, t, x, mean, std, mode="authors")
    b = infopro_reconstruction_loss(head, t, x, mean, std, mode="exact")
    torch.testing.assert_close(a, b, rtol=1e-6, atol=0)
    with pytest.raises(ConfigError, match="authors, exact"):
        infopro_reconstruction_loss(head, t, x, mean, std, mode="clamped")


# --- aux_init ---------------------------------------------------------------------------------------------------


def _method_head(aux_init: str, seed: int = 0) -> torch.nn.Module:
    run = SimpleNamespace(
        cfg=SimpleNamespace(aux="infopro"),
        net=SimpleNamespace(num_classes=10, input_shape=(3, 32, 32)),
        hp={**InfoPro.hparams, "aux_init": aux_init},
    )
    torch.manual_seed(seed)
    return InfoPro().make_head(run)(0, (16, 32, 32))


def test_aux_init_authors_draws_the_authors_std():
    authors, default = _method_head("authors"), _method_head("pytorch")
    last = authors.decoder[3]  # conv 3x3, 12 -> 3: std sqrt(2 / (3 * 3 * 3))
    target = math.sqrt(2.0 / (3 * 3 * 3))
    assert abs(last.weight.std().item() / target - 1) < 0.2  # 324 draws: ~4% standard error
    assert default.decoder[3].weight.std().item() < 0.5 * target  # PyTorch's default: 1/sqrt(3 * fan_in) = 0.056
    for conv in (authors.decoder[0], authors.projector[0], authors.classifier[0]):
        n = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
        assert abs(conv.weight.std().item() / math.sqrt(2.0 / n) - 1) < 0.2
    # BatchNorm weight 1, bias 0; Linear layers and conv biases keep PyTorch's defaults (the same draws)
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0)
               for m in authors.modules() if isinstance(m, torch.nn.BatchNorm2d))
    torch.testing.assert_close(authors.projector[5].weight, default.projector[5].weight)
    torch.testing.assert_close(authors.decoder[3].bias, default.decoder[3].bias)
    assert init_like_authors(build_head("conv", (8, 4, 4), 3)) is not None


def test_infopro_rejects_unknown_settings():
    for key in ("reconstruction_loss", "aux_init"):
        run = SimpleNamespace(hp={**InfoPro.hparams, key: "nope"}, cfg=SimpleNamespace(aux="infopro"))
        with pytest.raises(ConfigError, match=key):
            InfoPro().train(run)
