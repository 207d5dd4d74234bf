"""A plain PyTorch training loop: the yardstick the harness's ``sgd`` must match on the same data and budget.

No harness code on the training path: torchvision-style CIFAR ResNet-20 (He et al.; PyTorch's default
initialisation), SGD lr 0.1 with Nesterov momentum 0.9 and weight decay 5e-4 on every parameter, OneCycle (15 %
warm-up, cosine), batch 128 (``--batch-size``), random crop with 4 pixels of reflection padding (one offset per batch) and per-image
horizontal flips, CIFAR normalisation (mean 125.3, 123.0, 113.9; std 63.0, 62.1, 66.7). Only the data loading
(decoding the official files) comes from ``bench.data``, so both sides see the same images.

    python scripts/plain_loop.py --data cifar10 --data-root ../shared/data --epochs 20 --seed 0
    python scripts/compare_sgd.py ...   # this loop and `bench run --method sgd` side by side

Prints one JSON line: {"test_top1": ..., "epochs": ..., "seconds": ...}.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.b1(self.c1(x)))
        out = self.b2(self.c2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


def resnet20(num_classes: int) -> nn.Module:
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)]
    return nn.Sequential(*layers)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="cifar10")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-train-samples", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU with AMX, or CUDA)")
    args = ap.parse_args(argv)

    from bench.registry import DATASETS

    torch.manual_seed(args.seed)
    ds = DATASETS.get(args.data)(args.data_root, allow_subset=True)
    n = len(ds.train_labels) if args.max_train_samples is None else args.max_train_samples
    xtr, ytr = ds.train_images[:n].float(), ds.train_labels[:n]
    xte, yte = ds.test_images.float(), ds.test_labels
    mean = torch.tensor([125.3, 123.0, 113.9]).view(1, 3, 1, 1)
    std = torch.tensor([63.0, 62.1, 66.7]).view(1, 3, 1, 1)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std

    model = resnet20(ds.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    batch = args.batch_size
    steps = args.epochs * -(-n // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps, pct_start=0.15)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            x = F.pad(xtr[idx], (4, 4, 4, 4), mode="reflect")
            dy, dx = torch.randint(0, 9, (2,)).tolist()
            x = x[:, :, dy:dy + 32, dx:dx + 32]
            if ds.hflip:
                flip = torch.rand(len(idx)) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                loss = F.cross_entropy(model(x), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - t0
    model.eval()
    correct = 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        for i in range(0, len(yte), 500):
            correct += int((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum())
    out = {"test_top1": round(100.0 * correct / len(yte), 2), "epochs": args.epochs, "seed": args.seed,
           "train_images": n, "batch_size": batch, "seconds": round(seconds, 1)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
