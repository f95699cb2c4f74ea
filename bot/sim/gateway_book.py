"""The emulator's instruments: contract ids, wire contracts, contract details, option
listings, market data values and daily bars, all read from the SimBroker's snapshot.

Listed like IB lists them: SPX and VIX indexes (IND, CBOE), the NYSE advance/decline index
`AD-NYSE` (IND, NYSE: advancing issues as bid, declining issues as ask), VIX futures (FUT, CFE,
trading class VX, multiplier 1000), SPX options (trading class SPX: the standard monthlies the
sim lists) and VIX options (trading class VIX). `reqSecDefOptParams` also announces the weekly
classes SPXW and VIXW (expirations only) so that a client must filter on trading class; those
contracts cannot be qualified here (error 200), as the sim does not trade them.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd

from bot.tws.encode_market import ContractDetailsSpec, HistBar
from bot.tws.wire import WireContract
from strategies import expiry as xp
from strategies.pricing import black76_greeks, greeks
from strategies.types import Contract, Snapshot

INDEXES = {"SPX": (416904, "CBOE"), "VIX": (13455763, "CBOE"), "AD-NYSE": (2654981, "NYSE")}
BAG_CON_ID = 28812380
AD_BASE = 1500.0  # advancing + declining issues / 2, around which net advances move
MONTH_CODES = "FGHJKMNQUVXZ"


def osi_symbol(c: Contract) -> str:
    """OCC option symbol, as IB's localSymbol: ``SPX   260320P05800000``."""
    return f"{c.symbol:<6}{c.expiry:%y%m%d}{c.right}{round(c.strike * 1000):08d}"


def _expiry_text(d: date) -> str:
    return f"{d:%Y%m%d}"


def _matches_expiry(text: str, d: date) -> bool:
    return not text or _expiry_text(d).startswith(text[:8])


