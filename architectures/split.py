"""Split a timm CNN into K local modules: a ``StagedNet``.

A model is first seen as an ordered list of atoms (stem, residual blocks; see ``bench.architectures.families``)
plus its own head. A split string then says where modules start:

* ``stages``: one module per backbone stage, as in timm's ``feature_info`` (a stem tap is merged into the first
  module);
* ``blocks:K``: K modules of contiguous residual blocks, as even as possible in block count (the stem joins the first
  module; the larger groups come first); for ``cifar_resnet32`` / ``cifar_resnet110`` with a K that InfoPro
  published (2, 3, 4, 8, 16), InfoPro's cut points instead;
* ``balanced:K``: K modules with about equal activation memory (see ``activation_costs``): the contiguous partition
  minimising the largest module's cost, then, among those, the sum of squared costs;
* ``cuts:i,j,...``: explicit atom indices where a new module starts (``count_atoms`` / ``describe_atoms`` list them).

``build_staged`` builds the timm model (never pretrained), optionally gives it a CIFAR stem, and splits it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from itertools import pairwise

import timm
import torch
from timm.models import is_model, is_model_in_modules
from torch import nn

import bench.architectures.cifar_resnet  # noqa: F401  (registers the CIFAR ResNets into timm)
from bench.architectures.cifar_resnet import infopro_cut_points
from bench.architectures.families import FAMILIES, Body, apply_cifar_stem, body_of
from bench.errors import ArchitectureError, UnknownNameError
from bench.staged import StagedNet

__all__ = [
    "BUILTIN_ARCHITECTURES",
    "UnknownArchitectureError",
    "activation_costs",
    "build_staged",
    "count_atoms",
    "describe_atoms",
    "list_architectures",
    "parse_split",
    "split_model",
    "supported_family",
]

# The architectures listed by ``bench list archs`` (any other model of a supported family works too).
BUILTIN_ARCHITECTURES = (
    "cifar_resnet20",
    "cifar_resnet32",
    "cifar_resnet56",
    "cifar_resnet110",
    "resnet18",
    "resnet34",
    "resnet50",
    "convnext_atto",
    "efficientnet_b0",
    "mobilenetv3_small_100",
    "regnetx_002",
    "vgg11",
)

SPLIT_HELP = (
    "accepted splits: 'stages' (one module per backbone stage), 'blocks:K' (K modules of about equal block count), "
    "'balanced:K' (K modules of about equal activation memory), 'cuts:i,j,...' (atom indices where a new module "
    "starts, increasing)"
)


class UnknownArchitectureError(UnknownNameError, ArchitectureError):
    """A name that is no timm model (nor one of ours)."""


# --- split strings -------------------------------------------------------------------------------------------------


def parse_split(split: str) -> tuple[str, int | tuple[int, ...] | None]:
    """``'stages'`` -> ``('stages', None)``, ``'blocks:4'`` -> ``('blocks', 4)``, ``'cuts:3,7'`` -> ``('cuts', (3, 7))``.

    Only the syntax is checked here (K >= 1, cuts increasing and >= 1); ranges depend on the model.
    """
    s = re.sub(r"\s+", "", str(split)).lower()
    if s == "stages":
        return "stages", None
    m = re.fullmatch(r"(blocks|balanced):(-?\d+)", s)
    if m:
        k = int(m.group(2))
        if k < 1:
            raise ArchitectureError(f"split {split!r}: K must be at least 1; {SPLIT_HELP}")
        return m.group(1), k
    m = re.fullmatch(r"cuts:(\d+(?:,\d+)*)", s)
    if m:
        cuts = tuple(int(c) for c in m.group(1).split(","))
        if any(b <= a for a, b in pairwise(cuts)) or cuts[0] < 1:
            raise ArchitectureError(
                f"split {split!r}: cut points must be strictly increasing atom indices >= 1; {SPLIT_HELP}"
            )
        return "cuts", cuts
    raise ArchitectureError(f"invalid split {split!r}; {SPLIT_HELP}")


def _even_cuts(n: int, k: int, skip_first: int) -> list[int]:
    """Start indices of k contiguous groups of atoms ``skip_first..n-1`` (sizes differ by at most 1, larger first);
    atoms before ``skip_first`` join the first group."""
    m = n - skip_first
    sizes = [m // k + (1 if g < m % k else 0) for g in range(k)]
    cuts, start = [], skip_first
    for size in sizes[:-1]:
        start += size
        cuts.append(start)
    return cuts


def _blocks_cuts(body: Body, k: int) -> list[int]:
    n = body.num_atoms
    if body.depth is not None:
        published = infopro_cut_points(body.depth, k)
        if published is not None:
            return published
    blocks = n - 1 if body.has_stem else n
    if k <= blocks:
        return _even_cuts(n, k, 1 if body.has_stem else 0)
    return list(range(1, n))  # k == n: one atom per module (the stem alone)


def _balanced_cuts(costs: list[float], k: int) -> list[int]:
    """Contiguous partition of ``costs`` into k groups: minimal largest group, then minimal sum of squares."""
    n = len(costs)
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + c)

    def seg(i: int, j: int) -> float:  # atoms i..j-1
        return prefix[j] - prefix[i]

    inf = float("inf")
    # pass 1: the smallest achievable largest-module cost
    best = [[inf] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for g in range(1, k + 1):
        for j in range(g, n - (k - g) + 1):
            best[g][j] = min(max(best[g - 1][i], seg(i, j)) for i in range(g - 1, j))
    limit = best[k][n] * (1 + 1e-9)
    # pass 2: among partitions within that limit, the smallest sum of squared module costs
    sq = [[inf] * (n + 1) for _ in range(k + 1)]
    arg = [[0] * (n + 1) for _ in range(k + 1)]
    sq[0][0] = 0.0
    for g in range(1, k + 1):
        for j in range(g, n - (k - g) + 1):
            for i in range(g - 1, j):
                c = seg(i, j)
                if c <= limit and sq[g - 1][i] + c * c < sq[g][j]:
                    sq[g][j], arg[g][j] = sq[g - 1][i] + c * c, i
    cuts, j = [], n
    for g in range(k, 1, -1):
        j = arg[g][j]
        cuts.append(j)
    return sorted(cuts)


def _cut_points(body: Body, kind: str, arg, split: str, costs: list[float] | None) -> list[int]:
    n = body.num_atoms
    if kind == "stages":
        return [end + 1 for end in body.stage_ends[:-1]]
    if kind == "cuts":
        cuts = list(arg)
        if cuts[-1] >= n:
            raise ArchitectureError(
                f"split {split!r}: this model has {n} atoms (indices 0..{n - 1}); a cut point must be 1..{n - 1}"
            )
        return cuts
    k = int(arg)
    if k > n:
        raise ArchitectureError(
            f"split {split!r}: K = {k} is larger than the number of atoms (this model has {n} atoms); "
            f"use K from 1 to {n}"
        )
    if kind == "blocks":
        return _blocks_cuts(body, k)
    assert costs is not None
    return _balanced_cuts(costs, k)


# --- activation proxy ----------------------------------------------------------------------------------------------


@torch.no_grad()
def activation_costs(atoms: list[nn.Module], input_shape: tuple[int, int, int]) -> list[int]:
    """Per-atom activation-memory proxy: the summed numel of every leaf module's output in one dummy forward of a
    single image (what autograd would roughly save for backward), eval mode."""
    costs = [0] * len(atoms)
    current = [0]

    def hook(_module, _inputs, output) -> None:
        tensors = output if isinstance(output, (tuple, list)) else (output,)
        costs[current[0]] += sum(t.numel() for t in tensors if isinstance(t, torch.Tensor))

    handles = []
    modes = []
    for atom in atoms:
        modes.append(atom.training)
        atom.eval()
        for m in atom.modules():
            if next(m.children(), None) is None:
                handles.append(m.register_forward_hook(hook))
    try:
        x = torch.zeros(1, *input_shape)
        for i, atom in enumerate(atoms):
            current[0] = i
            x = atom(x)
            if costs[i] == 0:  # an atom without leaf modules: count its output
                costs[i] = x.numel()
    finally:
        for h in handles:
            h.remove()
        for atom, mode in zip(atoms, modes, strict=True):
            atom.train(mode)
    return costs


# --- splitting -----------------------------------------------------------------------------------------------------


def split_model(
    model: nn.Module,
    split: str = "stages",
    *,
    arch: str | None = None,
    input_shape: tuple[int, int, int] = (3, 32, 32),
    num_classes: int | None = None,
) -> StagedNet:
    """Split an already built model (ResNet, ConvNeXt, EfficientNet, MobileNetV3, RegNet, VGG, CIFAR ResNet).

    The StagedNet's modules and head share the model's own submodules, so both compute the same function. Extra
    attributes on the result: ``family``, ``cuts`` (first atom of every module but the first), ``module_atoms``
    (atom names per module), ``module_costs`` (activation proxy per module), ``num_atoms``.
    """
    kind, arg = parse_split(split)
    body = body_of(model)
    names = [name for name, _ in body.atoms]
    modules = [m for _, m in body.atoms]
    try:
        costs = activation_costs(modules, input_shape)
    except RuntimeError as e:
        raise ArchitectureError(
            f"{arch or type(model).__name__} cannot run on inputs of shape {tuple(input_shape)}: {e}; "
            "use a larger image size or cifar_stem=True"
        ) from e
    cuts = _cut_points(body, kind, arg, split, costs)
    spans = list(pairwise([0, *cuts, body.num_atoms]))
    stages = [nn.Sequential(OrderedDict((names[i], modules[i]) for i in range(a, b))) for a, b in spans]
    normalized = "stages" if kind == "stages" else f"{kind}:{','.join(map(str, arg)) if kind == 'cuts' else arg}"
    net = StagedNet(
        stages,
        body.head,
        arch=arch or type(model).__name__,
        split=normalized,
        input_shape=tuple(input_shape),
        num_classes=num_classes if num_classes is not None else getattr(model, "num_classes", 0),
    )
    net.family = body.family
    net.cuts = cuts
    net.num_atoms = body.num_atoms
    net.module_atoms = [names[a:b] for a, b in spans]
    net.module_costs = [sum(costs[a:b]) for a, b in spans]
    return net


def supported_family(name: str) -> str | None:
    """The splitter family of a timm model name (``'resnet'``, ``'convnext'``, ...), or None if not splittable."""
    base = name.split(".")[0]
    if not is_model(base):
        return None
    for family, fam in FAMILIES.items():
        if is_model_in_modules(base, [fam.timm_module]):
            return family
    return None


def _check_name(name: str) -> str:
    family = supported_family(name)
    if family is not None:
        return family
    families = ", ".join(FAMILIES)
    if is_model(name.split(".")[0]):
        raise ArchitectureError(
            f"architecture {name!r} is a timm model, but its family cannot be split; supported families: {families}"
        )
    raise UnknownArchitectureError(
        f"unknown architecture {name!r}: not a timm model name. Built-in: {', '.join(BUILTIN_ARCHITECTURES)}; "
        f"any timm model of these families works too: {families}"
    )


def _create(name: str, num_classes: int, in_chans: int, image_size: int, cifar_stem: bool | None):
    family = _check_name(name)
    model = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)
    use_cifar_stem = image_size <= 64 if cifar_stem is None else bool(cifar_stem)
    if family == "cifar_resnet":
        use_cifar_stem = True  # built with a 3x3 stride-1 stem and no pooling
    elif use_cifar_stem:
        apply_cifar_stem(model)
    return model, use_cifar_stem


def build_staged(
    name: str,
    *,
    num_classes: int,
    split: str = "stages",
    image_size: int = 32,
    in_chans: int = 3,
    cifar_stem: bool | None = None,
) -> StagedNet:
    """Build ``timm.create_model(name, pretrained=False)`` and split it into local modules.

    Args:
        name: a timm model name of a supported family, or ``cifar_resnet20/32/56/110``.
        num_classes: classifier outputs.
        split: ``stages``, ``blocks:K``, ``balanced:K`` or ``cuts:i,j,...`` (see the module docstring).
        image_size: input height = width, for the shape probe and the activation proxy.
        in_chans: input channels.
        cifar_stem: give the model a 3x3 stride-1 stem without pooling; None = when ``image_size <= 64``.
            CIFAR ResNets always have one.

    Returns:
        A StagedNet with extra attributes ``cifar_stem``, ``family``, ``cuts``, ``module_atoms``, ``module_costs``.
    """
    parse_split(split)  # fail on syntax before building anything
    model, use_cifar_stem = _create(name, num_classes, in_chans, image_size, cifar_stem)
    net = split_model(model, split, arch=name, input_shape=(in_chans, image_size, image_size), num_classes=num_classes)
    net.cifar_stem = use_cifar_stem
    return net


def _meta_model(name: str, image_size: int = 32) -> nn.Module:
    """The model as ``build_staged`` would build it, with parameters on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model, _ = _create(name, 10, 3, image_size, None)
    return model


def count_atoms(name: str) -> int:
    """Number of atoms (stem + blocks; conv layers for VGG) of an architecture: ``cuts:`` indices are 1..n-1."""
    return body_of(_meta_model(name)).num_atoms


def describe_atoms(name: str) -> list[dict]:
    """One row per atom: index, name, parameter count, and whether a backbone stage ends there."""
    body = body_of(_meta_model(name))
    return [
        {
            "index": i,
            "name": atom_name,
            "params": sum(p.numel() for p in atom.parameters()),
            "stage_end": i in body.stage_ends,
        }
        for i, (atom_name, atom) in enumerate(body.atoms)
    ]


def list_architectures(names: tuple[str, ...] | list[str] = BUILTIN_ARCHITECTURES) -> list[dict]:
    """One row per architecture: name, family, num_stages, num_atoms, params (10 classes, 32x32, CIFAR stem)."""
    rows = []
    for name in names:
        model = _meta_model(name)
        body = body_of(model)
        rows.append(
            {
                "name": name,
                "family": body.family,
                "num_stages": body.num_stages,
                "num_atoms": body.num_atoms,
                "params": sum(p.numel() for p in model.parameters()),
            }
        )
    return rows
