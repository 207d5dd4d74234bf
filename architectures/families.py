"""Per-family views of timm CNNs as an ordered list of "atoms" plus a head.

An atom is the smallest piece a split may put at a module boundary: the stem, or one residual block (one conv layer
for VGG). Running the atoms in order and then the head reproduces the model's own ``forward`` exactly: every atom
and the head are the model's own submodules (shared, not copied), wrapped in ``nn.Sequential`` where a piece is made
of several of them. The code paths mirror each family's ``forward_features`` / ``forward_head`` in timm.

Each family also says where its backbone stages end (the atoms whose output is a ``feature_info`` tap), and which
``forward_intermediates`` index each such stage output equals; the stem tap, where a family has one, is merged into
the first stage.

``apply_cifar_stem`` adapts a model's stem to 32x32 inputs in place (stride 1, no stem pooling).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from timm.layers import trunc_normal_
from timm.models import VGG, ConvNeXt, EfficientNet, MobileNetV3, RegNet, ResNet
from torch import nn

from bench.architectures.cifar_resnet import CifarResNet
from bench.errors import ArchitectureError

__all__ = ["FAMILIES", "Body", "apply_cifar_stem", "body_of", "family_of_model"]


@dataclass
class Body:
    """A model seen as ``head(atoms[n-1](...atoms[0](x)))``.

    Attributes:
        family: the family name (a key of ``FAMILIES``).
        atoms: ``(name, module)`` in forward order.
        stage_ends: index of the last atom of each backbone stage (the stem, if any, belongs to the first stage).
        stage_taps: for each stage, the index into ``model.forward_intermediates(x)[1]`` (default arguments) that
            equals the stage's output.
        has_stem: whether ``atoms[0]`` is a stem (not a residual block); ``blocks:K`` then counts blocks only.
        head: everything after the body (pooling, pre-logits layers, dropout, classifier).
        depth: the CIFAR ResNet depth, for looking up InfoPro's published cut points; None for other families.
    """

    family: str
    atoms: list[tuple[str, nn.Module]]
    stage_ends: list[int]
    stage_taps: list[int]
    has_stem: bool
    head: nn.Module
    depth: int | None = field(default=None)

    @property
    def num_atoms(self) -> int:
        return len(self.atoms)

    @property
    def num_stages(self) -> int:
        return len(self.stage_ends)


def _seq(**named: nn.Module | None) -> nn.Sequential:
    """An ``nn.Sequential`` with named children, skipping None."""
    return nn.Sequential(OrderedDict((k, v) for k, v in named.items() if v is not None))


def _dropout(p: float) -> nn.Module | None:
    """The ``F.dropout(x, p, training=self.training)`` of timm's ``forward_head``, as a module (None when p = 0)."""
    return nn.Dropout(float(p)) if p else None


def _blocks_of(container: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    return [(f"{prefix}_{name}", block) for name, block in container.named_children()]


# --- bodies --------------------------------------------------------------------------------------------------------


def _resnet_like_body(model: ResNet | CifarResNet, family: str, layer_names: tuple[str, ...]) -> Body:
    """timm ResNet (layer1..layer4) and our CIFAR ResNet (layer1..layer3): stem, then every block of every layer.

    forward_features: conv1 -> bn1 -> act1 -> maxpool -> layer1..; forward_head: global_pool -> dropout -> fc.
    Taps: 0 = stem (merged into stage 1), i = layer i.
    """
    stem = _seq(conv1=model.conv1, bn1=model.bn1, act1=model.act1, maxpool=getattr(model, "maxpool", None))
    atoms: list[tuple[str, nn.Module]] = [("stem", stem)]
    stage_ends = []
    for name in layer_names:
        blocks = _blocks_of(getattr(model, name), name)
        if not blocks:
            raise ArchitectureError(f"{family}: {name} has no blocks (was the model pruned?)")
        atoms += blocks
        stage_ends.append(len(atoms) - 1)
    head = _seq(global_pool=model.global_pool, drop=_dropout(model.drop_rate), fc=model.fc)
    return Body(
        family=family,
        atoms=atoms,
        stage_ends=stage_ends,
        stage_taps=list(range(1, len(layer_names) + 1)),
        has_stem=True,
        head=head,
        depth=getattr(model, "depth", None) if family == "cifar_resnet" else None,
    )


def _resnet_body(model: ResNet) -> Body:
    return _resnet_like_body(model, "resnet", ("layer1", "layer2", "layer3", "layer4"))


def _cifar_resnet_body(model: CifarResNet) -> Body:
    return _resnet_like_body(model, "cifar_resnet", model.stage_names)


def _convnext_body(model: ConvNeXt) -> Body:
    """stem, then every ConvNeXt block; a stage's downsample layer is fused with the stage's first block.

    forward_features: stem -> stages (each: downsample -> blocks) -> norm_pre; forward_head: head.
    Taps: i = stages[i] (no stem tap).
    """
    atoms: list[tuple[str, nn.Module]] = [("stem", model.stem)]
    stage_ends = []
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage.blocks):
            if j == 0 and not isinstance(stage.downsample, nn.Identity):
                atoms.append((f"stages_{i}_{j}", _seq(downsample=stage.downsample, block=block)))
            else:
                atoms.append((f"stages_{i}_{j}", block))
        stage_ends.append(len(atoms) - 1)
    head = _seq(norm_pre=model.norm_pre, head=model.head)
    return Body("convnext", atoms, stage_ends, list(range(len(model.stages))), True, head)


