"""A stream of requests through a partition plan: the *predicted* schedule.

``K`` requests arrive every ``T`` ms (request ``r`` at ``r × T``). Each request
runs the plan stage by stage with the timings of
:func:`~toolkit.partition.cost.per_device.estimate_cost` (compute = MACs / the
device's throughput; a transfer takes ``bytes × 8 / link rate`` on the sender's
uplink and the receiver's downlink, plus half the RTT; the cost model's fixed
costs per instruction and per tensor as there). Two ways to serve a
stream:

* **pipelined** (layer-wise plans, :data:`PIPELINED_STRATEGIES`): a request
  enters as soon as it has arrived; every device, uplink and downlink serves the
  requests in arrival order (first come, first served), so device ``i`` works on
  request ``r + 1`` while device ``i + 1`` works on request ``r``;
* **in turn** (every other strategy): a request starts when it has arrived and
  the previous one has finished on every device.

With one request both give :func:`estimate_cost`'s latency exactly.
:func:`estimate_turns` serves a stream in turn from any one-request cost
(:class:`~toolkit.partition.cost.hybrid.HybridCost` included: the hybrid
plan's requests take turns, the cloud charged per request as in its cost).

Figures (all predicted, never measured):

* a request's latency: from its arrival to its result on device 0;
* throughput: requests / (last result − first arrival), requests per second;
* p50 / p99: percentiles of the latencies (linear interpolation);
* energy (accounting :data:`STREAM_ACCOUNTING`): every device is powered from
  the first arrival until the stream's last work ends, busy at ``P_busy`` while
  it computes and at ``P_wait`` otherwise (waiting between requests included),
  plus its network energy per byte sent and received (as
  :mod:`toolkit.partition.cost.energy` counts it); ``energy_per_request_j`` is the
  devices' total divided by ``K``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toolkit.errors import ToolkitError, check_count, check_number
from toolkit.partition.cost.hybrid import HybridCost
from toolkit.partition.cost.per_device import CostModel, PlanCost
from toolkit.partition.model.plan import Compute, PartitionPlan, check_plan

__all__ = [
    "MAX_STREAM_REQUESTS",
    "PIPELINED_STRATEGIES",
    "STREAM_ACCOUNTING",
    "StreamCost",
    "check_stream",
    "estimate_stream",
    "estimate_turns",
    "pipelines",
    "stream_figures",
]

#: strategies whose plans pipeline a stream (the others serve requests in turn)
PIPELINED_STRATEGIES = ("layer-wise",)
#: how a stream's energy is counted (see the module's docstring)
STREAM_ACCOUNTING = "stream: every device powered from the first arrival to the end, / requests"


def pipelines(strategy: str) -> bool:
    """Whether plans of ``strategy`` pipeline a stream of requests."""
    return strategy in PIPELINED_STRATEGIES


#: the longest stream predicted or measured: a million requests take about 40 s to
#: predict for the four strategies on 2 cores, and a mistyped 10**12 never ended
MAX_STREAM_REQUESTS = 1_000_000


def check_stream(requests: int, interval_ms: float) -> tuple[int, float]:
    """Validate a stream: ``requests`` an integer in 1..:data:`MAX_STREAM_REQUESTS`,
    ``interval_ms`` a number >= 0."""
    check_count(requests, "requests")
    if requests > MAX_STREAM_REQUESTS:
        raise ToolkitError(f"a stream has at most {MAX_STREAM_REQUESTS} requests, got {requests}")
    check_number(interval_ms, "interval_ms", unit="ms")
    return int(requests), float(interval_ms)


@dataclass(frozen=True)
class StreamCost:
    """The predicted schedule of a stream through one plan.

    Attributes:
        strategy: the plan's strategy.
        requests: requests in the stream.
        interval_ms: time between two arrivals.
        pipelined: whether the requests were pipelined (else served in turn).
        arrival_ms: when each request arrived (the first at 0).
        finish_ms: when each request's result was complete on device 0.
        busy_ms: each device's compute time over the whole stream.
        sent_bytes: each device's bytes sent over the whole stream.
        end_ms: when the stream's last work (compute or transfer) ended.
        energy_j: each device's energy over the stream (see ``accounting``).
        energy_source: the power models', ``+``-joined.
        accounting: how the energy is counted.
        cloud_energy_j: the cloud's energy over the stream (hybrid plans).
    """

    strategy: str
    requests: int
    interval_ms: float
    pipelined: bool
    arrival_ms: tuple[float, ...]
    finish_ms: tuple[float, ...]
    busy_ms: tuple[float, ...]
    sent_bytes: tuple[int, ...]
    end_ms: float
    energy_j: tuple[float, ...]
    energy_source: str
    accounting: str = STREAM_ACCOUNTING
    cloud_energy_j: float = 0.0

    @property
    def latency_ms(self) -> np.ndarray:
        """Each request's latency: arrival to result on device 0."""
        return np.asarray(self.finish_ms) - np.asarray(self.arrival_ms)

    def as_dict(self) -> dict:
        """The stream's JSON figures (see :func:`stream_figures`), ``predicted: True``."""
        return {**stream_figures(self.arrival_ms, self.finish_ms,
                                 sum(self.energy_j) + self.cloud_energy_j, self.interval_ms),
                "pipelined": self.pipelined, "energy_source": self.energy_source,
                "energy_accounting": self.accounting,
                "busy_ms": list(self.busy_ms), "predicted": True}


