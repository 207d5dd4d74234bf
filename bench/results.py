"""Result files: one JSON per run, written atomically, validated when read.

Layout of a result (``schema_version`` 1)::

    {
      "schema_version": 1,
      "run_id": "<hash of the resolved config>",
      "status": "ok" | "failed" | "diverged",
      "message": null | "why it failed or diverged",
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
        "train_flops", "final_train_loss", "epochs_completed"
      },
      "env": {"python", "torch", "timm", "layerbench", "device", "device_name", "git_commit", "platform"},
      "started_at": "<ISO 8601 UTC>", "finished_at": "<ISO 8601 UTC>"
    }
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "diverged")
RESULT_FILENAME = "result.json"
REQUIRED_KEYS = ("schema_version", "run_id", "status", "config", "method", "metrics", "env")


class ResultFileError(ValueError):
    """A result file that cannot be read: not JSON, unknown schema, or missing keys."""


def config_hash(config: dict[str, Any], length: int = 12) -> str:
    """A stable short hash of a resolved config (key order does not matter).

    Fields that do not change what is trained (where results are written, the device) are excluded so that
    the same experiment maps to the same folder.
    """
    ignored = {"out", "device", "progress"}
    payload = {k: v for k, v in config.items() if k not in ignored}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON to ``path`` through a temporary file and an atomic rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    if not isinstance(data, dict):
        raise ResultFileError(f"{source}: a result must be a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultFileError(f"{source}: unknown schema_version {version!r} (this harness reads {SCHEMA_VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ResultFileError(f"{source}: missing keys {', '.join(missing)}")
    if data["status"] not in STATUSES:
        raise ResultFileError(f"{source}: status {data['status']!r} is not one of {', '.join(STATUSES)}")
    if not isinstance(data["metrics"], dict) or not isinstance(data["config"], dict):
        raise ResultFileError(f"{source}: 'metrics' and 'config' must be objects")
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
    return validate_result(read_json(path, ResultFileError), str(path))


def find_result_files(root: str | Path) -> list[Path]:
    """Every result.json below ``root`` (sorted, so tables are stable)."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(root.rglob(RESULT_FILENAME))
