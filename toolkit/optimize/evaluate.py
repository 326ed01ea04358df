"""Evaluators: how the optimizer obtains a configuration's objectives.

An :class:`Evaluator` takes a batch of configuration dicts and returns, per
configuration, a dict of objective values (``latency_ms``, ``energy_j``,
``accuracy``) or None when the configuration is unmeasured or its measurement
failed. The optimizer never asks for the same configuration twice and does not
count a None against the budget.

* :class:`CubeEvaluator` looks configurations up in a measurement cube (mean
  over repeats; for latency optionally a quantile over repeats).
* :class:`FunctionEvaluator` wraps a plain function ``config -> dict | None``.
* :class:`DaskEvaluator` runs another evaluator's configurations in parallel on
  a ``dask.distributed`` cluster through ``Client.map``.

Extension point — live evaluation: an evaluator that drives the campaign runner
(:mod:`toolkit.campaign`) implements :meth:`Evaluator.evaluate` by measuring the
batch on the testbed, writing each run into the cube as it goes, and returning
the cube look-up of each configuration (None for a failed run). Because it
consults the cube first, an interrupted optimisation re-run with the same seed
replays the measured configurations from the cube instead of re-measuring
them. It should set :attr:`Evaluator.energy_source` from the testbed's meters.
"""

from __future__ import annotations

import abc
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from toolkit.config import EXTRA_KEYS, coerce_value, single_extras
from toolkit.errors import ConfigError, ToolkitError, choices
from toolkit.optimize.objectives import OBJECTIVES, Normalizer
from toolkit.optimize.space import GENES

__all__ = ["CubeEvaluator", "DaskEvaluator", "Evaluator", "FunctionEvaluator"]

Objectives = dict[str, float]


class Evaluator(abc.ABC):
    """Interface of everything that measures or looks up configurations.

    Attributes:
        objectives: the objectives this evaluator can provide.
        energy_source: where its energy figures come from (the cube's
            ``energy_source``: ``meter:<name>``, ``rapl``, ``nvml``,
            ``model:<profile>``), or None when unknown.
    """

    objectives: tuple[str, ...] = tuple(OBJECTIVES)
    energy_source: str | None = None

    @abc.abstractmethod
    def evaluate(self, configs: list[dict[str, Any]]) -> list[Objectives | None]:
        """Objectives of each configuration, in order; None when unmeasured or failed."""

    def normalizer(self, objectives: Sequence[str]) -> Normalizer | None:
        """Known objective ranges for hypervolume normalisation, or None.

        Evaluators backed by a complete table (a cube) know the ranges up front;
        others return None and the optimizer uses the evaluated configurations.
        """
        return None


class FunctionEvaluator(Evaluator):
    """An evaluator from a function ``config -> {objective: value} | None``."""

    def __init__(
        self,
        function: Callable[[dict[str, Any]], Mapping[str, float] | None],
        objectives: Sequence[str] = tuple(OBJECTIVES),
        energy_source: str | None = None,
    ) -> None:
        self.function = function
        self.objectives = tuple(objectives)
        self.energy_source = energy_source

    def evaluate(self, configs: list[dict[str, Any]]) -> list[Objectives | None]:
        values = [self.function(dict(config)) for config in configs]
        return [None if v is None else {k: float(x) for k, x in v.items()} for v in values]


def _latency_stat(stat: str | float) -> str | float:
    if isinstance(stat, str) and stat.strip().lower() in ("mean", "median"):
        return 0.5 if stat.strip().lower() == "median" else "mean"
    try:
        q = float(stat)
    except (TypeError, ValueError):
        raise ConfigError(
            f"latency_stat must be 'mean', 'median' or a quantile in (0, 1], got {stat!r}"
        ) from None
    if not 0.0 < q <= 1.0:
        raise ConfigError(f"latency quantile must be in (0, 1], got {q}")
    return q


