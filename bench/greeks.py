"""Benchmark: implied vol + all greeks for 10,000 SPX-like options, ours vs a scalar vollib loop.

Run: ``python bench/greeks.py`` (or ``make bench``). Prints options/s for both, measured in
the same run, and their ratio. Absolute times depend on the machine; the ratio is the result.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strategies.pricing import bs_price, greeks, implied_vol


def make_chain(n: int, seed: int) -> dict[str, np.ndarray]:
    """n options on an SPX-like underlying: mixed expiries 1 day..1 year, strikes 70%-120%."""
    rng = np.random.default_rng(seed)
    S, r, q = 5000.0, 0.04, 0.013
    days = np.array([1, 2, 3, 7, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365], dtype=float)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("flag", "K", "t", "sigma", "price")}
    have = 0
    while have < n:
        m = 4 * n
        t = rng.choice(days, m) / 365.0
        K = np.round(S * rng.uniform(0.70, 1.20, m) / 5.0) * 5.0
        k = np.log(K / S)
        sigma = np.clip(0.15 - 0.35 * k + 1.2 * k * k + 0.02 / np.sqrt(t * 12), 0.06, 1.5)
        flag = np.where(rng.random(m) < 0.5, "c", "p")
        price = bs_price(flag, S, K, t, r, sigma, q)
        intrinsic = bs_price(flag, S, K, t, r, 0.0, q)
        keep = price - intrinsic >= 0.05  # quoted SPX options: at least a tick of time value
        for key, val in zip(rows, (flag, K, t, sigma, price)):
            rows[key].append(val[keep])
        have += int(keep.sum())
    out = {key: np.concatenate(v)[:n] for key, v in rows.items()}
    out["S"], out["r"], out["q"] = np.array(S), np.array(r), np.array(q)
    return out


def ours(c: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    iv = implied_vol(c["price"], c["S"], c["K"], c["t"], c["r"], c["flag"], c["q"])
    return iv, greeks(c["flag"], c["S"], c["K"], c["t"], c["r"], iv, c["q"])


def scalar_vollib(c: dict[str, np.ndarray]) -> np.ndarray:
    from vollib.black_scholes_merton.greeks import analytical as ga
    from vollib.black_scholes_merton.implied_volatility import implied_volatility

    S, r, q = float(c["S"]), float(c["r"]), float(c["q"])
    out = np.full((len(c["price"]), 6), np.nan)
    warnings.simplefilter("ignore", RuntimeWarning)  # vollib's own divide warnings
    for i, (f, K, t, p) in enumerate(
        zip(c["flag"].tolist(), c["K"].tolist(), c["t"].tolist(), c["price"].tolist())
    ):
        try:
            iv = implied_volatility(p, S, K, t, r, q, f)
        except Exception:  # vollib raises below intrinsic / above maximum
            continue
        out[i] = (
            iv,
            ga.delta(f, S, K, t, r, iv, q),
            ga.gamma(f, S, K, t, r, iv, q),
            ga.vega(f, S, K, t, r, iv, q),
            ga.theta(f, S, K, t, r, iv, q),
            ga.rho(f, S, K, t, r, iv, q),
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000, help="number of options")
    ap.add_argument("--repeat", type=int, default=20, help="timed repeats of the vectorized run")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    chain = make_chain(args.n, args.seed)
    n = len(chain["price"])
    ours(chain)  # warm-up (imports, caches)
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        iv, g = ours(chain)
        runs.append(time.perf_counter() - t0)
    t_ours = statistics.median(runs)

    t0 = time.perf_counter()
    ref = scalar_vollib(chain)
    t_ref = time.perf_counter() - t0

    iv_err = float(np.nanmax(np.abs(iv - ref[:, 0])))
    d_err = float(np.nanmax(np.abs(g["delta"] - ref[:, 1])))
    print(f"options: {n} (IV + delta, gamma, vega, theta, rho)")
    print(f"vectorized (strategies.pricing): {n / t_ours:14,.0f} options/s", end="")
    print(f"  (median of {args.repeat} runs)")
    print(f"scalar vollib loop:              {n / t_ref:14,.0f} options/s")
    print(f"ratio: {t_ref / t_ours:.0f}x")
    print(f"max |IV - vollib IV| = {iv_err:.1e}; max |delta - vollib delta| = {d_err:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