class Registry:
    """Stable contract ids for everything ever listed (expired contracts keep theirs)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._contracts: dict[int, Contract] = {}
        self._next = 500_000_001

    def con_id(self, c: Contract) -> int:
        key = c.key
        if key not in self._ids:
            self._ids[key] = self._next
            self._contracts[self._next] = c
            self._next += 1
        return self._ids[key]

    def contract(self, con_id: int) -> Contract | None:
        return self._contracts.get(con_id)

    def wire(self, c: Contract, exchange: str = "SMART") -> WireContract:
        cid = self.con_id(c)
        if c.sec_type == "FUT":
            local = f"VX{MONTH_CODES[c.expiry.month - 1]}{c.expiry.year % 10}"
            return WireContract(cid, c.symbol, "FUT", _expiry_text(c.expiry), 0.0, "",
                                str(c.multiplier), "CFE", "", "USD", local, "VX")
        return WireContract(cid, c.symbol, "OPT", _expiry_text(c.expiry), float(c.strike),
                            c.right, str(c.multiplier), exchange or "SMART", "", "USD",
                            osi_symbol(c), c.trading_class or c.symbol)

    @staticmethod
    def index_wire(symbol: str) -> WireContract:
        cid, exch = INDEXES[symbol]
        return WireContract(cid, symbol, "IND", "", 0.0, "", "", exch, "", "USD", symbol, symbol)

    def by_wire(self, wc: WireContract) -> Contract | str | None:
        """The contract (or index symbol) a conId names; None if unknown."""
        for sym, (cid, _) in INDEXES.items():
            if wc.conId == cid:
                return sym
        return self.contract(wc.conId)

    # --- qualification -----------------------------------------------------------------------
    def resolve(self, wc: WireContract, snap: Snapshot) -> list[WireContract]:
        """Every listed contract matching a (partial) request; [] means error 200."""
        if wc.conId:
            hit = self.by_wire(wc)
            if hit is None:
                return []
            return [self.index_wire(hit) if isinstance(hit, str) else self.wire(hit, wc.exchange)]
        sym, sec = wc.symbol.upper(), wc.secType.upper()
        if sec == "IND":
            return [self.index_wire(sym)] if sym in INDEXES else []
        if sec == "FUT":
            if sym not in ("VIX", "VX") or wc.tradingClass not in ("", "VX"):
                return []
            return [self.wire(Contract("VIX", "FUT", e, multiplier=1000))
                    for e in sorted(snap.vix_futures)
                    if _matches_expiry(wc.lastTradeDateOrContractMonth, e)]
        if sec != "OPT" or sym not in ("SPX", "VIX") or wc.tradingClass not in ("", sym):
            return []
        right = {"CALL": "C", "PUT": "P"}.get(wc.right.upper(), wc.right.upper())
        chains = snap.chains if sym == "SPX" else snap.vix_chains
        out = []
        for e, ch in sorted(chains.items()):
            if not _matches_expiry(wc.lastTradeDateOrContractMonth, e):
                continue
            strikes = ch.strikes
            if wc.strike:
                strikes = strikes[np.isclose(strikes, wc.strike)]
            for k in strikes:
                for r in ((right,) if right in ("C", "P") else ("C", "P")):
                    out.append(self.wire(ch.contract(float(k), r), wc.exchange))
                    if len(out) >= 2000:
                        return out
        return out

    def details(self, wc: WireContract) -> ContractDetailsSpec:
        if wc.secType == "IND":
            return ContractDetailsSpec(wc, marketName=wc.symbol, minTick=0.01, orderTypes="",
                                       validExchanges=wc.exchange, longName=f"{wc.symbol} index",
                                       timeZoneId="US/Central", stockType="")
        c = self.contract(wc.conId)
        assert c is not None
        if c.sec_type == "FUT":
            return ContractDetailsSpec(
                wc, marketName="VX", minTick=0.05, orderTypes="LMT,MKT,WHATIF",
                validExchanges="CFE", underConId=INDEXES["VIX"][0],
                longName="CBOE Volatility Index",
                contractMonth=f"{c.expiry:%Y%m}", realExpirationDate=_expiry_text(c.expiry),
                lastTradeTime="08:00:00", underSymbol="VIX", underSecType="IND")
        return ContractDetailsSpec(
            wc, marketName=wc.tradingClass, minTick=0.05 if c.symbol == "SPX" else 0.01,
            orderTypes="LMT,MKT,WHATIF", validExchanges="SMART,CBOE",
            underConId=INDEXES[c.symbol][0], longName=f"{c.symbol} options",
            contractMonth=f"{c.expiry:%Y%m}", realExpirationDate=_expiry_text(c.expiry),
            lastTradeTime="08:30:00", underSymbol=c.symbol, underSecType="IND")


# --- option parameters ------------------------------------------------------------------------
def option_params(symbol: str, snap: Snapshot) -> list[tuple[str, str, list[str], list[float]]]:
    """(exchange, tradingClass, expirations, strikes) rows for reqSecDefOptParams."""
    chains = snap.chains if symbol == "SPX" else snap.vix_chains if symbol == "VIX" else {}
    if not chains:
        return []
    exps = [_expiry_text(e) for e in sorted(chains)]
    strikes = sorted({float(k) for ch in chains.values() for k in ch.strikes})
    today = xp.exchange_date(snap.time)
    weeklies = [_expiry_text(today + timedelta(days=d)) for d in range(1, 29)
                if (today + timedelta(days=d)).weekday() < 5]
    weekly_class = "SPXW" if symbol == "SPX" else "VIXW"
    rows = []
    for exch in ("SMART", "CBOE"):
        rows.append((exch, symbol, exps, strikes))
        rows.append((exch, weekly_class, weeklies, strikes))
    return rows


# --- market data ---------------------------------------------------------------------------------
def index_values(symbol: str, snap: Snapshot, ad_line: float | None) -> dict[str, float]:
    bars = snap.bars
    if symbol == "AD-NYSE":
        last_ad = float(bars["ad_line"].iloc[-1]) if bars is not None and "ad_line" in bars else 0.0
        net = (ad_line if ad_line is not None else last_ad) - last_ad
        return {"bid": max(0.0, round(AD_BASE + net / 2)),
                "ask": max(0.0, round(AD_BASE - net / 2))}
    value = snap.spx if symbol == "SPX" else snap.vix
    col = "close" if symbol == "SPX" else "vix"
    close = float(bars[col].iloc[-1]) if bars is not None and col in bars else value
    return {"last": round(float(value), 2), "close": round(close, 2)}


def future_values(c: Contract, snap: Snapshot) -> dict[str, float]:
    f = snap.vix_futures.get(c.expiry)
    if f is None or not math.isfinite(f):
        return {}
    bid = math.floor((f - 0.025) / 0.05 + 1e-9) * 0.05
    return {"bid": round(bid, 2), "ask": round(bid + 0.05, 2), "last": round(f, 2)}


def option_values(c: Contract, snap: Snapshot, rate: float = 0.0) -> dict[str, float]:
    """bid/ask plus model greeks: iv, delta and vega as the sim quotes them, gamma and theta
    (per calendar day) from the same model at the same vol (SPX: Black-Scholes on the index
    at `rate`; VIX: Black-76 on the matching future), option price and underlying price."""
    chains = snap.chains if c.symbol == "SPX" else snap.vix_chains
    ch = chains.get(c.expiry)
    if ch is None:
        return {}
    try:
        i = ch.index(c.strike)
    except KeyError:
        return {}
    call = c.right == "C"
    bid = float((ch.call_bid if call else ch.put_bid)[i])
    ask = float((ch.call_ask if call else ch.put_ask)[i])
    und = snap.spx if c.symbol == "SPX" else snap.vix_futures.get(c.expiry, snap.vix)
    iv = float((ch.call_iv if call else ch.put_iv)[i])
    flag = "c" if call else "p"
    model = greeks if c.symbol == "SPX" else black76_greeks
    g = model(flag, float(und), float(c.strike), ch.t, rate, iv)
    return {
        "bid": bid, "ask": ask, "iv": iv,
        "delta": float((ch.call_delta if call else ch.put_delta)[i]),
        "gamma": float(g["gamma"]), "theta": float(g["theta"]),
        "vega": float((ch.call_vega if call else ch.put_vega)[i]),
        "opt": (bid + ask) / 2 if bid > 0 and ask > 0 else float("nan"),
        "und": float(und),
    }


# --- daily bars ----------------------------------------------------------------------------------
def _bar_count(duration: str) -> int:
    try:
        count, unit = duration.split()
        n = int(count)
    except ValueError:
        return 260
    return {"D": n, "W": 5 * n, "M": 21 * n, "Y": 252 * n}.get(unit.upper(), 260)


def daily_bars(symbol: str, bars: pd.DataFrame | None, duration: str) -> list[HistBar]:
    """Completed sessions only. AD-NYSE's close is the day's net advances (its A/D line is the
    running sum); VIX's bars come from the `vix` column."""
    if bars is None or bars.empty:
        return []
    n = _bar_count(duration)
    if symbol == "SPX":
        df = bars
        rows = zip(df.index, df["open"], df["high"], df["low"], df["close"])
    elif symbol == "VIX" and "vix" in bars:
        v = bars["vix"]
        rows = zip(bars.index, v, v, v, v)
    elif symbol == "AD-NYSE" and "ad_line" in bars:
        net = bars["ad_line"].diff().fillna(0.0)
        rows = zip(bars.index, net, net, net, net)
    else:
        return []
    out = [HistBar(pd.Timestamp(d).date(), round(float(o), 2), round(float(h), 2),
                   round(float(lo), 2), round(float(c), 2)) for d, o, h, lo, c in rows]
    return out[-n:]
