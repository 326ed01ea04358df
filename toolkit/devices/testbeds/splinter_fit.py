"""Fit the edge timing model to DynaSplit's measured Raspberry Pi edge latencies.

DynaSplit's simulation pool (SPLINTER, ``simulation_pool_vgg16.csv``) holds the
measured ``avg latency edge (ms)`` of VGG16 heads at 224x224 for every layer,
CPU frequency (600..1800 MHz) and edge accelerator (``off`` = full-int8 TFLite
on the Pi's CPU, ``std``/``max`` = Coral Edge TPU). :func:`fit_splinter` takes
the median per (layer, frequency), computes each head's :class:`HeadCost` from
the toolkit's own VGG16 (DynaSplit's layer index equals the toolkit's split
index for VGG16) and fits the ``[timing.<accel>]`` terms with non-negative
least squares, dropping cells more than 30 % off the fit (DynaSplit's pool has
a few runs whose frequency did not take: e.g. 800 MHz runs faster than 1000).
The shipped profile's numbers are this function's output, rounded.

:func:`fit_splinter_cloud` fits the cloud node's tail timing the same way to
the median ``avg latency cloud (ms)`` per layer and server accelerator (GPU or
not): a per-request intercept plus milliseconds per GMAC, per million weights
and per million elements received (:mod:`toolkit.hardware.cloud_timing`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from toolkit.config import ACCELERATORS
from toolkit.errors import ToolkitError, choices
from toolkit.hardware.cloud_timing import TAIL_COUNTS, TailCost, tail_cost
from toolkit.hardware.edge_timing import HeadCost, TimingTerms

__all__ = ["FORMS", "CloudFit", "SplinterFit", "fit_splinter", "fit_splinter_cloud",
           "fit_splinter_link", "splinter_edge_medians", "vgg16_costs", "vgg16_tail_costs"]

#: toolkit edge accelerator of an int8 head -> DynaSplit's edge-accelerator value (the TPU state)
DYNASPLIT_ACCEL = {a: m.tpu for a, m in ACCELERATORS["edge"].items() if m.int8}
#: per accelerator: (count, frequency-scaled part fitted?) -- the CPU's work scales
#: with the clock; the Edge TPU's compute and weight streaming do not
FORMS: dict[str, tuple[tuple[str, bool], ...]] = {
    "int8": (("one", True), ("gmac", True), ("mact", True), ("mweight", True)),
    "tpu-std": (("one", True), ("mout", True), ("mweight_over_sram", False), ("gmac", False)),
    "tpu-max": (("one", True), ("mout", True), ("mweight_over_sram", False), ("gmac", False)),
}
#: Coral Edge TPU on-chip memory for parameters, in 10^6 int8 weights (8 MB)
CORAL_SRAM_MWEIGHTS = 8.0
MAX_FREQ = 1800


@dataclass(frozen=True)
class SplinterFit:
    """A fitted timing table with its fit error on DynaSplit's medians."""

    accel: str
    terms: TimingTerms
    cells: int
    kept: int
    median_rel_error: float
    max_rel_error: float


def _read_pool(pool_csv: str | os.PathLike, need: str = "runs"):
    """DynaSplit's VGG16 pool as one row per run, canonical names (``split`` is their
    ``layer``; :func:`toolkit.splinter.read_pool` checks every value), or a one-line
    error; ``need`` names what the fit needs for the message of an empty pool."""
    from toolkit.cube import measured_runs
    from toolkit.splinter import read_pool

    runs = measured_runs(read_pool(pool_csv, model="vgg16"), ("latency_ms",), "a timing fit")
    if runs.empty:
        raise ToolkitError(f"DynaSplit pool {pool_csv} has no runs; the fit needs {need}")
    return runs


def _enough(rows, pool_csv: str | os.PathLike, what: str, minimum: int):
    """``rows``, or a one-line error where the pool has fewer than ``minimum`` of them."""
    if len(rows) < minimum:
        raise ToolkitError(f"DynaSplit pool {pool_csv} has {len(rows)} {what}; the fit "
                           f"needs at least {minimum}")
    return rows


