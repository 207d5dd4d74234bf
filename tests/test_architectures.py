"""Splitting timm CNNs into local modules: faithfulness, split kinds, InfoPro cut points, errors, CIFAR ResNets."""

from __future__ import annotations

import functools

import pytest
import timm
import torch
from torch import nn

from bench.architectures import (
    INFOPRO_CUTS,
    apply_cifar_stem,
    body_of,
    build_staged,
    count_atoms,
    infopro_cut_points,
    list_architectures,
    split_model,
    supported_family,
)
from bench.errors import ArchitectureError
from bench.staged import StagedNet

torch.set_num_threads(1)

FAITHFUL = [
    "resnet18",
    "resnet50",
    "convnext_atto",
    "efficientnet_b0",
    "mobilenetv3_small_100",
    "regnetx_002",
    "vgg11",
    "cifar_resnet20",
    "cifar_resnet32",
    "cifar_resnet56",
    "cifar_resnet110",
]
SHAPE = (3, 32, 32)


_MODELS: dict[str, nn.Module] = {}


def timm_model(name: str) -> nn.Module:
    """The timm model as build_staged builds it for 32x32 inputs (CIFAR stem), in eval mode; built once per module."""
    if name not in _MODELS:
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=False, num_classes=10)
        if not name.startswith("cifar_"):
            apply_cifar_stem(model)
        _MODELS[name] = model.eval()
    return _MODELS[name]


@pytest.fixture(scope="module", autouse=True)
def _free_models():
    yield
    _MODELS.clear()  # vgg11 alone holds ~0.5 GB


@functools.cache
def images() -> torch.Tensor:
    return torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(0))