class CubeEvaluator(Evaluator):
    """Objectives looked up in a measurement cube.

    ``energy_j`` and ``accuracy`` are means over repeats; ``latency_ms`` is the
    mean or, with ``latency_stat`` a number ``q``, the ``q`` quantile over
    repeats (e.g. 0.99 for the tail). The table is built once; the evaluator holds
    no reference to the cube, so it is cheap to send to dask workers.

    Configurations are keyed by :attr:`keys`: the four standard genes plus every
    extra dimension (``codec``, ``strategy``, ``devices``) with several values.
    An extra key the cube holds one value of is *fixed* (:attr:`fixed`): a
    configuration may omit it, and one that names another value is unmeasured.
    A campaign cube of a single codec records it in its ``codecs`` attribute,
    which fixes ``codec`` the same way.
    """

    def __init__(self, cube: Any, model: str | None = None,
                 latency_stat: str | float = "mean") -> None:
        """Build the look-up table.

        Args:
            cube: a cube (:func:`toolkit.cube.open_cube`), or its file's path.
            model: the model to evaluate; needed when the cube holds several.
            latency_stat: ``"mean"``, ``"median"`` or a quantile in (0, 1].

        Raises:
            ConfigError: unknown model, bad ``latency_stat``, or a cube without
                any objective variable.
        """
        from toolkit.cube import as_cube, has_objective_data, select_model, single_codec

        cube = as_cube(cube, ("latency_ms",), "a cube evaluator")
        self.model, data = select_model(cube, model)
        self.latency_stat = _latency_stat(latency_stat)
        self.energy_source = (str(cube.attrs["energy_source"])
                              if "energy_source" in cube.attrs else None)
        dims = {k: data[k].values.tolist() for k in EXTRA_KEYS if k in data.dims}
        self.fixed: dict[str, Any] = {k: coerce_value(k, v)
                                      for k, v in single_extras(dims).items()}
        data = data.isel({k: 0 for k in self.fixed}, drop=True)
        varying = [k for k in dims if k not in self.fixed]
        codec = single_codec(cube)
        if codec is not None and "codec" not in self.fixed:
            self.fixed["codec"] = codec
        #: the key of a configuration in :attr:`table`, in order
        self.keys: tuple[str, ...] = (*GENES, *varying)
        present = [o for o in OBJECTIVES
                   if has_objective_data(cube, o) and bool(data[o].notnull().any())]
        if not present:
            raise ConfigError(f"the cube has no values for any objective ({choices(OBJECTIVES)})")
        self.objectives = tuple(present)
        columns = {}
        for name in present:
            arr = data[name].transpose(*self.keys, "repeat")
            with warnings.catch_warnings():  # unmeasured cells are all-NaN: fine
                warnings.simplefilter("ignore", RuntimeWarning)
                if name == "latency_ms" and self.latency_stat != "mean":
                    columns[name] = arr.quantile(float(self.latency_stat), dim="repeat",
                                                 skipna=True).drop_vars("quantile")
                else:
                    columns[name] = arr.mean("repeat", skipna=True)
        import xarray as xr

        frame = xr.Dataset(columns).to_dataframe().reset_index()
        self.table: dict[tuple, Objectives] = {}
        for row in frame.to_dict("records"):
            values = {n: float(row[n]) for n in present if not math.isnan(row[n])}
            if values:
                self.table[tuple(coerce_value(k, row[k]) for k in self.keys)] = values

    def lookup(self, config: Mapping[str, Any]) -> Objectives | None:
        """The objectives of one configuration, or None when the cube lacks it.

        Raises:
            ConfigError: the configuration lacks a key of :attr:`keys`.
        """
        if "model" in config and str(config["model"]) != self.model:
            return None
        for key in EXTRA_KEYS:  # an extra key the cube does not vary
            if key in config and key not in self.keys and (
                    key not in self.fixed or coerce_value(key, config[key]) != self.fixed[key]):
                return None
        try:
            key = tuple(coerce_value(k, config[k]) for k in self.keys)
        except KeyError as exc:
            raise ConfigError(f"configuration lacks {exc.args[0]!r}; the cube's "
                              f"configurations have {choices(('model', *self.keys))}") from None
        values = self.table.get(key)
        return None if values is None else dict(values)

    def evaluate(self, configs: list[dict[str, Any]]) -> list[Objectives | None]:
        return [self.lookup(c) for c in configs]

    def normalizer(self, objectives: Sequence[str]) -> Normalizer:
        """Ranges of the objectives over every configuration of the cube."""
        rows = [[v.get(o, np.nan) for o in objectives] for v in self.table.values()]
        return Normalizer.from_values(objectives, np.asarray(rows, float), source="cube")


def _evaluate_one(config: dict[str, Any], inner: Evaluator) -> Objectives | None:
    """Worker-side task: evaluate one configuration with the scattered evaluator."""
    return inner.evaluate([config])[0]


class DaskEvaluator(Evaluator):
    """Evaluates another evaluator's configurations in parallel with dask.distributed.

    The inner evaluator is sent to every worker once (``Client.scatter`` with
    ``broadcast=True``); each configuration becomes one task of ``Client.map``
    and results come back in input order. Errors raised by the inner evaluator
    propagate.
    """

    def __init__(self, inner: Evaluator, client: Any) -> None:
        """Wrap ``inner`` for a ``distributed.Client`` (e.g. on a ``LocalCluster``)."""
        try:
            import distributed  # noqa: F401
        except ImportError:  # pragma: no cover - depends on the installation
            raise ToolkitError(
                "DaskEvaluator needs dask.distributed: pip install 'dask[distributed]'"
            ) from None
        if not isinstance(inner, Evaluator):
            raise ToolkitError(f"DaskEvaluator needs an evaluator to run in parallel (e.g. "
                               f"CubeEvaluator(cube)), got {type(inner).__name__}")
        self.inner = inner
        self.client = client
        self.objectives = tuple(inner.objectives)
        self.energy_source = inner.energy_source
        self._scattered: Any = None

    def evaluate(self, configs: list[dict[str, Any]]) -> list[Objectives | None]:
        if not configs:
            return []
        if self._scattered is None:
            self._scattered = self.client.scatter(self.inner, broadcast=True)
        futures = self.client.map(_evaluate_one, [dict(c) for c in configs],
                                  inner=self._scattered, pure=False)
        return list(self.client.gather(futures))

    def normalizer(self, objectives: Sequence[str]) -> Normalizer | None:
        return self.inner.normalizer(objectives)