def _efficientnet_like_body(model: EfficientNet | MobileNetV3, family: str, head: nn.Module) -> Body:
    """EfficientNet / MobileNetV3: stem (conv_stem + bn1), then every block of every block group.

    ``model.stage_ends[t]`` is the feature tap t: 0 = stem, s > 0 = after block group s - 1.
    """
    atoms: list[tuple[str, nn.Module]] = [("stem", _seq(conv_stem=model.conv_stem, bn1=model.bn1))]
    group_end = [0]  # atom index of the output of "stage" s (0 = stem, s = block group s - 1)
    for g, group in enumerate(model.blocks):
        atoms += _blocks_of(group, f"blocks_{g}")
        group_end.append(len(atoms) - 1)
    stage_ends, stage_taps = [], []
    for tap, s in enumerate(model.stage_ends):
        if s == 0:
            continue  # the stem tap: merged into the first stage
        stage_ends.append(group_end[s])
        stage_taps.append(tap)
    if stage_ends[-1] != len(atoms) - 1:
        raise ArchitectureError(f"{family}: the last feature tap is not the last block; cannot split this model")
    return Body(family, atoms, stage_ends, stage_taps, True, head)


def _efficientnet_body(model: EfficientNet) -> Body:
    # forward_features: conv_stem -> bn1 -> blocks -> conv_head -> bn2; forward_head: global_pool -> dropout -> classifier
    head = _seq(
        conv_head=model.conv_head,
        bn2=model.bn2,
        global_pool=model.global_pool,
        drop=_dropout(model.drop_rate),
        classifier=model.classifier,
    )
    return _efficientnet_like_body(model, "efficientnet", head)


def _mobilenetv3_body(model: MobileNetV3) -> Body:
    # forward_features: conv_stem -> bn1 -> blocks;
    # forward_head: global_pool -> conv_head -> norm_head -> act2 -> flatten -> dropout -> classifier
    head = _seq(
        global_pool=model.global_pool,
        conv_head=model.conv_head,
        norm_head=getattr(model, "norm_head", None),
        act2=model.act2,
        flatten=model.flatten,
        drop=_dropout(model.drop_rate),
        classifier=model.classifier,
    )
    return _efficientnet_like_body(model, "mobilenetv3", head)


def _regnet_body(model: RegNet) -> Body:
    """stem, then every block of s1..s4. forward_features: stem -> s1..s4 -> final_conv; forward_head: head.

    Taps: 0 = stem (merged into stage 1), i = s{i}.
    """
    atoms: list[tuple[str, nn.Module]] = [("stem", model.stem)]
    stage_ends = []
    for name in ("s1", "s2", "s3", "s4"):
        atoms += _blocks_of(getattr(model, name), name)
        stage_ends.append(len(atoms) - 1)
    head = _seq(final_conv=model.final_conv, head=model.head)
    return Body("regnet", atoms, stage_ends, [1, 2, 3, 4], True, head)


def _vgg_body(model: VGG) -> Body:
    """One atom per conv layer of ``features`` (conv [+ norm] + act), a max-pool going with the conv after it.

    The final max-pool (feature tap 5, parameter-free) joins the last conv atom, so the five VGG conv blocks are the
    stages, matching taps 0..3 (pre-pool outputs) and 5. There is no stem. forward_features: features;
    forward_head: pre_logits (ConvMlp, which pools inputs smaller than 7x7 up to 7x7) -> head.
    """
    layers = list(model.features)
    groups: list[list[int]] = []
    for i, layer in enumerate(layers):
        prev_is_pool = i > 0 and isinstance(layers[i - 1], nn.MaxPool2d)
        starts_atom = isinstance(layer, (nn.Conv2d, nn.MaxPool2d)) and not prev_is_pool
        if not groups or (starts_atom and any(isinstance(layers[j], nn.Conv2d) for j in groups[-1])):
            groups.append([i])
        else:
            groups[-1].append(i)
    if len(groups) > 1 and not any(isinstance(layers[j], nn.Conv2d) for j in groups[-1]):
        trailing = groups.pop()
        groups[-1] += trailing  # trailing pool(s) join the last conv atom
    atoms = [
        (f"conv{k + 1}", _seq(**{str(j): layers[j] for j in group})) for k, group in enumerate(groups)
    ]
    feature_ends = getattr(model, "feature_ends", None)  # older timm: derive from feature_info ('features.N')
    if feature_ends is None:
        feature_ends = [int(f["module"].rsplit(".", 1)[1]) for f in model.feature_info]
    atom_of_layer = {j: a for a, group in enumerate(groups) for j in group}
    stage_ends: list[int] = []
    stage_taps: list[int] = []
    for tap, layer_idx in enumerate(feature_ends):
        a = atom_of_layer[layer_idx]
        if stage_ends and stage_ends[-1] == a:
            stage_taps[-1] = tap  # a later tap inside the same atom (the final pool): the atom outputs that one
        else:
            stage_ends.append(a)
            stage_taps.append(tap)
    head = _seq(pre_logits=model.pre_logits, head=model.head)
    return Body("vgg", atoms, stage_ends, stage_taps, False, head)


