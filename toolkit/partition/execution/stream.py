"""A measured stream of requests: its figures from the device workers' reports.

The workers report, per request, when device 0 had its result (``t_end``) and
each device's compute time and bytes; device 0 reports when the stream began
(``t_stream0``: request ``k`` arrived at ``t_stream0 + k × interval``). All
times are the host's monotonic clock, which the local worker processes share.
The figures are those of :func:`~toolkit.partition.cost.stream.stream_figures`,
as predicted; the energy uses the same accounting as the prediction (every
device powered from the first arrival until the last device finished, at
``P_busy`` while computing or encoding and ``P_wait`` otherwise, plus its
network energy per byte it put on the wire and received; the cloud at its busy power while it
works), from :class:`~toolkit.energy.model.PowerModel` of the measured times,
or each device's meter window over the stream where metered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from toolkit.energy.meter import Measurement
from toolkit.energy.model import PowerModel
from toolkit.partition.cost.stream import STREAM_ACCOUNTING, stream_figures

__all__ = ["measure_stream"]


def measure_stream(replies: Mapping[int, Mapping[str, Any]], *, interval_ms: float,
                   pipelined: bool, power: PowerModel | Sequence[PowerModel],
                   freq: int | Sequence[int],
                   cloud_power: PowerModel | None = None, cloud_accel: str = "none",
                   measured: Mapping[int, Measurement] | None = None) -> dict[str, Any]:
    """The measured figures of a stream run.

    Args:
        replies: each device's ``result`` reply of the stream run.
        interval_ms: time between two arrivals.
        pipelined: whether the workers pipelined the requests.
        power: the edge devices' power model, or one per device.
        freq: their emulated CPU frequency, or one per device.
        cloud_power: the cloud's power model (hybrid runs).
        cloud_accel: the cloud power model's accelerator.
        measured: a meter window per metered device (the rest use ``power``).

    Returns:
        :func:`stream_figures` plus ``pipelined``, ``busy_ms`` (per device),
        ``energy_source``, ``energy_accounting`` and ``measured: True``.
    """
    measured = measured or {}
    t0 = float(replies[0]["t_stream0"])
    finish = (np.asarray(replies[0]["t_end"], float) - t0) * 1e3
    arrival = np.arange(len(finish)) * float(interval_ms)
    duration_s = max(float(np.max(r["t_end"])) for r in replies.values()) - t0
    total, busy_ms, sources = 0.0, [], []
    for i in sorted(replies):
        r = replies[i]
        pw = power[i] if isinstance(power, Sequence) else power
        f = freq[i] if isinstance(freq, Sequence) else freq
        busy = float(np.sum(r["compute_ms"]) + np.sum(r["encode_ms"]))
        busy_ms.append(busy)
        if i in measured:
            total += measured[i].joules
            sources.append(measured[i].source)
        else:
            total += pw.energy_j(busy / 1e3, duration_s - busy / 1e3, freq=f, bytes_sent=float(
                np.sum(r["frame_bytes"]) + np.sum(r["received_bytes"])))
            sources.append(pw.source)
    if cloud_power is not None:
        total += cloud_power.busy_w(None, cloud_accel) * float(np.sum(replies[0]["cloud_ms"])) / 1e3
        sources.append(cloud_power.source)
    return {**stream_figures(arrival, finish, total, interval_ms), "pipelined": bool(pipelined),
            "busy_ms": busy_ms, "energy_source": "+".join(dict.fromkeys(sources)),
            "energy_accounting": STREAM_ACCOUNTING, "measured": True}
