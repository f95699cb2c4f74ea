"""The daemon: lifecycle, one decision tick, its jobs (time: bot.cadence; control: bot.control).

Jobs: the control-file poll every `control_poll_seconds` of wall time (apscheduler); the
steps — decisions, walk steps, order events — and the heartbeat on the market clock (see
bot.cadence: a simulated driver, or the live schedule in broker-clock seconds).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import cadence, control, logs, persist, recovery
from bot.broker.base import Broker, BrokerError, LiveAccountRefused, OrderRequest, OrderStatus
from bot.clock import JumpDetector
from bot.config import Settings
from bot.orders import Done, Executor, walk_price
from bot.risk import ACTIVE, HALTED, REDUCING, RiskGuard
from bot.store import Store
from strategies import events, tvm
from strategies import expiry as xp
from strategies.types import Snapshot

log = logs.get("bot.daemon")
STOP_GRACE = 10.0  # wall seconds a stopping schedule has to finish its step


class Daemon:
    def __init__(self, settings: Settings, broker: Broker, clock: Any, store: Store,
                 decide: Callable[..., tvm.Decision] | None = None) -> None:
        self.s = settings
        # decide(state, snap, params, ctx): the strategy (a backtest's plain twin passes its own)
        self.decide = decide or tvm.decide
        self.broker = broker
        self.clock = clock
        logs.use_clock(clock)
        self.store = store
        self.guard = RiskGuard(settings.risk, settings.strategy.max_steps)
        self.executor = Executor(broker, store, settings.orders, self.guard)
        self.state: tvm.State = store.get("strategy_state") or tvm.State()
        h = settings.hedge
        any_layer = h.event_layer or h.fomc_layer or h.tail_layer
        o = settings.orders
        self.ctx = tvm.Context(hedge=h if any_layer else None, calendar=events.default_calendar(),
                               combo_roll=broker.supports_combo_roll, walk_steps=o.walk_steps,
                               max_slippage=o.max_slippage,
                               max_campaign_loss_pct=settings.risk.max_campaign_loss_pct)
        since = store.get("state_since_ns")
        try:
            saved_guard = store.get("guard")
            if saved_guard:
                self.guard.restore(saved_guard)  # the day's loss so far survives a restart
            else:
                self.guard.state = store.get("trading_state", ACTIVE)
        except (ValueError, TypeError, KeyError) as e:
            # unreadable trading state: never guess ACTIVE; an operator must look and resume
            log.error("store.bad_trading_state", error=str(e), action="HALTED until resume")
            self.guard.state, since = HALTED, None
        self.mode = "run"  # the control word in force
        if not isinstance(since, int) and self.guard.state != ACTIVE:
            since = time.time_ns()  # no trustworthy stamp: only a resume issued from now lifts it
        self.control = control.Controller(self, since)
        self.stopping = asyncio.Event()
        self._order_event = asyncio.Event()  # set by the broker's order/exec events
        self.exit_code = 0
        self._jumps = JumpDetector(settings.clock_jump_seconds,
                                   getattr(clock, "speed", None) or 1.0)
        self.sessions = 0
        self._last_quiet: dict[tuple[str, Any], tuple[str, ...]] = {}
        self._last_snap: Snapshot | None = None
        self._step_lock = asyncio.Lock()
        self._writer = persist.StateWriter()  # the store writes after a step
        self._snap_mono = time.monotonic()
        self._reconnects = getattr(broker, "reconnects", 0)
        # why the last reconciliation did not finish (a store write or a broker request
        # failed part-way), or None: nothing is decided until one finishes (`recover`)
        self.unreconciled: str | None = None
        # called as hook(daemon, snapshot) after every step (backtest equity curves, benches)
        self.step_hooks: list[Any] = []

    # --- lifecycle -------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError):
                pass
        sched = AsyncIOScheduler(timezone="UTC")
        sched.add_job(self.poll_control, "interval", seconds=self.s.control_poll_seconds,
                      max_instances=1, coalesce=True)
        await self.start()
        if self.clock.simulated:
            # the driver owns simulated time; the heartbeat follows it at the run's speed
            rate = self.clock.speed or 1.0
            sched.add_job(self.heartbeat, "interval", max_instances=1, coalesce=True,
                          seconds=max(cadence.MIN_WALL, self.s.heartbeat_seconds / rate))
            driver = asyncio.create_task(self._sim_driver())
        else:
            driver = asyncio.create_task(self._live_loop())
        sched.start()
        await self.heartbeat()
        try:
            await self.stopping.wait()
        finally:
            sched.shutdown(wait=False)
            # the schedule ends its step and returns on stop: a cancel mid-request is a last
            # resort (it would surface as a CancelledError inside the broker's client)
            if not self.clock.simulated:
                await asyncio.wait({driver}, timeout=STOP_GRACE)
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
            await self._shutdown()
        return self.exit_code

    async def start(self) -> None:
        """Connect, reconcile, then read the control file (whose `run` cannot lift what
        recovery just found: see bot.control)."""
        await self.broker.connect()
        sim = self.clock.simulated
        log.info("daemon.started", broker=self.broker.name, pid=os.getpid(),
                 sim_time=self.clock.now().isoformat(), status=self.state.status.value,
                 trading_state=self.guard.state, scenario=self.s.sim.scenario if sim else None,
                 speed=self.s.sim.speed if sim else None)
        await self.recover()
        await recovery.store_reset(self)  # a rebuilt or missing store: REDUCING until resumed
        await self.poll_control()

    async def recover(self) -> None:
        """Reconcile store and broker before any decision (see bot.recovery). One that fails
        part-way (a store write: disk full; a broker request) leaves orders it had not yet
        matched unknown to the executor, and a decision then could place one again: it is
        logged, nothing is decided, and it is run again at the next step until it finishes
        (a store failure also sets REDUCING, as any failed write does)."""
        try:
            await recovery.recover(self)
        except (sqlite3.Error, BrokerError) as e:
            if isinstance(e, BrokerError):
                what, why = "broker request", f"broker: {e.message}"
            else:
                what, why = "store write", str(e)
                self.executor.store_failed = why
            if why != self.unreconciled:  # (a retry failing the same way is not logged again)
                log.error("reconcile.failed", error=why, what=what,
                          action="no decision until reconciled; retried every step")
            self.unreconciled = why
            return
        if self.unreconciled is not None:
            log.info("reconcile.recovered", after=self.unreconciled, action="deciding again")
        self.unreconciled = None

    def _on_signal(self, sig: int) -> None:
        log.info("daemon.signal", signal=signal.Signals(sig).name, action="stop")
        self.stop()

    def stop(self, code: int = 0) -> None:
        self.exit_code = code
        self.stopping.set()

    async def _shutdown(self) -> None:
        now = self.clock.now()
        try:
            await self.executor.cancel_all(now, "daemon_stopping")
            for done in await self.executor.process(now):
                self._fold(done, now)
        except Exception as e:  # stopping must finish
            log.error("daemon.shutdown_error", error=str(e))
        self._persist(now, force=True)
        await self.heartbeat()  # the store keeps the last market seen, even after a fast run
        await self.broker.disconnect()
        log.info("daemon.stopped", exit_code=self.exit_code, status=self.state.status.value,
                 sim_time=now.isoformat())

    # --- time --------------------------------------------------------------------------------
    async def _sim_driver(self) -> None:
        await cadence.sim_driver(self)

    async def _live_loop(self) -> None:
        await cadence.live_loop(self)

    async def _live_tick(self) -> None:
        now = self.clock.now()
        # an IB clock learns the server's rate after connecting (an accelerated emulator)
        self._jumps.rate = getattr(self.clock, "speed", None) or 1.0
        jump = self._jumps.check(now)
        if jump is not None:
            # time is not what it was a tick ago: decide nothing on it, reconcile first
            log.error("clock.jump", seconds=round(jump, 1), market_time=now.isoformat(),
                      tolerance=self.s.clock_jump_seconds, action="no trade this tick; reconcile")
            await self.recover()
            return
        await self.step(decide=xp.is_spx_open(now))

    # --- one step ------------------------------------------------------------------------------
    async def step(self, decide: bool = True) -> None:
        # (`async with` the lock, written out: one coroutine a step instead of three)
        await self._step_lock.acquire()
        try:
            await self._step(decide)
        except LiveAccountRefused as e:
            log.error("broker.live_account_refused", accounts=e.accounts, error=e.message)
            self.stop(3)
        except BrokerError as e:
            log.error("tick.broker_error", code=e.code, kind=e.kind.value, error=e.message)
        except Exception as e:  # a bad tick must never kill the daemon
            log.exception("tick.failed", error=str(e))
        finally:
            self._step_lock.release()

    async def _step(self, decide: bool) -> None:
        reconnects = getattr(self.broker, "reconnects", 0)
        if reconnects != self._reconnects:
            self._reconnects = reconnects
            log.info("broker.reconnected", reconnects=reconnects, action="reconcile")
            await self.recover()
        elif self.unreconciled is not None:
            await self.recover()  # the last one failed part-way: again, before anything else
        plan_roll = getattr(self.broker, "plan_roll", None)
        if plan_roll is not None:  # IB: quotes exist only for the lines the book subscribes
            plan_roll(*(tvm.roll_open_target(self.state) or (None,)))
        quick = getattr(self.broker, "quote_snapshot", None)
        # a walk step or order event on IB reads the working legs' quotes only (a full
        # snapshot re-centres the book and reads bars: seconds of market time at 60x, so walk
        # steps came walk_seconds + ~14 s apart); a flatten decides, so it reads everything
        walk_only = (not decide and quick is not None and bool(self.executor.working)
                     and self.mode != "flatten")
        if walk_only and quick is not None:
            legs = [leg for w in self.executor.working.values() for leg in w.intent.legs]
            snap = await quick(legs)
        else:
            snap = await self.broker.snapshot()
        self._snap_mono = time.monotonic()
        self._last_snap = snap
        now = snap.time
        before = self.guard.state
        self._log_events(self.guard.observe(snap, now))
        if self.guard.state != before:
            self.control.note(before, self.guard.state)
        if self.guard.state == HALTED and before != HALTED:
            await self.executor.cancel_all(now, "halted")
        if self.executor.working:  # (most steps: nothing works, no coroutine is made)
            for done in await self.executor.process(now, snap):
                self._fold(done, now)
        if self.executor.reconcile_due:  # the broker refused to modify a working order
            why, self.executor.reconcile_due = self.executor.reconcile_due, None
            log.warning("order.reconcile", why=why, action="reconcile before deciding")
            await self.recover()
        self._store_check()
        self._reconcile_pending(now)
        if self.unreconciled is not None:
            # what the broker holds and works is not known: the orders the executor tracks
            # walk on (and are cancelled at their walk's end), nothing is decided
            pass
        elif self.mode == "flatten":
            await self._flatten(snap)
        elif decide and self.guard.state == REDUCING and self._flat():
            # closing orders only and nothing to close: no campaign is invented to be refused
            self._log_events([("entry.skipped", {"reason": "reducing",
                                                 "why": "closing orders only; nothing held"})])
        elif decide and self.mode in ("run", "reduce") and self.guard.state != HALTED:
            decision = self.decide(self.state, snap, self.s.strategy, self.ctx)
            self.state = decision.state
            self._log_events(decision.events)
            for intent in decision.intents:
                await self._submit(intent, snap)
        self._persist(now)
        self._store_check()
        if walk_only:
            return  # hooks (metrics, recorder) see full snapshots only
        for hook in self.step_hooks:
            hook(self, snap)

    async def _submit(self, intent, snap: Snapshot) -> None:
        what_if = None
        if not intent.closing:
            try:
                what_if = await self.broker.what_if(
                    OrderRequest(intent.key, intent.legs, intent.qty, intent.mid))
            except BrokerError as e:
                log.error("risk.what_if_failed", key=intent.key, code=e.code, kind=e.kind.value,
                          error=e.message)
                self._fold(Done(intent, 0, 0.0, 0.0, OrderStatus.REJECTED, e.message), snap.time)
                return
        # quote age in wall seconds since the snapshot (an accelerated broker clock would
        # otherwise age every quote by speed x the time it takes to decide)
        age_now = snap.time + timedelta(seconds=time.monotonic() - self._snap_mono)
        # exposure is what is held plus every working order (#14 item 4); the max loss is
        # taken at the first limit the executor will send (item 5)
        o = self.s.orders
        verdict = self.guard.check(intent, snap, what_if, age_now,
                                   working=list(self.executor.working.values()),
                                   limit=walk_price(intent, 0, o.walk_steps, o.max_slippage))
        if not verdict.approved:
            log.warning("risk.rejected", key=intent.key, campaign=intent.campaign_id,
                        code=verdict.code, **verdict.numbers)
            self._fold(Done(intent, 0, 0.0, 0.0, OrderStatus.REJECTED, verdict.code), snap.time)
            return
        log.info("risk.approved", key=intent.key, campaign=intent.campaign_id,
                 margin_after=round(what_if.init_margin_after, 2) if what_if else None)
        # write-ahead: the strategy state that expects this order is on disk before it is sent
        self._persist(snap.time)
        done = await self.executor.submit(intent, snap.time)
        if done is not None:
            self._fold(done, snap.time)
        self._store_check()

    def _flat(self) -> bool:
        """Nothing held, working or pending: all a decision could do is open."""
        st = self.state
        return (not recovery.expected_positions(st) and st.pending is None
                and not self.executor.busy and all(h.pending is None for h in st.hedges))

    def _store_check(self) -> None:
        """A store write failed (disk full): REDUCING, once per failure, so a resume issued
        after it is not undone while the store works again. Recorded whatever the state
        shows: a REDUCING from the daily-loss rule ends with the day, this one only with a
        resume issued after it; HALTED stays HALTED (the stricter flag wins)."""
        if self.executor.store_failed:
            self.executor.store_failed = None
            if self.guard.flags["operator"] != ACTIVE:
                return  # already held until a resume (none has come since it was set)
            before = self.guard.state
            self._set_trading_state(REDUCING, "store.write_failed")
            if self.guard.state == before:  # no risk.state line: say what was recorded
                log.warning("risk.flag_set", flag="operator", value=REDUCING,
                            why="store.write_failed", state=before, until="resume")

    def _fold(self, done: Done, now: datetime) -> None:
        decision = tvm.on_order_done(self.state, done.intent, done.filled, done.avg_price,
                                     done.commission, now, self.s.strategy.cooldown_days)
        self.state = decision.state
        self._log_events(decision.events)
        self._persist(now)

    async def _flatten(self, snap: Snapshot) -> None:
        """Close the condor and every hedge layer, open nothing; then pause."""
        decision = self.decide(self.state, snap, self.s.strategy, replace(self.ctx, flatten=True))
        self.state = decision.state
        self._log_events(decision.events)
        for intent in decision.intents:
            await self._submit(intent, snap)
        st = self.state
        held = st.campaign is not None and bool(st.campaign.legs)
        if not held and not st.hedges and st.pending is None and not self.executor.busy:
            self.control.set_mode("pause", "flatten_done")

    # "considered, no action" events repeat every tick while nothing changes: log each
    # distinct one once (per event name), so the tail stays readable
    QUIET = ("entry.skipped", "roll.waiting", "hedge.skipped", "exit.deferred", "hedge.deferred")

    def _log_events(self, events) -> None:
        for name, fields in events:
            # (the fields the quiet check reads are never renamed: checked before renaming)
            if name in self.QUIET:
                slot = (name, fields.get("layer"))
                sig = tuple(str(fields.get(k)) for k in ("campaign", "reason", "why", "tag"))
                if self._last_quiet.get(slot) == sig:
                    continue
                self._last_quiet[slot] = sig
            elif name == "entry.decided":
                self._last_quiet.pop(("entry.skipped", None), None)
            fields = {("event_" + k if k in ("event", "level", "timestamp") else k): v
                      for k, v in fields.items()}
            log.info(name, **fields)

    def _reconcile_pending(self, now: datetime) -> None:
        recovery.fold_unsent(self, now)

    def _persist(self, now: datetime, force: bool = False) -> None:
        self._writer.write(self, now, force)

    async def poll_control(self) -> None:
        await self.control.poll()

    async def apply_control(self, word: str) -> None:
        await self.control.apply(word)

    # --- heartbeat ------------------------------------------------------------------------------
    def _set_trading_state(self, state: str, why: str) -> None:
        """Recovery, the store or the operator sets the state (stamped even when unchanged:
        a resume issued before this is not one issued after it)."""
        before = self.guard.state
        # always set, even when the state shows it already: a REDUCING from the daily-loss
        # rule ends with the day, the operator's (or recovery's) lasts until a resume
        self._log_events(self.guard.set_state(state, why))
        self.control.note(before, state, force=True)

    async def heartbeat(self) -> None:
        await cadence.heartbeat(self)
