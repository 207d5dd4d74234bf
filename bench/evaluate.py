"""Test-set evaluation: top-1/top-5 of the network's own classifier and each module's auxiliary top-1."""

from __future__ import annotations

import torch
from torch import nn

from bench.data.loader import DeviceData
from bench.staged import StagedNet


@torch.no_grad()
def evaluate(
    net: StagedNet, data: DeviceData, *, batch_size: int = 500, aux_heads: list[nn.Module | None] | None = None
) -> dict:
    """Accuracy in percent. ``module_top1[k]`` is the accuracy of module k's auxiliary head on its output
    (the last entry is the network's own classifier, i.e. ``test_top1``)."""
    net.eval()
    heads = list(aux_heads) if aux_heads is not None else None
    if heads is not None:
        for h in heads:
            if h is not None:
                h.eval()
    correct1 = correct5 = total = 0
    module_correct = [0] * net.num_modules
    k5 = min(5, net.num_classes)
    for x, y in data.test_batches(batch_size):
        h = x
        for k, stage in enumerate(net.stages):
            h = stage(h)
            if heads is not None and heads[k] is not None and k < net.num_modules - 1:
                module_correct[k] += int((heads[k](h).argmax(1) == y).sum())
        logits = net.head(h)
        top = logits.topk(k5, dim=1).indices
        correct1 += int((top[:, 0] == y).sum())
        correct5 += int((top == y[:, None]).any(1).sum())
        total += y.numel()
    test_top1 = 100.0 * correct1 / total
    out = {"test_top1": round(test_top1, 3), "test_top5": round(100.0 * correct5 / total, 3), "module_top1": None}
    if heads is not None:
        module_correct[-1] = correct1
        out["module_top1"] = [
            round(100.0 * c / total, 3) if (heads[k] is not None or k == net.num_modules - 1) else None
            for k, c in enumerate(module_correct)
        ]
    return out
