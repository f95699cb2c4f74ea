"""SimBroker's account keeps the margin of spreads-only positions between snapshots; it must
be what bot.sim.margin.requirement gives afresh, after the positions change and while a
naked short's requirement moves with the market."""

from __future__ import annotations

from datetime import datetime

from bot.broker.sim import SimBroker
from bot.clock import SimClock
from bot.sim import margin as mg
from strategies import expiry as xp
from strategies.types import Contract, Position

START = datetime(2026, 1, 5, 9, 45, tzinfo=xp.NY)


def _fresh(b: SimBroker) -> mg.Margin:
    return mg.requirement(list(b._positions.values()), b._mark,
                          {"SPX": b.market.spx, "VIX": b.market.vix})


def _opt(e, k: float, right: str) -> Contract:
    return Contract("SPX", "OPT", e, k, right, "SPX")


async def test_account_margin_equals_a_fresh_requirement() -> None:
    b = SimBroker(SimClock(START), "crash_2020", 7)
    snap = await b.snapshot()
    e = sorted(snap.chains)[1]
    ks = snap.chains[e].strikes
    i = int(ks.searchsorted(snap.spx))
    lp, sp, sc, lc = (float(ks[j]) for j in (i - 12, i - 8, i + 8, i + 12))
    condor = {c.key: Position(c, q, 1.0) for c, q in (
        (_opt(e, lp, "P"), 1), (_opt(e, sp, "P"), -1), (_opt(e, sc, "C"), -1),
        (_opt(e, lc, "C"), 1))}
    layouts = [condor,
               {**condor, "x": Position(_opt(e, float(ks[i - 20]), "P"), -2, 1.0)},  # naked
               dict(condor), {}]
    seen = set()
    for step in range(40):
        b._positions = layouts[step // 10]
        snap = await b.snapshot()
        want = _fresh(b)
        assert (snap.account.init_margin, snap.account.maint_margin) == (want.init, want.maint)
        seen.add(round(want.init, 6))
        b.clock.advance(1800)
        if not xp.is_spx_open(b.clock.now()):
            b.clock.set(xp.next_spx_open(b.clock.now()))
    assert len(seen) >= 4  # the layouts differ, and the naked short's requirement moves
