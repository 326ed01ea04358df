"""Comparing strategies on one model: error against the model, costs, a table.

:func:`evaluate` partitions a model with each strategy, runs every plan in this
process on a seeded random input to measure its largest absolute difference
from the unpartitioned Keras model, and predicts per-device costs; it can add
the hybrid edge/cloud plan (key ``hybrid``). Its result is the JSON document of
``dynasplit partition --json`` (see the design page); :func:`add_measurements`
adds what real runs measured (``measured`` per strategy and per device), and
:func:`format_table` renders it for people.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from toolkit.errors import ToolkitError, choices
from toolkit.partition.cost.energy import ENERGY_SPLIT_KEYS
from toolkit.partition.cost.hybrid import CloudModel
from toolkit.partition.cost.per_device import CostModel, estimate_cost
from toolkit.partition.cost.stream import estimate_stream, estimate_turns
from toolkit.partition.hybrid_choice import AccuracyFloorError, choose_hybrid
from toolkit.partition.model.execute import execute_plan
from toolkit.partition.model.network import read_model
from toolkit.partition.model.plan import PartitionPlan
from toolkit.partition.strategies.hybrid import execute_hybrid
from toolkit.partition.strategies.registry import (
    STRATEGIES,
    check_strategy,
    partition,
    strategy_options,
)

__all__ = ["HYBRID", "add_measurements", "evaluate", "format_table", "max_abs_error"]

#: the report's key of the hybrid edge/cloud plan
HYBRID = "hybrid"

_DEVICE_KEYS = ("macs", "weight_bytes", "peak_activation_bytes", "sent_bytes",
                "received_bytes", "latency_ms", "energy_j", *ENERGY_SPLIT_KEYS)
_MEASURED_DEVICE_KEYS = ("latency_ms", "compute_ms", "send_ms", "recv_ms", "encode_ms",
                         "energy_j", "energy_source", "sent_bytes", "frame_bytes",
                         "received_bytes", "cpu_util", *ENERGY_SPLIT_KEYS,
                         "energy_split_source")
#: how each measured device was emulated (absent from runs recorded before them)
_EMULATION_KEYS = ("profile", "quota_cores", "capped")
_MEASURED_KEYS = ("samples", "latency_ms", "energy_j", "edge_energy_j", "cloud_energy_j",
                  *ENERGY_SPLIT_KEYS, "idle_accounting",
                  "cloud_ms", "cloud_bytes", "max_abs_error", "accuracy", "label_source",
                  "energy_source", "throttled", "cpu_freq", "link", "strategy")


def max_abs_error(plan: PartitionPlan, model: keras.Model, x: np.ndarray) -> float:
    """Largest absolute difference between ``plan`` run in-process and ``model`` on ``x``."""
    x = np.asarray(x, dtype=np.float32)
    reference = np.asarray(model(x, training=False))
    return float(np.max(np.abs(execute_plan(plan, x) - reference)))


def _per_device(cost) -> list[dict[str, Any]]:
    return [{**{k: getattr(d, k) for k in _DEVICE_KEYS}, "device": d.device,
             "compute_ms": d.compute_ms, "sync_points": d.sync_points,
             "energy_source": d.energy_source, "profile": d.profile} for d in cost.devices]


def _hybrid_entry(model: keras.Model, n_devices: int, x: np.ndarray, reference: np.ndarray,
                  cost_model: CostModel, options: Mapping[str, Any], fuse: int | str,
                  model_name: str) -> dict[str, Any]:
    from toolkit.models.split import SplitModel

    sm = SplitModel(model, name=model.name)
    choice = choose_hybrid(
        model, n_devices, objective=options.get("objective", "total"),
        min_accuracy=options.get("min_accuracy"), split=options.get("split"),
        strategy=options.get("strategy"), codec=options.get("codec"), cost_model=cost_model,
        cloud=options.get("cloud") or CloudModel(), fuse=fuse, speeds=options.get("speeds"),
        split_model=sm, accuracy_samples=options.get("accuracy_samples"),
        model_name=model_name)
    plan, cost = choice.plan, choice.cost
    return {
        "head_strategy": plan.head.strategy, "split": plan.split, "layer": plan.layer,
        "codec": plan.codec,
        "max_abs_error": float(np.max(np.abs(execute_hybrid(plan, sm, x) - reference))),
        "accuracy": choice.accuracy, "label_source": choice.label_source,
        "accuracy_samples": choice.accuracy_samples, **choice.as_dict(),
        "sync_points": cost.sync_points, "latency_ms": cost.latency_ms,
        "energy_j": cost.energy_j, "edge_energy_j": cost.edge_energy_j,
        "cloud_energy_j": cost.cloud_energy_j, **cost.energy_split.as_dict(),
        "cloud_ms": cost.cloud_ms,
        "cloud_bytes": cost.cloud_bytes, "energy_source": cost.energy_source,
        "predicted": True, "options": plan.head.options, "per_device": _per_device(cost),
        **({"stream": estimate_turns(cost, *options["stream"], cost_model).as_dict()}
           if options.get("stream") else {}),
    }


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
    hybrid: Mapping[str, Any] | None = None,
    speeds: Sequence[float] | None = None,
    stream: tuple[int, float] | None = None,
) -> dict[str, Any]:
    """Partition ``model`` with each strategy; error against the model and costs.

    Args:
        model: a chain Keras model with a fixed input shape.
        n_devices: number of devices.
        strategies: ``"all"`` or strategy names (``"hybrid"`` for the hybrid
            plan). With ``"all"``, a strategy that refuses the model is listed
            under ``"refused"`` with its reason, and the hybrid plan is added
            when ``hybrid`` is given.
        cost_model: throughput, link rate and power profile of the prediction.
        fuse: the spatial strategy's fusion (``"all"``, ``"none"`` or a count).
        seed: seed of the random input the error is measured on.
        model_name: the name to report (default: the Keras model's).
        progress: show a progress bar over the strategies.
        hybrid: the hybrid plan's options (see
            :func:`~toolkit.partition.hybrid_choice.choose_hybrid`): ``objective``
            (``total`` or ``max`` energy, default ``total``), ``min_accuracy``
            (the accuracy floor, default none), ``split``, ``strategy`` of the
            head and ``codec`` (each None or absent: chosen for the least
            energy), ``cloud`` (a :class:`CloudModel`), ``accuracy_samples``
            (digits evaluation inputs its accuracy is measured on, in this
            process; default all).
        speeds: each device's relative speed, given to every strategy (and the
            hybrid plan's head) so that faster devices take larger shares
            (default: equal shares; see :meth:`CostModel.speeds`).
        stream: ``(requests, interval_ms)``: add each strategy's predicted
            ``stream`` (:func:`~toolkit.partition.cost.stream.estimate_stream`;
            the hybrid plan's requests in turn, :func:`estimate_turns`).

    Returns:
        ``{"model", "devices", "input_shape", "energy_source", "cost_model",
        "strategies": {name: {"max_abs_error", "sync_points", "latency_ms",
        "energy_j", "compute_energy_j", "comm_energy_j", "idle_energy_j",
        "energy_source", "predicted", "per_device": [...]}},
        "refused": {name: reason}}``; the ``hybrid`` entry also has
        ``head_strategy, split, layer, codec, accuracy, label_source,
        accuracy_samples, objective, objective_column, min_accuracy, pinned,
        candidates, feasible_candidates, edge_energy_j, cloud_energy_j,
        cloud_ms, cloud_bytes``.

    Raises:
        AccuracyFloorError: no hybrid plan reaches ``hybrid["min_accuracy"]``
            (also with ``"all"``: the floor is the caller's request).
    """
    cost_model = cost_model or CostModel()
    everything = strategies == "all"
    if everything:
        names = [*STRATEGIES, *([HYBRID] if hybrid is not None else [])]
    else:
        names = [s if s == HYBRID else check_strategy(s) for s in strategies]
    chain = read_model(model)  # refuses unsupported layers once, for every strategy
    x = np.random.default_rng(seed).standard_normal((1, *chain.input_shape)).astype(np.float32)
    reference = np.asarray(model(x, training=False))
    cost_model.check_devices(n_devices)
    source = cost_model.energy_source(n_devices)
    report: dict[str, Any] = {
        "model": model_name or model.name,
        "devices": n_devices,
        "input_shape": list(chain.input_shape),
        "energy_source": source,
        # the cost model's fields but the accelerator, a profile per device
        "cost_model": {**{k: v for k, v in asdict(cost_model).items() if k != "accel"},
                       "device_profiles": [cost_model.profile_of(d) for d in range(n_devices)],
                       "predicted": True},
        "strategies": {},
        "refused": {},
    }
    for name in tqdm(names, desc="strategies", unit="strategy", disable=not progress or None):
        try:
            if name == HYBRID:
                report["strategies"][name] = _hybrid_entry(
                    model, n_devices, x, reference, cost_model,
                    {**(hybrid or {}), "speeds": speeds, "stream": stream}, fuse,
                    report["model"])
                continue
            plan = partition(model, n_devices, name, **strategy_options(name, fuse, speeds))
        except ToolkitError as exc:
            if not everything or isinstance(exc, AccuracyFloorError):
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
            **cost.energy_split.as_dict(),
            "energy_source": cost.energy_source,
            "predicted": True,
            "options": plan.options,
            "per_device": _per_device(cost),
        }
        if stream is not None:
            report["strategies"][name]["stream"] = estimate_stream(
                plan, *stream, cost_model).as_dict()
    return report


def add_measurements(report: dict[str, Any], runs: Mapping[str, Mapping[str, Any]]
                     ) -> dict[str, Any]:
    """Add what real runs measured to an :func:`evaluate` report (in place; returned).

    Args:
        report: the report.
        runs: report key (a strategy name or ``hybrid``) -> the run's
            :meth:`~toolkit.partition.PartitionRun.as_dict`.

    Each strategy entry gains ``measured`` (latency, energies and their split,
    error, accuracy, samples, energy source...), each of its devices ``measured``
    (latency, compute, send and receive-wait times, energy and its split, bytes,
    CPU use), and its ``stream`` (where the report and the run have one) ``measured``.

    Raises:
        ToolkitError: a run for a strategy the report does not hold.
    """
    for name, run in runs.items():
        entry = report["strategies"].get(name)
        if entry is None:
            raise ToolkitError(f"no strategy {name!r} in the report; it has "
                               f"{choices(report['strategies'])}")
        entry["measured"] = {k: run[k] for k in _MEASURED_KEYS if k in run}
        if run.get("stream") is not None and "stream" in entry:
            entry["stream"]["measured"] = run["stream"]
        for device, measured in zip(entry["per_device"], run["per_device"], strict=True):
            device["measured"] = {k: measured[k] for k in _MEASURED_DEVICE_KEYS}
            device["measured"].update({k: measured[k] for k in _EMULATION_KEYS if k in measured})
    return report


def _pair(predicted: float, measured: dict | None, key: str, scale: float, width: int,
          digits: int) -> str:
    text = f"{predicted * scale:.{digits}f}"
    if measured is not None:
        text += f"/{measured[key] * scale:.{digits}f}"
    return f"{text:>{width}}"


def _split_line(entry: dict[str, Any], idle: str) -> str:
    """The strategy's energy in its compute, communication and idle parts, in mJ."""
    m = entry.get("measured")
    measured = m is not None and ENERGY_SPLIT_KEYS[0] in m
    parts = ", ".join(
        f"{key.split('_')[0]} {_pair(entry[key], m if measured else None, key, 1e3, 0, 3)}"
        for key in ENERGY_SPLIT_KEYS)
    return (f"  energy split mJ{' pred/meas' if measured else ''} ({idle} accounting): "
            f"{parts}")


def _stream_line(stream: dict[str, Any]) -> str:
    """A stream's figures, predicted (/measured where measured)."""
    m = stream.get("measured")
    served = "pipelined" if stream["pipelined"] else "in turn"
    meas = "/measured" if m is not None else ""
    return (f"  stream of {stream['requests']} requests every {stream['interval_ms']:g} ms "
            f"({served}; predicted{meas}): throughput "
            f"{_pair(stream['throughput_rps'], m, 'throughput_rps', 1.0, 0, 1).strip()} req/s, "
            f"p50 {_pair(stream['p50_ms'], m, 'p50_ms', 1.0, 0, 3).strip()} ms, "
            f"p99 {_pair(stream['p99_ms'], m, 'p99_ms', 1.0, 0, 3).strip()} ms, energy/request "
            f"{_pair(stream['energy_per_request_j'], m, 'energy_per_request_j', 1e3, 0, 3)} mJ "
            f"({stream['energy_source']}, {stream['energy_accounting']})")


def format_table(report: dict[str, Any]) -> str:
    """A readable table of an :func:`evaluate` result (predicted/measured where measured)."""
    cm = report["cost_model"]
    shape = "x".join(str(d) for d in report["input_shape"])
    rtt = f", {cm['rtt_ms']:g} ms RTT" if cm.get("rtt_ms") else ""
    boards = cm.get("device_profiles") or []
    listed = f" ({', '.join(boards)})" if len(set(boards)) > 1 else ""
    speed = f" for a {cm['profile']}" if listed else ""
    if cm.get("step_overhead_ms") or cm.get("transfer_overhead_ms"):
        speed += (f" (+{cm['step_overhead_ms']:.3g} ms per instruction, "
                  f"{cm['transfer_overhead_ms']:.3g} ms per tensor sent or received)")
    lines = [
        f"model {report['model']} (input {shape}) on {report['devices']} devices{listed}; "
        f"latency and energy predicted at {cm['macs_per_s'] / 1e9:g} GMAC/s{speed} and "
        f"{cm['link_mbps']:g} Mbit/s "
        f"links{rtt}, energy source {report['energy_source']} (modelled, not measured)",
    ]
    if any("measured" in s for s in report["strategies"].values()):
        lines.append("pred/meas: predicted by the cost model / measured on local worker "
                     "processes (measured energy: power model of measured times)")
    for name, s in report["strategies"].items():
        m = s.get("measured")
        title = (f"{name}: max |error| {s['max_abs_error']:.2e}, {s['sync_points']} sync "
                 f"points, latency {s['latency_ms']:.3f} ms, energy {s['energy_j'] * 1e3:.3f} mJ "
                 "(predicted)")
        if name == HYBRID:
            title = title.replace("(predicted)", f"(predicted, {s['energy_source']})")
            title += (f"; head {s['head_strategy']}, split {s['split']} ({s['layer']}), "
                      f"{s['codec']}, {s['cloud_bytes']} B to the cloud, accuracy "
                      f"{s['accuracy']:.3f} ({s['label_source']})")
            if "objective" in s:
                floor = s["min_accuracy"]
                title += (f"; least {s['objective']} energy of {s['feasible_candidates']}/"
                          f"{s['candidates']} candidates"
                          + (f" with accuracy >= {floor:g}" if floor is not None else ""))
        lines += ["", title]
        if m is not None:
            acc = f", accuracy {m['accuracy']:.3f}" if "accuracy" in m else ""
            lines.append(
                f"  measured over {m['samples']} samples: latency {m['latency_ms']:.3f} ms, "
                f"energy {m['energy_j'] * 1e3:.3f} mJ ({m['energy_source']}), max |error| "
                f"{m['max_abs_error']:.2e}{acc}, throttled {bool(m['throttled'])}")
        if ENERGY_SPLIT_KEYS[0] in s:
            lines.append(_split_line(s, cm.get("idle", "request")))
        if "stream" in s:
            lines.append(_stream_line(s["stream"]))
        wide = 17 if m is not None else 9
        lines.append(f"{'device':>6} {'MMACs':>9} {'weights KiB':>11} {'peak act KiB':>12} "
                     f"{'sent KiB':>{wide}} {'recv KiB':>{wide}} {'syncs':>5} "
                     f"{'latency ms':>{wide + 2}} {'energy mJ':>{wide}}")
        for d in s["per_device"]:
            dm = d.get("measured")
            lines.append(
                f"{d['device']:>6} {d['macs'] / 1e6:>9.3f} {d['weight_bytes'] / 1024:>11.1f} "
                f"{d['peak_activation_bytes'] / 1024:>12.1f} "
                f"{_pair(d['sent_bytes'], dm, 'sent_bytes', 1 / 1024, wide, 1)} "
                f"{_pair(d['received_bytes'], dm, 'received_bytes', 1 / 1024, wide, 1)} "
                f"{d['sync_points']:>5} "
                f"{_pair(d['latency_ms'], dm, 'latency_ms', 1.0, wide + 2, 3)} "
                f"{_pair(d['energy_j'], dm, 'energy_j', 1e3, wide, 3)}"
            )
    for name, reason in report.get("refused", {}).items():
        lines += ["", f"{name}: refused: {reason}"]
    return "\n".join(lines)
