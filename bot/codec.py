"""JSON codec for the frozen dataclasses that the store persists (strategy state, intents).

Dataclasses are written as {"__type__": name, fields...}; dates, datetimes and enums as
tagged strings. Only registered types are decoded, so a stored blob cannot build arbitrary
objects.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from enum import Enum
from typing import Any

from strategies import alvh, ledger, tvm, types

_TYPES: dict[str, type] = {}


def register(*classes: type) -> None:
    for cls in classes:
        _TYPES[cls.__name__] = cls


register(types.Contract, types.Leg, types.Intent, types.Fill, tvm.Campaign, tvm.State, tvm.Status,
         ledger.Ledger, ledger.Flow, alvh.Layer)


_PLAIN = frozenset({str, int, float, bool, type(None)})  # exact types: written as they are
_FIELDS: dict[type, tuple[str, ...]] = {}  # dataclass -> its field names, in order
# Frozen dataclasses whose fields are immutable all the way down (no dict or list field): one
# object always encodes the same, so its encoding is kept by object (id; the entry holds the
# object, so its id is not reused while the entry lives). The strategy state is written on
# every change and holds a growing ledger of flows: without this each write re-encodes it.
_KEEP = frozenset({types.Contract, types.Leg, types.Fill, tvm.Campaign, ledger.Ledger,
                   ledger.Flow})
_KEPT: dict[int, tuple[Any, Any]] = {}
_KEPT_MAX = 50_000


def _enc(obj: Any) -> Any:
    cls = type(obj)
    if cls in _PLAIN:
        return obj
    if cls in _KEEP:
        got = _KEPT.get(id(obj))
        if got is not None and got[0] is obj:
            return got[1]
    names = _FIELDS.get(cls)
    if names is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(obj))
    if names is not None:
        out = {"__type__": cls.__name__}
        for name in names:
            out[name] = _enc(getattr(obj, name))
        if cls in _KEEP:
            if len(_KEPT) >= _KEPT_MAX:
                _KEPT.clear()
            _KEPT[id(obj)] = (obj, out)
        return out
    if isinstance(obj, Enum):
        return {"__enum__": type(obj).__name__, "v": obj.value}
    if isinstance(obj, datetime):
        return {"__dt__": obj.isoformat()}
    if isinstance(obj, date):
        return {"__d__": obj.isoformat()}
    if isinstance(obj, (list, tuple)):
        return [_enc(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _enc(v) for k, v in obj.items()}
    if hasattr(obj, "item"):  # numpy scalar
        return obj.item()
    return obj


def _dec(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_dec(x) for x in obj)
    if not isinstance(obj, dict):
        return obj
    if "__dt__" in obj:
        return datetime.fromisoformat(obj["__dt__"])
    if "__d__" in obj:
        return date.fromisoformat(obj["__d__"])
    if "__enum__" in obj:
        return _TYPES[obj["__enum__"]](obj["v"])
    if "__type__" in obj:
        cls = _TYPES.get(obj["__type__"])
        if cls is None:
            raise ValueError(f"unknown stored type {obj['__type__']!r}")
        kwargs = {k: _dec(v) for k, v in obj.items() if k != "__type__"}
        return cls(**kwargs)
    return {k: _dec(v) for k, v in obj.items()}


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


_STR = json.encoder.encode_basestring_ascii  # what json.dumps writes a str with (ensure_ascii)
_INF = float("inf")
# dataclass -> its field names with their JSON keys, in the order json's sort_keys writes them
_KEYED: dict[type, tuple[tuple[str, str], ...]] = {}
_TEXT: dict[int, tuple[Any, str]] = {}  # _KEEP objects' text, by object (as _KEPT)


def _text(obj: Any) -> str:
    """`_json(_enc(obj))`, the same characters: JSON text is compositional, so a frozen
    object's text (a `_KEEP` type) is kept and written into its container's as it is. The
    strategy state holds a ledger of flows that grows all run and is written on every change:
    json re-wrote all of it each time."""
    cls = type(obj)
    if cls is str:
        return _STR(obj)
    if cls is float:
        if obj != obj:
            return "NaN"
        if obj == _INF:
            return "Infinity"
        if obj == -_INF:
            return "-Infinity"
        return float.__repr__(obj)
    if cls is int:
        return int.__repr__(obj)
    if cls is bool:
        return "true" if obj else "false"
    if obj is None:
        return "null"
    if cls in _KEEP:
        got = _TEXT.get(id(obj))
        if got is not None and got[0] is obj:
            return got[1]
    elif cls is tuple or cls is list:
        return "[" + ",".join([_text(x) for x in obj]) + "]"
    elif cls is datetime:
        return '{"__dt__":' + _STR(obj.isoformat()) + "}"
    keyed = _KEYED.get(cls)
    if keyed is None:
        if not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
            return _json(_enc(obj))  # enums, dates, dicts, numpy scalars: json's own text
        names = _FIELDS.get(cls)
        if names is None:
            names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(obj))
        keys = sorted(("__type__", *names))  # json's sort_keys order ("" is the type)
        keyed = _KEYED[cls] = tuple(("" if k == "__type__" else k, _STR(k) + ":") for k in keys)
    parts = []
    for name, key in keyed:
        parts.append(key + (_text(getattr(obj, name)) if name else _STR(cls.__name__)))
    out = "{" + ",".join(parts) + "}"
    if cls in _KEEP:
        if len(_TEXT) >= _KEPT_MAX:
            _TEXT.clear()
        _TEXT[id(obj)] = (obj, out)
    return out


def dumps(obj: Any) -> str:
    return _text(obj)


def loads(text: str) -> Any:
    return _dec(json.loads(text))
