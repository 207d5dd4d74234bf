"""CIFAR ResNets (He et al., 2016, Sec. 4.2) registered into timm's own model registry.

The network follows InfoPro's definition (Wang et al., ICLR 2021), file
``Experiments on CIFAR-SVHN-STL10/networks/resnet.py`` of github.com/blackfeather-wang/InfoPro-Pytorch:

* stem: 3x3 conv (stride 1, 16 channels, no bias) + BN + ReLU, no max-pool;
* three stages of BasicBlocks with 16 / 32 / 64 channels, ``n = (depth - 2) / 6`` blocks each, the first block of
  stages 2 and 3 downsampling with stride 2; the shortcut of a downsampling block is a 1x1 conv (stride 2) + BN
  (InfoPro's ``_make_layer``, "option B" of the paper);
* global average pool and a linear classifier;
* init: convs ``N(0, sqrt(2 / (k * k * out_channels)))`` (Kaiming normal, fan-out), BN weight 1 / bias 0, the linear
  layer keeps PyTorch's default init, exactly as in InfoPro.

Importing this module registers ``cifar_resnet20``, ``cifar_resnet32``, ``cifar_resnet56`` and ``cifar_resnet110``,
so ``timm.create_model('cifar_resnet32', num_classes=10)`` works. The class follows timm's model contract
(``feature_info``, ``forward_features``, ``forward_head``, ``forward_intermediates``, ``pretrained_cfg``), so timm
utilities such as ``features_only=True`` work as for timm's own ResNet.

``INFOPRO_CUTS`` holds InfoPro's published local-module boundaries for resnet32 / resnet110.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import SelectAdaptivePool2d
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn

from bench.errors import ArchitectureError

__all__ = ["CifarBasicBlock", "CifarResNet", "INFOPRO_CUTS", "infopro_cut_points"]

# CIFAR-10 channel statistics, as used for normalisation in InfoPro's train.py.
CIFAR_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)

# InfoPro's published local-module cut points, copied verbatim from
# ``Experiments on CIFAR-SVHN-STL10/networks/configs.py`` (dict ``InfoPro``) of
# github.com/blackfeather-wang/InfoPro-Pytorch. Keys: arch -> K (number of local modules) -> list of K - 1
# ``[stage, block]`` pairs; a local module ENDS after block ``block`` (0-based) of stage ``stage`` (1..3), stage 0
# meaning "after the stem" (see ``InfoProResNet.forward`` there). K = 3 is published as well and kept.
INFOPRO_CUTS: dict[str, dict[int, list[list[int]]]] = {
    "resnet32": {
        2: [[2, 1]],
        3: [[1, 4], [2, 4]],
        4: [[1, 2], [2, 1], [3, 0]],
        8: [[1, 0], [1, 2], [1, 4], [2, 1], [2, 3], [3, 0], [3, 2]],
        16: [
            [0, 0],
            [1, 0], [1, 1], [1, 2], [1, 3], [1, 4],
            [2, 0], [2, 1], [2, 2], [2, 3], [2, 4],
            [3, 0], [3, 1], [3, 2], [3, 3],
        ],
    },
    "resnet110": {
        2: [[2, 8]],
        3: [[1, 17], [2, 17]],
        4: [[1, 11], [2, 7], [3, 3]],
        8: [[1, 4], [1, 11], [2, 0], [2, 7], [2, 14], [3, 3], [3, 10]],
        16: [
            [1, 1], [1, 4], [1, 7], [1, 10], [1, 13], [1, 16],
            [2, 1], [2, 4], [2, 7], [2, 11], [2, 15],
            [3, 1], [3, 5], [3, 9], [3, 13],
        ],
    },
}

_DEPTHS = {"cifar_resnet20": 20, "cifar_resnet32": 32, "cifar_resnet56": 56, "cifar_resnet110": 110}


def infopro_cut_points(depth: int, k: int) -> list[int] | None:
    """InfoPro's published cut points for a depth-``depth`` CIFAR ResNet split into ``k`` local modules, or None.

    Atoms are the stem (index 0) followed by every BasicBlock in order, so block ``b`` of stage ``s`` is atom
    ``1 + (s - 1) * n + b``. A returned index is the first atom of a new local module (the ``cuts:`` convention).
    """
    table = INFOPRO_CUTS.get(f"resnet{depth}", {})
    if k not in table:
        return None
    n = (depth - 2) // 6
    ends = [0 if stage == 0 else 1 + (stage - 1) * n + block for stage, block in table[k]]
    return [end + 1 for end in ends]


class CifarBasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU (InfoPro's ``BasicBlock``, dropout 0)."""

    expansion = 1

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.act2 = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_chs != out_chs:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_chs),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        return self.act2(x + shortcut)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images, with timm's model interface.

    Feature taps (``feature_info``), as for timm's ResNet: the stem (``act1``) and the three stages
    (``layer1``..``layer3``).
    """

    def __init__(
        self,
        depth: int = 32,
        num_classes: int = 10,
        in_chans: int = 3,
        widths: tuple[int, int, int] = (16, 32, 64),
        global_pool: str = "avg",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ArchitectureError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1 (20, 32, 56, 110, ...), got {depth}")
        n = (depth - 2) // 6
        self.depth = depth
        self.blocks_per_stage = n
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.act1 = nn.ReLU(inplace=True)
        self.feature_info = [dict(num_chs=widths[0], reduction=1, module="act1")]

        in_chs, reduction = widths[0], 1
        for i, out_chs in enumerate(widths):
            stride = 1 if i == 0 else 2
            reduction *= stride
            blocks = [CifarBasicBlock(in_chs if j == 0 else out_chs, out_chs, stride if j == 0 else 1) for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=out_chs, reduction=reduction, module=f"layer{i + 1}"))
            in_chs = out_chs

        self.num_features = self.head_hidden_size = widths[-1]
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(self.num_features * self.global_pool.feat_mult(), num_classes) if num_classes else nn.Identity()
        self.init_weights()

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(f"layer{i}" for i in range(1, len(self.feature_info)))

    @torch.no_grad()
    def init_weights(self) -> None:
        """InfoPro's init: Kaiming-normal (fan-out) convs, BN weight 1 and bias 0, default linear init."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # --- timm model interface -------------------------------------------------------------------------------------

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, str]:
        return dict(stem=r"^conv1|bn1", blocks=r"^layer(\d+)" if coarse else r"^layer(\d+)\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        in_features = self.num_features * self.global_pool.feat_mult()
        self.fc = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv1(x)))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Like timm's ``ResNet.forward_intermediates``: feature 0 is the stem output, 1..3 the stage outputs.

        Args:
            x: input images.
            indices: last n features if an int, all if None, the given indices if a sequence.
            norm: unused (no final norm), kept for interface compatibility.
            stop_early: stop after the last requested feature.
            output_fmt: only ``'NCHW'``.
            intermediates_only: return only the list of intermediates.
        """
        assert output_fmt == "NCHW", "Output shape must be NCHW."
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        intermediates = []
        x = self.forward_stem(x)
        if 0 in take_indices:
            intermediates.append(x)
        names = self.stage_names[:max_index] if stop_early else self.stage_names
        for feat_idx, name in enumerate(names, start=1):
            x = getattr(self, name)(x)
            if feat_idx in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last requested feature (and the head), as timm's ResNet does."""
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        for name in self.stage_names[max_index:]:
            setattr(self, name, nn.Sequential())
        if max_index < len(self.stage_names):
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or max_index < len(self.stage_names):
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate:
            x = F.dropout(x, p=float(self.drop_rate), training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs) -> dict:
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": (8, 8),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": CIFAR_MEAN,
        "std": CIFAR_STD,
        "first_conv": "conv1",
        "classifier": "fc",
        "license": "mit",
        **kwargs,
    }


