"""Tables for partitioning studies: predicted sweeps, crossovers, hybrid trade-offs, runs.

Every function returns a tidy :class:`pandas.DataFrame` (one row per case)
that the notebook ``06-partitioning`` and :mod:`toolkit.plots` read;
``df.attrs["energy_source"]`` says where the energies come from. Predicted
tables come from the cost model (never measured); :func:`device_table` puts
measured runs next to their predictions.

*Per-device energy* is each device's energy per request; a strategy's
``max_device_energy_j`` is that of its most loaded device (the one whose
battery runs out first) and ``mean_device_energy_j`` the average over devices.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from toolkit.config import listed
from toolkit.errors import ToolkitError, check_count, in_range, short_repr
from toolkit.fileio import check_table
from toolkit.partition.cost.hybrid import CloudModel, estimate_hybrid_cost
from toolkit.partition.cost.per_device import CostModel, estimate_cost
from toolkit.partition.execution.measurement import PartitionRun
from toolkit.partition.model.plan import check_devices
from toolkit.partition.model.stacks import as_partition_model
from toolkit.partition.strategies.hybrid import execute_hybrid, hybrid_plan, hybrid_splits
from toolkit.partition.strategies.registry import STRATEGIES, partition, strategy_options

__all__ = ["concordance", "crossovers", "device_table", "hybrid_table", "predict_table",
           "ranking_agreement"]


def _cost_row(cost) -> dict[str, Any]:
    energies = [d.energy_j for d in cost.devices]
    return {
        "latency_ms": cost.latency_ms,
        "energy_j": cost.energy_j,
        "max_device_energy_j": max(energies),
        "mean_device_energy_j": float(np.mean(energies)),
        "sent_kb": sum(d.sent_bytes for d in cost.devices) / 1024,
        "max_compute_ms": max(d.compute_ms for d in cost.devices),
        "sync_points": cost.sync_points,
    }


def predict_table(
    model: keras.Model,
    devices: Sequence[int],
    link_mbps: Sequence[float],
    *,
    strategies: Sequence[str] = STRATEGIES,
    model_name: str | None = None,
    fuse: int | str = "all",
    cost_model: CostModel | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Predicted costs of each strategy for every device count and link rate.

    Args:
        model: a chain Keras model.
        devices: device counts.
        link_mbps: link rates (Mbit/s) to predict at.
        strategies: the strategies (those refusing the model are left out and
            listed in ``df.attrs["refused"]``).
        model_name: the ``model`` column (default: the Keras name).
        fuse: the spatial strategy's fusion.
        cost_model: everything but the link rate (throughput, RTT, profiles,
            frequency, idle accounting, fixed costs); default :class:`CostModel`.
        progress: show a progress bar.

    Returns:
        Columns ``model, strategy, devices, link_mbps, latency_ms, energy_j,
        max_device_energy_j, mean_device_energy_j, sent_kb, max_compute_ms,
        sync_points``.
    """
    model = as_partition_model(model, "predict_table")
    devices = [check_devices(n) for n in listed(devices)]
    rates = listed(link_mbps)
    bad = [r for r in rates if not in_range(r, low_open=True)]
    if bad:
        raise ToolkitError(f"predict_table's link rates must be numbers of Mbit/s > 0, got "
                           f"{short_repr(bad[0])}")
    link_mbps = [float(r) for r in rates]
    if not devices or not link_mbps:
        raise ToolkitError("predict_table needs at least one device count and one link rate")
    base = cost_model or CostModel()
    rows, refused = [], {}
    cases = [(s, n) for s in strategies for n in devices]
    for strategy, n in tqdm(cases, desc="plans", unit="plan", disable=not progress or None):
        # unequal devices get shares by speed, as on a cluster
        speeds = base.speeds(n) if base.device_profiles else None
        try:
            plan = partition(model, n, strategy, **strategy_options(strategy, fuse, speeds))
        except ToolkitError as exc:
            refused[f"{strategy}/{n}"] = str(exc)
            continue
        for rate in link_mbps:
            cost = estimate_cost(plan, dataclasses.replace(base, link_mbps=float(rate)))
            rows.append({"model": model_name or model.name, "strategy": strategy,
                         "devices": n, "link_mbps": float(rate), **_cost_row(cost)})
    df = pd.DataFrame(rows)
    df.attrs = {"energy_source": base.power_model().source, "predicted": True,
                "refused": refused}
    return df


