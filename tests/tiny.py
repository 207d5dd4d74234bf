"""Tiny networks and datasets for fast engine tests (no timm, no files)."""

from __future__ import annotations

import torch
from torch import nn

from bench.config import RunConfig
from bench.data.base import ImageDataset
from bench.data.loader import DeviceData
from bench.measure import Meter
from bench.method import RunContext
from bench.staged import StagedNet


def conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def tiny_net(num_classes: int = 4, width: int = 8, image_size: int = 16) -> StagedNet:
    stages = [conv_bn(3, width, 1), conv_bn(width, 2 * width, 2), conv_bn(2 * width, 2 * width, 2)]
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes))
    return StagedNet(stages, head, arch="tiny", split="stages", input_shape=(3, image_size, image_size),
                     num_classes=num_classes)


def blobs_dataset(num_classes: int = 4, train: int = 256, test: int = 128, image_size: int = 16, seed: int = 0):
    """Images whose class is a coloured square in a class-specific quadrant: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.arange(n) % num_classes
        x = torch.randint(0, 80, (n, 3, image_size, image_size), generator=g)
        half = image_size // 2
        for i in range(n):
            c = int(y[i])
            r0, c0 = (c // 2 % 2) * half, (c % 2) * half
            x[i, c % 3, r0 : r0 + half, c0 : c0 + half] += 150
        return x.clamp(0, 255).to(torch.uint8), y

    tx, ty = make(train)
    vx, vy = make(test)
    return ImageDataset("blobs", num_classes, tx, ty, vx, vy, (0.3, 0.3, 0.3), (0.3, 0.3, 0.3), hflip=False,
                        source="generated")


def tiny_run(schedule: str = "sequential", epochs: int = 2, seed: int = 0, **cfg_kw) -> RunContext:
    """A RunContext on the blobs with the tiny net. ``cfg_kw`` are RunConfig fields; ``val_split`` (default 0
    here) also carves the data's validation split."""
    torch.manual_seed(seed)
    cfg_kw.setdefault("val_split", 0.0)
    cfg_kw.setdefault("lr", 0.05)
    cfg = RunConfig(method="test", arch="tiny", data="blobs", schedule=schedule, epochs=epochs, batch_size=32,
                    seed=seed, **cfg_kw)
    net = tiny_net()
    data = DeviceData(blobs_dataset(), "cpu", crop_padding=2, val_split=cfg.val_split)
    meter = Meter(torch.device("cpu"), exclude_params=list(net.parameters()))
    return RunContext(cfg, net, data, torch.device("cpu"), meter, torch.Generator().manual_seed(seed))
