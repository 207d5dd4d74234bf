"""Declared settings: a method's hyperparameters and a dataset's options, with their type, range, choices and help.

A method's ``hparams`` (and a dataset loader's ``options``) map each name either to a plain default or to a
:class:`Param`::

    hparams = {
        "beta": 1e-3,                                                   # plain default: type float, any value
        "smoothing": Param(0.1, ge=0.0, lt=1.0, help="label smoothing of the local cross-entropy"),
        "mode": Param("mean", choices=("mean", "sum"), help="how the penalty is reduced"),
        "gamma": Param(0.01, per_module=True, ge=0.0, help="one value, or one per local module"),
    }

The harness validates every value given with ``--set``, a config file or a protocol against the declaration
before anything runs (:func:`coerce_value`): a value of the wrong type, outside the range or not among the choices
is a :class:`~bench.errors.ConfigError` (exit 2) naming the setting, what was given and what is accepted. A list
is accepted only where the declaration says so (``type=list`` or ``per_module=True``). The method sees the coerced
values in ``run.hp``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.errors import ConfigError

TYPES = (bool, int, float, str, list, dict)
"""The types a :class:`Param` may declare (``None``: any value, parsed as JSON from the command line)."""


@dataclass(frozen=True)
class Param:
    """One declared setting.

    Args:
        default: the value used when the setting is not given (it must satisfy the declaration).
        type: ``bool``, ``int``, ``float``, ``str``, ``list`` or ``dict``; ``None`` = the type of ``default``
            (any value when ``default`` is None). An ``int`` is accepted where ``float`` is declared.
        choices: the accepted values (for a list value: the accepted items).
        ge, gt, le, lt: bounds of a number (for a per-module list: of every item): ``>=``, ``>``, ``<=``, ``<``.
        help: one line shown by ``bench list method NAME``.
        per_module: a number, or a list of numbers with one value per local module.
        nullable: ``None`` is accepted too (always the case when ``default`` is None).
    """

    default: Any = None
    type: type | None = None
    choices: tuple | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    help: str = ""
    per_module: bool = False
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.type is not None and self.type not in TYPES:
            raise TypeError(f"Param type must be one of bool, int, float, str, list, dict or None, not {self.type!r}")
        if self.choices is not None and not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def kind(self) -> type | None:
        """The declared type, or the type of the default (None: anything)."""
        if self.type is not None:
            return self.type
        if self.default is None:
            return None
        for tp in (bool, int, float, str, list, dict):
            if isinstance(self.default, tp):
                return tp
        return None

    def describe_type(self) -> str:
        """The accepted values in words: ``float``, ``float in [0, 1)``, ``one of mean, sum``, ..."""
        kind = self.kind
        name = kind.__name__ if kind is not None else "any"
        if self.choices is not None:
            text = "one of " + ", ".join(_show(c) for c in self.choices)
        else:
            text = name + _describe_range(self)
        if self.per_module:
            text += f", or a list of {name}s (one per module)"
        if self.nullable or (self.default is None and kind is not None):
            text += ", or null"
        return text


def _describe_range(p: Param) -> str:
    lo = f"[{_show(p.ge)}" if p.ge is not None else f"({_show(p.gt)}" if p.gt is not None else None
    hi = f"{_show(p.le)}]" if p.le is not None else f"{_show(p.lt)})" if p.lt is not None else None
    if lo is None and hi is None:
        return ""
    if lo is None:
        return f" {'<=' if p.le is not None else '<'} {_show(p.le if p.le is not None else p.lt)}"
    if hi is None:
        return f" {'>=' if p.ge is not None else '>'} {_show(p.ge if p.ge is not None else p.gt)}"
    return f" in {lo}, {hi}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (bool, list, dict)) or value is None else f"{value:g}" if isinstance(
        value, float) else str(value)


def as_param(value: Any) -> Param:
    """A declaration from a plain default (its type is the default's) or a :class:`Param` as it is."""
    return value if isinstance(value, Param) else Param(value)


def declarations(mapping: Mapping[str, Any] | None) -> dict[str, Param]:
    """``{name: Param}`` from a mapping of plain defaults and Params."""
    return {str(k): as_param(v) for k, v in (mapping or {}).items()}


def defaults(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{name: default}`` from a mapping of plain defaults and Params (what ``run.hp`` holds when nothing is set)."""
    return {k: p.default for k, p in declarations(mapping).items()}


def parse_text(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, lists, true/false/null), else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        if low in ("none", "null"):
            return None
        return text


def coerce_value(key: str, value: Any, param: Param | Any, *, where: str = "") -> Any:
    """``value`` (text from the command line, or a value from a config file) converted to the declared type and
    checked against the declared range and choices; ConfigError naming ``key`` (and ``where``) otherwise."""
    p = as_param(param)
    label = f"{key} of {where}" if where else key
    raw = parse_text(value) if isinstance(value, str) and p.kind is not str else value
    if raw is None or (isinstance(raw, str) and p.kind is str and raw.lower() in ("none", "null") and p.nullable):
        if p.nullable or p.default is None:
            return None
        raise ConfigError(f"{label}: a value is required ({p.describe_type()}), got {value!r}")
    kind = p.kind
    if isinstance(raw, list) and kind not in (list, None):
        if not p.per_module:
            raise ConfigError(
                f"{label}: expected {_article(p.describe_type())}, got the list {_show(raw)}; "
                "give one value (this setting takes no list)"
            )
        if not raw:
            raise ConfigError(f"{label}: the list of per-module values is empty; give one value or one per module")
        out = [_coerce_scalar(label, v, kind, p) for v in raw]
        for v in out:
            _check(label, v, p)
        return out
    out = _coerce_scalar(label, raw if kind is not str else value, kind, p)
    if kind is list:
        for item in out:
            _check(label, item, p)
    else:
        _check(label, out, p)
    return out


def _article(text: str) -> str:
    return text if text.startswith(("one of", "any")) else ("an " if text[:1] in "aeiou" else "a ") + text


def _coerce_scalar(label: str, value: Any, kind: type | None, p: Param) -> Any:
    expected = p.describe_type()
    if kind is None:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.strip().lower() in ("true", "yes", "on", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{label}: expected true or false, got {_show_given(value)}")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{label}: expected an integer ({expected}), got {_show_given(value)}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"{label}: expected an integer ({expected}), got {_show_given(value)}")
            return int(value)
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{label}: expected an integer ({expected}), got {_show_given(value)}") from None
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{label}: expected a number ({expected}), got {_show_given(value)}")
        try:
            out = float(value)
        except ValueError:
            raise ConfigError(f"{label}: expected a number ({expected}), got {_show_given(value)}") from None
        if math.isnan(out):
            raise ConfigError(f"{label}: expected a number ({expected}), got NaN")
        return out
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{label}: expected a string ({expected}), got {_show_given(value)}")
    if kind is list:
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, str):
            return [parse_text(v.strip()) for v in value.split(",") if v.strip()]
        return [value]
    if kind is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise ConfigError(f"{label}: expected a mapping, got {_show_given(value)}")
    return value


def _show_given(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _show(value)


def _check(label: str, value: Any, p: Param) -> None:
    if p.choices is not None and value not in p.choices:
        raise ConfigError(
            f"{label}: {_show_given(value)} is not one of {', '.join(_show(c) for c in p.choices)}"
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        bad = (
            (p.ge is not None and not value >= p.ge)
            or (p.gt is not None and not value > p.gt)
            or (p.le is not None and not value <= p.le)
            or (p.lt is not None and not value < p.lt)
        )
        if bad:
            raise ConfigError(f"{label}: {_show(value)} is out of range; expected {p.describe_type()}")


def check_declarations(mapping: Mapping[str, Any], *, where: str) -> dict[str, Param]:
    """The declarations of a mapping, each default checked against its own declaration (a mistake of the plugin's
    author is reported with ``where`` naming the plugin)."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: expected a dict of name -> default or Param, got {type(mapping).__name__}")
    out = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"{where}: setting names must be identifiers, got {key!r}")
        p = as_param(value)
        if p.default is not None:
            try:
                coerce_value(key, p.default, p)
            except ConfigError as e:
                raise ConfigError(f"{where}: the default of {key} does not satisfy its own declaration ({e})") from None
        out[key] = p
    return out


def resolve(
    given: Mapping[str, Any],
    declared: Mapping[str, Any],
    *,
    where: str,
    fill_defaults: bool,
    noun: str = "setting",
) -> dict[str, Any]:
    """Given values checked against the declarations: unknown names and bad values raise ConfigError.

    ``fill_defaults``: the result holds every declared name (method hyperparameters); otherwise only the given
    ones (dataset options, so that a run's config records what was asked for)."""
    params = declarations(declared)
    unknown = sorted(set(given) - set(params))
    if unknown:
        accepted = ", ".join(sorted(params)) or "none"
        raise ConfigError(f"unknown {noun}(s) {', '.join(unknown)} for {where} (accepted: {accepted})")
    out = {k: p.default for k, p in params.items()} if fill_defaults else {}
    for key, value in given.items():
        out[key] = coerce_value(key, value, params[key], where=where)
    return out