def crossovers(df: pd.DataFrame, x: str = "link_mbps", y: str = "max_device_energy_j",
               by: Sequence[str] = ("model", "devices")) -> pd.DataFrame:
    """Where the strategy with the lowest ``y`` changes along ``x``.

    Args:
        df: a table such as :func:`predict_table`'s, with a ``strategy`` column.
        x: the swept column (sorted ascending).
        y: the column to minimise.
        by: columns that identify one sweep.

    Returns:
        One row per change: the ``by`` columns, ``below`` (best strategy up to
        the change), ``above`` (best after it), ``from``/``to`` (the ``x``
        values around the change) and ``at`` (their geometric mean).
    """
    df = check_table(df, "crossovers", ("strategy", x, y), "predict_table rows")
    by = [c for c in by if c in df.columns]
    rows = []
    groups = df.groupby(by, sort=True) if by else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        best = part.loc[part.groupby(x)[y].idxmin()].sort_values(x)
        xs, names = best[x].to_numpy(float), best["strategy"].tolist()
        for i in range(1, len(names)):
            if names[i] != names[i - 1]:
                rows.append({**dict(zip(by, key, strict=True)), "below": names[i - 1],
                             "above": names[i], "from": xs[i - 1], "to": xs[i],
                             "at": float(np.sqrt(xs[i - 1] * xs[i])) if xs[i - 1] > 0
                             else xs[i]})
    return pd.DataFrame(rows, columns=[*by, "below", "above", "from", "to", "at"])


def concordance(predicted: Mapping[str, float], measured: Mapping[str, float]) -> tuple[int, int]:
    """(pairs ordered the same way, pairs) of the strategies both rank.

    A pair counts as the same way when prediction and measurement order its two
    strategies alike, a tie on either side as not (Kendall-style concordance;
    ``same / pairs`` is ``(1 + tau) / 2`` without ties).
    """
    same = pairs = 0
    for a, b in itertools.combinations(sorted(set(predicted) & set(measured)), 2):
        pairs += 1
        same += (predicted[a] - predicted[b]) * (measured[a] - measured[b]) > 0
    return same, pairs


def ranking_agreement(predicted: pd.DataFrame, measured: pd.DataFrame,
                      y: str = "max_device_energy_j",
                      by: Sequence[str] = ("model", "devices", "link_mbps")) -> pd.DataFrame:
    """Does a prediction rank the strategies as the measurement does, per setting?

    Args:
        predicted: a table such as :func:`predict_table`'s (one row per strategy
            and setting).
        measured: measured rows with the same columns (several rows of one
            strategy and setting, such as repeats, are averaged).
        y: the figure to rank by (lowest wins).
        by: the columns that identify a setting.

    Returns:
        One row per setting both tables hold with at least two strategies: the
        ``by`` columns, ``predicted`` and ``measured`` (each one's lowest-``y``
        strategy), ``winner_agrees``, ``pairs_same`` and ``pairs`` (see
        :func:`concordance`). ``df.attrs`` holds the shares over the settings:
        ``winner`` (settings whose predicted winner is the measured one) and
        ``pairs`` (pairs ordered alike, pooled).
    """
    by, need = list(by), [*by, "strategy", y]
    for name, table in (("predicted", predicted), ("measured", measured)):
        if not isinstance(table, pd.DataFrame):
            raise ToolkitError(f"ranking_agreement: the {name} table should be a DataFrame "
                               f"(e.g. predict_table rows), got {type(table).__name__}")
        if missing := [c for c in need if c not in table.columns]:
            raise ToolkitError(f"ranking_agreement: the {name} table has no column "
                               f"{', '.join(missing)}; both need {', '.join(need)}")
    pred_t, meas_t = (t.groupby([*by, "strategy"])[y].mean().unstack("strategy")
                      for t in (predicted, measured))
    rows = []
    for key in pred_t.index.intersection(meas_t.index).sort_values():
        pred = pred_t.loc[key].dropna().to_dict()
        meas = {k: v for k, v in meas_t.loc[key].dropna().items() if k in pred}
        pred = {k: v for k, v in pred.items() if k in meas}
        if len(pred) < 2:
            continue
        key = key if isinstance(key, tuple) else (key,)
        same, pairs = concordance(pred, meas)
        winners = min(pred, key=pred.get), min(meas, key=meas.get)
        rows.append({**dict(zip(by, key, strict=True)), "predicted": winners[0],
                     "measured": winners[1], "winner_agrees": winners[0] == winners[1],
                     "pairs_same": same, "pairs": pairs})
    df = pd.DataFrame(rows, columns=[*by, "predicted", "measured", "winner_agrees",
                                     "pairs_same", "pairs"])
    df.attrs = {"y": y,
                "winner": float(df["winner_agrees"].mean()) if len(df) else float("nan"),
                "pairs": (float(df["pairs_same"].sum() / df["pairs"].sum()) if len(df)
                          else float("nan"))}
    return df


