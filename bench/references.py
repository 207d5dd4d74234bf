"""Published reference numbers, kept as data with their source, shown beside our own leaderboard tables.

The data are the InfoPro paper's Table 2 (test error of every method for K local modules, five networks and
datasets) and Table 3 (ResNet-110: test error, GPU memory and computational overhead), in
``bench/reference_data/*.csv`` (package data; that folder's README says how they were transcribed). Every row
is loaded: rows that map to a harness configuration are shown beside our numbers on the matching ``paper-*``
protocol, the others (Greedy SL+, Asy-InfoPro, gradient checkpointing, DenseNet, SVHN, STL-10) are kept as
published-only data.

Each entry says where it comes from (``source``) and whether it was checked against that source
(``verified``); the leaderboard prints both, so an unchecked figure is never presented as a checked one.

Method names are this benchmark's (``sgd``, ``greedy_ce``, ``dgl``, ``infopro``); ``paper_label`` is the name
the paper uses ("E2E", "Greedy SL", "DGL", "InfoPro (Contrast)", ...). ``k`` is the number of local modules,
``None`` for end-to-end training. :data:`LABELS` maps a label to the harness configuration it corresponds to.

To add a number: add its row to the CSV (or a ``PublishedError`` / ``PublishedMemory`` to the tuples below) with
the table it comes from in ``source``. Do not add a number that you have not read in the source yourself.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

INFOPRO_PAPER = (
    'Wang, Ni, Song, Yang, Huang, "Revisiting Locally Supervised Learning: an Alternative to End-to-end '
    'Training", ICLR 2021'
)
INFOPRO_URL = "https://openreview.net/forum?id=fAbkE6ant2"
INFOPRO_SHORT = "Wang et al., ICLR 2021"
INFOPRO_REPO = "https://github.com/blackfeather-wang/InfoPro-Pytorch"

DATA_PACKAGE = "bench"
DATA_FOLDER = "reference_data"
TABLE2_FILE = "infopro_iclr2021_tables.csv"
TABLE3_FILE = "infopro_iclr2021_memory.csv"

TABLE2_SOURCE = f"{INFOPRO_SHORT}, Table 2 (from the authors' figs/cifar_k.png)"
TABLE3_SOURCE = f"{INFOPRO_SHORT}, Table 3 (from the authors' figs/cifar.png)"

PUBLISHED_STATISTIC = "as published: mean ± std of 5 trials"
"""What the paper's numbers are: Table 2's caption, "The averaged test errors and standard deviations of 5
independent trials are reported"."""

STATISTIC_NOTE = (
    "the paper does not say at which epoch the test error is taken: the authors' train.py evaluates the test set "
    "after every epoch and keeps both the per-epoch accuracy and the best one"
)

PROTOCOLS: dict[tuple[str, str], str] = {
    ("cifar10", "resnet32"): "paper-cifar10-resnet32",
    ("cifar10", "resnet110"): "paper-cifar10-resnet110",
}
"""(dataset, network) of a published table -> the protocol that follows its recipe."""

PROTOCOL_ARCHITECTURES: dict[str, str] = {
    "paper-cifar10-resnet32": "cifar_resnet32",
    "paper-cifar10-resnet110": "cifar_resnet110",
}
"""Protocols whose setting matches a published one, and the architecture each one trains."""

NETWORK_NAMES = {"resnet32": "ResNet-32", "resnet110": "ResNet-110", "densenet_bc_100_12": "DenseNet-BC-100-12"}


@dataclass(frozen=True)
class HarnessConfig:
    """The harness configuration a published row corresponds to: what a result must have to be compared with it.

    ``None`` fields take any value. ``split`` may contain ``{k}`` (the row's K).
    """

    method: str
    schedule: str | None = None
    aux: str | None = None
    split: str | None = None
    hparams: tuple[tuple[str, Any], ...] = ()

    def split_for(self, k: int | None) -> str | None:
        return None if self.split is None or k is None else self.split.format(k=k)

    def describe(self, k: int | None = None) -> str:
        """``infopro (loss_mode=contrast)``, ``greedy_ce (simultaneous, aux linear)``, ``sgd``."""
        parts = [f"{key}={value}" for key, value in self.hparams]
        if self.schedule and self.method != "sgd":
            parts.append(self.schedule)
        if self.aux:
            parts.append(f"aux {self.aux}")
        split = self.split_for(k)
        if split and not split.startswith("blocks:"):
            parts.append(f"split {split}")
        return self.method + (f" ({', '.join(parts)})" if parts else "")

    def matches(self, *, method: Any, k: Any, schedule: Any, aux: Any, split: Any, hparams: dict[str, Any],
                row_k: int | None) -> bool:
        """Whether a result with these settings is this configuration at K = ``row_k`` (any K for end to end)."""
        if method != self.method:
            return False
        if row_k is not None and k != row_k:
            return False
        if self.schedule is not None and schedule != self.schedule:
            return False
        if self.aux is not None and aux != self.aux:
            return False
        wanted_split = self.split_for(row_k)
        if wanted_split is not None and split != wanted_split:
            return False
        return all(hparams.get(key) == value for key, value in self.hparams)


