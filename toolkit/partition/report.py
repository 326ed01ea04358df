"""Comparing strategies on one model: error against the model, costs, a table.

:func:`evaluate` partitions a model with each strategy, runs every plan in this
process on a seeded random input to measure its largest absolute difference
from the unpartitioned Keras model, and predicts per-device costs. Its result is
the JSON document of ``dynasplit partition --json`` (see the design page);
:func:`format_table` renders it for people.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from toolkit.errors import ToolkitError
from toolkit.partition.cost import CostModel, estimate_cost
from toolkit.partition.execute import execute_plan
from toolkit.partition.graph import chain_from_model
from toolkit.partition.plan import PartitionPlan
from toolkit.partition.strategies import STRATEGIES, check_strategy, partition

__all__ = ["evaluate", "format_table", "max_abs_error"]

_DEVICE_KEYS = ("macs", "weight_bytes", "peak_activation_bytes", "sent_bytes",
                "received_bytes", "latency_ms", "energy_j")


def max_abs_error(plan: PartitionPlan, model: keras.Model, x: np.ndarray) -> float:
    """Largest absolute difference between ``plan`` run in-process and ``model`` on ``x``."""
    x = np.asarray(x, dtype=np.float32)
    reference = np.asarray(model(x, training=False))
    return float(np.max(np.abs(execute_plan(plan, x) - reference)))


def evaluate(
    model: keras.Model,
    n_devices: int,
    strategies: Sequence[str] | str = "all",
    *,
    cost_model: CostModel | None = None,
    fuse: int | str = "all",
    seed: int = 0,
    model_name: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Partition ``model`` with each strategy; error against the model and costs.

    Args:
        model: a chain Keras model with a fixed input shape.
        n_devices: number of devices.
        strategies: ``"all"`` or strategy names. With ``"all"``, a strategy that
            refuses the model is listed under ``"refused"`` with its reason.
        cost_model: throughput, link rate and power profile of the prediction.
        fuse: the spatial strategy's fusion (``"all"``, ``"none"`` or a count).
        seed: seed of the random input the error is measured on.
        model_name: the name to report (default: the Keras model's).
        progress: show a progress bar over the strategies.

    Returns:
        ``{"model", "devices", "input_shape", "energy_source", "cost_model",
        "strategies": {name: {"max_abs_error", "sync_points", "latency_ms",
        "energy_j", "energy_source", "predicted", "per_device": [...]}},
        "refused": {name: reason}}``.
    """
    cost_model = cost_model or CostModel()
    everything = strategies == "all"
    names = list(STRATEGIES) if everything else [check_strategy(s) for s in strategies]
    chain = chain_from_model(model)  # refuses unsupported layers once, for every strategy
    x = np.random.default_rng(seed).standard_normal((1, *chain.input_shape)).astype(np.float32)
    reference = np.asarray(model(x, training=False))
    source = cost_model.power_model().source
    report: dict[str, Any] = {
        "model": model_name or model.name,
        "devices": n_devices,
        "input_shape": list(chain.input_shape),
        "energy_source": source,
        "cost_model": {"macs_per_s": cost_model.macs_per_s, "link_mbps": cost_model.link_mbps,
                       "profile": cost_model.profile, "freq_mhz": cost_model.freq_mhz,
                       "predicted": True},
        "strategies": {},
        "refused": {},
    }
    for name in tqdm(names, desc="strategies", unit="strategy", disable=not progress or None):
        options = {"fuse": fuse} if name == "spatial" else {}
        try:
            plan = partition(model, n_devices, name, **options)
        except ToolkitError as exc:
            if not everything:
                raise
            report["refused"][name] = str(exc)
            continue
        error = float(np.max(np.abs(execute_plan(plan, x) - reference)))
        cost = estimate_cost(plan, cost_model)
        report["strategies"][name] = {
            "max_abs_error": error,
            "sync_points": cost.sync_points,
            "latency_ms": cost.latency_ms,
            "energy_j": cost.energy_j,
            "energy_source": cost.energy_source,
            "predicted": True,
            "options": plan.options,
            "per_device": [
                {**{k: getattr(d, k) for k in _DEVICE_KEYS}, "device": d.device,
                 "compute_ms": d.compute_ms, "sync_points": d.sync_points,
                 "energy_source": d.energy_source}
                for d in cost.devices
            ],
        }
    return report


def format_table(report: dict[str, Any]) -> str:
    """A readable table of an :func:`evaluate` result."""
    cm = report["cost_model"]
    shape = "x".join(str(d) for d in report["input_shape"])
    lines = [
        f"model {report['model']} (input {shape}) on {report['devices']} devices; latency and "
        f"energy predicted at {cm['macs_per_s'] / 1e9:g} GMAC/s and {cm['link_mbps']:g} Mbit/s "
        f"links, energy source {report['energy_source']} (modelled, not measured)",
    ]
    header = (f"{'device':>6} {'MMACs':>9} {'weights KiB':>11} {'peak act KiB':>12} "
              f"{'sent KiB':>9} {'recv KiB':>9} {'syncs':>5} {'latency ms':>10} {'energy mJ':>9}")
    for name, s in report["strategies"].items():
        lines += ["", f"{name}: max |error| {s['max_abs_error']:.2e}, {s['sync_points']} sync "
                  f"points, latency {s['latency_ms']:.3f} ms, energy {s['energy_j'] * 1e3:.3f} mJ "
                  "(predicted)", header]
        for d in s["per_device"]:
            lines.append(
                f"{d['device']:>6} {d['macs'] / 1e6:>9.3f} {d['weight_bytes'] / 1024:>11.1f} "
                f"{d['peak_activation_bytes'] / 1024:>12.1f} {d['sent_bytes'] / 1024:>9.1f} "
                f"{d['received_bytes'] / 1024:>9.1f} {d['sync_points']:>5} "
                f"{d['latency_ms']:>10.3f} {d['energy_j'] * 1e3:>9.3f}"
            )
    for name, reason in report.get("refused", {}).items():
        lines += ["", f"{name}: refused: {reason}"]
    return "\n".join(lines)