def hybrid_table(
    model: keras.Model,
    devices: int,
    *,
    splits: Iterable[int] | None = None,
    codecs: Sequence[str] = ("fp32", "fp16", "int8"),
    strategy: str = "spatial",
    cost_model: CostModel | None = None,
    cloud: CloudModel | None = None,
    accuracy_samples: int = 200,
    model_name: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Predicted energy and latency, and in-process accuracy, of hybrid plans.

    Args:
        model: a chain Keras model.
        devices: edge devices of the head.
        splits: cut points (default: every one with a layer on each side).
        codecs: activation codecs.
        strategy: the head's strategy.
        cost_model, cloud: the edge and cloud parts of the prediction.
        accuracy_samples: digits evaluation inputs the accuracy is computed on
            (in this process: head plan, codec, tail).
        model_name: the ``model`` column.
        progress: show a progress bar.

    Returns:
        Columns ``model, strategy, devices, split, layer, codec, cloud_kb,
        latency_ms, energy_j, edge_energy_j, cloud_energy_j, max_device_energy_j,
        mean_device_energy_j, accuracy``; ``df.attrs`` holds ``energy_source``
        and ``label_source``.
    """
    from toolkit.models.data import eval_inputs, reference_labels
    from toolkit.models.split import SplitModel

    model = as_partition_model(model, "hybrid_table")
    devices = check_devices(devices)
    check_count(accuracy_samples, "accuracy_samples")
    sm = SplitModel(model, name=model.name)
    x = eval_inputs(model)[1][:accuracy_samples]
    labels, label_source = reference_labels(model, x)
    labels = np.asarray(labels)[:len(x)]
    cases = [(k, c) for k in (hybrid_splits(sm) if splits is None else splits) for c in codecs]
    rows, source = [], ""
    for split, codec in tqdm(cases, desc="hybrid plans", unit="plan",
                             disable=not progress or None):
        plan = hybrid_plan(model, devices, split, strategy, codec, split_model=sm)
        cost = estimate_hybrid_cost(plan, cost_model, cloud)
        source = cost.energy_source
        energies = [d.energy_j for d in cost.devices]
        accuracy = float(np.mean(np.argmax(execute_hybrid(plan, sm, x), -1) == labels))
        rows.append({"model": model_name or model.name, "strategy": plan.strategy,
                     "devices": devices, "split": split, "layer": plan.layer, "codec": codec,
                     "cloud_kb": cost.cloud_bytes / 1024, "latency_ms": cost.latency_ms,
                     "energy_j": cost.energy_j, "edge_energy_j": cost.edge_energy_j,
                     "cloud_energy_j": cost.cloud_energy_j,
                     "max_device_energy_j": max(energies),
                     "mean_device_energy_j": float(np.mean(energies)), "accuracy": accuracy})
    df = pd.DataFrame(rows)
    df.attrs = {"energy_source": source, "label_source": label_source, "predicted": True}
    return df


def device_table(runs: Iterable[PartitionRun | Mapping[str, Any]],
                 extra: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per device of each measured run, with its prediction beside it.

    Args:
        runs: :class:`PartitionRun` objects or their :meth:`~PartitionRun.as_dict`
            (e.g. a study's ``records[i]["run"]``).
        extra: constant columns to add (e.g. ``{"link_mbps": 10}``).

    Returns:
        Columns ``model, strategy, devices, codec, device, measured_energy_j,
        predicted_energy_j, measured_latency_ms, predicted_latency_ms,
        compute_ms, send_ms, recv_ms, sent_bytes, energy_source`` (and ``extra``).
    """
    if isinstance(runs, PartitionRun | Mapping | str) or not isinstance(runs, Iterable):
        raise ToolkitError(f"device_table needs a list of runs (PartitionRun objects or their "
                           f"as_dict()), got {type(runs).__name__}")
    rows = []
    for i, run in enumerate(runs):
        r = run.as_dict() if isinstance(run, PartitionRun) else run
        if not isinstance(r, Mapping) or "per_device" not in r:
            raise ToolkitError(f"run {i} of device_table's runs is no partition run (a "
                               f"PartitionRun or its as_dict()), got {short_repr(run)}")
        predicted = r.get("predicted", {}).get("per_device", [{}] * len(r["per_device"]))
        for d, p in zip(r["per_device"], predicted, strict=True):
            rows.append({
                "model": r["model"], "strategy": r["strategy"], "devices": r["devices"],
                "codec": r["codec"], "device": d["device"],
                "measured_energy_j": d["energy_j"],
                "predicted_energy_j": p.get("energy_j", np.nan),
                "measured_latency_ms": d["latency_ms"],
                "predicted_latency_ms": p.get("latency_ms", np.nan),
                "compute_ms": d["compute_ms"], "send_ms": d["send_ms"],
                "recv_ms": d["recv_ms"], "sent_bytes": d["sent_bytes"],
                "energy_source": d["energy_source"], **(extra or {}),
            })
    df = pd.DataFrame(rows)
    sources = sorted(set(df["energy_source"])) if rows else []
    df.attrs = {"energy_source": "+".join(sources) if sources else "unknown"}
    return df