_SIMULTANEOUS_BLOCKS = {"schedule": "simultaneous", "split": "blocks:{k}"}

LABELS: dict[str, HarnessConfig | None] = {
    "E2E": HarnessConfig("sgd"),
    "E2E Training": HarnessConfig("sgd"),
    "Greedy SL": HarnessConfig("greedy_ce", aux="linear", **_SIMULTANEOUS_BLOCKS),
    "DGL": HarnessConfig("dgl", **_SIMULTANEOUS_BLOCKS),
    "InfoPro (Softmax)": HarnessConfig("infopro", hparams=(("loss_mode", "cross_entropy"),), **_SIMULTANEOUS_BLOCKS),
    "InfoPro (Contrast)": HarnessConfig("infopro", hparams=(("loss_mode", "contrast"),), **_SIMULTANEOUS_BLOCKS),
    "InfoPro* (balanced memory)": HarnessConfig(
        "infopro", schedule="simultaneous", split="balanced:{k}", hparams=(("loss_mode", "contrast"),)
    ),
    "Greedy SL+": None,
    "Asy-InfoPro (Contrast)": None,
    "GC (gradient checkpointing)": None,
}
"""The paper's method labels -> the harness configuration each corresponds to (None: no equivalent here).

Table 2's caption: every method but Asy-InfoPro is trained simultaneously, so "Greedy SL" is greedy CE with the
simultaneous schedule (and a linear auxiliary classifier); the local modules are InfoPro's cut points, which
``--split blocks:K`` reproduces. InfoPro* (Table 3) splits for balanced memory (``--split balanced:K``) and uses
the contrastive loss (the authors' comand.sh)."""

NO_EQUIVALENT: dict[str, str] = {
    "Greedy SL+": "Greedy SL on deeper networks of InfoPro's computational cost; no such network here",
    "Asy-InfoPro (Contrast)": "asynchronous training; the harness has no asynchronous schedule",
    "GC (gradient checkpointing)": "end-to-end training with gradient checkpointing; not implemented here",
}

LABEL_ORDER = (
    "E2E",
    "E2E Training",
    "GC (gradient checkpointing)",
    "Greedy SL",
    "Greedy SL+",
    "DGL",
    "InfoPro (Softmax)",
    "Asy-InfoPro (Contrast)",
    "InfoPro (Contrast)",
    "InfoPro* (balanced memory)",
)
"""The paper's row order, used to order the published rows."""


class _Mapped:
    """What the published rows share: the protocol and harness configuration they map to."""

    dataset: str
    network: str
    paper_label: str
    k: int | None

    @property
    def protocol(self) -> str | None:
        """The protocol that follows this row's recipe, None when the harness has none."""
        return PROTOCOLS.get((self.dataset, self.network))

    @property
    def arch(self) -> str | None:
        protocol = self.protocol
        return PROTOCOL_ARCHITECTURES.get(protocol) if protocol else None

    @property
    def harness(self) -> HarnessConfig | None:
        """The harness configuration of this row, None when there is no equivalent."""
        return LABELS.get(self.paper_label)

    @property
    def method(self) -> str | None:
        harness = self.harness
        return harness.method if harness else None

    @property
    def no_equivalent(self) -> str:
        """Why no harness configuration maps to this row ('' when one does)."""
        if self.harness is not None:
            return ""
        return NO_EQUIVALENT.get(self.paper_label, "no harness equivalent")

    def order_key(self) -> tuple[Any, ...]:
        label = LABEL_ORDER.index(self.paper_label) if self.paper_label in LABEL_ORDER else len(LABEL_ORDER)
        return (self.k is not None, label, self.paper_label, self.k or 0)


