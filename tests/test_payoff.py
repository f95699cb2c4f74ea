"""Property tests of the payoff algebra (strategies/payoff.py).

Expected values come from closed forms (a condor risks its wider wing less the credit) or
from this file's own intrinsic-value evaluation over many underlying levels, never from the
module under test.
"""

from __future__ import annotations

import math
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.payoff import max_loss, net, split, uncovered, uncovered_shorts
from strategies.types import Contract, Intent, Leg

E1, E2 = date(2026, 4, 17), date(2026, 5, 15)
FUT = Contract("VIX", "FUT", date(2026, 3, 18), multiplier=1000)
strikes = st.integers(1, 160).map(lambda i: 25.0 * i)  # 25 .. 4000 points
rights = st.sampled_from("CP")
PROPS = settings(max_examples=300, deadline=None)


def opt(k: float, right: str, expiry: date = E1, symbol: str = "SPX") -> Contract:
    return Contract(symbol, "OPT", expiry, k, right, symbol, 100)


def value(rows: list[tuple[Contract, int]], s: float) -> float:
    """Intrinsic dollar value at expiry, written out again here."""
    total = 0.0
    for c, n in rows:
        if c.sec_type == "FUT":
            payoff = s
        else:
            payoff = max(s - c.strike if c.right == "C" else c.strike - s, 0.0)
        total += n * c.multiplier * payoff
    return total


def levels(rows: list[tuple[Contract, int]]) -> list[float]:
    ks = sorted({c.strike for c, _ in rows if c.sec_type == "OPT"})
    between = [(a + b) / 2 for a, b in zip(ks, ks[1:], strict=False)]
    return [0.0, 0.5, *ks, *between, *(k + 0.01 for k in ks), 10_000.0, 1e7]


@st.composite
def condors(draw: st.DrawFn) -> tuple[list[float], int, float]:
    ks = sorted(draw(st.lists(strikes, min_size=4, max_size=4, unique=True)))
    return ks, draw(st.integers(1, 50)), draw(st.floats(0.0, 100.0))


@given(condors())
@PROPS
def test_condor_max_loss_is_wider_wing_less_credit(c):
    (lp, sp, sc, lc), qty, credit = c
    rows = [(opt(lp, "P"), qty), (opt(sp, "P"), -qty), (opt(sc, "C"), -qty), (opt(lc, "C"), qty)]
    cost = -credit * 100 * qty
    expected = max(sp - lp, lc - sc) * 100 * qty - credit * 100 * qty
    assert math.isclose(max_loss(net(rows), cost), expected, rel_tol=1e-9, abs_tol=1e-6)


@st.composite
def combos(draw: st.DrawFn, symbol: str = "SPX") -> list[tuple[Contract, int]]:
    """Random legs on one underlying, some naked, some calendars; now and then a future."""
    legs = [(opt(draw(strikes), draw(rights), draw(st.sampled_from([E1, E2])), symbol),
             draw(st.integers(-5, 5))) for _ in range(draw(st.integers(1, 6)))]
    if symbol == "VIX" and draw(st.booleans()):
        legs.append((FUT, draw(st.integers(-2, 2))))
    return legs


@given(st.one_of(combos(), combos("VIX")), st.floats(-1e5, 1e5), st.floats(0.0, 2e4))
@PROPS
def test_no_expiry_price_loses_more_than_max_loss(rows, cost, s):
    loss = max_loss(net(rows), cost)
    for level in (s, *levels(rows)):
        assert cost - value(rows, level) <= loss + 1e-6 * max(1.0, abs(loss))


@given(combos(), st.floats(-1e5, 1e5))
@PROPS
def test_max_loss_is_reached_at_some_price_when_bounded(rows, cost):
    loss = max_loss(net(rows), cost)
    call_slope = sum(n for c, n in rows if c.right == "C")
    assert math.isinf(loss) == (call_slope < 0)  # only net short calls lose without bound
    if math.isfinite(loss):
        assert math.isclose(loss, max(cost - value(rows, s) for s in levels(rows)),
                            rel_tol=1e-9, abs_tol=1e-6)


@given(st.one_of(combos(), combos("VIX")), st.floats(-1e5, 1e5), strikes, rights,
       st.integers(1, 5), st.sampled_from([E1, E2]))
@PROPS
def test_a_free_long_option_never_adds_loss(rows, cost, k, right, n, expiry):
    symbol = rows[0][0].symbol
    before = max_loss(net(rows), cost)
    after = max_loss(net([*rows, (opt(k, right, expiry, symbol), n)]), cost)
    assert after <= before + 1e-6 * max(1.0, abs(before)) or math.isinf(before)


@given(combos())
@PROPS
def test_covered_combos_have_bounded_loss(rows):
    if not uncovered(rows):
        assert math.isfinite(max_loss(net(rows), 0.0))


@given(st.lists(st.tuples(strikes, rights, st.sampled_from([E1, E2])), min_size=1, max_size=4),
       st.integers(1, 5))
@PROPS
def test_each_short_paired_with_a_same_or_later_long_is_covered(shorts, n):
    legs = []
    for k, r, e in shorts:  # the long expires on or after its short: always covered
        legs += [Leg(opt(k, r, e), -n), Leg(opt(k + 25.0, r, E2), n)]
    intent = Intent("k", "c", "open", tuple(legs), 1, 0.0, 0.0)
    assert uncovered_shorts(intent) == []
    k, r, e = shorts[0]
    naked = Intent("k", "c", "open", (*legs, Leg(opt(k, r, e), -1)), 1, 0.0, 0.0)
    assert uncovered_shorts(naked) != []


@given(combos(), combos(), st.integers(1, 4))
@PROPS
def test_split_closes_only_against_held_and_adds_up(held_rows, legs, qty):
    held = net(held_rows)
    intent = Intent("k", "c", "roll", tuple(Leg(c, n) for c, n in legs if n), qty, 0.0, 0.0)
    if not intent.legs:
        return
    closing, opening = split(intent, held)
    whole = net((leg.contract, leg.ratio * qty) for leg in intent.legs)
    for key, (_, q) in whole.items():
        shut = closing.get(key, (None, 0))[1]
        h = held.get(key, (None, 0))[1]
        assert shut + opening.get(key, (None, 0))[1] == q
        assert shut == 0 or (shut * h < 0 and abs(shut) <= abs(h))
