"""The emulator's answers to each TWS API request (a mixin of `Gateway`).

Answered: startApi, reqIds, reqCurrentTime, reqManagedAccts, reqPositions / cancelPositions,
reqOpenOrders, reqAllOpenOrders, reqAutoOpenOrders (no reply, as TWS), reqCompletedOrders,
reqGlobalCancel, reqAccountUpdates, reqAccountUpdatesMulti (and cancel), reqAccountSummary
(and cancel), reqExecutions, reqContractDetails, reqSecDefOptParams, reqMarketDataType,
reqMktData / cancelMktData, reqHistoricalData / cancelHistoricalData (daily bars of the
indexes), placeOrder (what-if and real limit orders), cancelOrder. Every other request gets
error 503 (see `unsupported`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.sim.gateway_account import SUMMARY_GROUP
from bot.sim.gateway_book import INDEXES, Registry, daily_bars, option_params
from bot.sim.gateway_feed import Sub
from bot.sim.gateway_orders import OrderDesk
from bot.tws import requests as dec
from bot.tws.encode_account import (
    account_download_end,
    account_summary,
    account_summary_end,
    account_update_multi,
    account_update_multi_end,
    position,
    position_end,
    update_account_time,
    update_account_value,
    update_portfolio,
)
from bot.tws.encode_market import (
    contract_details,
    contract_details_end,
    historical_data,
    market_data_type,
    security_definition_option_parameter,
    security_definition_option_parameter_end,
    tick_snapshot_end,
)
from bot.tws.encode_orders import completed_orders_end, exec_details_end, open_order_end
from bot.tws.encode_session import current_time, error_msg, managed_accounts, next_valid_id
from bot.tws.wire import InMsg, ParsedOrder
from strategies.types import Contract, Snapshot

log = logging.getLogger("bot.sim.gateway")
FARM_OK = ((2104, "Market data farm connection is OK:usopt"),
           (2106, "HMDS data farm connection is OK:ushmds"),
           (2158, "Sec-def data farm connection is OK:secdefnj"))
NO_DEFINITION = "No security definition has been found for the request"


def unsupported(r: dec.UnknownRequest) -> bytes:
    """IB's answer to a request the server does not support: error 503, "The TWS is out of
    date and must be upgraded" (IB's EClientErrors.UPDATE_TWS,
    https://interactivebrokers.github.io/tws-api/classIBApi_1_1EClientErrors.html), with the
    text IB's clients give it for a request the connected TWS lacks, e.g. "It does not support
    market data type requests." (github.com/scmhub/ibapi issue 1), on the request's id."""
    return error_msg(r.reqId, 503, "The TWS is out of date and must be upgraded. "
                                   f"It does not support {r.name} requests.")