@dataclass(frozen=True)
class PublishedError(_Mapped):
    """One published test error (%) with its std, for one method, network, dataset and number of modules."""

    table: int
    dataset: str
    network: str
    paper_label: str
    k: int | None
    test_error: float
    """Percent; the mean over the paper's trials."""
    std: float | None
    source: str
    """Short: who, where, and which table, e.g. "Wang et al., ICLR 2021, Table 2 (...)"."""
    verified: bool
    schedule: str = "simultaneous"
    """The paper's training schedule for this row (Asy-InfoPro: asynchronous)."""
    note: str = ""
    citation: str = INFOPRO_PAPER
    """The full reference, printed once under the table."""
    url: str = INFOPRO_URL

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy in percent (100 - test error)."""
        return 100.0 - self.test_error


@dataclass(frozen=True)
class PublishedMemory(_Mapped):
    """One row of the published memory table: GPU memory of training (GB, as the paper reports it)."""

    table: int
    dataset: str
    network: str
    paper_label: str
    k: int | None
    batch_size: int
    test_error: float
    std: float | None
    gpu_gb: float
    overhead_theoretical_pct: float | None
    overhead_wall_pct: float | None
    source: str
    verified: bool
    note: str = ""
    citation: str = INFOPRO_PAPER
    url: str = INFOPRO_URL

    @property
    def accuracy(self) -> float:
        return 100.0 - self.test_error


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files(DATA_PACKAGE).joinpath(DATA_FOLDER, name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _load_errors() -> tuple[PublishedError, ...]:
    rows = _read_csv(TABLE2_FILE)
    out: list[PublishedError] = []
    seen_e2e: set[tuple[str, str]] = set()
    for row in rows:
        key = (row["dataset"], row["network"])
        if key not in seen_e2e:  # the end-to-end error is printed once per network, repeated on every CSV row
            seen_e2e.add(key)
            out.append(
                PublishedError(
                    table=int(row["table"]), dataset=row["dataset"], network=row["network"], paper_label="E2E",
                    k=None, test_error=float(row["e2e_test_error"]), std=_float(row["e2e_std"]),
                    source=TABLE2_SOURCE, verified=True, schedule="end_to_end",
                )
            )
        out.append(
            PublishedError(
                table=int(row["table"]), dataset=row["dataset"], network=row["network"],
                paper_label=row["method_label"], k=int(row["K"]), test_error=float(row["test_error"]),
                std=_float(row["std"]), source=TABLE2_SOURCE, verified=True, schedule=row["schedule"],
            )
        )
    return tuple(out)


def _load_memory() -> tuple[PublishedMemory, ...]:
    out = []
    for row in _read_csv(TABLE3_FILE):
        end_to_end = row["method_label"] in ("E2E Training", "GC (gradient checkpointing)")
        out.append(
            PublishedMemory(
                table=int(row["table"]), dataset=row["dataset"], network=row["network"],
                paper_label=row["method_label"], k=None if end_to_end else int(row["K"]),
                batch_size=int(row["batch_size"]), test_error=float(row["test_error"]), std=_float(row["std"]),
                gpu_gb=float(row["memory_gb"]), overhead_theoretical_pct=_float(row["overhead_theoretical_pct"]),
                overhead_wall_pct=_float(row["overhead_wall_pct"]), source=TABLE3_SOURCE, verified=True,
                note=(
                    "the paper reports the minimal GPU memory needed to train, with cudnn.benchmark=True, on one "
                    f"Titan Xp; not what nvidia-smi shows ({INFOPRO_REPO}, README)"
                ),
            )
        )
    return tuple(out)


PUBLISHED_ERRORS: tuple[PublishedError, ...] = _load_errors()
"""Table 2 in full: one entry per CSV row, plus one E2E entry per (dataset, network)."""

PUBLISHED_MEMORY: tuple[PublishedMemory, ...] = _load_memory()
"""Table 3 in full (CIFAR-10 and STL-10, ResNet-110)."""


def errors_for(protocol: str) -> list[PublishedError]:
    """Published test errors for a protocol (empty when no paper matches it), in the paper's order."""
    return sorted((r for r in PUBLISHED_ERRORS if r.protocol == protocol), key=PublishedError.order_key)


def memory_for(protocol: str) -> list[PublishedMemory]:
    """Published memory rows for a protocol (empty when no paper matches it), in the paper's order."""
    return sorted((r for r in PUBLISHED_MEMORY if r.protocol == protocol), key=PublishedMemory.order_key)


def e2e_memory(entry: PublishedMemory) -> PublishedMemory | None:
    """The end-to-end row of the same table, dataset, network and batch as ``entry``."""
    for row in PUBLISHED_MEMORY:
        if (row.table, row.dataset, row.network, row.batch_size) == (
            entry.table, entry.dataset, entry.network, entry.batch_size
        ) and row.paper_label == "E2E Training":
            return row
    return None


def relative_memory(entry: PublishedMemory) -> float | None:
    """``entry``'s GPU memory over end-to-end training's, in the same table and setting."""
    e2e = e2e_memory(entry)
    return entry.gpu_gb / e2e.gpu_gb if e2e and e2e.gpu_gb else None


def has_references(protocol: str) -> bool:
    """Whether any published number is recorded for this protocol."""
    return bool(errors_for(protocol) or memory_for(protocol))
