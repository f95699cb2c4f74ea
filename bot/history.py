"""`condorbot history`: the intents the bot decided, newest first, with their orders and fills."""

from __future__ import annotations

import argparse
import json

from bot import config as cfg
from bot.store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("history", help="recent intents, orders and fills from the store")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--limit", type=int, default=30, help="how many intents (default 30)")
    p.add_argument("--campaign", help="only this campaign id")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.store import locate

    settings = cfg.load(args.config) if Path(args.config).exists() else cfg.Settings()
    path = locate(settings.store_path)
    if path is None:
        print("no store yet (has the daemon run?)")
        return 1
    store = Store(path)
    try:
        rows = [r for r in store.intents(limit=10_000 if args.campaign else args.limit)
                if not args.campaign or r["campaign_id"] == args.campaign][: args.limit]
        if args.json:
            for r in rows:
                fills = [dict(f) for f in store.fills_for(r["key"])]
                out = {k: r[k] for k in r.keys() if k != "blob"}
                print(json.dumps({**out, "fills": fills}, default=str))
            return 0
        print(f"{'updated (UTC)':<26}{'key':<56}{'status':<10}{'qty':>4}{'filled':>7}"
              f"{'avg':>9}{'limit':>9}  error")
        for r in rows:
            print(f"{r['updated_at'][:25]:<26}{r['key']:<56}{r['status']:<10}{r['qty']:>4}"
                  f"{r['filled']:>7}{r['avg_price']:>9.2f}{(r['limit_price'] or 0):>9.2f}  "
                  f"{r['error']}")
        if not rows:
            print("(no intents yet)")
    finally:
        store.close()
    return 0
