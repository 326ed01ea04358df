"""Choosing a hybrid plan by energy, with an accuracy floor, and its energy–accuracy curve.

A hybrid plan (:class:`~toolkit.partition.strategies.hybrid.HybridPlan`) has
three free choices: the cut point, the head's strategy over the edge devices
and the codec of the activation sent to the cloud. :func:`hybrid_candidates`
predicts every combination's energy (:func:`~toolkit.partition.cost.hybrid.estimate_hybrid_cost`)
and measures its accuracy; :func:`choose_hybrid` picks the one with the least
energy among those that reach an optional accuracy floor, by one of two
objectives (:data:`HYBRID_OBJECTIVES`):

* ``total``: the request's whole energy, edge devices and cloud (``energy_j``);
* ``max``: the most loaded edge device's energy (``max_device_energy_j``, the
  battery that runs out first; the mains-powered cloud is not a device here).

Ties go to the other objective, then the higher accuracy, then the lower
latency, then the earlier cut, head strategy and codec in their listed order.

Accuracy depends on the cut and the codec only: the four strategies compute the
head exactly in float32 (≤ 1e-4, see ``tests/partition/strategies``), so
:class:`HybridAccuracy` runs the unpartitioned head of the
:class:`~toolkit.models.split.SplitModel`, the codec's round trip and the tail,
once per (cut, codec), on the digits evaluation split: against the true labels
where the model was trained on the digits (``label_source = "labels"``),
otherwise as top-1 agreement with the unsplit fp32 model (``"fp32-model"``), as
:func:`toolkit.models.data.reference_labels` decides. Energies are predictions
of the cost model (``energy_source = "model:..."``), never measurements.

:func:`hybrid_curve` keeps, per (cut, codec), the head strategy with the least
energy and marks the energy–accuracy front.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import numpy as np
import pandas as pd

from toolkit.errors import ToolkitError, check_count, check_number, choices
from toolkit.fileio import check_table
from toolkit.models.codecs import CODECS, check_codec
from toolkit.models.split import SplitModel
from toolkit.partition.cost.hybrid import CloudModel, HybridCost, estimate_hybrid_cost
from toolkit.partition.cost.per_device import CostModel
from toolkit.partition.model.plan import check_devices
from toolkit.partition.model.stacks import as_partition_model
from toolkit.partition.strategies.hybrid import (
    HybridPlan,
    codec_roundtrip,
    hybrid_plan,
    hybrid_splits,
)
from toolkit.partition.strategies.registry import STRATEGIES, check_strategy, strategy_options

__all__ = [
    "HYBRID_OBJECTIVES",
    "AccuracyFloorError",
    "HybridAccuracy",
    "HybridChoice",
    "choose_hybrid",
    "hybrid_candidates",
    "hybrid_curve",
]

#: objective name -> the candidate table's column it minimises
HYBRID_OBJECTIVES: dict[str, str] = {"total": "energy_j", "max": "max_device_energy_j"}


class AccuracyFloorError(ToolkitError):
    """No hybrid candidate reaches the accuracy floor."""


def _check_objective(objective: str) -> str:
    if objective not in HYBRID_OBJECTIVES:
        raise ToolkitError(f"unknown hybrid objective {objective!r}; valid: "
                           f"{choices(HYBRID_OBJECTIVES)}")
    return objective


class HybridAccuracy:
    """Top-1 accuracy of a model split at a cut with a codec, cached per (cut, codec).

    Args:
        split_model: the model's split model.
        samples: evaluation inputs to use (default: the whole digits evaluation split).

    Attributes:
        label_source: ``labels`` (true digit labels) or ``fp32-model`` (agreement
            with the unsplit fp32 model's top-1).
        samples: the number of evaluation inputs.
    """

    def __init__(self, split_model: SplitModel, samples: int | None = None) -> None:
        from toolkit.models.data import eval_inputs, reference_labels

        if not isinstance(split_model, SplitModel):
            raise ToolkitError(f"HybridAccuracy needs a SplitModel, e.g. "
                               f"HybridAccuracy(SplitModel(load_model('digits-cnn'))), got "
                               f"{type(split_model).__name__}")
        if samples is not None:
            check_count(samples, "accuracy samples")
        self._sm = split_model
        x = eval_inputs(split_model.model)[1]
        self._x = x if samples is None else x[:samples]
        labels, self.label_source = reference_labels(split_model.model, self._x)
        self._labels = np.asarray(labels)[:len(self._x)]
        self.samples = len(self._x)
        self._head: tuple[int, np.ndarray] | None = None  # the last cut's activations
        self._cache: dict[tuple[int, str], float] = {}

    def __call__(self, split: int, codec: str) -> float:
        """Accuracy with the activation at ``split`` sent through ``codec`` (the head's
        activations are kept for the last cut asked only: ask cut by cut)."""
        key = (int(split), check_codec(codec))
        if key not in self._cache:
            if self._head is None or self._head[0] != key[0]:
                head = self._sm.head(key[0])
                self._head = key[0], np.asarray(head(self._x, training=False), np.float32)
            tail = self._sm.tail(key[0])
            out = tail(codec_roundtrip(self._head[1], codec), training=False)
            self._cache[key] = float(np.mean(np.argmax(np.asarray(out), -1) == self._labels))
        return self._cache[key]


def _row(plan: HybridPlan, cost: HybridCost, accuracy: float, label_source: str,
         n_devices: int) -> dict[str, Any]:
    energies = [d.energy_j for d in cost.devices]
    return {"model": plan.model, "devices": n_devices, "split": plan.split,
            "layer": plan.layer, "head_strategy": plan.head.strategy, "strategy": plan.strategy,
            "codec": plan.codec, "cloud_bytes": cost.cloud_bytes, "latency_ms": cost.latency_ms,
            "energy_j": cost.energy_j, "edge_energy_j": cost.edge_energy_j,
            "cloud_energy_j": cost.cloud_energy_j, "max_device_energy_j": max(energies),
            "accuracy": accuracy, "label_source": label_source,
            "energy_source": cost.energy_source}


def hybrid_candidates(
    model: keras.Model,
    n_devices: int,
    *,
    splits: Iterable[int] | None = None,
    strategies: Sequence[str] = STRATEGIES,
    codecs: Sequence[str] = CODECS,
    cost_model: CostModel | None = None,
    cloud: CloudModel | None = None,
    fuse: int | str = "all",
    speeds: Sequence[float] | None = None,
    split_model: SplitModel | None = None,
    accuracy: HybridAccuracy | None = None,
    model_name: str | None = None,
) -> pd.DataFrame:
    """Every hybrid plan over cuts × head strategies × codecs, its predicted energy and accuracy.

    Args:
        model: a chain Keras model.
        n_devices: edge devices of the head.
        splits: cut points (default: every one with a layer on each side).
        strategies: head strategies to try.
        codecs: activation codecs to try (default: every codec).
        cost_model, cloud: the edge and cloud parts of the prediction.
        fuse: the spatial head's fusion.
        speeds: each edge device's relative speed (default: equal shares).
        split_model: the model's split model, where one exists already.
        accuracy: an accuracy cache to reuse (default: a new one on ``split_model``).
        model_name: the ``model`` column (default: the Keras name).

    Returns:
        One row per candidate: ``model, devices, split, layer, head_strategy,
        strategy, codec, cloud_bytes, latency_ms, energy_j, edge_energy_j,
        cloud_energy_j, max_device_energy_j, accuracy, label_source,
        energy_source``. ``df.attrs`` holds ``label_source``, ``energy_source``,
        ``accuracy_samples``, ``predicted`` and ``refused`` (``"split/strategy"``
        -> why the strategy refused that head).

    Raises:
        ToolkitError: an unknown strategy or codec, a bad cut, or no head
            strategy accepts any cut.
    """
    model = as_partition_model(model, "hybrid_candidates")
    n_devices = check_devices(n_devices)
    sm = split_model or SplitModel(model, name=model.name)
    accuracy = accuracy or HybridAccuracy(sm)
    codecs = [check_codec(c) for c in codecs]
    strategies = [check_strategy(s) for s in strategies]
    splits = hybrid_splits(sm) if splits is None else list(splits)
    for split in set(splits) - set(hybrid_splits(sm)):
        hybrid_plan(model, n_devices, split, split_model=sm)  # raises, listing the valid cuts
    rows: list[dict[str, Any]] = []
    refused: dict[str, str] = {}
    for split in splits:
        for strategy in strategies:
            try:
                plan = hybrid_plan(model, n_devices, split, strategy, codecs[0], split_model=sm,
                                   model_name=model_name,
                                   **strategy_options(strategy, fuse, speeds))
            except ToolkitError as exc:
                refused[f"{split}/{strategy}"] = str(exc)
                continue
            for codec in codecs:
                coded = replace(plan, codec=codec)
                cost = estimate_hybrid_cost(coded, cost_model, cloud)
                rows.append(_row(coded, cost, accuracy(plan.split, codec),
                                 accuracy.label_source, n_devices))
    if not rows:
        raise ToolkitError("no head strategy accepts any hybrid cut of "
                           f"{model_name or sm.name!r}: "
                           + "; ".join(f"{k}: {v}" for k, v in refused.items()))
    df = pd.DataFrame(rows)
    df.attrs = {"label_source": accuracy.label_source,
                "energy_source": "+".join(sorted(set(df["energy_source"]))),
                "accuracy_samples": accuracy.samples, "predicted": True, "refused": refused}
    return df


def _ranked(df: pd.DataFrame, objective: str, strategies: Sequence[str],
            codecs: Sequence[str]) -> pd.DataFrame:
    """``df`` sorted best first by ``objective`` and the module's tie-breaks."""
    first = HYBRID_OBJECTIVES[objective]
    other = next(c for c in HYBRID_OBJECTIVES.values() if c != first)
    keyed = df.assign(_acc=-df["accuracy"],
                      _s=df["head_strategy"].map({s: i for i, s in enumerate(strategies)}),
                      _c=df["codec"].map({c: i for i, c in enumerate(codecs)}))
    keys = [first, other, "_acc", "latency_ms", "split", "_s", "_c"]
    return keyed.sort_values(keys, kind="stable").drop(columns=["_acc", "_s", "_c"])


@dataclass(frozen=True)
class HybridChoice:
    """The hybrid plan :func:`choose_hybrid` chose, and what it chose from.

    Attributes:
        plan: the chosen plan.
        cost: its predicted cost.
        accuracy: its accuracy (``label_source``).
        label_source: ``labels`` or ``fp32-model``.
        accuracy_samples: evaluation inputs the accuracy was computed on.
        objective: ``total`` or ``max`` (:data:`HYBRID_OBJECTIVES`).
        min_accuracy: the floor (None: no floor).
        pinned: the choices the caller fixed (``split``, ``strategy``, ``codec``).
        candidates: :func:`hybrid_candidates`' table, with a ``feasible`` column
            (reaches the floor) and ``chosen`` (this plan's row).
    """

    plan: HybridPlan
    cost: HybridCost
    accuracy: float
    label_source: str
    accuracy_samples: int
    objective: str
    min_accuracy: float | None
    pinned: Mapping[str, Any] = field(default_factory=dict)
    candidates: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """What the report's hybrid entry says about the choice."""
        return {"objective": self.objective, "objective_column": HYBRID_OBJECTIVES[self.objective],
                "min_accuracy": self.min_accuracy, "pinned": dict(self.pinned),
                "candidates": len(self.candidates),
                "feasible_candidates": int(self.candidates["feasible"].sum())}


def choose_hybrid(
    model: keras.Model,
    n_devices: int,
    *,
    objective: str = "total",
    min_accuracy: float | None = None,
    split: int | None = None,
    strategy: str | None = None,
    codec: str | None = None,
    strategies: Sequence[str] = STRATEGIES,
    codecs: Sequence[str] = CODECS,
    cost_model: CostModel | None = None,
    cloud: CloudModel | None = None,
    fuse: int | str = "all",
    speeds: Sequence[float] | None = None,
    split_model: SplitModel | None = None,
    accuracy_samples: int | None = None,
    accuracy: HybridAccuracy | None = None,
    model_name: str | None = None,
) -> HybridChoice:
    """The hybrid plan with the least predicted energy that reaches ``min_accuracy``.

    Args:
        model: a chain Keras model.
        n_devices: edge devices of the head.
        objective: ``total`` (edge + cloud energy) or ``max`` (the most loaded
            edge device's energy).
        min_accuracy: the accuracy floor in [0, 1] (None: none).
        split, strategy, codec: pin the cut, the head strategy or the codec
            (None: search every cut, ``strategies`` and ``codecs``).
        strategies, codecs: what the search tries where not pinned.
        cost_model, cloud, fuse, speeds: as for :func:`hybrid_candidates`.
        split_model: the model's split model, where one exists already.
        accuracy_samples: evaluation inputs (default: the whole digits split).
        accuracy: an accuracy cache of ``split_model`` to reuse across calls
            (then ``accuracy_samples`` is its own).
        model_name: the name to report (default: the Keras model's).

    Raises:
        AccuracyFloorError: no candidate reaches the floor (the message names
            the best accuracy reached and its plan).
        ToolkitError: an unknown objective, strategy or codec, a bad cut or
            floor, or no head strategy accepts the model.
    """
    _check_objective(objective)
    if min_accuracy is not None:
        check_number(min_accuracy, "min_accuracy", 0.0, 1.0)
    model = as_partition_model(model, "choose_hybrid")
    sm = split_model or SplitModel(model, name=model.name)
    strategies = [strategy] if strategy is not None else list(strategies)
    codecs = [codec] if codec is not None else list(codecs)
    df = hybrid_candidates(model, n_devices, splits=None if split is None else [split],
                           strategies=strategies, codecs=codecs, cost_model=cost_model,
                           cloud=cloud, fuse=fuse, speeds=speeds, split_model=sm,
                           accuracy=accuracy or HybridAccuracy(sm, accuracy_samples),
                           model_name=model_name)
    df["feasible"] = df["accuracy"] >= min_accuracy if min_accuracy is not None else True
    df["chosen"] = False
    feasible = df[df["feasible"]]
    if feasible.empty:
        best = df.loc[df["accuracy"].idxmax()]
        raise AccuracyFloorError(
            f"no hybrid plan of {model_name or sm.name!r} reaches accuracy {min_accuracy:g} "
            f"({df.attrs['label_source']}, {df.attrs['accuracy_samples']} samples): the best "
            f"reached is {best['accuracy']:.4f} (split {best['split']}, codec "
            f"{best['codec']}) among {len(df)} candidates")
    pick = _ranked(feasible, objective, strategies, codecs).index[0]
    df.loc[pick, "chosen"] = True
    row = df.loc[pick]
    plan = hybrid_plan(model, n_devices, int(row["split"]), row["head_strategy"], row["codec"],
                       split_model=sm, model_name=model_name,
                       **strategy_options(row["head_strategy"], fuse, speeds))
    pinned = {k: v for k, v in (("split", split), ("strategy", strategy), ("codec", codec))
              if v is not None}
    return HybridChoice(plan, estimate_hybrid_cost(plan, cost_model, cloud),
                        float(row["accuracy"]), df.attrs["label_source"],
                        df.attrs["accuracy_samples"], objective, min_accuracy, pinned, df)


def hybrid_curve(candidates: pd.DataFrame, objective: str = "total") -> pd.DataFrame:
    """The energy–accuracy curve of hybrid plans: one row per (cut, codec).

    Args:
        candidates: :func:`hybrid_candidates` (or :attr:`HybridChoice.candidates`).
        objective: which energy picks the head strategy of each (cut, codec)
            and defines the front (:data:`HYBRID_OBJECTIVES`).

    Returns:
        Per (cut, codec), the row of the head strategy with the least energy,
        sorted by cut and codec, with ``objective`` (the name) and ``front``:
        True where no other row has at most its energy and at least its
        accuracy with one of them strictly better. ``df.attrs`` is kept.
    """
    _check_objective(objective)
    column = HYBRID_OBJECTIVES[objective]
    candidates = check_table(candidates, "hybrid_curve",
                             ("split", "codec", "head_strategy", "accuracy", column),
                             "hybrid_candidates rows or HybridChoice.candidates")
    codecs = list(dict.fromkeys(candidates["codec"]))
    strategies = list(dict.fromkeys(candidates["head_strategy"]))
    ranked = _ranked(candidates, objective, strategies, codecs)
    best = ranked.drop_duplicates(["split", "codec"]).copy()
    best["_c"] = best["codec"].map({c: i for i, c in enumerate(codecs)})
    best = best.sort_values(["split", "_c"]).drop(columns="_c").reset_index(drop=True)
    energy, acc = best[column].to_numpy(float), best["accuracy"].to_numpy(float)
    dominated = [bool(np.any((energy <= e) & (acc >= a) & ((energy < e) | (acc > a))))
                 for e, a in zip(energy, acc, strict=True)]
    best["objective"] = objective
    best["front"] = ~np.array(dominated, dtype=bool)
    best.attrs = dict(candidates.attrs)
    return best