def assert_same_function(model: nn.Module, net: StagedNet) -> list[torch.Tensor]:
    """The StagedNet computes the model's forward, holds exactly the model's parameters, and no module modifies
    its input in place (each module gets its own copy of the input, as after a detach in layer-wise training)."""
    x = images()
    with torch.no_grad():
        expected = model(x)
        feats = net.forward_features(x)
        logits = net.head(feats[-1])
        y, separate = x, []
        for stage in net.stages:
            y = stage(y.clone())
            separate.append(y)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    for a, b in zip(feats, separate, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert [tuple(f.shape[1:]) for f in feats] == net.feature_shapes
    assert {id(p) for p in net.parameters()} == {id(p) for p in model.parameters()}
    return feats


@pytest.mark.parametrize("name", FAITHFUL)
def test_stages_split_is_faithful(name):
    model = timm_model(name)
    net = split_model(model, "stages", arch=name, input_shape=SHAPE, num_classes=10).eval()
    feats = assert_same_function(model, net)
    # each module's output is the matching intermediate of timm's own forward_intermediates
    body = body_of(model)
    assert net.num_modules == body.num_stages == len(body.stage_taps)
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(images())
        only = model.forward_intermediates(images(), intermediates_only=True)
    assert len(only) == len(intermediates)
    for feat, tap in zip(feats, body.stage_taps, strict=True):
        torch.testing.assert_close(feat, intermediates[tap], atol=1e-5, rtol=0)
        torch.testing.assert_close(feat, only[tap], atol=1e-5, rtol=0)
    assert body.stage_taps[-1] == len(intermediates) - 1  # the last module ends the backbone


@pytest.mark.parametrize("name", FAITHFUL)
def test_blocks_and_balanced_splits_are_faithful(name):
    model = timm_model(name)
    n = body_of(model).num_atoms
    for split, k in (("blocks:2", 2), ("blocks:3", 3), ("balanced:3", 3), (f"blocks:{n}", n)):
        net = split_model(model, split, arch=name, input_shape=SHAPE).eval()
        assert net.num_modules == k
        assert sum(len(atoms) for atoms in net.module_atoms) == n
        assert net.split == split
        assert_same_function(model, net)


def test_blocks_split_is_even_in_block_count():
    net = build_staged("resnet18", num_classes=10, split="blocks:3")  # stem + 8 blocks
    assert net.module_atoms == [
        ["stem", "layer1_0", "layer1_1", "layer2_0"],
        ["layer2_1", "layer3_0", "layer3_1"],
        ["layer4_0", "layer4_1"],
    ]
    assert build_staged("resnet18", num_classes=10, split="blocks:9").cuts == list(range(1, 9))
    assert build_staged("resnet18", num_classes=10, split="blocks:1").num_modules == 1


def test_explicit_cuts():
    net = build_staged("cifar_resnet20", num_classes=10, split="cuts:3,7")
    assert net.cuts == [3, 7]
    assert net.module_atoms == [
        ["stem", "layer1_0", "layer1_1"],
        ["layer1_2", "layer2_0", "layer2_1", "layer2_2"],
        ["layer3_0", "layer3_1", "layer3_2"],
    ]
    assert net.feature_shapes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


# InfoPro, Experiments on CIFAR-SVHN-STL10/networks/configs.py (blackfeather-wang/InfoPro-Pytorch), as atom indices
# where a module starts (atom 0 = stem, atom 1 + 5 * (stage - 1) + block for resnet32).
INFOPRO_RESNET32 = {
    2: [8],
    4: [4, 8, 12],
    8: [2, 4, 6, 8, 10, 12, 14],
    16: list(range(1, 16)),
}
INFOPRO_RESNET110 = {
    2: [28],
    4: [13, 27, 41],
    8: [6, 13, 20, 27, 34, 41, 48],
    16: [3, 6, 9, 12, 15, 18, 21, 24, 27, 31, 35, 39, 43, 47, 51],
}


@pytest.mark.parametrize("k", [2, 4, 8, 16])
def test_infopro_cut_points(k):
    assert infopro_cut_points(32, k) == INFOPRO_RESNET32[k]
    assert infopro_cut_points(110, k) == INFOPRO_RESNET110[k]
    assert split_model(timm_model("cifar_resnet32"), f"blocks:{k}").cuts == INFOPRO_RESNET32[k]
    assert split_model(timm_model("cifar_resnet110"), f"blocks:{k}").cuts == INFOPRO_RESNET110[k]


def test_infopro_table_is_the_published_one():
    assert INFOPRO_CUTS["resnet32"][4] == [[1, 2], [2, 1], [3, 0]]
    assert INFOPRO_CUTS["resnet110"][8] == [[1, 4], [1, 11], [2, 0], [2, 7], [2, 14], [3, 3], [3, 10]]
    assert infopro_cut_points(56, 4) is None  # not published: blocks:K falls back to even block counts
    assert split_model(timm_model("cifar_resnet56"), "blocks:4").cuts == [8, 15, 22]


@pytest.mark.parametrize("name, k", [("cifar_resnet32", 4), ("cifar_resnet110", 4), ("cifar_resnet56", 3)])
def test_balanced_split_spreads_activation_memory_more_evenly(name, k):
    blocks = split_model(timm_model(name), f"blocks:{k}")
    balanced = split_model(timm_model(name), f"balanced:{k}")
    assert sum(blocks.module_costs) == sum(balanced.module_costs)
    assert max(balanced.module_costs) - min(balanced.module_costs) < max(blocks.module_costs) - min(
        blocks.module_costs
    )
    assert max(balanced.module_costs) < max(blocks.module_costs)  # the first stage holds most memory


@pytest.mark.parametrize(
    "split",
    ["", "blocks", "blocks:0", "blocks:-2", "blocks:x", "balanced:", "cuts:", "cuts:5,3", "cuts:0,4", "cuts:4,4",
     "stage", "layers:2"],
)
def test_bad_split_strings_raise(split):
    with pytest.raises(ArchitectureError, match="accepted splits"):
        build_staged("cifar_resnet20", num_classes=10, split=split)


@pytest.mark.parametrize("split", ["blocks:11", "balanced:20", "cuts:3,10"])
def test_split_out_of_range_raises(split):
    with pytest.raises(ArchitectureError, match="10 atoms"):
        build_staged("cifar_resnet20", num_classes=10, split=split)


def test_unsupported_architectures_raise():
    with pytest.raises(ArchitectureError, match="supported families: .*resnet.*convnext"):
        build_staged("vit_tiny_patch16_224", num_classes=10)
    with pytest.raises(ArchitectureError, match="not a timm model"):
        build_staged("no_such_net", num_classes=10)
    with pytest.raises(ArchitectureError, match="cannot split a Linear"):
        split_model(nn.Linear(2, 2))


def test_supported_family():
    assert supported_family("resnet50d") == "resnet"
    assert supported_family("tf_efficientnet_b0.in1k") == "efficientnet"
    assert supported_family("mobilenetv3_large_100") == "mobilenetv3"
    assert supported_family("convnext_nano") == "convnext"
    assert supported_family("regnety_002") == "regnet"
    assert supported_family("vgg16_bn") == "vgg"
    assert supported_family("cifar_resnet110") == "cifar_resnet"
    assert supported_family("vit_tiny_patch16_224") is None
    assert supported_family("no_such_net") is None


@pytest.mark.parametrize(
    "name, params", [("cifar_resnet20", 0.27e6), ("cifar_resnet32", 0.46e6), ("cifar_resnet56", 0.85e6),
                     ("cifar_resnet110", 1.7e6)]
)
def test_cifar_resnets_are_in_timms_registry(name, params):
    model = timm.create_model(name)
    assert model.num_classes == 10 and model.pretrained_cfg["input_size"] == (3, 32, 32)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.03)
    assert name in timm.list_models("cifar_resnet*")