# timm's register_model picks these up (it looks for ``default_cfgs`` in the entrypoint's module).
default_cfgs = generate_default_cfgs({name: _cfg() for name in _DEPTHS})


def _create(name: str, pretrained: bool = False, **kwargs) -> CifarResNet:
    if pretrained:
        raise ArchitectureError(f"{name} has no pretrained weights; build it with pretrained=False")
    return build_model_with_cfg(
        CifarResNet,
        name,
        pretrained=False,
        feature_cfg=dict(out_indices=(0, 1, 2, 3)),  # stem + 3 stages (timm's default asks for 5 features)
        depth=_DEPTHS[name],
        **kwargs,
    )


@register_model
def cifar_resnet20(pretrained: bool = False, **kwargs) -> CifarResNet:
    """ResNet-20 for CIFAR (3 x 3 BasicBlocks, ~0.27M parameters)."""
    return _create("cifar_resnet20", pretrained, **kwargs)


@register_model
def cifar_resnet32(pretrained: bool = False, **kwargs) -> CifarResNet:
    """ResNet-32 for CIFAR (3 x 5 BasicBlocks, ~0.46M parameters)."""
    return _create("cifar_resnet32", pretrained, **kwargs)


@register_model
def cifar_resnet56(pretrained: bool = False, **kwargs) -> CifarResNet:
    """ResNet-56 for CIFAR (3 x 9 BasicBlocks, ~0.85M parameters)."""
    return _create("cifar_resnet56", pretrained, **kwargs)


@register_model
def cifar_resnet110(pretrained: bool = False, **kwargs) -> CifarResNet:
    """ResNet-110 for CIFAR (3 x 18 BasicBlocks, ~1.7M parameters)."""
    return _create("cifar_resnet110", pretrained, **kwargs)