class Answers:
    sim: Any
    snap: Snapshot | None
    accounts: list[str]
    reg: Registry
    desk: OrderDesk
    faults: Any
    clock: Any

    if TYPE_CHECKING:  # provided by Gateway and Feed
        @property
        def live(self) -> list[Any]: ...
        def now(self) -> datetime: ...
        def _next_order_id(self, client_id: int) -> int: ...
        def _saw_id(self, client_id: int, order_id: int) -> None: ...
        def _ticks(self, s: Any, req_id: int, sub: Sub, changed_only: bool) -> bytes: ...
        def _account_values(self, snap: Snapshot) -> list[tuple[str, str, str]]: ...
        def _summary(self, snap: Snapshot, tags: str) -> list[tuple[str, str, str]]: ...
        def _mark(self, c: Contract) -> float: ...

    async def _answer(self, s: Any, r: Any) -> list[bytes]:
        snap = self.snap
        assert snap is not None
        acct = self.accounts[0]
        match r:
            case dec.StartApi(clientId=cid):
                if any(o.client_id == cid and o is not s for o in self.live):
                    s.write(error_msg(-1, 326, f"Unable to connect as the client id {cid} "
                                               "is already in use. Retry with a unique id."))
                    s.close()
                    return []
                s.client_id = cid
                return [next_valid_id(self._next_order_id(cid)), managed_accounts(self.accounts),
                        *(error_msg(-1, code, text) for code, text in FARM_OK)]
            case dec.ReqIds():
                return [next_valid_id(self._next_order_id(s.client_id))]
            case dec.NoArgRequest(msgId=InMsg.REQ_CURRENT_TIME):
                return [current_time(self.now())]
            case dec.NoArgRequest(msgId=InMsg.REQ_POSITIONS):
                s.positions_sub = True
                return [*(position(acct, self.reg.wire(p.contract), p.qty,
                                   p.avg_cost * p.contract.multiplier) for p in snap.positions),
                        position_end()]
            case dec.NoArgRequest(msgId=InMsg.CANCEL_POSITIONS):
                s.positions_sub = False
            case dec.NoArgRequest(msgId=InMsg.REQ_OPEN_ORDERS | InMsg.REQ_ALL_OPEN_ORDERS as m):
                states = {st.order_id: st for st in await self.sim.orders()}
                only = s.client_id if m == InMsg.REQ_OPEN_ORDERS else None
                return [*self.desk.open_orders(only, states), open_order_end()]
            case dec.NoArgRequest(msgId=InMsg.REQ_MANAGED_ACCTS):
                return [managed_accounts(self.accounts)]
            case dec.NoArgRequest(msgId=InMsg.REQ_GLOBAL_CANCEL):
                out = []
                for cid, oid in [k for k in self.desk.orders if k[0] == s.client_id]:
                    out += await self.desk.cancel(cid, oid)
                return out
            case dec.ReqCompletedOrders():
                states = {st.order_id: st for st in await self.sim.orders()}
                return [*self.desk.completed(states, self.clock.now()), completed_orders_end()]
            case dec.ReqAccountUpdates(subscribe=sub):
                s.account_sub = sub
                return self._account_download(snap, acct) if sub else []
            case dec.ReqAccountUpdatesMulti(reqId=rid):
                s.multi_subs.add(rid)
                return [*(account_update_multi(rid, acct, "", k, v, c)
                          for k, v, c in self._account_values(snap)),
                        account_update_multi_end(rid)]
            case dec.CancelById(msgId=InMsg.CANCEL_ACCOUNT_UPDATES_MULTI, reqId=rid):
                s.multi_subs.discard(rid)
            case dec.ReqAccountSummary(reqId=rid, groupName=group, tags=tags):
                s.summary_subs[rid] = tags
                if group != SUMMARY_GROUP:  # a group this (non-FA) account is not in: no rows
                    log.info("gateway.summary_group_empty group=%r", group)
                    s.summary_subs.pop(rid)
                    return [account_summary_end(rid)]
                return [*(account_summary(rid, acct, k, v, c)
                          for k, v, c in self._summary(snap, tags)), account_summary_end(rid)]
            case dec.CancelById(msgId=InMsg.CANCEL_ACCOUNT_SUMMARY, reqId=rid):
                s.summary_subs.pop(rid, None)
            case dec.ReqExecutions(reqId=rid, clientId=cid):
                return [*self.desk.executions(cid, rid, self.clock.now()), exec_details_end(rid)]
            case dec.ReqContractDetails(reqId=rid, contract=c):
                found = self.reg.resolve(c, snap)
                if not found:
                    return [error_msg(rid, 200, NO_DEFINITION)]
                return [*(contract_details(rid, self.reg.details(w)) for w in found),
                        contract_details_end(rid)]
            case dec.ReqSecDefOptParams(reqId=rid, underlyingSymbol=sym):
                und = INDEXES.get(sym, (0, ""))[0]
                return [*(security_definition_option_parameter(rid, ex, und, tc, "100", e, k)
                          for ex, tc, e, k in option_params(sym, snap)),
                        security_definition_option_parameter_end(rid)]
            case dec.ReqMarketDataType(marketDataType=t):
                s.md_type = t
            case dec.ReqMktData() as m:
                return self._mkt_data(s, m, snap)
            case dec.CancelById(msgId=InMsg.CANCEL_MKT_DATA, reqId=rid):
                s.subs.pop(rid, None)
            case dec.ReqHistoricalData(reqId=rid, contract=c, durationStr=dur):
                hit = self.reg.by_wire(c) if c.conId else (c.symbol if c.secType == "IND" else None)
                sym = hit if isinstance(hit, str) else ""  # daily bars for the indexes only
                bars = daily_bars(sym, self.sim.market.bars, dur)
                if not bars:
                    return [error_msg(rid, 162, "Historical Market Data Service error "
                                                f"message:HMDS query returned no data: {sym}")]
                return [historical_data(rid, bars)]
            case ParsedOrder(whatIf=True) as p:
                self.desk.record(p, s.client_id, self.clock.now())
                self._saw_id(s.client_id, p.orderId)
                return await self.desk.what_if(p, s.client_id, snap)
            case ParsedOrder() as p:
                return await self._place(s, p, snap)
            case dec.CancelOrder(orderId=oid):
                return await self.desk.cancel(s.client_id, oid)
            case dec.UnknownRequest() as u:
                log.info("gateway.unsupported_request client_id=%s msg_id=%s (%s)",
                         s.client_id, u.msgId, u.name)
                return [unsupported(u)]
        return []

    def _account_download(self, snap: Snapshot, acct: str) -> list[bytes]:
        """reqAccountUpdates: the values, the portfolio lines, the time, then the end."""
        vals = [update_account_value(k, v, c, acct) for k, v, c in self._account_values(snap)]
        port = []
        for p in snap.positions:
            c, m = p.contract, p.contract.multiplier
            mark = self._mark(c)
            port.append(update_portfolio(self.reg.wire(c), p.qty, mark, p.qty * mark * m,
                                         p.avg_cost * m, p.qty * (mark - p.avg_cost) * m, 0.0,
                                         acct))
        return [*vals, *port, update_account_time(snap.time), account_download_end(acct)]

    async def _place(self, s: Any, p: ParsedOrder, snap: Snapshot) -> list[bytes]:
        self.desk.record(p, s.client_id, self.clock.now())
        self._saw_id(s.client_id, p.orderId)
        out = await self.desk.place(p, s.client_id, snap)
        if self.faults.drop_after_orders > 0:
            self.faults.drop_after_orders -= 1
            if self.faults.drop_after_orders == 0:
                s.write(b"".join(out))
                s.close()
                return []
        return out

    def _mkt_data(self, s: Any, m: dec.ReqMktData, snap: Snapshot) -> list[bytes]:
        target = self.reg.by_wire(m.contract) if m.contract.conId else None
        if target is None:
            found = self.reg.resolve(m.contract, snap)
            target = self.reg.by_wire(found[0]) if len(found) == 1 else None
        if target is None:
            return [error_msg(m.reqId, 200, NO_DEFINITION)]
        if (not isinstance(target, str) and target.sec_type == "OPT"
                and self.faults.market_data_error):
            code = self.faults.market_data_error
            return [error_msg(m.reqId, code, "Requested market data is not subscribed.")]
        sub = Sub(target)
        out = [market_data_type(m.reqId, s.md_type), self._ticks(s, m.reqId, sub, False)]
        if m.snapshot:
            out.append(tick_snapshot_end(m.reqId))
        else:
            s.subs[m.reqId] = sub
        return out