def test_cifar_resnet_timm_contract():
    model = timm.create_model("cifar_resnet32", num_classes=100).eval()
    x = images()
    assert [f["num_chs"] for f in model.feature_info] == [16, 16, 32, 64]
    assert [f["reduction"] for f in model.feature_info] == [1, 1, 2, 4]
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        torch.testing.assert_close(final, model.forward_features(x))
        torch.testing.assert_close(model.forward_head(final), model(x))
        assert model.forward_head(final, pre_logits=True).shape == (2, 64)
    assert [t.shape[1:] for t in inter] == [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert [t.shape[1] for t in last_two] == [32, 64]
    assert model(x).shape == (2, 100)
    features = timm.create_model("cifar_resnet20", features_only=True, out_indices=(1, 3))
    assert [t.shape[1] for t in features(x)] == [16, 64]
    with pytest.raises(ArchitectureError, match="pretrained"):
        timm.create_model("cifar_resnet20", pretrained=True)


def test_build_staged_records_cifar_stem():
    small = build_staged("resnet18", num_classes=10, image_size=32)
    assert small.cifar_stem is True and small.feature_shapes[0] == (64, 32, 32)
    plain = build_staged("resnet18", num_classes=10, image_size=32, cifar_stem=False)
    assert plain.cifar_stem is False and plain.feature_shapes[0] == (64, 8, 8)
    convnext = build_staged("convnext_atto", num_classes=10, image_size=32)
    assert convnext.feature_shapes[0] == (40, 32, 32) and convnext(torch.zeros(2, *SHAPE)).shape == (2, 10)
    cifar = build_staged("cifar_resnet20", num_classes=100, split="blocks:4")
    assert cifar.cifar_stem is True and cifar.num_classes == 100 and cifar.arch == "cifar_resnet20"
    assert isinstance(cifar, StagedNet) and [row["module"] for row in cifar.describe()] == [0, 1, 2, 3]


def test_list_architectures():
    rows = {row["name"]: row for row in list_architectures()}
    assert set(rows) >= {"resnet18", "resnet34", "resnet50", "convnext_atto", "efficientnet_b0",
                         "mobilenetv3_small_100", "regnetx_002", "vgg11", "cifar_resnet20", "cifar_resnet32",
                         "cifar_resnet56", "cifar_resnet110"}
    assert rows["cifar_resnet110"]["family"] == "cifar_resnet" and rows["cifar_resnet110"]["num_stages"] == 3
    assert rows["resnet50"]["num_stages"] == 4 and rows["efficientnet_b0"]["num_stages"] == 5
    assert rows["vgg11"]["num_stages"] == 5
    assert rows["cifar_resnet32"]["params"] == sum(p.numel() for p in timm_model("cifar_resnet32").parameters())
    assert count_atoms("cifar_resnet110") == 55 and count_atoms("resnet18") == 9
