#!/usr/bin/env python3
"""Times the reference kernels (../shared/reference/kernels.py, numpy/scipy) on the same workload
as `qt bench kernels`: market state for N symbols x 301 closes, and the harvest kernel for N
positions. Prints one JSON line. Used by `qt bench kernels`; writes nothing."""
import json, math, os, random, sys, time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "shared", "reference"))
import kernels  # noqa: E402  (the reference; its main() writes vectors and is not called)

symbols = int(sys.argv[1]) if len(sys.argv) > 1 else 566
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
rng = random.Random(7)
series = []
for _ in range(symbols):
    price, closes = rng.uniform(0.01, 60000), []
    for _ in range(301):
        price *= math.exp(rng.gauss(0, 0.003))
        closes.append(price)
    series.append(closes)
positions = [dict(side="LONG" if i % 2 else "SHORT", qty=1.0, entry_price=100.0, mark_price=100.0 + rng.uniform(-5, 5),
                  age_sec=rng.uniform(0, 90000), current_sl=None) for i in range(symbols)]
states = [dict(sigma=rng.uniform(0.001, 0.02), ts=rng.uniform(0, 1), p_trend=0.3, p_mr=0.3, p_chop=0.4) for _ in range(symbols)]

def best(fn):
    times = []
    for _ in range(rounds):
        start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]

market = best(lambda: [kernels.market_state(c) for c in series])
harvest = best(lambda: [kernels.harvest(p, s) for p, s in zip(positions, states)])
print(json.dumps({"market_state_s": market, "harvest_s": harvest, "symbols": symbols}))
