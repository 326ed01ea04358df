"""Decision-cost benchmark: a 10 000-candidate policy, decisions per second and latency.

Writes a synthetic policy (candidates with 10 measured runs each over 7 CPU
frequencies × 3 TPU states × 2 cloud accelerators; energy falls as latency
rises, with noise, so that the rules have real work to do), then measures

- ``policy_load_ms``: :meth:`toolkit.policy.Policy.load` of the file (JSON parse
  and rule compilation), median wall time of several loads (the first one and
  the median CPU time reported too, with the machine's load average: on a
  shared machine wall time includes waiting for a core);
- ``decisions_per_s``: ``policy.choose(threshold)`` in a tight loop over random
  thresholds with the default rule;
- ``p50_decision_us`` / ``p99_decision_us``: per-decision latency, timed one by
  one;
- the same for the ``tail`` rule, the reconfiguration-aware form from a
  changing hardware state, and a full :meth:`~toolkit.policy.Policy.decide`.

Goals (issue 5): ≥ 100 000 decisions/s, p99 ≤ 20 µs, load ≤ 100 ms.

The service end to end (issue 18): the exported scheduler as its own process in
``--dry-run`` with this policy, on loopback TCP with TLS (a certificate made
here) and a bearer token, driven by ``--clients`` concurrent connections from
this process; each sends a request and waits for its answer before the next
(``--window 1``; a larger window pipelines that many requests per client):

- ``service_requests_per_s``: answers per second over the whole run;
- ``service_p99_ms`` (and ``service_p50_ms``): time from writing a request to
  reading its answer, per request;
- the same over plain TCP without a token beside them (``plain_tcp``);
- each measured ``--service-repeats`` times on a fresh server (TLS and plain
  taking turns), medians reported, every run listed.

Goals: ≥ 20 000 requests/s and p99 ≤ 5 ms on a quiet 2-core machine (the
client shares the machine: its cost is in the figures).
Prints one JSON object. Run::

    .venv/bin/python benchmarks/scheduler.py [--candidates 10000] [--decisions 200000]
        [--clients 50] [--window 1] [--service-requests 100000] [--service-repeats 3]
        [--client-loop auto|asyncio|uvloop] [--client protocol|streams]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service_load import service_figures

from toolkit.policy import POLICY_SCHEMA, Policy, candidate_columns

FREQS = (600, 800, 1000, 1200, 1400, 1600, 1800)
EDGE = ("none", "tpu-std", "tpu-max")
CLOUD = ("none", "gpu")


def synthetic_policy(n: int, runs: int, seed: int, rule: dict) -> dict:
    """A policy document with ``n`` distinct candidates of ``runs`` runs each."""
    rng = np.random.default_rng(seed)
    mean = np.sort(rng.uniform(50.0, 2000.0, n))
    energy = 80.0 * (50.0 / mean) ** 0.7 * rng.lognormal(0.0, 0.15, n)
    candidates = []
    for i in range(n):
        lat = np.sort(mean[i] * rng.lognormal(0.0, 0.08, runs))
        candidates.append({
            "config": {"model": "synthetic", "split": 1 + i // 42,
                       "cpu_freq": FREQS[i % 7], "edge_accel": EDGE[(i // 7) % 3],
                       "cloud_accel": CLOUD[(i // 21) % 2]},
            "latency_ms": {"mean": float(lat.mean()), "p50": float(np.percentile(lat, 50)),
                           "p90": float(np.percentile(lat, 90)),
                           "p99": float(np.percentile(lat, 99)), "n": runs},
            "runs_ms": [round(float(x), 3) for x in lat],
            "transfer_ms": float(rng.uniform(0.0, 20.0)),
            "energy_j": float(energy[i]),
            "accuracy": float(rng.uniform(0.6, 0.62)),
        })
    return {
        "schema": POLICY_SCHEMA, "model": "synthetic", "energy_source": "synthetic",
        "last_split": 1 + n // 42 + 1, "rule": rule,
        "hardware": {"profiles": {}, "costs": {
            "cpu_freq_ms": 5.0, "cpu_freq_j": 0.02, "tpu_power_on_ms": 450.0,
            "tpu_power_on_j": 1.5, "tpu_power_off_ms": 120.0, "tpu_power_off_j": 0.3,
            "tpu_mode_switch_ms": 350.0, "tpu_mode_switch_j": 1.2, "gpu_switch_ms": 2500.0,
            "gpu_switch_j": 500.0}},
        "source": {"synthetic": True}, "candidates": candidate_columns(candidates),
    }


def timed(func, thresholds: np.ndarray) -> tuple[float, float, float]:
    """(decisions/s in a tight loop, p50 µs, p99 µs timed one by one)."""
    values = thresholds.tolist()
    for t in values[:2000]:  # warm caches (lazily compiled per-state structures)
        func(t)
    t0 = time.perf_counter()
    for t in values:
        func(t)
    rate = len(values) / (time.perf_counter() - t0)
    clock = time.perf_counter_ns
    samples = np.empty(len(values))
    for i, t in enumerate(values):
        a = clock()
        func(t)
        samples[i] = clock() - a
    return rate, float(np.percentile(samples, 50)) / 1e3, float(np.percentile(samples, 99)) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--window", type=int, default=1,
                        help="requests each client keeps in flight (1: each client waits "
                             "for its answer before the next request; more: pipelining)")
    parser.add_argument("--service-requests", type=int, default=100_000,
                        help="requests per service run")
    parser.add_argument("--service-repeats", type=int, default=3,
                        help="service runs each for TLS and plain TCP; medians reported")
    parser.add_argument("--client-loop", choices=("auto", "asyncio", "uvloop"), default=None,
                        help="event loop of the load generator (default: DYNASPLIT_LOOP, else "
                             "auto: uvloop where installed, which takes the client ~30 %% "
                             "less CPU)")
    parser.add_argument("--client", choices=("streams", "protocol"), default="protocol",
                        help="load generator connections: protocol callbacks (default, "
                             "leaner) or asyncio streams (the figures of the earlier rounds "
                             "in docs/online.md)")
    parser.add_argument("--no-service", action="store_true",
                        help="skip the end-to-end service figures")
    args = parser.parse_args()

    rule = {"name": "mean", "target": 0.99, "confidence": 0.9, "accuracy_floor": None,
            "reconfiguration": False}
    doc = synthetic_policy(args.candidates, args.runs, args.seed, rule)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.json"
        Policy.from_dict(doc).save(path)
        size = path.stat().st_size
        loads, cpu = [], []
        for _ in range(args.loads):
            t0, c0 = time.perf_counter(), time.process_time()
            policy = Policy.load(path)
            loads.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
        tail_doc = dict(doc, rule={**rule, "name": "tail"})
        (Path(tmp) / "tail.json").write_text(json.dumps(tail_doc))
        t0 = time.perf_counter()
        tail = Policy.load(Path(tmp) / "tail.json")
        tail_load = (time.perf_counter() - t0) * 1e3
        service = {} if args.no_service else service_figures(
            path, Path(tmp), clients=args.clients, window=args.window,
            requests=args.service_requests, repeats=args.service_repeats,
            client_loop=args.client_loop, client=args.client)

    rng = np.random.default_rng(args.seed + 1)
    thresholds = rng.uniform(40.0, 2500.0, args.decisions)
    rate, p50, p99 = timed(policy.choose, thresholds)
    tail_rate, tail_p50, tail_p99 = timed(tail.choose, thresholds)
    states = [policy.candidates.states[i] for i in rng.integers(0, len(policy), 64)]
    reconf = policy.with_rule(reconfiguration=True)
    selector = reconf.selector
    counter = iter(range(10**9))

    def from_state(t: float) -> int:
        return selector.choose_from(t, states[next(counter) & 63])

    re_rate, re_p50, re_p99 = timed(from_state, thresholds)
    full_rate, full_p50, full_p99 = timed(lambda t: reconf.decide(t, states[3]), thresholds)

    print(json.dumps({
        **{k: v for k, v in service.items() if k.startswith("service_")},
        "decisions_per_s": round(rate),
        "p50_decision_us": round(p50, 3),
        "p99_decision_us": round(p99, 3),
        "policy_load_ms": round(statistics.median(loads), 2),
        "policy_load_first_ms": round(loads[0], 2),
        "policy_load_cpu_ms": round(statistics.median(cpu), 2),
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "candidates": len(policy),
        "runs_per_candidate": args.runs,
        "policy_file_bytes": size,
        "rule": "mean",
        "tail": {"decisions_per_s": round(tail_rate), "p50_decision_us": round(tail_p50, 3),
                 "p99_decision_us": round(tail_p99, 3), "policy_load_ms": round(tail_load, 2)},
        "reconfiguration_aware": {"decisions_per_s": round(re_rate),
                                  "p50_decision_us": round(re_p50, 3),
                                  "p99_decision_us": round(re_p99, 3),
                                  "states": len(set(states))},
        "full_decide": {"decisions_per_s": round(full_rate), "p50_decision_us": round(full_p50, 3),
                        "p99_decision_us": round(full_p99, 3)},
        "service": service,
        "goals": {"decisions_per_s": 100_000, "p99_decision_us": 20, "policy_load_ms": 100,
                  "service_requests_per_s": 20_000, "service_p99_ms": 5},
        "python": platform.python_version(),
    }, indent=1))


if __name__ == "__main__":
    main()