def stream_figures(arrival_ms: Sequence[float], finish_ms: Sequence[float], energy_j: float,
                   interval_ms: float) -> dict:
    """A stream's figures from its arrivals and results (predicted or measured alike).

    Returns:
        ``{"requests", "interval_ms", "throughput_rps", "p50_ms", "p99_ms",
        "mean_ms", "duration_ms", "energy_per_request_j"}``; throughput is the
        requests over the time from the first arrival to the last result.
    """
    arrival, finish = np.asarray(arrival_ms, float), np.asarray(finish_ms, float)
    latency = finish - arrival
    duration = float(finish.max() - arrival.min())
    k = len(latency)
    return {"requests": k, "interval_ms": float(interval_ms),
            "throughput_rps": k / (duration / 1e3) if duration > 0 else float("inf"),
            "p50_ms": float(np.percentile(latency, 50)),
            "p99_ms": float(np.percentile(latency, 99)),
            "mean_ms": float(latency.mean()), "duration_ms": duration,
            "energy_per_request_j": float(energy_j) / k}


def estimate_stream(plan: PartitionPlan, requests: int, interval_ms: float,
                    model: CostModel | None = None, *, pipelined: bool | None = None
                    ) -> StreamCost:
    """Predict how ``plan`` serves ``requests`` requests arriving every ``interval_ms``.

    Args:
        plan: the partition plan.
        requests: requests in the stream (>= 1).
        interval_ms: time between two arrivals (>= 0; 0: all at once).
        model: throughput, link rate and power profile (defaults: :class:`CostModel`).
        pipelined: pipeline the requests (default: :func:`pipelines` of the
            plan's strategy) or serve them in turn.

    Raises:
        ToolkitError: a bad stream.
    """
    check_plan(plan, "estimate_stream")
    requests, interval_ms = check_stream(requests, interval_ms)
    model = model or CostModel()
    pipelined = pipelines(plan.strategy) if pipelined is None else bool(pipelined)
    n = plan.n_devices
    model.check_devices(n)
    powers = [model.power_model(d) for d in range(n)]
    rates = [model.macs_per_s_of(d) for d in range(n)]
    slowness = [model.macs_per_s / r for r in rates]  # as estimate_cost scales overheads
    step_s, transfer_s = model.step_overhead_ms / 1e3, model.transfer_overhead_ms / 1e3
    rate = model.link_mbps * 1e6 / 8.0
    half_rtt = model.rtt_ms / 2e3
    stage_s = [[sum(st.macs for st in steps if isinstance(st, Compute)) / rates[d]
                + step_s * len(steps) * slowness[d]
                for d, steps in enumerate(stage.steps)] for stage in plan.stages]
    free = [0.0] * n  # when each device's compute, uplink and downlink is next free
    uplink = [0.0] * n
    downlink = [0.0] * n
    busy = [0.0] * n
    sent = [0] * n
    received = [0] * n
    arrivals = [r * interval_ms / 1e3 for r in range(requests)]
    finish: list[float] = []
    last = 0.0  # when the previous request's last work ended
    for arrival in arrivals:
        ready = [arrival if pipelined else max(arrival, last)] * n
        for stage, seconds in zip(plan.stages, stage_s, strict=True):
            end = list(ready)
            for d in range(n):
                if seconds[d] > 0:
                    end[d] = max(ready[d], free[d]) + seconds[d]
                    free[d] = end[d]
                    busy[d] += seconds[d]
            done = list(end)
            for t in stage.transfers:
                end[t.src] += transfer_s * slowness[t.src]  # the sender's CPU sends
                free[t.src] = max(free[t.src], end[t.src])
                start = max(end[t.src], uplink[t.src], downlink[t.dst])
                uplink[t.src] = downlink[t.dst] = start + t.nbytes / rate
                done[t.src] = max(done[t.src], uplink[t.src])
                done[t.dst] = max(done[t.dst], uplink[t.src] + half_rtt) \
                    + transfer_s * slowness[t.dst]
                sent[t.src] += t.nbytes
                received[t.dst] += t.nbytes
            ready = done
        finish.append(ready[plan.output[0]])
        last = max(last, *ready)
    duration = last - arrivals[0]
    energy = tuple(powers[d].energy_j(busy[d], duration - busy[d], freq=model.freq_mhz,
                                      accel=model.accel, bytes_sent=sent[d] + received[d])
                   for d in range(n))
    return StreamCost(
        strategy=plan.strategy, requests=requests, interval_ms=interval_ms, pipelined=pipelined,
        arrival_ms=tuple(a * 1e3 for a in arrivals), finish_ms=tuple(f * 1e3 for f in finish),
        busy_ms=tuple(b * 1e3 for b in busy), sent_bytes=tuple(sent), end_ms=last * 1e3,
        energy_j=energy, energy_source="+".join(dict.fromkeys(p.source for p in powers)))