# --- CIFAR stems ---------------------------------------------------------------------------------------------------


def _first_conv(module: nn.Module) -> nn.Conv2d:
    if isinstance(module, nn.Conv2d):
        return module
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ArchitectureError(f"no conv layer found in the stem {type(module).__name__}")


def _stride_one(conv: nn.Conv2d) -> None:
    """Make a strided conv stride 1. timm pads ``k // 2`` for odd kernels (or pads dynamically for 'same'
    convs), so the output keeps the input size."""
    conv.stride = (1, 1)


def _cifar_stem_resnet(model: ResNet) -> None:
    """conv1 (7x7 stride 2) -> 3x3 stride 1 with the same out channels (Kaiming init, as timm's ResNet);
    deep stems keep their convs with the first one made stride 1. The stem max-pool -> Identity."""
    if isinstance(model.conv1, nn.Conv2d):
        old = model.conv1
        conv = nn.Conv2d(old.in_channels, old.out_channels, 3, stride=1, padding=1, bias=old.bias is not None)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        model.conv1 = conv
    else:
        _stride_one(_first_conv(model.conv1))
    model.maxpool = nn.Identity()


def _cifar_stem_convnext(model: ConvNeXt) -> None:
    """Patchify stem (k x k conv, stride k) -> 3x3 stride-1 conv, same channels (init as ConvNeXt: trunc-normal
    std 0.02, zero bias); overlapping stems get all their convs stride 1."""
    first = model.stem[0]
    if isinstance(first, nn.Conv2d) and first.kernel_size == first.stride and first.stride != (1, 1):
        conv = nn.Conv2d(first.in_channels, first.out_channels, 3, stride=1, padding=1, bias=first.bias is not None)
        trunc_normal_(conv.weight, std=0.02)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
        model.stem[0] = conv
    else:
        for m in model.stem.modules():
            if isinstance(m, nn.Conv2d):
                _stride_one(m)


def _cifar_stem_efficientnet(model: EfficientNet | MobileNetV3) -> None:
    """conv_stem stride 2 -> stride 1."""
    _stride_one(model.conv_stem)


def _cifar_stem_regnet(model: RegNet) -> None:
    """The stem conv (3x3 stride 2) -> stride 1."""
    _stride_one(_first_conv(model.stem))


def _cifar_stem_vgg(model: VGG) -> None:
    """Nothing to change: VGG has no strided stem, and its pre-logits ConvMlp pools 1x1 features (32x32 input)
    up to its 7x7 kernel."""


@dataclass(frozen=True)
class Family:
    """How to see one timm model class as a body, and how to give it a CIFAR stem."""

    model_cls: type[nn.Module]
    timm_module: str  # the timm.models submodule whose entrypoints build this class
    body: Callable[[nn.Module], Body]
    cifar_stem: Callable[[nn.Module], None] | None


# Checked in order (isinstance), so subclasses must come before their bases.
FAMILIES: dict[str, Family] = {
    "cifar_resnet": Family(CifarResNet, "cifar_resnet", _cifar_resnet_body, None),
    "resnet": Family(ResNet, "resnet", _resnet_body, _cifar_stem_resnet),
    "convnext": Family(ConvNeXt, "convnext", _convnext_body, _cifar_stem_convnext),
    "efficientnet": Family(EfficientNet, "efficientnet", _efficientnet_body, _cifar_stem_efficientnet),
    "mobilenetv3": Family(MobileNetV3, "mobilenetv3", _mobilenetv3_body, _cifar_stem_efficientnet),
    "regnet": Family(RegNet, "regnet", _regnet_body, _cifar_stem_regnet),
    "vgg": Family(VGG, "vgg", _vgg_body, _cifar_stem_vgg),
}


def family_of_model(model: nn.Module) -> str:
    """The family of a built model, by class; ArchitectureError naming the supported families otherwise."""
    for name, fam in FAMILIES.items():
        if isinstance(model, fam.model_cls):
            return name
    raise ArchitectureError(
        f"cannot split a {type(model).__name__}: supported families are {', '.join(FAMILIES)} "
        "(timm ResNet, ConvNeXt, EfficientNet, MobileNetV3, RegNet, VGG and our CIFAR ResNets)"
    )


def body_of(model: nn.Module) -> Body:
    """The model as atoms + head (sharing the model's modules)."""
    return FAMILIES[family_of_model(model)].body(model)


@torch.no_grad()
def apply_cifar_stem(model: nn.Module) -> None:
    """Adapt the model's stem to small (e.g. 32x32) inputs, in place: stride 1, no stem pooling."""
    fam = FAMILIES[family_of_model(model)]
    if fam.cifar_stem is not None:
        fam.cifar_stem(model)
