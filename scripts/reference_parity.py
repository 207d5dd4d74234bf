"""Golden parity of our baselines with their authors' code; writes the fixtures ``tests/test_parity.py`` checks.

    .venv/bin/python scripts/reference_parity.py AUTHORS_DIR [--out tests/fixtures] [--data-root ../shared/data]

``AUTHORS_DIR`` holds git checkouts of the three published repositories, in folders whose names contain
``InfoPro``, ``layerCNN`` and ``DGL``:

* github.com/blackfeather-wang/InfoPro-Pytorch (``Experiments on CIFAR-SVHN-STL10/networks``),
* github.com/eugenium/layerCNN (``model_greedy.py``),
* github.com/eugenium/DGL (``auxiliary_nets_study/models.py``).

For every case of ``tests/parity.py`` (InfoPro on ResNet-32 with K = 2, 4, 8 in both loss modes; layerCNN's conv
head; DGL's MLP-SR head) it builds our model and the authors', copies *our* seeded initial weights into theirs,
feeds both the same real CIFAR-10 batch (the first 16 images of ``data_batch_1``, no augmentation, the authors'
normalisation), runs 3 optimisation steps in each, and records per-module losses, per-parameter gradient norms and
checksums after every step. It asserts that ours matches theirs (printing the largest relative differences), then
writes what the authors' code computed, with the batch, to the fixtures. It also compares the peak activation
memory of our InfoPro (ResNet-32, K = 4, batch 128) with the same saved-tensor count on the authors' model.

Nothing here is imported by the package or needed by the tests; it needs the authors' code and the dataset.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import importlib.util
import io
import itertools
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.heads import infopro_published_weights  # noqa: E402
from bench.measure import SavedTensorCounter  # noqa: E402
from tests import parity  # noqa: E402

TOLERANCE = 1e-5
BATCH_SIZE = 16  # float64 ResNet-32 steps on a CPU: about 3 s per case at 16 images
MEMORY_BATCH_SIZE = 128
REPOSITORIES = {
    "infopro": ("InfoPro", "github.com/blackfeather-wang/InfoPro-Pytorch"),
    "layercnn": ("layerCNN", "github.com/eugenium/layerCNN"),
    "dgl": ("DGL", "github.com/eugenium/DGL"),
}


# --- the authors' code ------------------------------------------------------------------------------------------


def find_checkout(root: Path, marker: str) -> Path:
    found = sorted(p for p in root.iterdir() if p.is_dir() and marker.lower() in p.name.lower())
    if len(found) != 1:
        raise SystemExit(f"expected one folder with {marker!r} in its name under {root}, found {found}")
    return found[0]


def commit_of(path: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit(f"{path} is not a git checkout: the fixture records the authors' commit") from None


def load_file(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def cpu_only():
    """The authors' InfoProResNet puts its normalisation masks on CUDA in ``__init__``; keep them on the CPU."""
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


@contextlib.contextmanager
def on_backward(callback):
    """Call ``callback(loss)`` at every ``loss.backward()`` (the authors' forward backwards each module's loss)."""
    original = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        callback(self)
        return original(self, *args, **kwargs)

    torch.Tensor.backward = backward
    try:
        yield
    finally:
        torch.Tensor.backward = original


def published_infopro_weights(infopro_dir: Path) -> dict[int, dict[str, float]]:
    """``ixx_1, ixy_1, ixx_2, ixy_2`` of the ResNet-32 CIFAR-10 commands in the authors' ``comand.sh``."""
    text = (infopro_dir / "Experiments on CIFAR-SVHN-STL10" / "comand.sh").read_text()
    text = text.split("###### STL-10")[0]
    weights = {}
    for line in text.splitlines():
        if "--layers 32 " not in line or "--balanced_memory" in line:
            continue
        k = int(re.search(r"--local_module_num (\d+)", line).group(1))
        weights[k] = {key: float(re.search(rf"--{key} ([\d.]+)", line).group(1))
                      for key in ("ixx_1", "ixy_1", "ixx_2", "ixy_2")}
    return weights


# --- mapping their tensors to our names -------------------------------------------------------------------------


