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


def _enc(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"__type__": type(obj).__name__}
        for f in dataclasses.fields(obj):
            out[f.name] = _enc(getattr(obj, f.name))
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
