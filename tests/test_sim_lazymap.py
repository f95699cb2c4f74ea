"""bot.sim.lazymap.LazyMap: the snapshot's chain mappings make a chain on first lookup and
keep it; keys and length are known without making any; a later build's map is a new one."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from bot.broker.sim import SimBroker
from bot.clock import SimClock
from bot.sim.lazymap import LazyMap
from strategies import expiry as xp


def test_values_are_made_once_on_lookup() -> None:
    made: list[int] = []
    m = LazyMap({1: (10,), 2: (20,)}, lambda x: made.append(x) or [x])
    assert list(m) == [1, 2] and len(m) == 2 and 2 in m and 3 not in m and not made
    assert m[1] is m.get(1) and m[1] == [10] and made == [10]
    assert m.get(3) is None and m.get(3, "no") == "no"
    with pytest.raises(KeyError):
        m[3]
    assert list(m.made()) == [[10]]
    assert dict(m.items()) == {1: [10], 2: [20]} and made == [10, 20]


async def test_snapshot_chains_belong_to_their_build() -> None:
    b = SimBroker(SimClock(datetime(2026, 1, 5, 9, 45, tzinfo=xp.NY)), "chop", 7)
    s1 = await b.snapshot()
    e: date = sorted(s1.chains)[0]
    c1 = s1.chains[e]
    b.clock.advance(300)
    s2 = await b.snapshot()
    assert s2.chains is not s1.chains and s2.chains[e] is not c1 and s1.chains[e] is c1
    assert list(s2.vix_chains) == list(s2.vix_futures)
    assert c1.t > s2.chains[e].t


def test_arguments_given_as_a_function_are_listed_once_on_first_use() -> None:
    listed: list[int] = []

    def args() -> dict[int, tuple[int]]:
        listed.append(1)
        return {1: (10,), 2: (20,)}

    m = LazyMap(args, lambda x: [x])
    assert not listed  # nothing listed until the map is used
    assert 2 in m and listed == [1]
    assert m[1] == [10] and m.get(3) is None and list(m) == [1, 2] and len(m) == 2
    assert listed == [1]
