"""QoS traces: one latency threshold per inference request.

Traces use DynaSplit's CSV format ``Index,Network,Latency``: ``Index`` numbers
the requests of a network from 0, ``Network`` is the model name and
``Latency`` the request's threshold in ms. One file may hold several networks
(their ``network_latency_50_samples.csv`` does).

DynaSplit drew thresholds from a Weibull distribution with shape 1 and
rescaled them linearly to a per-network range; :func:`generate_trace` does the
same with a seeded :func:`numpy.random.default_rng`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.errors import ToolkitError, check_number, check_seed, choices, is_count
from toolkit.fileio import as_path, integer_column, numeric_column, read_table, write_table

__all__ = ["MAX_REQUESTS", "NETWORK_MODELS", "TRACE_COLUMNS", "generate_trace", "network_of",
           "read_trace", "write_trace"]

#: the columns of a trace, in file order
TRACE_COLUMNS: tuple[str, ...] = ("Index", "Network", "Latency")
#: DynaSplit's network names (traces, file names) -> the toolkit's model names
NETWORK_MODELS: dict[str, str] = {"vit": "vit-b16", "vit_b16": "vit-b16", "vitb16": "vit-b16"}


def network_of(model: str) -> str:
    """DynaSplit's network name of a toolkit model (``vit-b16:igelu`` -> ``vit``)."""
    base = str(model).partition(":")[0]
    return next((net for net, m in NETWORK_MODELS.items() if m == base), base)

_KIND = "QoS trace CSV (Index,Network,Latency)"

#: the most requests a generated trace holds: DynaSplit's have 10 000; ten million
#: take 80 MB in memory and about 250 MB as CSV, a trillion could not be allocated
MAX_REQUESTS = 10_000_000


def generate_trace(
    model: str,
    min_ms: float,
    max_ms: float,
    n: int,
    seed: int | None,
    shape: float = 1.0,
) -> pd.DataFrame:
    """A QoS trace of ``n`` Weibull-distributed thresholds in ``[min_ms, max_ms]``.

    ``n`` draws from a Weibull distribution with the given shape are rescaled
    linearly so that the smallest becomes ``min_ms`` and the largest
    ``max_ms``; the order of the draws is kept.

    Args:
        model: the network name written to the ``Network`` column.
        min_ms: smallest threshold, ms (≥ 0).
        max_ms: largest threshold, ms (> ``min_ms``).
        n: number of requests (2 .. :data:`MAX_REQUESTS`).
        seed: seed of the numpy Generator; the same seed gives the same trace.
        shape: Weibull shape parameter k (> 0); 1 is an exponential
            distribution, as DynaSplit used.

    Returns:
        A DataFrame with the columns ``Index, Network, Latency``.

    Raises:
        ToolkitError: an argument is out of range.
    """
    if not isinstance(model, str) or not model.strip() or "," in model:
        raise ToolkitError(f"invalid model name {model!r} for a trace (non-empty, no comma)")
    if not is_count(n, 2):
        raise ToolkitError(f"a trace needs n >= 2 requests, got {n!r}")
    if n > MAX_REQUESTS:
        raise ToolkitError(f"a generated trace holds at most {MAX_REQUESTS} requests, got {n}")
    check_number(min_ms, "trace min", unit="ms")
    check_number(max_ms, "trace max", unit="ms")
    if max_ms <= min_ms:
        raise ToolkitError(f"trace max ({max_ms} ms) must be greater than min ({min_ms} ms)")
    check_number(shape, "Weibull shape", low_open=True)
    check_seed(seed, "trace seed")
    draws = np.random.default_rng(seed).weibull(shape, int(n))
    if not np.isfinite(draws).all():
        raise ToolkitError(f"Weibull draws with shape {shape} overflow (they are not finite); "
                           "use a larger shape")
    lo, hi = draws.min(), draws.max()
    if hi == lo:
        raise ToolkitError(f"all {n} Weibull draws are equal (shape {shape}); use a smaller shape")
    latency = min_ms + (draws - lo) * ((max_ms - min_ms) / (hi - lo))
    latency = np.clip(latency, min_ms, max_ms)
    latency[draws.argmin()], latency[draws.argmax()] = min_ms, max_ms
    return pd.DataFrame({
        "Index": np.arange(int(n), dtype=np.int64),
        "Network": model.strip(),
        "Latency": latency.astype(float),
    })


def read_trace(path: str | os.PathLike, model: str | None = None) -> pd.DataFrame:
    """Read a trace in DynaSplit's format.

    Args:
        path: the CSV file.
        model: keep only this network's requests (a file may hold several);
            a toolkit model name finds DynaSplit's name for it (``vit-b16``
            reads ``vit``); None keeps all.

    Returns:
        A DataFrame with the columns ``Index`` (int), ``Network`` (str) and
        ``Latency`` (float, ms), in file order, with a fresh 0-based row index.

    Raises:
        ToolkitError: the file is not a trace (missing columns are named), a
            latency is missing, negative or not a number, or ``model`` is not in
            the file (the networks it holds are listed).
    """
    path = as_path(path, f"a {_KIND}")
    df = read_table(path, _KIND, TRACE_COLUMNS)
    latency = numeric_column(df, "Latency", path)
    bad = ~(np.isfinite(latency) & (latency >= 0))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ToolkitError(
            f"{path} line {row + 2}: latency threshold {str(df['Latency'].iloc[row])!r} "
            "is missing, negative or not finite; a threshold is a number of ms >= 0"
        )
    index = integer_column(df, "Index", path)
    unnamed = df["Network"].isna().to_numpy().nonzero()[0]
    if len(unnamed):
        raise ToolkitError(f"{path} line {int(unnamed[0]) + 2}: the Network column is empty; "
                           "each request names its network, e.g. vgg16")
    trace = pd.DataFrame({
        "Index": index,
        "Network": df["Network"].astype(str),
        "Latency": latency,
    })
    if model is not None:
        networks = list(dict.fromkeys(trace["Network"]))
        if model not in networks and network_of(model) in networks:
            model = network_of(model)  # e.g. vit-b16 is DynaSplit's "vit"
        if model not in networks:
            raise ToolkitError(
                f"{path} has no requests for network {model!r}; it holds {choices(networks)}"
            )
        trace = trace[trace["Network"] == model].reset_index(drop=True)
    return trace


def write_trace(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a trace in DynaSplit's format, atomically (an existing file is replaced).

    Args:
        df: a trace with the columns ``Index, Network, Latency`` (others are
            dropped).
        path: the CSV file.

    Returns:
        The path written.

    Raises:
        ToolkitError: a column is missing, a threshold that :func:`read_trace` would
            refuse (not a finite number >= 0), or the file cannot be written.
    """
    if not isinstance(df, pd.DataFrame):
        raise ToolkitError(f"write_trace needs a table (a DataFrame with the columns "
                           f"{choices(TRACE_COLUMNS)}, e.g. from generate_trace), got "
                           f"{type(df).__name__}")
    missing = [c for c in TRACE_COLUMNS if c not in df.columns]
    if missing:
        raise ToolkitError(f"a trace needs the columns {choices(missing)}")
    latency = pd.to_numeric(df["Latency"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~(np.isfinite(latency) & (latency >= 0)))
    if len(bad):
        raise ToolkitError(f"request {int(bad[0])} has the threshold "
                           f"{df['Latency'].iloc[bad[0]]!r}; a threshold is a number of ms >= 0")
    return write_table(df[list(TRACE_COLUMNS)], path)
