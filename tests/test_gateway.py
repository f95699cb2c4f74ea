"""The TWS emulator (bot.sim.gateway) against ib_async's real IB client over 127.0.0.1.

The emulator's clock is manual here (speed None): tests move it with `gw.advance` and use a
request/answer round trip as a barrier, never sleeps. The end-to-end test runs
`condorbot sim-gateway` and `condorbot run --broker ib` as two processes.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from ib_async import IB, Future, Index, LimitOrder, Option
from ib_helpers import (
    ACCT,
    REPO,
    combo,
    condor_options,
    gateway,
    ib_errors,  # noqa: F401 (fixture)
    natural_of,
    write_config,
)
from ib_helpers import connect as ib_connect

from tests.procs import Proc

CID = 11


async def connect(gw, client_id: int = CID) -> IB:
    return await ib_connect(gw, client_id)


async def spx_condor(ib: IB, gw):
    """A 50-wide condor ~300 points out on the Feb 2026 monthly, qualified, with its quotes."""
    opts, tickers = await condor_options(ib, gw)
    mid = sum(s * (t.bid + t.ask) / 2 for s, t in zip((1, -1, -1, 1), tickers))
    return combo(opts), natural_of(tickers), round(mid, 2)


async def test_connect_answers_every_startup_request():
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            assert ib.client.serverVersion() == 178 and ib.managedAccounts() == [ACCT]
            assert await ib.reqCurrentTimeAsync() == gw.sim.clock.now()
            values = {v.tag: v.value for v in ib.accountValues(ACCT)}
            assert float(values["NetLiquidation"]) == 1_000_000.0 and values["Cushion"] == "1.0000"
            assert ib.positions() == [] and ib.openTrades() == []
            summary = {v.tag: v.value for v in await ib.accountSummaryAsync(ACCT)}
            assert float(summary["NetLiquidation"]) == 1_000_000.0
        finally:
            ib.disconnect()


async def test_contracts_listings_and_unknown_symbols(ib_errors):
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            spx, vix, ad = Index("SPX", "CBOE"), Index("VIX", "CBOE"), Index("AD-NYSE", "NYSE")
            weekly = Option("SPX", "20260220", 6000, "P", "SMART", tradingClass="SPXW")
            ib_errors.expect(r"Error 200, .*NOPE")
            ib_errors.expect(r"Error 200, .*SPXW")
            got = await ib.qualifyContractsAsync(spx, vix, ad, Index("NOPE", "CBOE"), weekly)
            assert [c.conId if c else None for c in got] == [416904, 13455763, 2654981, None, None]
            futs = await ib.reqContractDetailsAsync(Future("VIX", exchange="CFE"))
            assert [d.contract.localSymbol for d in futs][:3] == ["VXF6", "VXG6", "VXH6"]
            assert {d.contract.multiplier for d in futs} == {"1000"}
            params = await ib.reqSecDefOptParamsAsync("SPX", "", "IND", spx.conId)
            classes = {(p.exchange, p.tradingClass) for p in params}
            assert {("SMART", "SPX"), ("SMART", "SPXW")} <= classes
            monthly = next(p for p in params if p.tradingClass == "SPX")
            assert "20260220" in monthly.expirations and 6000.0 in monthly.strikes
        finally:
            ib.disconnect()


async def test_market_data_live_delayed_greeks_and_bars(ib_errors):
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            spx = Index("SPX", "CBOE")
            put = Option("SPX", "20260220", 5600, "P", "SMART", tradingClass="SPX")
            await ib.qualifyContractsAsync(spx, put)
            live = ib.reqMktData(put)
            ib.reqMarketDataType(3)
            delayed_index = ib.reqMktData(spx)
            await ib.reqCurrentTimeAsync()
            assert 0 < live.bid < live.ask and live.marketDataType == 1
            g = live.modelGreeks
            assert -0.5 < g.delta < 0 and g.impliedVol > 0 and g.vega > 0 and g.undPrice > 0
            assert delayed_index.marketDataType == 3 and delayed_index.last == round(gw.snap.spx, 2)
            (snap_ticker,) = await ib.reqTickersAsync(put)  # snapshot: ends with tickSnapshotEnd
            assert snap_ticker.bid == live.bid
            before = live.bid
            await gw.advance(3600)
            await ib.reqCurrentTimeAsync()
            assert live.bid != before  # streaming: the hour's move arrived
            bars = await ib.reqHistoricalDataAsync(spx, "", "1 Y", "1 day", "TRADES", True)
            last_close = round(float(gw.sim.market.bars["close"].iloc[-1]), 2)
            assert len(bars) == 252 and bars[-1].close == last_close
            ad = await ib.reqHistoricalDataAsync(Index("AD-NYSE", "NYSE", conId=2654981), "", "1 M",
                                                 "1 day", "TRADES", True)
            line = gw.sim.market.bars["ad_line"]
            assert ad[-1].close == pytest.approx(float(line.iloc[-1] - line.iloc[-2]), abs=0.01)
            ib_errors.expect(r"Error 162, .*no data")
            vixf = Future("VIX", "20260218", exchange="CFE")
            await ib.qualifyContractsAsync(vixf)
            assert not await ib.reqHistoricalDataAsync(vixf, "", "1 M", "1 day", "TRADES", True)
        finally:
            ib.disconnect()


async def test_what_if_order_fill_commission_positions_and_journal(tmp_path):
    journal = tmp_path / "orders.jsonl"
    async with gateway(journal=journal) as gw:
        ib = await connect(gw)
        try:
            bag, natural, _ = await spx_condor(ib, gw)
            order = LimitOrder("BUY", 2, natural, orderRef="C0001-20260105:open:0:0", account=ACCT)
            state = await ib.whatIfOrderAsync(bag, order)
            sim_view = gw.sim  # the same numbers the SimBroker gives for the same request
            legs = [gw.reg.contract(leg.conId) for leg in bag.comboLegs]
            assert float(state.initMarginChange) == 10_000.0 and float(state.commission) == 5.2
            assert all(legs)
            trade = ib.placeOrder(bag, order)
            await ib.reqCurrentTimeAsync()
            assert trade.orderStatus.status == "Filled" and trade.orderStatus.filled == 2
            kinds = sorted(f.contract.secType for f in trade.fills)
            assert kinds == ["BAG", "OPT", "OPT", "OPT", "OPT"]
            bag_fill = next(f for f in trade.fills if f.contract.secType == "BAG")
            assert bag_fill.execution.price <= natural and bag_fill.execution.shares == 2
            assert sum(f.commissionReport.commission for f in trade.fills) == pytest.approx(5.2)
            assert sorted(p.position for p in ib.positions()) == [-2, -2, 2, 2]
            values = {v.tag: float(v.value) for v in ib.accountValues(ACCT) if v.currency == "USD"}
            assert values["InitMarginReq"] == 10_000.0
            assert (await sim_view.positions()) and len(gw.journal) == 2
            lines = [json.loads(x) for x in journal.read_text().splitlines()]
            assert [x["whatIf"] for x in lines] == [True, False]
            entry = lines[1]
            assert entry["orderRef"] == "C0001-20260105:open:0:0" and entry["action"] == "BUY"
            assert entry["totalQuantity"] == 2 and entry["lmtPrice"] == natural
            assert entry["orderId"] == trade.order.orderId
            assert entry["time"].startswith("2026-01-05")
            assert [leg["action"] for leg in entry["legs"]] == ["BUY", "SELL", "SELL", "BUY"]
        finally:
            ib.disconnect()


async def test_modify_in_place_then_cancel(ib_errors):
    ib_errors.allow(r"Error 202, .*Order Canceled")  # ib_async logs a cancellation as an error
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            bag, natural, mid = await spx_condor(ib, gw)
            trade = ib.placeOrder(bag, LimitOrder("BUY", 1, mid - 0.5, orderRef="r1"))
            await ib.reqCurrentTimeAsync()
            assert trade.orderStatus.status == "Submitted"
            trade.order.lmtPrice = mid - 0.25
            ib.placeOrder(bag, trade.order)  # same orderId: a modification
            await ib.reqCurrentTimeAsync()
            assert trade.order.lmtPrice == mid - 0.25 and trade.orderStatus.status == "Submitted"
            ib.cancelOrder(trade.order)
            await ib.reqCurrentTimeAsync()
            assert trade.orderStatus.status == "Cancelled"
            assert {j["orderId"] for j in gw.journal} == {trade.order.orderId}
            assert len(gw.journal) == 2
        finally:
            ib.disconnect()


async def test_faults_reject_error_code_drop_and_live_account(ib_errors):
    async with gateway(accounts=["U7654321"]) as gw:
        ib = await connect(gw)
        assert ib.managedAccounts() == ["U7654321"]  # a live id: IBBroker must refuse it
        ib.disconnect()
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            bag, natural, _ = await spx_condor(ib, gw)
            gw.reject_orders(1)
            ib_errors.expect(r"Error 201, .*fault injection")
            ib_errors.expect(r"Error 10197")
            ib_errors.expect(r"Peer closed connection")
            trade = ib.placeOrder(bag, LimitOrder("BUY", 1, natural, orderRef="r2"))
            gw.send_error(10197, "No market data during competing live session")
            await ib.reqCurrentTimeAsync()
            assert trade.orderStatus.status == "Cancelled" and "fault" in trade.log[-1].message
            assert gw.sim.clock.now() and not await gw.sim.positions()
            gw.drop()
            await ib.disconnectedEvent  # the next emit: the socket closed
            assert not ib.isConnected()
        finally:
            ib.disconnect()


async def test_emulator_counts_messages_per_second():
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            ib.client.MaxRequests = 0  # no client-side pacing: a burst of 30
            for _ in range(29):
                ib.client.reqCurrentTime()
            await ib.reqCurrentTimeAsync()  # answered after the 29 before it
            assert gw.max_rate >= 30
        finally:
            ib.disconnect()


# ---------------------------------------------------------------- two processes


def test_run_against_sim_gateway_enters_a_condor(tmp_path):
    journal = tmp_path / "gateway.jsonl"
    cfg = write_config(tmp_path)
    gw = Proc(["sim-gateway", "--port", "0", "--speed", "600", "--journal", str(journal)], REPO)
    bot = None
    try:
        port = gw.until(lambda e: e["event"] == "gateway.listening", 30)["port"]
        started = time.monotonic()
        bot = Proc(["run", "--broker", "ib", "--port", str(port), "--config", str(cfg)], tmp_path)
        entered = bot.until(lambda e: e["event"] == "campaign.entered", 60)
        print(f"entry latency: {time.monotonic() - started:.1f}s wall")  # reported, not asserted
        assert len(entered["strikes"]) == 4 and entered["credit"] > 0
        connected = next(e for e in bot.seen if e["event"] == "broker.connected")
        assert connected["accounts"] == [ACCT] and connected["clock_rate"] > 100
        filled = [e for e in bot.seen if e["event"] == "order.filled"]
        orders = [json.loads(x) for x in journal.read_text().splitlines()]
        refs = {o["orderRef"] for o in orders if not o["whatIf"]}
        assert filled and any(r.startswith(entered["campaign"] + ":") for r in refs)
        for ref in refs:  # one order id per intent, modifications in place
            ids = {o["orderId"] for o in orders if o["orderRef"] == ref and not o["whatIf"]}
            assert len(ids) == 1
    finally:
        for p in (bot, gw):
            if p is not None:
                p.stop()


def test_default_config_at_60x_enters_within_a_minute_walking_on_schedule(tmp_path):
    """Issue 13's done-when, as a new user tries it: the repo's config.yaml (tick 60 s, walk
    10 s) against `sim-gateway --speed 60`. Only paths and ports are moved into tmp. The
    entry comes within 60 wall seconds of the bot's start, and each walk step runs on its
    own schedule (placement + step x walk_seconds, in market time), not on the decision
    tick: at 60x a step a tick late would be 60 s behind."""
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    raw.update(control_file=str(tmp_path / "control"), store_path=str(tmp_path / "bot.db"))
    raw["log"]["dir"] = str(tmp_path / "logs")
    raw["web"]["port"] = 0
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    gw = Proc(["sim-gateway", "--port", "0", "--speed", "60"], REPO)
    bot = None
    try:
        port = gw.until(lambda e: e["event"] == "gateway.listening", 30)["port"]
        bot = Proc(["run", "--broker", "ib", "--port", str(port), "--config", str(cfg)], tmp_path)
        entered = bot.until(lambda e: e["event"] == "campaign.entered", 60)
        walked = [e for e in bot.seen if e["event"] == "order.walked"
                  and e["key"].startswith(entered["campaign"] + ":open")]
        assert walked, "the entry filled at its first price: nothing walked"
        assert [e["step"] for e in walked] == list(range(1, len(walked) + 1))
        # behind schedule by less than one walk interval (at 60x, 0.1 wall seconds are 6
        # market seconds; a step taking a full snapshot ran ~14 s late, one on the tick 60 s)
        assert all(0 <= e["late_seconds"] < raw["orders"]["walk_seconds"] for e in walked), walked
    finally:
        for p in (bot, gw):
            if p is not None:
                p.stop()