def vgg16_costs() -> dict[int, HeadCost]:
    """Head costs of the toolkit's VGG16 at 224x224 by split (= DynaSplit layer)."""
    from toolkit.hardware.edge_timing import head_cost
    from toolkit.models.split import SplitModel
    from toolkit.models.zoo import load_model

    sm = SplitModel(load_model("vgg16", input_size=224), name="vgg16")
    return {s: c for s in range(1, sm.n_splits) if (c := head_cost(sm, s)) is not None}


def vgg16_tail_costs() -> dict[int, TailCost]:
    """Tail costs of the toolkit's VGG16 at 224x224 by split (= DynaSplit layer)."""
    from toolkit.models.split import SplitModel
    from toolkit.models.zoo import load_model

    sm = SplitModel(load_model("vgg16", input_size=224), name="vgg16")
    return {s: c for s in range(sm.n_splits) if (c := tail_cost(sm, s)) is not None}


def splinter_edge_medians(pool_csv: str | os.PathLike, accel: str):
    """DynaSplit's median ``avg latency edge (ms)`` per (layer, cpu-freq), layers > 0.

    Returns:
        A DataFrame with columns ``layer``, ``cpu_freq``, ``edge_ms``, ``runs``.
    """

    if accel not in DYNASPLIT_ACCEL:
        raise ToolkitError(f"no DynaSplit data for accelerator {accel!r}; valid: "
                           f"{choices(DYNASPLIT_ACCEL)}")
    pool = _read_pool(pool_csv)
    rows = pool[(pool["edge_accel"] == accel) & (pool["split"] > 0)]
    med = rows.groupby(["split", "cpu_freq"])["edge_ms"].agg(["median", "size"])
    med = med.reset_index().rename(columns={"split": "layer", "median": "edge_ms",
                                            "size": "runs"})
    med["layer"] = med["layer"].astype(int)
    med["cpu_freq"] = med["cpu_freq"].astype(int)
    return med


def fit_splinter(pool_csv: str | os.PathLike, accel: str,
                 costs: dict[int, HeadCost] | None = None) -> SplinterFit:
    """Fit ``[timing.<accel>]`` to DynaSplit's VGG16 edge latencies (see module doc)."""
    from scipy.optimize import nnls

    costs = costs or vgg16_costs()
    med = splinter_edge_medians(pool_csv, accel)
    form = FORMS[accel]
    med = _enough(med[med["layer"].isin(list(costs))], pool_csv,
                  f"(layer, cpu-freq) cells with {accel} heads", sum(1 + s for _, s in form))
    sram = CORAL_SRAM_MWEIGHTS if accel.startswith("tpu") else 0.0
    cols = []
    for layer, freq in zip(med["layer"], med["cpu_freq"], strict=True):
        counts = costs[layer].counts(sram)
        r = MAX_FREQ / freq
        cols.append([x for name, scaled in form
                     for x in ((counts[name], counts[name] * r) if scaled else (counts[name],))])
    x = np.asarray(cols)
    y = med["edge_ms"].to_numpy(float)
    keep = np.ones(len(y), bool)
    for _ in range(4):
        coef, _ = nnls(x[keep], y[keep])
        rel = np.abs(x @ coef - y) / y
        keep = rel < 0.3
    fitted = iter(coef)  # each count's fixed part, then its scaled part where it has one
    terms = {name: (float(next(fitted)), float(next(fitted)) if scaled else 0.0)
             for name, scaled in form}
    return SplinterFit(accel, TimingTerms(terms, sram), len(y), int(keep.sum()),
                       float(np.median(rel)), float(rel.max()))


