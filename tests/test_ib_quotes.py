"""IBBroker's quote times and order events against the emulator, through real ib_async over
127.0.0.1: a fast (manual) emulator clock still dates the bid/asks that moved at the time
they moved; order listeners hear every order event after the book has it.

The emulator's clock is manual (it moves only in `gw.advance`); a request/answer round trip is
the barrier.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from ib_helpers import (  # noqa: F401
    barrier,
    broker,
    condor_order,
    entry_condor,
    gateway,
    ib_errors,
)

from bot.broker.base import OrderStatus


async def test_quotes_that_moved_stay_fresh_however_fast_market_time_runs(ib_errors):
    """An hour of market time inside one wall second: the lines whose bid/ask moved are
    updates (not a subscription's first, cached, quotes), so the chain is as of now; before,
    they counted as first quotes and the chain kept the subscription's time. A line that did
    not change (IB re-sends nothing for it) does not age an expiry whose other lines moved."""
    async with gateway() as gw, broker(gw) as b:
        snap = await b.snapshot()
        expiry = entry_condor(snap).expiry
        lines = {k: (t.bid, t.ask) for k, (c, t) in b.market.lines.items()
                 if getattr(c, "expiry", None) == expiry}
        quiet = next(iter(lines))  # one line the emulator does not re-send (unchanged)
        gw.faults.quotes[quiet] = lines[quiet]
        await gw.advance(3600)
        snap = await b.snapshot()
        moved = [k for k, (c, t) in b.market.lines.items()
                 if k in lines and (t.bid, t.ask) != lines[k]]
        assert moved, "the market did not move in an hour"
        assert (snap.time - snap.chains[expiry].as_of).total_seconds() < 60


async def test_quote_snapshot_reads_the_legs_lines_as_they_are_now():
    """A walk step's read: the legs' current quotes at the broker's current time, without
    re-centring the book (nothing subscribed or released) even after the market moved."""
    async with gateway() as gw, broker(gw) as b:
        condor = entry_condor(await b.snapshot())
        counts = (b.market.subscribed, b.market.released)
        await gw.advance(1800)
        q = await b.quote_snapshot(condor.legs)
        assert (b.market.subscribed, b.market.released) == counts
        assert q.time >= gw.snap.time - timedelta(seconds=1) and set(q.chains) == {condor.expiry}
        sim_chain = gw.snap.chains[condor.expiry]
        for leg in condor.legs:
            c = leg.contract
            assert q.chains[c.expiry].quote(c.strike, c.right) == pytest.approx(
                sim_chain.quote(c.strike, c.right), abs=1e-9)
        assert (q.time - q.chains[condor.expiry].as_of).total_seconds() < 60


async def test_order_listeners_run_after_the_book_has_the_event():
    async with gateway() as gw, broker(gw) as b:
        condor = entry_condor(await b.snapshot())
        seen: list[tuple[OrderStatus, int]] = []

        def heard() -> None:
            o = next(iter(b.book.orders.values()))
            seen.append((o.status, len(o.execs)))

        b.add_order_listener(heard)
        st = await b.place(condor_order(condor, "L1", "natural"))
        await barrier(b)
        assert seen and seen[-1] == (OrderStatus.FILLED, 1 + len(condor.legs))
        assert (await b.orders())[0].status is OrderStatus.FILLED and st.order_id


async def test_a_held_condors_roll_target_outranks_new_entries_for_lines(ib_errors):
    """With too few lines for everything, the expiry a held condor rolls to is covered
    before entry expiries: after entering, its next expiry still has a condor in the short
    delta band (the parity test's `no_short_strike_in_delta_band` after a roll); and still
    once the condor is closed the same day (a roll closes it before opening the next)."""
    from ib_helpers import SMALL

    from bot.broker.base import OrderRequest
    from bot.broker.ib_market import Plan
    from strategies.condor import build_condor, reverse

    # room for the fixed lines, the held legs and about one expiry's candidates
    plan = Plan(entry_dte=(40, 50), per_side=3, widths=(50.0,), vix_expiries=0,
                quote_wait=SMALL.quote_wait, max_lines=60)
    async with gateway() as gw, broker(gw, plan=plan) as b:
        condor = entry_condor(await b.snapshot())
        st = await b.place(condor_order(condor, "R1", "natural"))
        assert st.status is OrderStatus.FILLED
        snap = await b.snapshot()
        target = min(e for e in snap.chains if e > condor.expiry)
        rolled, why = build_condor(snap.chains[target], 0.16, 0.15, 0.20, 50.0)
        assert rolled is not None, why
        close = OrderRequest("R2", reverse(condor.legs), 1, round(-condor.mid + 5.0, 2))
        assert (await b.place(close)).status is OrderStatus.FILLED
        snap = await b.snapshot()
        assert not snap.positions
        rolled, why = build_condor(snap.chains[target], 0.16, 0.15, 0.20, 50.0)
        assert rolled is not None, why


async def test_a_roll_open_after_a_restart_finds_its_strikes(ib_errors):
    """Between a roll's close and its open nothing is held, and after a restart the book has
    no memory of what was: the next expiry's strikes at the new, wider wings were never
    subscribed, and the open waited (`bad_quote`, `no_short_strike_in_delta_band`) for weeks
    of market time in the crash test. `plan_roll` (the daemon passes the strategy's pending
    roll) brings them."""
    from ib_helpers import SMALL

    from bot.broker.ib_market import Plan
    from strategies.condor import build_condor

    plan = Plan(entry_dte=(40, 50), per_side=3, widths=(50.0,), vix_expiries=0,
                quote_wait=SMALL.quote_wait, max_lines=60)
    async with gateway() as gw, broker(gw, plan=plan) as b:
        snap = await b.snapshot()  # a fresh start, flat: the book covers entries only
        rolled_from = min(e for e in snap.chains if e > snap.time.date())
        target = min(e for e in snap.chains if e > rolled_from)
        wing = 115.0
        before, _ = build_condor(snap.chains[target], 0.16, 0.15, 0.20, wing)
        b.plan_roll(rolled_from, wing)
        snap = await b.snapshot()
        rolled, why = build_condor(snap.chains[target], 0.16, 0.15, 0.20, wing)
        assert before is None and rolled is not None, why
        b.plan_roll(None)
        assert b.market.roll_target is None


async def test_a_line_subscribed_again_is_not_quoted_at_what_it_showed_before():
    """ib_async hands back the same Ticker for a contract subscribed again after
    cancelMktData, still holding the old bid/ask: without emptying it, the snapshot read those
    as the new line's quotes (seen in the parity run: strikes released at one SPX level and
    subscribed again an hour later were quoted at the old level, and the roll picked another
    strike than the in-process run)."""
    async with gateway() as gw, broker(gw) as b:
        snap = await b.snapshot()
        expiry = entry_condor(snap).expiry
        key, (c, t) = next((k, v) for k, v in b.market.lines.items()
                           if getattr(v[0], "expiry", None) == expiry)
        old = (t.bid, t.ask)
        await b.market._sync_lines([w for k, (w, _) in b.market.lines.items() if k != key])
        assert key not in b.market.lines  # released
        gw.faults.quotes[key] = (old[0] + 5.0, old[1] + 5.0)  # the market there moved since
        await b.market._sync_lines([*(w for w, _ in b.market.lines.values()), c])
        assert b.market.lines[key][1] is t  # ib_async's own ticker, handed back
        assert (t.bid, t.ask) == (old[0] + 5.0, old[1] + 5.0)
