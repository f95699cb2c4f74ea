"""The executor: the price ladder, one order id per intent, cancel on timeout, partial fills."""


import pytest

from bot.broker.base import BrokerError, ErrorKind
from bot.orders import walk_price
from strategies.instruments import combo_tick, on_grid
from strategies.types import Contract, Intent, Leg
from tests.conftest import read_events
from tests.simrun import build


def _intent(mid, natural, symbol="SPX", key="K"):
    c = Contract(symbol, "OPT", __import__("datetime").date(2026, 3, 20), 100.0, "C", symbol)
    return Intent(key, "C0001", "open", (Leg(c, 1),), 1, mid, natural)


def test_a_vix_combo_above_3_walks_in_cents():
    # Cboe: VIX complex orders trade in 0.01 at any net price (single legs: 0.05 from 3.00)
    d = __import__("datetime").date(2026, 3, 18)
    spread = (Leg(Contract("VIX", "OPT", d, 20.0, "C", "VIX"), 1),
              Leg(Contract("VIX", "OPT", d, 30.0, "C", "VIX"), -1))
    it = Intent("K", "C0001", "hedge_open", spread, 1, 3.27, 3.41)
    assert [walk_price(it, i, 4, 1.0) for i in range(4)] == [3.27, 3.31, 3.36, 3.41]
    single = _intent(3.27, 3.41, "VIX")  # one leg: its own tick, 0.05 above 3.00
    assert [walk_price(single, i, 4, 1.0) for i in range(4)] == [3.25, 3.30, 3.35, 3.45]


@pytest.mark.parametrize("mid, natural, symbol", [
    (-13.9, -12.4, "SPX"),  # opening credit, natural on the grid
    (-3.67, -3.31, "VIX"),  # closing credit, natural off the 0.05 grid
    (1.27, 1.35, "VIX"),    # debit
    (2.02, 2.37, "SPX"),
])
def test_ladder_starts_at_mid_and_ends_marketable(mid, natural, symbol):
    it = _intent(mid, natural, symbol)
    prices = [walk_price(it, i, 4, 1.0) for i in range(4)]
    buying = natural >= mid
    sign = 1 if buying else -1
    tick = combo_tick(it.legs, natural)
    assert all(on_grid(p, tick) for p in prices)
    assert abs(prices[0] - mid) <= tick + 1e-9
    assert all(sign * (b - a) >= -1e-9 for a, b in zip(prices, prices[1:]))  # monotone
    assert sign * (prices[-1] - natural) >= -1e-9  # the last price reaches natural...
    assert sign * (prices[-1] - natural) < tick + 1e-9  # ...by less than one tick
    for p in prices[:-1]:  # the others never go past natural
        assert sign * (p - natural) <= 1e-9


def test_max_slippage_caps_the_ladder():
    it = _intent(-10.0, -8.0)
    prices = [walk_price(it, i, 5, 0.5) for i in range(5)]
    assert max(prices) <= -9.0 + 1e-9  # never more than half way from mid to natural


async def _working(settings, **sim):
    d = build(settings)
    await d.broker.connect()
    d.clock.advance(20 * 60)
    await d.step()
    assert d.executor.busy
    return d


async def test_one_order_id_per_intent_while_walking(settings_factory, log_file):
    d = await _working(settings_factory())
    for _ in range(10):
        d.clock.advance(10)
        await d.step()
    ev = read_events(log_file)
    key = [e for e in ev if e["event"] == "order.submitted"][0]["key"]
    ids = {e["order_id"] for e in ev if e.get("key") == key and "order_id" in e}
    walked = [e for e in ev if e["event"] == "order.walked" and e["key"] == key]
    assert len(ids) == 1 and walked
    assert len([o for o in await d.broker.orders() if o.order_ref == key]) == 1
    d.store.close()


async def test_cancel_on_timeout_when_nothing_fills(settings_factory, log_file):
    # a limit that never reaches natural: the order is cancelled after the last step
    d = await _working(settings_factory(orders={"max_slippage": 0.0}))
    for _ in range(8):
        d.clock.advance(10)
        await d.step()
    ev = read_events(log_file)
    assert [e for e in ev
            if e["event"] == "order.cancel_requested" and e["why"] == "walk_exhausted"]
    row = d.store.intent([e for e in ev if e["event"] == "order.submitted"][0]["key"])
    assert row["status"] == "cancelled" and row["filled"] == 0
    d.store.close()


