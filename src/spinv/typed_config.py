"""One config reader for every command: YAML files validated into typed, frozen dataclasses.

A config schema is a frozen dataclass whose fields carry their type (``int``, ``float``, ``bool``,
``str``, ``dict``, ``Literal[...]``, ``X | None``, ``list[...]``/``tuple[...]`` of those, or
another schema dataclass for a nested section) and, in the field metadata, an optional range
(:func:`bounds`). :func:`build` checks a mapping against it: an unknown key, a wrong type or an
out-of-range value raises ``ValueError`` naming the key path (``train.lr``), the value and what
is allowed; NaN and infinite numbers are refused. A schema may define

* ``from_mapping(data, path)`` (classmethod): build itself from a free-form mapping (e.g. the
  options of a model whose keys the schema cannot know), and
* ``check(path)``: cross-field checks after construction (raise ``ValueError`` naming keys).

:func:`read_yaml` reads a file with one error naming the file (missing, not UTF-8, not YAML, not
a mapping), and :func:`apply_overrides` applies ``section.key=value`` edits before validation.

>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Train:
...     steps: int = field(default=10, metadata=bounds(1))
...     schedule: Literal["constant", "cosine"] = "constant"
>>> build(Train, {"steps": 5}).steps
5
>>> build(Train, {"steps": 0})
Traceback (most recent call last):
...
ValueError: config key 'steps': value 0 is out of range; expected an integer >= 1
>>> build(Train, {"stepz": 3}, "train")
Traceback (most recent call last):
...
ValueError: config key 'train.stepz': unknown key; allowed: schedule, steps
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

__all__ = ["apply_overrides", "bounds", "build", "check_value", "describe_type", "read_yaml"]


def bounds(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False) -> dict:
    """Field metadata of a numeric range: ``lo <= value <= hi`` (``*_open``: strict)."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}


def describe_type(tp: Any) -> str:
    """``"an integer"``, ``"one of 'a', 'b'"``, ``"a number or null"``, ... for messages."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        parts = [describe_type(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(parts) + " or null"
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {describe_type(args[0])} values" if args else "a list"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            dict: "a mapping"}.get(tp, str(tp))


def _range_text(meta: dict) -> str:
    parts = []
    if meta.get("lo") is not None:
        parts.append(f"{'>' if meta['lo_open'] else '>='} {meta['lo']:g}")
    if meta.get("hi") is not None:
        parts.append(f"{'<' if meta['hi_open'] else '<='} {meta['hi']:g}")
    return " and ".join(parts)


def _check_range(value: Any, tp: Any, path: str, meta: dict) -> None:
    if not meta or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    lo, hi = meta.get("lo"), meta.get("hi")
    if ((lo is not None and (value <= lo if meta["lo_open"] else value < lo))
            or (hi is not None and (value >= hi if meta["hi_open"] else value > hi))):
        raise ValueError(
            f"config key {path!r}: value {value!r} is out of range; expected "
            f"{'an integer' if tp is int else 'a number'} {_range_text(meta)}"
        )


def _check_union(value: Any, tp: Any, path: str, meta: dict) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    inner = [a for a in args if a is not type(None)]
    for candidate in inner:
        try:
            return check_value(value, candidate, path, meta)
        except ValueError as err:
            if "out of range" in str(err) or "finite number" in str(err) or (
                    isinstance(value, dict) and dataclasses.is_dataclass(candidate)):
                raise  # the value is of this type: its own message names the inner key
    raise ValueError(f"config key {path!r}: got {value!r}; expected {describe_type(tp)}")


def _check_sequence(value: Any, tp: Any, path: str, meta: dict) -> Any:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"config key {path!r}: got {value!r}; expected {describe_type(tp)}")
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    items = [check_value(v, args[0], f"{path}[{i}]", meta) if args else v
             for i, v in enumerate(value)]
    return tuple(items) if typing.get_origin(tp) is tuple else items


def check_value(value: Any, tp: Any, path: str, meta: dict | None = None) -> Any:
    """``value`` checked (and, for numbers given as strings by YAML 1.1, converted) against
    the type ``tp`` and the range ``meta``; ``ValueError`` naming ``path`` otherwise."""
    meta = meta or {}
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _check_union(value, tp, path, meta)
    if origin in (list, tuple):
        return _check_sequence(value, tp, path, meta)
    if origin is Literal:
        if value not in typing.get_args(tp) or isinstance(value, bool):
            raise ValueError(f"config key {path!r}: got {value!r}; expected "
                             f"{describe_type(tp)}")
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    bad = ValueError(f"config key {path!r}: got {value!r}; expected {describe_type(tp)}")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"config key {path!r}: got {value!r}; expected a finite number")
    elif tp is str:
        if not isinstance(value, str):
            raise bad
    elif tp is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    _check_range(value, tp, path, meta)
    return value


def build(cls: type, data: Any, path: str = "") -> Any:
    """An instance of the schema dataclass ``cls`` from the mapping ``data`` (``None``: all
    defaults), every key checked (module docstring); ``path`` prefixes the key names."""
    custom = getattr(cls, "from_mapping", None)
    if custom is not None:
        return custom(data, path)
    where = f"config section {path!r}" if path else "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: got {data!r}; expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        kpath = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise ValueError(
                f"config key {kpath!r}: unknown key; allowed: {', '.join(sorted(fields))}"
            )
        kwargs[key] = check_value(value, hints[key], kpath, dict(fields[key].metadata))
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        check(path)
    return obj


def read_yaml(path: str | os.PathLike, what: str = "config file") -> dict:
    """The mapping in the YAML file ``path``; one ``ValueError``/``FileNotFoundError`` naming
    the file when it is missing, not UTF-8, not valid YAML, empty or not a mapping. An empty
    file (or one of comments only) is refused rather than read as "all defaults", which would
    silently run a default experiment; ``{}`` asks for the defaults explicitly."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} {str(p)!r} is not UTF-8 text ({err.reason} at byte "
                         f"{err.start})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{what} {str(p)!r} is not valid YAML: "
                         f"{' '.join(str(err).split())}") from None
    if data is None:
        raise ValueError(f"{what} {str(p)!r} is empty (write {{}} to use every default)")
    if not isinstance(data, dict):
        raise ValueError(f"{what} {str(p)!r}: expected a mapping of keys to values, got "
                         f"{type(data).__name__}")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """A copy of the plain mapping ``data`` with ``a.b.c=value`` edits applied (values parsed
    as YAML); validate the result with :func:`build`.

    >>> apply_overrides({"train": {"lr": 1.0}}, ["train.lr=0.5", "data.n=3"])
    {'train': {'lr': 0.5}, 'data': {'n': 3}}
    """
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ValueError(f"override {item!r}: expected key.path=value, e.g. train.lr=1e-4")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ValueError(f"override {item!r}: value is not valid YAML: {err}") from None
        node = out
        for i, part in enumerate(parts[:-1]):
            if part not in node:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise ValueError(f"override {item!r}: config key "
                                 f"{'.'.join(parts[: i + 1])!r} is not a section")
            node = node[part]
        node[parts[-1]] = value
    return out