def fit_splinter_link(pool_csv: str | os.PathLike) -> dict[str, float]:
    """Fit DynaSplit's transfer time to ``rtt_ms + KiB × 8 × 1024 / (mbps × 1000)``.

    Over every split run (0 < layer < 22) of the pool, minimising the relative
    error (least squares weighted by 1 / transfer time).

    Returns:
        ``{"rtt_ms", "mbps", "ms_per_kib", "median_rel_error", "runs"}``.
    """

    pool = _read_pool(pool_csv)
    runs = _enough(pool[(pool["split"] > 0) & (pool["split"] < pool["split"].max())
                        & (pool["transfer_ms"] > 0)], pool_csv, "runs with a transfer", 2)
    kib = runs["tensor_kb"].to_numpy(float)
    y = runs["transfer_ms"].to_numpy(float)
    a = np.c_[np.ones_like(kib), kib]
    (rtt, per_kib), *_ = np.linalg.lstsq(a / y[:, None], np.ones_like(y), rcond=None)
    rel = np.abs(a @ np.array([rtt, per_kib]) - y) / y
    return {"rtt_ms": float(rtt), "mbps": float(8 * 1024 / per_kib / 1000),
            "ms_per_kib": float(per_kib), "median_rel_error": float(np.median(rel)),
            "runs": len(y)}


#: toolkit cloud accelerator -> DynaSplit's ``server-accelerator`` value
DYNASPLIT_SERVER = {a: m.device == "gpu" for a, m in ACCELERATORS["cloud"].items()}


@dataclass(frozen=True)
class CloudFit:
    """A fitted ``[tail_timing.<accel>]`` table with its error on DynaSplit's data.

    Attributes:
        accel: the cloud accelerator (``none``: the server's CPU, ``gpu``).
        terms: ms per unit of each count of :data:`~toolkit.hardware.cloud_timing.TAIL_COUNTS`.
        request_ms: the fitted per-request intercept (DynaSplit's serving software).
        layers: layers (medians) fitted; runs: DynaSplit runs behind them.
        median_rel_error, max_rel_error: on the medians per layer.
        median_rel_error_runs: on every run of the pool.
        power_w: DynaSplit's median cloud power while the tail runs
            (``avg energy cloud (J)`` / ``avg latency cloud (ms)``).
    """

    accel: str
    terms: dict[str, float]
    request_ms: float
    layers: int
    runs: int
    median_rel_error: float
    max_rel_error: float
    median_rel_error_runs: float
    power_w: float


def fit_splinter_cloud(pool_csv: str | os.PathLike, accel: str,
                       costs: dict[int, TailCost] | None = None) -> CloudFit:
    """Fit the cloud's tail timing to DynaSplit's VGG16 ``avg latency cloud (ms)``.

    Non-negative least squares of the median per layer (0..21) on
    ``[1, gmac, mweight, min]`` of the toolkit's VGG16 tails.
    """
    from scipy.optimize import nnls

    if accel not in DYNASPLIT_SERVER:
        raise ToolkitError(f"no DynaSplit data for cloud accelerator {accel!r}; valid: "
                           f"{choices(DYNASPLIT_SERVER)}")
    pool = _read_pool(pool_csv)
    costs = costs or vgg16_tail_costs()
    runs = pool[(pool["cloud_accel"] == accel) & pool["split"].isin(list(costs))]
    med = _enough(runs.groupby("split")["cloud_ms"].median(), pool_csv,
                  f"layers with a {accel} tail", 1 + len(TAIL_COUNTS))

    def design(layers) -> np.ndarray:
        return np.array([[1.0, *(costs[int(lay)].counts()[k] for k in TAIL_COUNTS)]
                         for lay in layers])

    y = med.to_numpy(float)
    coef, _ = nnls(design(med.index), y)
    rel = np.abs(design(med.index) @ coef - y) / y
    y_runs = runs["cloud_ms"].to_numpy(float)
    rel_runs = np.abs(design(runs["split"]) @ coef - y_runs) / y_runs
    power = runs["cloud_energy_j"] / runs["cloud_ms"] * 1e3
    return CloudFit(accel, {k: float(v) for k, v in zip(TAIL_COUNTS, coef[1:], strict=True)},
                    float(coef[0]), len(y), len(y_runs), float(np.median(rel)),
                    float(rel.max()), float(np.median(rel_runs)), float(power.median()))