async def test_a_walk_step_the_guard_refuses_cancels_the_order(settings_factory, log_file):
    # the max loss at the next walk price breaks the cap: the order is cancelled, not left
    # at its old price with the walk retried (and refused) every step for ever
    d = await _working(settings_factory(orders={"max_slippage": 0.0}))
    key = next(iter(d.executor.working))
    opening, base, _ = d.guard._approved[key]
    d.guard._approved[key] = (opening, base, 0.0)  # the cap as if net liq had collapsed
    for _ in range(12):
        d.clock.advance(10)
        await d.step()
        if key not in d.executor.working:
            break
    ev = read_events(log_file)
    assert [e for e in ev if e["event"] == "order.walk_refused"][0]["code"] == "campaign_max_loss"
    assert [e["why"] for e in ev if e["event"] == "order.cancel_requested"
            and e["key"] == key] == ["campaign_max_loss"]
    assert key not in d.executor.working and d.store.intent(key)["status"] == "cancelled"
    d.store.close()


@pytest.mark.parametrize("kind, reconciled", [(ErrorKind.CANNOT_MODIFY, True),
                                               (ErrorKind.NOT_FOUND, True),
                                               (ErrorKind.DISCONNECTED, False)])
async def test_a_failed_walk_step_acts_on_the_kind(settings_factory, log_file, kind,
                                                   reconciled):
    # the order is done or gone: stop walking it and read the broker again; the link is
    # down: keep tracking it (the next step tries again)
    d = await _working(settings_factory(orders={"max_slippage": 0.0}))
    key = next(iter(d.executor.working))
    place = d.broker.place
    fail = [True]

    async def refusing(req):
        if req.order_id is not None and fail[0]:
            raise BrokerError(kind, "modify refused by the test")
        return await place(req)

    d.broker.place = refusing
    d.clock.advance(10)
    await d.step()  # walk step 1: refused
    ev = read_events(log_file)
    failed = [e for e in ev if e["event"] == "order.modify_failed"]
    assert [e["kind"] for e in failed] == [kind.value]
    names = [e["event"] for e in ev]
    after = names[names.index("order.modify_failed"):]
    assert ("reconcile.done" in after) is reconciled
    fail[0] = False
    d.clock.advance(10)
    await d.step()
    walked = [e for e in read_events(log_file) if e["event"] == "order.walked" and e["key"] == key]
    assert bool(walked) is not reconciled  # adopted at its last step: no more walking
    d.store.close()


async def test_partial_fills_are_tracked_and_folded(settings_factory, log_file):
    s = settings_factory(sim={"fill_ratio": 0.5}, strategy={"base_qty": 4})
    d = await _working(s)
    for _ in range(12):
        d.clock.advance(10)
        await d.step()
        if not d.executor.busy:
            break
    ev = read_events(log_file)
    fills = [e for e in ev if e["event"] == "order.filled"]
    filled = sum(f["qty"] for f in fills)
    assert len(fills) >= 2 and 2 <= filled <= 4  # half of what remains, each match
    entered = [e for e in ev if e["event"] == "campaign.entered"][0]
    assert entered["qty"] == filled  # the campaign holds what filled, not what was asked
    key = fills[0]["key"]
    assert sum(r["qty"] for r in d.store.fills_for(key)) == filled
    assert {p.qty for p in await d.broker.positions()} == {filled, -filled}
    d.store.close()


async def test_ib_order_events_reach_the_executor_listener():
    """Through real ib_async against the emulator: a fill is an event the executor hears at
    once (no waiting for the next decision tick)."""
    import asyncio
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from ib_helpers import broker, condor_order, entry_condor, gateway

    from bot.orders import listen_orders

    async with gateway() as gw, broker(gw) as b:
        heard = asyncio.Event()
        assert listen_orders(b, heard.set)
        snap = await b.snapshot()
        condor = entry_condor(snap)
        await b.place(condor_order(condor, "C0001-20260105:open:0:0", price="mid"))
        heard.clear()  # the acknowledgement was an event too; now the fill
        st = next(o for o in await b.orders())
        await b.place(condor_order(condor, "C0001-20260105:open:0:0", order_id=st.order_id))
        await gw.pump()
        await asyncio.wait_for(heard.wait(), 10)
        await b.server_time()  # a round trip: the rest of what the emulator sent is in
        assert [o for o in await b.orders() if o.order_id == st.order_id][0].status == "Filled"