def their_state(module: nn.Module, skip: tuple[str, ...] = ()) -> list[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of parameters and BN statistics, each tensor once (shared ones by first name)."""
    seen: set[int] = set()
    out = []
    for name, t in module.state_dict(keep_vars=True).items():
        if name.endswith("num_batches_tracked") or name.startswith(skip) or id(t) in seen:
            continue
        seen.add(id(t))
        out.append((name, t))
    return out


def match(theirs: list[tuple[str, torch.Tensor]], ours: list[str], shapes: dict[str, torch.Size]) -> dict[str, str]:
    """Pair their tensors with our names in order, checking every shape."""
    if len(theirs) != len(ours):
        raise AssertionError(f"{len(theirs)} tensors in the authors' model, {len(ours)} in ours:\n"
                             f"{[n for n, _ in theirs]}\n{ours}")
    mapping = {}
    for (their_name, t), our_name in zip(theirs, ours, strict=True):
        if tuple(t.shape) != tuple(shapes[our_name]):
            raise AssertionError(f"{their_name} {tuple(t.shape)} vs our {our_name} {tuple(shapes[our_name])}")
        mapping[their_name] = our_name
    return mapping


def copy_into(tensors: dict[str, torch.Tensor], mapping: dict[str, str], initial: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for their_name, our_name in mapping.items():
            tensors[their_name].copy_(initial[our_name])


def train_theirs(step_fn, params: dict[str, nn.Parameter], tensors: dict[str, torch.Tensor],
                 mapping: dict[str, str], optimizer: torch.optim.Optimizer, steps: int) -> parity.Record:
    """Run ``steps`` times ``step_fn() -> per-module losses`` + optimizer step, recording under our names."""
    record = parity.Record()
    state = {our: tensors[their] for their, our in mapping.items()}
    record.snapshot(state)
    for _ in range(steps):
        optimizer.zero_grad()
        record.losses.append(step_fn())
        record.grad_norms.append({mapping[n]: p.grad.double().norm().item()
                                  for n, p in params.items() if p.grad is not None})
        optimizer.step()
        record.snapshot(state)
    return record


# --- cases -------------------------------------------------------------------------------------------------------


def build_infopro(networks, case, batch_size: int):
    with cpu_only():
        model = networks.resnet32(
            local_module_num=case["k"], batch_size=batch_size, image_size=32, balanced_memory=False,
            dataset="cifar10", class_num=10, wide_list=(16, 16, 32, 64), dropout_rate=0, aux_net_config="1c2f",
            local_loss_mode=case["loss_mode"], aux_net_widen=1, aux_net_feature_dim=128,
        )
    # In float64 the un-normalised image can land ~1e-8 outside [0, 1], which nn.BCELoss refuses; clamp it, as our
    # infopro_reconstruction_loss does (a no-op in exact arithmetic).
    restore = model._image_restore
    model._image_restore = lambda image: restore(image).clamp(0.0, 1.0)
    return model.to(getattr(torch, case.get("dtype", "float32")))


def infopro_mapping(model, ours: parity.Record, loss_mode: str) -> dict[str, str]:
    names = list(ours.initial_state)
    shapes = {n: t.shape for n, t in ours.initial_state.items()}
    theirs = their_state(model)
    mapping = match([(n, t) for n, t in theirs if not n.startswith(("decoder_", "aux_classifier_"))],
                    [n for n in names if n.startswith("net.")], shapes)
    aux_net = "projector" if loss_mode == "contrast" else "classifier"
    for k, (stage, layer) in enumerate(model.infopro_config):
        for theirs_prefix, ours_prefix in ((f"decoder_{stage}_{layer}.decoder.", f"aux{k}.decoder."),
                                           (f"aux_classifier_{stage}_{layer}.head.", f"aux{k}.{aux_net}.")):
            mapping.update(match([(n, t) for n, t in theirs if n.startswith(theirs_prefix)],
                                 [n for n in names if n.startswith(ours_prefix)], shapes))
    return mapping


def run_infopro_theirs(networks, case, weights, ours: parity.Record, x, y) -> parity.Record:
    model = build_infopro(networks, case, len(y))
    mapping = infopro_mapping(model, ours, case["loss_mode"])
    tensors = dict(model.state_dict(keep_vars=True))
    copy_into(tensors, mapping, ours.initial_state)
    opt = case["optim"]
    optimizer = torch.optim.SGD(model.parameters(), lr=opt["lr"], momentum=opt["momentum"],
                                nesterov=opt["nesterov"], weight_decay=opt["weight_decay"])  # train.py
    model.train()

    def step():
        losses: list[float] = []
        with on_backward(lambda loss: losses.append(loss.item())):
            model(img=x, target=y, **weights)
        return losses

    return train_theirs(step, dict(model.named_parameters()), tensors, mapping, optimizer, case["steps"])


def run_head_theirs(module, case, ours: parity.Record, x, y) -> parity.Record:
    """layerCNN: ``greedyNet`` + ``auxillary_classifier`` as ``cifar.py`` builds them (README's best CIFAR-10
    command ``--ncnn 4 --nlin 2 --feature_size 128 --down [1] --bn 1``); DGL: ``Net(aux_type='mlp-sr')`` module 0
    and its ``auxillary_classifier2``, as ``cifar_dgl.py``."""
    c = case["channels"]
    if case["head"] == "conv":
        net = module.greedyNet(module.block_conv, 1, c, downsample=[1], batchnorm=True)
        net_c = module.auxillary_classifier(avg_size=16, in_size=32, n_lin=2, feature_size=c, input_features=c,
                                            batchn=True)
        model = nn.Sequential(net, net_c)
        net.unfreezeGradient(0)
        trained = [p for p in model.parameters() if p.requires_grad]
        model.to(x.dtype)
        theirs = their_state(model)

        def forward():
            return model([x, 0])
    else:
        net = module.Net(aux_type="mlp-sr").to(x.dtype)
        model = nn.ModuleDict({"block": net.blocks[0], "aux": net.auxillary_nets[0]})
        trained = list(itertools.chain(net.blocks[0].parameters(), net.auxillary_nets[0].parameters()))
        theirs = their_state(model, skip=("aux.bn.",))  # built but unused when the head has an MLP

        def forward():
            return net(x, n=0)[0]
    shapes = {n: t.shape for n, t in ours.initial_state.items()}
    mapping = match(theirs, list(ours.initial_state), shapes)
    tensors = dict(theirs)
    copy_into(tensors, mapping, ours.initial_state)
    opt = case["optim"]
    optimizer = torch.optim.SGD(trained, lr=opt["lr"], momentum=opt["momentum"], weight_decay=opt["weight_decay"])
    criterion = nn.CrossEntropyLoss()
    model.train()
    params = {n: p for n, p in model.named_parameters() if n in mapping}

    def step():
        loss = criterion(forward(), y)
        loss.backward()
        return [loss.item()]

    return train_theirs(step, params, tensors, mapping, optimizer, case["steps"])


def fixture_entry(case, theirs: parity.Record, commit: str, repository: str, files: list[str]) -> dict[str, Any]:
    param_names = list(theirs.grad_norms[0])
    state_names = list(theirs.checksums[0])
    return {
        **case,
        "authors": {"repository": repository, "commit": commit, "files": files},
        "param_names": param_names,
        "state_names": state_names,
        "losses": compact(theirs.losses),
        "grad_norms": compact([[g[n] for n in param_names] for g in theirs.grad_norms]),
        "checksums": compact([[c[n] for n in state_names] for c in theirs.checksums]),
    }


def compact(value):
    """Floats to 9 significant digits: rounding of 5e-9 relative, far below the tolerance."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, list | tuple):
        return [compact(v) for v in value]
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    return value


# --- memory ------------------------------------------------------------------------------------------------------


def infopro_memory(networks, weights, images_u8, labels) -> dict[str, Any]:
    """Saved-tensor bytes of each local step: ours (the engine's meter) and the authors' model (same counter, reset
    at each of their ``loss.backward()``), ResNet-32, K = 4, contrast, one step."""
    case = {**parity.infopro_case(4, "contrast"), "steps": 1, "dtype": "float32"}
    ours, _ = parity.run_infopro(case, images_u8, labels)
    inline, _ = parity.run_infopro(case, images_u8, labels, engine_defer=False)
    model = build_infopro(networks, case, len(labels))
    copy_into(dict(model.state_dict(keep_vars=True)), infopro_mapping(model, ours, "contrast"), ours.initial_state)
    model.train()
    counter = SavedTensorCounter(exclude=model.parameters())
    per_module: list[int] = []

    def close_module(loss):
        per_module.append(counter.bytes)
        counter.bytes = 0
        counter.seen.clear()

    x = parity.normalise(images_u8, case["normalisation"]["mean"], case["normalisation"]["std"])
    with on_backward(close_module), counter.counting():
        model(img=x, target=labels, **weights[4])
    return {
        "ours": ours.extra["module_activation_bytes"],
        "ours_probe_inside_meter": inline.extra["module_activation_bytes"],
        "authors": per_module,
    }


# --- main --------------------------------------------------------------------------------------------------------


def load_cifar_rows(data_root: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    path = data_root / "cifar-10-batches-py" / "data_batch_1"
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    images = np.asarray(d[b"data"][:n], dtype=np.uint8).reshape(n, 3, 32, 32)
    return images, np.asarray(d[b"labels"][:n], dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("authors_dir", type=Path, help="folder with the InfoPro-Pytorch, layerCNN and DGL checkouts")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures")
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    dirs = {key: find_checkout(args.authors_dir, marker) for key, (marker, _) in REPOSITORIES.items()}
    commits = {key: commit_of(path) for key, path in dirs.items()}
    sys.path.insert(0, str(dirs["infopro"] / "Experiments on CIFAR-SVHN-STL10"))
    with contextlib.redirect_stdout(io.StringIO()):
        networks = importlib.import_module("networks.resnet")
        layercnn = load_file("layercnn_model_greedy", dirs["layercnn"] / "model_greedy.py")
        dgl = load_file("dgl_models", dirs["dgl"] / "auxiliary_nets_study" / "models.py")
    weights = published_infopro_weights(dirs["infopro"])
    for k, w in weights.items():  # our table of the published weights is what the authors' commands say
        assert infopro_published_weights("cifar_resnet32", k) == w, (k, w)

    images_np, labels_np = load_cifar_rows(args.data_root, max(BATCH_SIZE, MEMORY_BATCH_SIZE))
    images, labels = torch.from_numpy(images_np[:BATCH_SIZE]), torch.from_numpy(labels_np[:BATCH_SIZE])
    entries, failures = [], []
    for case in parity.CASES:
        norm = case["normalisation"]
        x = parity.normalise(images, norm["mean"], norm["std"], case["dtype"])
        ours = parity.run_case(case, images, labels)
        if case["kind"] == "infopro":
            theirs = run_infopro_theirs(networks, case, weights[case["k"]], ours, x, labels)
            key, files = "infopro", ["Experiments on CIFAR-SVHN-STL10/networks/resnet.py",
                                     "Experiments on CIFAR-SVHN-STL10/networks/auxiliary_nets.py",
                                     "Experiments on CIFAR-SVHN-STL10/networks/losses.py",
                                     "Experiments on CIFAR-SVHN-STL10/train.py"]
        elif case["head"] == "conv":
            theirs = run_head_theirs(layercnn, case, ours, x, labels)
            key, files = "layercnn", ["model_greedy.py", "cifar.py"]
        else:
            theirs = run_head_theirs(dgl, case, ours, x, labels)
            key, files = "dgl", ["auxiliary_nets_study/models.py", "auxiliary_nets_study/cifar_dgl.py"]
        entry = fixture_entry(case, theirs, commits[key], REPOSITORIES[key][1], files)
        worst = parity.relative_differences(ours, entry)
        print(f"{case['name']:48s} " + "  ".join(f"{kind} {rel:.2e}" for kind, (rel, _) in worst.items()))
        for kind, (rel, where) in worst.items():
            if not rel <= TOLERANCE:
                failures.append(f"{case['name']}: {kind} differs by {rel:.3g} relative at {where}")
        ours_only = sorted(set(ours.grad_norms[0]) - set(entry["param_names"]))
        probe = case.get("loss_mode") == "contrast"
        unexpected = [n for n in ours_only if not (probe and re.match(r"aux\d+\.classifier\.", n))]
        if unexpected:
            failures.append(f"{case['name']}: tensors of ours without a counterpart: {', '.join(unexpected)}")
        elif ours_only:
            print(f"{'':48s} not compared: the {len(ours_only)} tensors of our contrast-mode probe")
        entries.append(entry)

    memory = infopro_memory(networks, weights, torch.from_numpy(images_np[:MEMORY_BATCH_SIZE]),
                            torch.from_numpy(labels_np[:MEMORY_BATCH_SIZE]))
    peak = {k: max(v) for k, v in memory.items()}
    print(f"InfoPro ResNet-32 K=4 batch {MEMORY_BATCH_SIZE}, saved-activation bytes per local step: {memory}")
    print(f"peak: ours {peak['ours']}, authors {peak['authors']} ({peak['ours'] / peak['authors'] - 1:+.2%}); "
          f"with the probe inside the meter {peak['ours_probe_inside_meter']} "
          f"({peak['ours_probe_inside_meter'] / peak['authors'] - 1:+.2%})")
    if abs(peak["ours"] / peak["authors"] - 1) > 0.01:
        failures.append(f"peak activation bytes: ours {peak['ours']} vs the authors' {peak['authors']}")
    if failures:
        print("\n".join(["ours does not match the authors' code:", *failures]), file=sys.stderr)
        return 1

    args.out.mkdir(parents=True, exist_ok=True)
    batch_path = args.out / parity.BATCH_FILE.name
    np.savez_compressed(batch_path, images=images_np[:BATCH_SIZE], labels=labels_np[:BATCH_SIZE],
                        indices=np.arange(BATCH_SIZE))
    document = {
        "description": "What the authors' code computed on the stored batch from our seeded initial weights "
                       "(written by scripts/reference_parity.py; checked by tests/test_parity.py).",
        "batch": {"file": batch_path.name, "sha256": hashlib.sha256(batch_path.read_bytes()).hexdigest(),
                  "source": f"CIFAR-10 cifar-10-batches-py/data_batch_1, rows 0..{BATCH_SIZE - 1} (uint8, "
                            "no augmentation)"},
        "tolerance": TOLERANCE,
        "cases": entries,
    }
    (args.out / parity.CASES_FILE.name).write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {batch_path} and {args.out / parity.CASES_FILE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
