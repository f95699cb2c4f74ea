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


def dumps(obj: Any) -> str:
    return json.dumps(_enc(obj), separators=(",", ":"), sort_keys=True)


def loads(text: str) -> Any:
    return _dec(json.loads(text))
