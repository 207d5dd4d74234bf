"""StagedNet: a backbone as an ordered list of K local modules plus the network's own classifier.

Layer-wise methods train each module with its own local loss; end-to-end SGD trains the whole chain. Shapes of the
module outputs come from a dummy forward at construction, never from metadata.
"""

from __future__ import annotations

import torch
from torch import nn


class StagedNet(nn.Module):
    """``head(stages[K-1](...stages[0](x)))``.

    Attributes:
        stages: the K local modules, in order.
        head: the network's own classifier (pooling, any pre-logits layers, the final linear layer).
        feature_shapes: (C, H, W) of each module's output, measured by a dummy forward.
        arch, split: what was built, for the record.
    """

    def __init__(
        self,
        stages: list[nn.Module],
        head: nn.Module,
        *,
        arch: str,
        split: str,
        input_shape: tuple[int, int, int] = (3, 32, 32),
        num_classes: int,
    ) -> None:
        super().__init__()
        if not stages:
            raise ValueError("a StagedNet needs at least one module")
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.arch = arch
        self.split = split
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.feature_shapes = self._probe_shapes()

    @property
    def num_modules(self) -> int:
        return len(self.stages)

    @torch.no_grad()
    def _probe_shapes(self) -> list[tuple[int, ...]]:
        was_training = self.training
        self.eval()
        x = torch.zeros(2, *self.input_shape)
        shapes = []
        for stage in self.stages:
            x = stage(x)
            shapes.append(tuple(x.shape[1:]))
        self.train(was_training)
        return shapes

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every module's output, in order (with gradient flowing through the whole chain)."""
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def describe(self) -> list[dict]:
        """One row per module: parameter count and output shape."""
        return [
            {
                "module": k,
                "params": sum(p.numel() for p in stage.parameters()),
                "output_shape": list(shape),
            }
            for k, (stage, shape) in enumerate(zip(self.stages, self.feature_shapes, strict=True))
        ]
