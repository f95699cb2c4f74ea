"""strategies.frozen.fast_init: the same objects as the dataclass's own __init__, still frozen."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest

from strategies.frozen import fast_init
from strategies.types import Account, Contract, Decision, Leg, Snapshot, State


def _declare(name: str) -> type:
    """A fresh frozen dataclass with positional, defaulted and default-factory fields, named
    as the module global it is bound to (so that pickle finds it)."""

    @dataclass(frozen=True)
    class Declared:
        a: int
        b: float = 2.5
        c: tuple[int, ...] = ()
        d: list[int] = field(default_factory=list)

    Declared.__name__ = Declared.__qualname__ = name
    return Declared


_Plain: Any = _declare("_Plain")  # the generated __init__
_Fast: Any = fast_init(_declare("_Fast"))  # the same declaration, with fast_init's


def _fields(o: Any) -> tuple:
    return tuple(getattr(o, f.name) for f in dataclasses.fields(o))


@pytest.mark.parametrize("args, kw", [((1,), {}), ((1, 3.0), {}), ((1,), {"d": [4]}),
                                      ((), {"a": 7, "c": (1, 2)}), ((1, 2.0, (3,), [5]), {})])
def test_the_same_fields_as_the_generated_init(args: tuple, kw: dict) -> None:
    assert _fields(_Fast(*args, **kw)) == _fields(_Plain(*args, **kw))


def test_a_default_factory_gives_each_object_its_own_value() -> None:
    x, y = _Fast(1), _Fast(2)
    assert x.d == [] and x.d is not y.d


def test_bad_calls_fail_as_before() -> None:
    with pytest.raises(TypeError):
        _Fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Fast(1, e=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Fast(1, 2.0, (), [], 5)  # type: ignore[call-arg]


def test_still_frozen_equal_hashable_replaceable_picklable() -> None:
    x = _Fast(1, c=(2,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        x.a = 2  # type: ignore[misc]
    assert x == _Fast(1, c=(2,)) and x != _Fast(2, c=(2,))
    assert dataclasses.replace(x, a=5) == _Fast(5, c=(2,))
    assert pickle.loads(pickle.dumps(x)) == x
    assert hash(Contract("SPX", "OPT", date(2027, 1, 15), 5000.0, "P")) == \
        hash(Contract("SPX", "OPT", date(2027, 1, 15), 5000.0, "P"))


def test_what_it_cannot_keep_is_refused() -> None:
    @dataclass(frozen=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class KwOnly:
        a: int = field(kw_only=True)

    @dataclass
    class Mutable:
        a: int

    for cls in (Post, KwOnly, Mutable):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_the_step_objects_build_as_declared() -> None:
    now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    acc = Account(100.0, maint_margin=5.0)
    assert (acc.net_liquidation, acc.init_margin, acc.maint_margin, acc.cushion) == \
        (100.0, 0.0, 5.0, 1.0)
    snap = Snapshot(now, 5000.0, 15.0, {}, acc)
    assert snap.vix_futures == {} and snap.vix_futures is not Snapshot(now, 1.0, 1.0, {}, acc) \
        .vix_futures and snap.market_open is True and snap.positions == ()
    st = State()
    assert Decision(st).intents == () and Decision(st).state is st
    leg = Leg(Contract("SPX", "OPT", date(2027, 1, 15), 5000.0, "P"), -1)
    assert leg.ratio == -1