def estimate_turns(cost: PlanCost | HybridCost, requests: int, interval_ms: float,
                   model: CostModel | None = None) -> StreamCost:
    """Serve a stream in turn from one request's predicted cost.

    Request ``r`` starts when it has arrived and request ``r − 1``'s result is
    back on device 0, and takes the cost's latency. Energy: ``requests`` times
    the cost's energy (every device powered for each request) plus each
    device's waiting power between requests, the same accounting as
    :func:`estimate_stream`.

    Args:
        cost: one request's cost (:func:`estimate_cost` or the hybrid plan's).
        requests: requests in the stream (>= 1).
        interval_ms: time between two arrivals (>= 0).
        model: the edge devices' cost model (their waiting power).
    """
    requests, interval_ms = check_stream(requests, interval_ms)
    model = model or CostModel()
    n = cost.n_devices
    arrivals = [r * interval_ms for r in range(requests)]
    finish: list[float] = []
    for arrival in arrivals:
        finish.append(max(arrival, finish[-1] if finish else 0.0) + cost.latency_ms)
    gaps_s = (finish[-1] - arrivals[0] - requests * cost.latency_ms) / 1e3
    waits = [model.power_model(d).wait_w(model.freq_mhz, model.accel) for d in range(n)]
    energy = tuple(requests * d.energy_j + w * gaps_s
                   for d, w in zip(cost.devices, waits, strict=True))
    extra = requests * getattr(cost, "cloud_energy_j", 0.0)
    return StreamCost(
        strategy=cost.strategy, requests=requests, interval_ms=interval_ms, pipelined=False,
        arrival_ms=tuple(arrivals), finish_ms=tuple(finish),
        busy_ms=tuple(requests * d.compute_ms for d in cost.devices),
        sent_bytes=tuple(requests * d.sent_bytes for d in cost.devices), end_ms=finish[-1],
        energy_j=energy, energy_source=cost.energy_source, cloud_energy_j=extra)
