"""Result files: one JSON per run, written atomically, validated when read.

Layout of a result (``schema_version`` 1)::

    {
      "schema_version": 1,
      "run_id": "<hash of the resolved config>",
      "status": "ok" | "failed" | "diverged" | "interrupted",
      "message": null | "why it failed, diverged or stopped",
      "config": {...the full resolved RunConfig, method hyperparameters under "hparams"...},
      "protocol": null | {"name": ..., "version": ...},
      "method": {"name": ..., "version": ..., "origin": "built-in" | "<distribution> <version>", "description": ...},
      "dataset": {"name", "num_classes", "train_size", "test_size", "image_size", "source", "is_subset"},
      "architecture": {"name", "split", "num_modules", "params", "cifar_stem", "modules": [...]},
      "metrics": {
        "test_top1", "test_top5",              # percent, the network's own classifier
        "module_top1",                         # list (percent) per local module's auxiliary head, or null
        "train_seconds", "train_images_per_second",
        "peak_activation_bytes", "peak_trainable_state_bytes", "peak_gpu_bytes",
        "train_flops", "final_train_loss", "epochs_completed",
        "test_top1_best", "test_top1_best_epoch"  # best over per-epoch evaluations, when the run made them
      },
      "env": {"python", "torch", "timm", "layerbench", "device", "device_name", "cpu_id", "git_commit",
              "platform"},                             # cpu_id: family/model/stepping and kernel flags (runner.cpu_id)
      "history": [                              # optional: one record per epoch (per module, for layer-wise runs)
        {"phase": 0, "module": 0 | null, "epoch": 1, "train_loss": ..., "train_acc": ...,
         "val_top1": null | ..., "test_top1": null | ...}, ...
      ],
      "started_at": "<ISO 8601 UTC>", "finished_at": "<ISO 8601 UTC>"
    }

Every run as a row: :func:`load` reads a folder of result files into a ``pandas.DataFrame`` with one row per
file and flattened columns (``config.seed``, ``method.name``, ``metrics.test_top1``, ...); :func:`where`
filters it and :func:`export` writes it as CSV, JSON or Parquet. The leaderboards, ``bench results`` and a
notebook all read results through it::

    from bench.results import load
    df = load("leaderboards/results")
    df.groupby(["protocol.name", "method.name"])["metrics.test_top1"].agg(["mean", "std", "count"])
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "diverged", "interrupted")
"""``interrupted``: stopped by Ctrl-C or SIGTERM; running the same config again trains it anew."""
RESULT_FILENAME = "result.json"
REQUIRED_KEYS = ("schema_version", "run_id", "status", "config", "method", "metrics", "env")


class ResultFileError(ValueError):
    """A result file that cannot be read: not JSON, unknown schema, or missing keys."""


LATER_FIELDS: dict[str, Any] = {"eval_test": "every"}
"""Config fields added after results were published, with the value that reproduces what ran before they existed:
left out of the hash at that value, so that an older result and the same run today keep one id (and are reused)."""


UNTRAINED_FIELDS = frozenset({"out", "device", "progress", "data_root"})
"""Config fields that do not change what is trained (where results go, where the data lies, the device, the display):
left out of :func:`config_hash`, so the same experiment has the same folder on every machine."""


def config_hash(config: dict[str, Any], length: int = 12) -> str:
    """A stable short hash of a resolved config (key order does not matter).

    Fields that do not change what is trained (where results are written, where the data files lie, the device)
    are excluded so that the same experiment maps to the same folder on every machine; what the data was is
    recorded in the result itself (``dataset``: its source, sizes and the validation split's digest).
    """
    payload = {
        k: v for k, v in config.items()
        if k not in UNTRAINED_FIELDS and not (k in LATER_FIELDS and v == LATER_FIELDS[k])
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and an atomic rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON to ``path`` atomically (:func:`write_bytes_atomic`)."""
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def validate_result(data: Any, source: str = "<result>") -> dict[str, Any]:
    """Check a parsed result against the schema; raise ResultFileError naming what is wrong."""
    redo = "run it again (bench run ... --force) to write a new one, or delete it"
    if not isinstance(data, dict):
        raise ResultFileError(f"{source}: not a result file (a result is a JSON object, this is a "
                              f"{type(data).__name__}); {redo}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultFileError(
            f"{source}: unknown schema_version {version!r} (this layerbench reads {SCHEMA_VERSION}): written by "
            f"another version of layerbench, or not a result file; read it with that version, or {redo}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ResultFileError(f"{source}: missing keys {', '.join(missing)} (an incomplete result file); {redo}")
    if data["status"] not in STATUSES:
        raise ResultFileError(f"{source}: status {data['status']!r} is not one of {', '.join(STATUSES)}; {redo}")
    if not isinstance(data["metrics"], dict) or not isinstance(data["config"], dict):
        raise ResultFileError(f"{source}: 'metrics' and 'config' must be objects; {redo}")
    return data


def read_json(path: str | Path, error: type[Exception], corrupt_hint: str = "") -> Any:
    """Parse a JSON file; an unreadable or invalid file raises ``error`` with a message naming the path."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON ({e.msg} at line {e.lineno}){corrupt_hint}") from None


def read_result(path: str | Path) -> dict[str, Any]:
    """Read and validate one result file."""
    hint = ": the file is damaged (cut short by a full disk or a copy?); run it again (bench run ... --force) or delete it"
    return validate_result(read_json(path, ResultFileError, hint), str(path))


def find_result_files(root: str | Path) -> list[Path]:
    """Every result.json below ``root`` (sorted, so tables are stable)."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(root.rglob(RESULT_FILENAME))


# ------------------------------------------------------------------------------------ every run as a row

SOURCE_COLUMN = "source"
"""Column holding the path of the file a row was read from."""

COLUMNS: dict[str, str] = {
    "run_id": "string",
    "status": "string",
    "message": "string",
    "schema_version": "Int64",
    "protocol.name": "string",
    "protocol.version": "Int64",
    "protocol.adopted_from.version": "Int64",  # a result carried over from an older version (scripts/adopt_results.py)
    "protocol.adopted_from.adopted": "string",
    "method.name": "string",
    "method.version": "string",
    "method.origin": "string",
    "config.method": "string",
    "config.arch": "string",
    "config.data": "string",
    "config.split": "string",
    "config.schedule": "string",
    "config.aux": "string",
    "config.seed": "Int64",
    "config.epochs": "Int64",
    "config.batch_size": "Int64",
    "config.lr": "float64",
    "config.protocol": "string",
    "dataset.name": "string",
    "dataset.num_classes": "Int64",
    "dataset.train_size": "Int64",
    "dataset.test_size": "Int64",
    "dataset.image_size": "Int64",
    "architecture.name": "string",
    "architecture.split": "string",
    "architecture.num_modules": "Int64",
    "architecture.params": "Int64",
    "metrics.test_top1": "float64",
    "metrics.test_top5": "float64",
    "metrics.test_top1_best": "float64",
    "metrics.test_top1_best_epoch": "Int64",
    "metrics.module_top1": "object",
    "metrics.train_seconds": "float64",
    "metrics.train_images_per_second": "float64",
    "metrics.peak_activation_bytes": "float64",
    "metrics.peak_trainable_state_bytes": "float64",
    "metrics.peak_gpu_bytes": "float64",
    "metrics.train_flops": "float64",
    "metrics.final_train_loss": "float64",
    "metrics.epochs_completed": "Int64",
    "env.layerbench": "string",
    "env.python": "string",
    "env.torch": "string",
    "env.timm": "string",
    "env.device": "string",
    "env.device_name": "string",
    "env.cpu_id": "string",
    "env.threads": "Int64",
    "env.git_commit": "string",
    "env.platform": "string",
    "started_at": "datetime",
    "finished_at": "datetime",
    "history": "object",
    SOURCE_COLUMN: "string",
}
"""Columns every frame from :func:`load` has, whatever its files hold, and their dtypes ("datetime": UTC
timestamps). Other keys of the result files become further columns, typed from their values: integers ``Int64``,
other numbers ``float64``, booleans ``boolean``, text ``string``, lists, objects and mixtures ``object``."""

_GROUPS = ("run_id", "status", "message", "schema_version", "protocol", "method", "config", "dataset",
           "architecture", "metrics", "env", "started_at", "finished_at", "history", SOURCE_COLUMN)

ALIASES: dict[str, str] = {
    "method": "method.name",
    "protocol": "protocol.name",
    "seed": "config.seed",
    "arch": "config.arch",
    "data": "config.data",
    "dataset": "config.data",
    "schedule": "config.schedule",
    "split": "config.split",
    "aux": "config.aux",
    "k": "architecture.num_modules",
    "status": "status",
    "top1": "metrics.test_top1",
}
"""Short names accepted wherever a column is named (``bench results --where method=dgl``). A name that is
neither a column nor an alias is also looked up as ``config.<name>``, ``config.hparams.<name>`` and
``metrics.<name>`` (``--where loss_mode=contrast``)."""

EXPORT_FORMATS = ("csv", "json", "parquet")
PARQUET_ENGINES = ("pyarrow", "fastparquet")

WarningSink = Callable[[str], None]


class ResultFileWarning(UserWarning):
    """A result file that was skipped because it cannot be read."""


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False


def flatten_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """One result as a flat ``{column: value}``: nested objects joined with dots (``metrics.test_top1``,
    ``config.hparams.gamma``), lists kept whole (``metrics.module_top1``, ``history``), null values left out."""
    out: dict[str, Any] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, Mapping) and name != "history":
            for key, sub in value.items():
                walk(sub, f"{name}.{key}" if name else str(key))
        elif value is not None:
            out[name] = value

    walk(result, "")
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _infer_dtype(values: Iterable[Any]) -> str:
    present = [v for v in values if not _missing(v)]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(_is_int(v) for v in present):
        return "Int64"
    if present and all(_is_number(v) for v in present):
        return "float64"
    if present and all(isinstance(v, str) for v in present):
        return "string"
    return "object"


def _cell_text(value: Any) -> str:
    """A cell as text: JSON for lists and objects, ``str`` otherwise."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=_json_default)
    return str(value)


def _typed(values: list[Any], dtype: str):
    import pandas as pd

    if dtype in ("Int64", "float64"):
        numbers = [float(v) if _is_number(v) and math.isfinite(float(v)) else None for v in values]
        if dtype == "Int64":
            numbers = [None if v is None or not v.is_integer() else int(v) for v in numbers]
            return pd.array(numbers, dtype="Int64")
        return pd.array([math.nan if v is None else v for v in numbers], dtype="float64")
    if dtype == "boolean":
        return pd.array([v if isinstance(v, bool) else None for v in values], dtype="boolean")
    if dtype == "string":
        return pd.array([None if _missing(v) else _cell_text(v) for v in values], dtype="string")
    if dtype == "datetime":
        text = pd.Series([v if isinstance(v, str) else None for v in values], dtype=object)
        return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601").array
    return pd.array([None if _missing(v) else v for v in values], dtype=object)


def _column_order(name: str) -> tuple[float, int, str]:
    top = name.split(".", 1)[0]
    group = _GROUPS.index(top) if top in _GROUPS else _GROUPS.index("env") + 0.5
    known = list(COLUMNS)
    return (group, known.index(name) if name in known else len(known), name)


def to_frame(results: Iterable[Mapping[str, Any]], sources: Sequence[str] | None = None):
    """Results (parsed result dicts) as a DataFrame, one row each, with the columns and dtypes of :func:`load`.

    ``sources`` gives each row's ``source``; without it a result's own ``"_source"`` key is used, if any.
    """
    import pandas as pd

    flat: list[dict[str, Any]] = []
    for i, result in enumerate(results):
        row = flatten_result({k: v for k, v in result.items() if k != "_source"})
        source = sources[i] if sources is not None else result.get("_source")
        if source is not None:
            row[SOURCE_COLUMN] = str(source)
        flat.append(row)
    names = set(COLUMNS).union(*(row.keys() for row in flat)) if flat else set(COLUMNS)
    data = {}
    for name in sorted(names, key=_column_order):
        values = [row.get(name) for row in flat]
        data[name] = _typed(values, COLUMNS.get(name) or _infer_dtype(values))
    return pd.DataFrame(data, index=pd.RangeIndex(len(flat)))


def load(
    results: str | Path | Iterable[str | Path],
    *,
    on_warning: WarningSink | None = None,
):
    """Every result file under ``results`` as a ``pandas.DataFrame``, one row per file.

    ``results``: a folder (searched recursively for ``result.json``), one result file, or several of either.
    Columns are the flattened keys of the files (``config.seed``, ``method.name``, ``metrics.test_top1``,
    ``protocol.name``, ``history``, ...) plus ``source``, the file's path; the columns of :data:`COLUMNS` are
    always there, with fixed dtypes. Rows come in the order of the sorted paths.

    A file that is not JSON, has an unknown ``schema_version`` or misses keys is skipped and reported: to
    ``on_warning`` when given, else as a :class:`ResultFileWarning`. A path that does not exist is reported the
    same way. Nothing is raised for a bad file.
    """
    paths: list[Path] = []
    messages: list[str] = []
    for item in [results] if isinstance(results, (str, Path)) else list(results):
        root = Path(item)
        if not root.exists():
            messages.append(f"{root}: no such file or folder; no results read")
            continue
        paths += find_result_files(root)
    parsed: list[dict[str, Any]] = []
    sources: list[str] = []
    for path in paths:
        try:
            parsed.append(read_result(path))
        except ResultFileError as e:
            messages.append(f"skipped {e}")
            continue
        sources.append(path.as_posix())
    for message in messages:
        if on_warning is not None:
            on_warning(message)
        else:
            warnings.warn(message, ResultFileWarning, stacklevel=2)
    return to_frame(parsed, sources)


def resolve_column(df, key: str) -> str:
    """The column a user's name stands for: the column itself, an alias (:data:`ALIASES`) or
    ``config.<key>``, ``config.hparams.<key>``, ``metrics.<key>``. Raises ConfigError naming close matches."""
    from bench.errors import ConfigError

    columns = list(df.columns)
    for candidate in (key, ALIASES.get(key), ALIASES.get(key.lower()), f"config.{key}", f"config.hparams.{key}",
                      f"metrics.{key}"):
        if candidate and candidate in columns:
            return candidate
    close = difflib.get_close_matches(key, columns + list(ALIASES), n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "."
    raise ConfigError(
        f"unknown column {key!r}{hint} Short names: {', '.join(sorted(ALIASES))}; any column name works too "
        "(`bench results --format csv` shows them all)."
    )


def where(df, conditions: Iterable[str]):
    """The rows of ``df`` that satisfy every condition.

    A condition is ``key=value`` or ``key!=value``; ``key`` is a column or a short name (:func:`resolve_column`);
    ``value`` may list alternatives separated by commas (``method=dgl,sgd``). Numeric columns compare as
    numbers, ``boolean`` ones take true/false, every other column compares its cells' text. Raises ConfigError
    for a malformed condition, an unknown column or a value that cannot match the column's type.
    """
    import pandas as pd

    from bench.errors import ConfigError

    mask = pd.Series(True, index=df.index)
    for condition in conditions:
        negate = "!=" in condition
        key, sep, value = condition.partition("!=" if negate else "=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--where {condition!r}: expected KEY=VALUE or KEY!=VALUE (e.g. method=dgl)")
        column = resolve_column(df, key)
        series = df[column]
        wanted = [v.strip() for v in value.split(",")]
        if pd.api.types.is_bool_dtype(series.dtype):
            truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
            bad = [v for v in wanted if v.lower() not in truth]
            if bad:
                raise ConfigError(f"--where {condition!r}: {column} is true/false, not {bad[0]!r}")
            hit = series.isin([truth[v.lower()] for v in wanted]).fillna(False)
        elif pd.api.types.is_numeric_dtype(series.dtype):
            try:
                numbers = [float(v) for v in wanted]
            except ValueError:
                raise ConfigError(
                    f"--where {condition!r}: {column} holds numbers; {value!r} is not a number"
                ) from None
            hit = series.astype("float64").isin(numbers)
        else:
            texts = [None if _missing(v) else _cell_text(v) for v in series]
            hit = pd.Series([t is not None and t in wanted for t in texts], index=df.index)
        mask &= ~hit if negate else hit
    return df[mask.to_numpy(dtype=bool)].reset_index(drop=True)


def select_columns(df, columns: Iterable[str]):
    """``df`` restricted to ``columns`` (names or short names, in the order given)."""
    names = [resolve_column(df, c.strip()) for c in columns if c.strip()]
    return df[list(dict.fromkeys(names))]


def _json_cells(df):
    """A copy of ``df`` whose list and object cells are JSON text (for CSV, and Parquet columns that need it)."""
    out = df.copy()
    for name in out.columns:
        if out[name].dtype == object:
            out[name] = _typed(list(out[name]), "string")
    return out


def parquet_engine() -> str | None:
    """The installed Parquet engine pandas will use (pyarrow first), or None."""
    for name in PARQUET_ENGINES:
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def export(df, fmt: str, path: str | Path | None = None) -> str | None:
    """Write ``df`` as ``csv``, ``json`` (a list of records) or ``parquet``.

    With ``path`` the file is written (atomically) and None returned; without, the CSV or JSON text is
    returned (Parquet needs a path). List and object cells (``metrics.module_top1``, ``history``) are JSON
    text in CSV; JSON keeps them as JSON values; Parquet keeps them as nested columns with pyarrow, as JSON text
    with fastparquet or where pyarrow cannot store a column (values of mixed types). Timestamps are ISO 8601.
    Raises ConfigError for an unknown format, a missing Parquet engine or Parquet without a path.
    """
    from bench.errors import ConfigError

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "parquet":
        engine = parquet_engine()
        if engine is None:
            raise ConfigError(
                "writing Parquet needs pyarrow (or fastparquet), which is not installed: "
                "pip install pyarrow (or pip install 'layerbench[parquet]')"
            )
        if path is None:
            raise ConfigError("--format parquet writes a binary file: give it with --out FILE")
        frame = _parquet_ready(df, engine)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            frame.to_parquet(tmp, engine=engine, index=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return None
    if fmt == "csv":
        text = _json_cells(df).to_csv(index=False, lineterminator="\n", date_format="%Y-%m-%dT%H:%M:%SZ")
    else:
        records = json.loads(df.to_json(orient="records", date_format="iso", date_unit="s"))
        text = json.dumps(records, indent=1, ensure_ascii=False) + "\n"
    if path is None:
        return text
    _write_text_atomic(Path(path), text)
    return None


def _parquet_ready(df, engine: str):
    """``df`` with every object column Parquet can store: nested where pyarrow takes it, else JSON text."""
    out = df.copy()
    for name in out.columns:
        if out[name].dtype != object:
            continue
        if engine == "pyarrow":
            import pyarrow as pa

            try:
                pa.array(list(out[name]), from_pandas=True)
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                pass
        out[name] = _typed(list(out[name]), "string")
    return out


def _write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))
