"""`condorbot status`: what the store says about the daemon, as a short table."""

from __future__ import annotations

from pathlib import Path

from bot import codec
from bot.config import Settings
from bot.store import Store


def show(settings: Settings) -> int:
    paths = [settings.store_path, settings.store_path.with_name(settings.store_path.stem + "-sim.db")]
    found = [p for p in paths if p.exists()]
    if not found:
        print(f"no store yet at {paths[0]} (has the daemon run?)")
        return 1
    path = max(found, key=lambda p: p.stat().st_mtime)
    store = Store(path)
    try:
        beat = store.get("heartbeat") or {}
        state = store.get("strategy_state")
        print(f"store          {path}")
        print(f"trading state  {store.get('trading_state', '?')}")
        print(f"control        {store.get('control', '?')}")
        print(f"strategy       {state.status.value if state else '?'}")
        print(f"last heartbeat {beat.get('wall_time', '-')} (market time {beat.get('market_time', '-')})")
        if beat:
            print(f"market         SPX {beat.get('spx')}  VIX {beat.get('vix')}  "
                  f"net liq {beat.get('net_liquidation')}")
        rows = store.campaigns()
        print(f"\n{'campaign':<18}{'status':<10}{'step':>5}{'pnl':>12}  legs")
        for r in rows[-10:]:
            camp = codec.loads(r["data"]) if r["data"] else None
            legs = ""
            if camp is not None and camp.legs:
                c0 = camp.legs[0].contract
                legs = f"{c0.expiry} " + "/".join(f"{leg.contract.strike:g}" for leg in camp.legs)
                legs += f" x{camp.qty}"
            print(f"{r['id']:<18}{r['status']:<10}{r['step']:>5}{r['pnl']:>12.2f}  {legs}")
        if not rows:
            print("(no campaigns yet)")
    finally:
        store.close()
    return 0
