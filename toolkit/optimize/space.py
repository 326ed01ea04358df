"""The configuration space the optimizer searches, and its gene encoding.

A :class:`ConfigSpace` is a finite set of valid configurations of one model.
It is the product of its genes — always ``split``, ``cpu_freq``, ``edge_accel``,
``cloud_accel``, plus every extra configuration key (``codec``, ``strategy``,
``devices``: :data:`toolkit.config.EXTRA_KEYS`) that takes more than one value
in the space — filtered by

* the validity rules of :func:`toolkit.config.config_problems` (the edge
  accelerator is ``none`` at split 0, the cloud accelerator is ``none`` at the
  last split),
* membership: a space built from a cube holds only the configurations the cube
  measured,
* user constraints: callables ``config dict -> bool`` and the declarative
  ``cpu_freqs`` (a frequency subset) and ``min_accuracy`` (needs a cube with an
  ``accuracy`` variable; the mean over repeats must reach the threshold).

The genetic encoding is a tuple of integers, one per gene of
:attr:`ConfigSpace.gene_names` (the four standard genes first, then the extra
ones in :data:`~toolkit.config.EXTRA_KEYS` order): the index of the gene's value
in :attr:`ConfigSpace.values`. ``split``, ``cpu_freq`` and ``devices`` are
*ordinal* genes (neighbouring indices are neighbouring settings); the
accelerators, ``codec`` and ``strategy`` are *categorical*. An extra key with a
single value is no gene: it is *fixed* (:attr:`ConfigSpace.fixed`) and every
configuration carries it. Configurations carry an extra key only when the
space has it (as a gene or fixed), so a space of the four standard genes
encodes and decodes exactly the canonical configuration dicts. The valid
configurations are enumerated once, so membership, repair and sampling are
table look-ups.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.config import CONFIG_KEYS, EXTRA_KEYS, KEYS, Config, coerce_value, domain_values
from toolkit.config import config_problems as _config_problems
from toolkit.errors import ConfigError, choices

if TYPE_CHECKING:
    from toolkit.hardware.profile import DeviceProfile

__all__ = [
    "GENES",
    "ORDINAL_GENES",
    "ConfigSpace",
    "Constraint",
    "FrequencySubset",
    "Genes",
    "PartitionSplits",
    "coerce_value",
]

#: the standard genes every space has, in encoding order (extra genes follow them)
GENES: tuple[str, ...] = tuple(k for k in CONFIG_KEYS if k != "model")
#: genes whose neighbouring indices are neighbouring settings
ORDINAL_GENES: tuple[str, ...] = tuple(k for k, key in KEYS.items() if key.ordinal)

#: a configuration's gene tuple: one value index per gene of the space
Genes = tuple[int, ...]
#: a user constraint: True keeps the configuration
Constraint = Callable[[dict[str, Any]], bool]

#: largest product of gene sizes a space enumerates
MAX_PRODUCT = 2_000_000


@dataclass(frozen=True)
class FrequencySubset:
    """Declarative constraint: keep only these edge CPU frequencies (MHz)."""

    freqs: frozenset[int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "freqs", frozenset(int(f) for f in self.freqs))

    def __call__(self, config: Mapping[str, Any]) -> bool:
        return int(config["cpu_freq"]) in self.freqs


@dataclass(frozen=True)
class PartitionSplits:
    """Declarative constraint: where partition configurations split the model.

    A ``hybrid-<s>`` strategy partitions the head over the edge devices and runs
    the tail in the cloud (``0 < split < last``); any other strategy runs the
    whole model on the edge devices (``split = last``). Configurations without a
    ``strategy`` pass. :meth:`ConfigSpace.from_profiles` adds it when given
    ``strategies``; a space from a cube needs none (the cube measured only what
    exists).
    """

    n_splits: int

    def __call__(self, config: Mapping[str, Any]) -> bool:
        strategy = config.get("strategy")
        if strategy is None:
            return True
        last, split = self.n_splits - 1, int(config["split"])
        if str(strategy).startswith(_HYBRID_PREFIX):
            return 0 < split < last
        return split == last


#: the strategy-name prefix of hybrid edge/cloud partitioning (toolkit.partition)
_HYBRID_PREFIX = "hybrid-"


class ConfigSpace:
    """A finite set of valid configurations of one model, with its gene encoding.

    Build one with :meth:`from_cube` or :meth:`from_profiles`; narrow it with
    :meth:`constrain`. ``len(space)`` is the size of the valid space.

    Attributes:
        model: the model name every configuration carries.
        n_splits: the model's number of splits (``0..n_splits-1``; the last one
            runs everything on the edge).
        gene_names: the genes, in encoding order: :data:`GENES`, then each
            extra key with more than one value.
        values: per gene, the ordered tuple of values its index points into.
        fixed: extra keys with a single value, which every configuration carries.
        accuracy: mean accuracy per valid gene-value tuple where known (from a cube).
    """

    def __init__(
        self,
        model: str,
        splits: Iterable[int],
        cpu_freqs: Iterable[int],
        edge_accels: Iterable[str],
        cloud_accels: Iterable[str],
        *,
        extras: Mapping[str, Iterable[Any]] | None = None,
        n_splits: int | None = None,
        members: Iterable[Mapping[str, Any]] | None = None,
        accuracy: Mapping[tuple, float] | None = None,
        constraints: Sequence[Constraint] = (),
    ) -> None:
        """Enumerate the valid configurations.

        Args:
            model: model name.
            splits, cpu_freqs, edge_accels, cloud_accels: candidate values per gene.
            extras: candidate values of extra keys (``codec``, ``strategy``,
                ``devices``); a key with several values becomes a gene, a key
                with one value is fixed.
            n_splits: the model's number of splits; default ``max(splits) + 1``.
            members: when given, only these configurations (mappings with the
                canonical keys and the space's extra keys) belong to the space
                (e.g. what a cube measured).
            accuracy: mean accuracy keyed by value tuples in :attr:`gene_names`
                order, used by ``min_accuracy``.
            constraints: callables on a configuration dict; False drops it.

        Raises:
            ConfigError: a gene has no values, an accelerator, codec or extra
                key is unknown, or no valid configuration is left.
        """
        self.model = str(model)
        splits, freqs, edges, clouds = (domain_values(k, v) for k, v in zip(
            GENES, (splits, cpu_freqs, edge_accels, cloud_accels), strict=True))
        self.n_splits = int(n_splits) if n_splits is not None else splits[-1] + 1
        if splits[-1] >= self.n_splits:
            raise ConfigError(
                f"splits {splits[0]}..{splits[-1]} do not fit a model with "
                f"{self.n_splits} splits (0..{self.n_splits - 1})"
            )
        unknown = [k for k in (extras or {}) if k not in EXTRA_KEYS]
        if unknown:
            raise ConfigError(f"unknown extra configuration key(s) {choices(unknown)}; valid: "
                              f"{choices(EXTRA_KEYS)}")
        extra = {k: domain_values(k, extras[k]) for k in EXTRA_KEYS if k in (extras or {})}
        self.gene_names: tuple[str, ...] = (*GENES, *(k for k, v in extra.items() if len(v) > 1))
        self.fixed: dict[str, Any] = {k: v[0] for k, v in extra.items() if len(v) == 1}
        self.values: dict[str, tuple] = dict(zip(GENES, (splits, freqs, edges, clouds),
                                                 strict=True))
        self.values.update({k: v for k, v in extra.items() if len(v) > 1})
        self.accuracy: dict[tuple, float] = dict(accuracy or {})
        self.constraints: tuple[Constraint, ...] = tuple(constraints)
        self._members = None if members is None else {
            tuple(_value(m, k) for k in self.gene_names) for m in members
            if all(k not in m or _value(m, k) == v for k, v in self.fixed.items())}
        self._enumerate()

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_cube(
        cls,
        cube: Any,
        model: str | None = None,
        *,
        n_splits: int | None = None,
        constraints: Sequence[Constraint] = (),
        cpu_freqs: Iterable[int] | None = None,
        min_accuracy: float | None = None,
    ) -> ConfigSpace:
        """The space of the configurations a cube measured.

        A configuration belongs when the cube measured it, i.e. has a latency in
        some repeat (:func:`toolkit.cube.configurations`). The cube's extra
        dimensions (``codec``, ``strategy``, ``devices``) become genes where they
        have several values and fixed keys where they have one.

        Args:
            cube: a cube (:func:`toolkit.cube.open_cube`), or its file's path.
            model: which model; needed when the cube holds several.
            n_splits: the model's number of splits; default the cube's largest
                split + 1 (the largest measured split is taken as edge-only).
            constraints, cpu_freqs, min_accuracy: see :meth:`constrain`.

        Raises:
            ConfigError: unknown model, a dimension the toolkit does not know
                with several values, or nothing measured.
        """
        from toolkit.cube import as_cube, configurations, select_model

        cube = as_cube(cube, ("latency_ms",), "a configuration space from a cube")
        model, data = select_model(cube, model)
        members = [c for c in configurations(cube) if str(c["model"]) == model]
        if not members:
            raise ConfigError(f"the cube measured no configuration of model {model!r}")
        extras = {k: data[k].values.tolist() for k in EXTRA_KEYS if k in data.dims}
        genes = (*GENES, *(k for k, v in extras.items() if len(v) > 1))
        accuracy = {}
        if "accuracy" in data and bool(data["accuracy"].notnull().any()):
            acc = data["accuracy"].mean("repeat").to_dataframe(name="acc").dropna().reset_index()
            accuracy = {tuple(_value(r, k) for k in genes): float(r["acc"])
                        for r in acc.to_dict("records")}
        space = cls(
            model,
            data["split"].values, data["cpu_freq"].values,
            data["edge_accel"].values, data["cloud_accel"].values,
            extras=extras, n_splits=n_splits, members=members, accuracy=accuracy,
        )
        if constraints or cpu_freqs is not None or min_accuracy is not None:
            space = space.constrain(*constraints, cpu_freqs=cpu_freqs,
                                    min_accuracy=min_accuracy)
        return space

    @classmethod
    def from_profiles(
        cls,
        model: str,
        n_splits: int,
        edge_profile: DeviceProfile | str | os.PathLike,
        cloud_profile: DeviceProfile | str | os.PathLike,
        edge_accels: Iterable[str] | None = None,
        cloud_accels: Iterable[str] | None = None,
        *,
        codecs: Iterable[str] | None = None,
        strategies: Iterable[str] | None = None,
        devices: Iterable[int] | None = None,
        constraints: Sequence[Constraint] = (),
        cpu_freqs: Iterable[int] | None = None,
    ) -> ConfigSpace:
        """The space a testbed offers: profile frequencies and accelerators × splits.

        Args:
            model: model name.
            n_splits: the model's number of splits (``0..n_splits-1``).
            edge_profile, cloud_profile: :class:`DeviceProfile` objects or
                shipped profile names / paths.
            edge_accels, cloud_accels: subsets of the profiles' accelerators
                (default: all they offer).
            codecs: activation codecs (e.g. ``("fp32", "int8")``); default none:
                configurations carry no ``codec`` key.
            strategies, devices: partitioning strategies (names of
                :func:`toolkit.partition.strategy_names`) and device counts,
                given together; they add the :class:`PartitionSplits` rule.
            constraints, cpu_freqs: see :meth:`constrain`.

        Raises:
            ConfigError: a profile has the wrong role or no settable frequency, an
                accelerator subset names one the profile lacks, an unknown codec
                or strategy, or only one of ``strategies`` and ``devices``.
        """
        from toolkit.hardware.profile import DeviceProfile, load_profile

        edge, cloud = (p if isinstance(p, DeviceProfile) else load_profile(p)
                       for p in (edge_profile, cloud_profile))
        if int(n_splits) < 1:
            raise ConfigError(f"n_splits must be >= 1, got {n_splits}")
        if edge.role != "edge" or cloud.role != "cloud":
            raise ConfigError(
                f"from_profiles needs an edge and a cloud profile, got {edge.name!r} "
                f"({edge.role}) and {cloud.name!r} ({cloud.role})"
            )
        if not edge.frequencies_mhz:
            raise ConfigError(f"edge profile {edge.name!r} has no settable CPU frequency")
        edges, clouds = (tuple(p.accelerators if subset is None else
                               [p.check_accel(a) for a in subset])
                         for p, subset in ((edge, edge_accels), (cloud, cloud_accels)))
        extras: dict[str, Iterable[Any]] = {}
        if codecs is not None:
            extras["codec"] = codecs
        rules: list[Constraint] = []
        if (strategies is None) != (devices is None):
            raise ConfigError("a partitioning space needs both strategies and devices "
                              "(device counts), or neither")
        if strategies is not None and devices is not None:
            extras["strategy"] = _check_strategies(strategies)
            extras["devices"] = devices
            rules.append(PartitionSplits(int(n_splits)))
        space = cls(model, range(int(n_splits)), edge.frequencies_mhz, edges, clouds,
                    extras=extras, n_splits=int(n_splits), constraints=rules)
        if constraints or cpu_freqs is not None:
            space = space.constrain(*constraints, cpu_freqs=cpu_freqs)
        return space

    def constrain(
        self,
        *constraints: Constraint,
        cpu_freqs: Iterable[int] | None = None,
        min_accuracy: float | None = None,
    ) -> ConfigSpace:
        """A narrower space: this one's configurations that satisfy every constraint.

        Args:
            *constraints: callables on a configuration dict; False drops it.
            cpu_freqs: keep only these frequencies (each must be in the space).
            min_accuracy: keep configurations whose mean accuracy is at least this
                (the space must know accuracy, i.e. come from a cube that has it).

        Raises:
            ConfigError: an unknown frequency, ``min_accuracy`` without accuracy
                data, or no configuration left.
        """
        extra: list[Constraint] = list(constraints)
        for c in extra:
            if not callable(c):
                raise ConfigError(f"a constraint must be callable(config) -> bool, got {c!r}")
        if cpu_freqs is not None:
            wanted = {int(f) for f in cpu_freqs}
            unknown = sorted(wanted - set(self.values["cpu_freq"]))
            if unknown:
                raise ConfigError(
                    f"cpu_freqs {choices(unknown)} are not in the space; "
                    f"valid: {choices(self.values['cpu_freq'])}"
                )
            extra.append(FrequencySubset(frozenset(wanted)))
        if min_accuracy is not None:
            if not self.accuracy:
                raise ConfigError(
                    "min_accuracy needs accuracy data: build the space from a cube "
                    "with an 'accuracy' variable"
                )
            extra.append(_MinAccuracy(float(min_accuracy), self.accuracy, self.gene_names))
        members = None if self._members is None else [
            dict(zip(self.gene_names, m, strict=True)) for m in self._members]
        extras = {**{k: (v,) for k, v in self.fixed.items()},
                  **{g: self.values[g] for g in self.gene_names[len(GENES):]}}
        return ConfigSpace(
            self.model, *(self.values[g] for g in GENES), extras=extras,
            n_splits=self.n_splits, members=members, accuracy=self.accuracy,
            constraints=(*self.constraints, *extra),
        )

    # -- the valid set ----------------------------------------------------------------

    def _enumerate(self) -> None:
        sizes = self.gene_sizes
        product = int(np.prod(sizes))
        if product > MAX_PRODUCT:
            raise ConfigError(
                f"the configuration space has {product} gene combinations, more than "
                f"{MAX_PRODUCT}; narrow it (cpu_freqs, accelerators, splits)"
            )
        rows = []
        for genes in np.ndindex(*sizes):
            values = self._values_of(genes)
            if self._members is not None and values not in self._members:
                continue
            config = self._config_of(values)
            if _config_problems(Config.from_mapping(config), self.n_splits):
                continue
            if not all(c(dict(config)) for c in self.constraints):
                continue
            rows.append(genes)
        if not rows:
            raise ConfigError(
                f"no valid configuration of model {self.model!r} is left in the space "
                "(validity rules, measured configurations and constraints exclude all)"
            )
        self.genes = np.asarray(rows, dtype=np.int64).reshape(-1, len(self.gene_names))
        self.genes.setflags(write=False)
        self._row = {tuple(int(x) for x in g): i for i, g in enumerate(self.genes)}

    @property
    def gene_sizes(self) -> tuple[int, ...]:
        """Number of values per gene, in :attr:`gene_names` order."""
        return tuple(len(self.values[g]) for g in self.gene_names)

    @property
    def ordinal(self) -> tuple[bool, ...]:
        """Per gene, in :attr:`gene_names` order: whether it is ordinal."""
        return tuple(g in ORDINAL_GENES for g in self.gene_names)

    @property
    def config_keys(self) -> tuple[str, ...]:
        """The keys of this space's configurations: canonical, then extra ones."""
        extra = {*self.gene_names, *self.fixed}
        return (*CONFIG_KEYS, *(k for k in EXTRA_KEYS if k in extra))

    @property
    def size(self) -> int:
        """Number of valid configurations."""
        return len(self._row)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self.decode(g) for g in self._row)

    def __contains__(self, config: object) -> bool:
        if not isinstance(config, Mapping):
            return False
        try:
            return self.encode(config) in self._row
        except ConfigError:
            return False

    def __repr__(self) -> str:
        sizes = ", ".join(f"{g}={n}" for g, n in zip(self.gene_names, self.gene_sizes,
                                                     strict=True))
        fixed = "".join(f", {k}={v!r} (fixed)" for k, v in self.fixed.items())
        return f"ConfigSpace(model={self.model!r}, valid={self.size}, {sizes}{fixed})"

    def configs(self) -> list[dict[str, Any]]:
        """Every valid configuration, as canonical dicts, in gene order."""
        return list(self)

    # -- encoding ---------------------------------------------------------------------

    def _values_of(self, genes: Sequence[int]) -> tuple:
        return tuple(self.values[g][int(i)] for g, i in zip(self.gene_names, genes, strict=True))

    def _config_of(self, values: Sequence[Any]) -> dict[str, Any]:
        split, freq, edge, cloud = values[:4]
        config = {"model": self.model, "split": int(split), "cpu_freq": int(freq),
                  "edge_accel": str(edge), "cloud_accel": str(cloud)}
        if len(values) > 4 or self.fixed:
            extra = {**dict(zip(self.gene_names[4:], values[4:], strict=True)), **self.fixed}
            config.update({k: coerce_value(k, extra[k]) for k in EXTRA_KEYS if k in extra})
        return config

    def decode(self, genes: Sequence[int]) -> dict[str, Any]:
        """The configuration dict of a gene tuple (valid or not)."""
        return self._config_of(self._values_of(genes))

    def encode(self, config: Mapping[str, Any]) -> Genes:
        """The gene tuple of a configuration.

        Raises:
            ConfigError: the configuration is of another model, lacks a gene of
                the space, has a value outside the space's genes or fixed keys,
                or has an extra key the space does not have.
        """
        if "model" in config and str(config["model"]) != self.model:
            raise ConfigError(f"configuration is for model {config['model']!r}, the space "
                              f"for {self.model!r}")
        for key, value in self.fixed.items():
            if key in config and _value(config, key) != value:
                raise ConfigError(f"{key}={config[key]!r} is not in the space; it holds "
                                  f"{key}={value!r} only")
        foreign = [k for k in EXTRA_KEYS if k in config and k not in self.values
                   and k not in self.fixed]
        if foreign:
            raise ConfigError(f"the space has no {choices(foreign)} key; its configurations "
                              f"have {choices(self.config_keys)}")
        out = []
        for g in self.gene_names:
            if g not in config:
                raise ConfigError(f"configuration lacks {g!r}; it needs "
                                  f"{choices(self.config_keys)}")
            value = _value(config, g)
            try:
                out.append(self.values[g].index(value))
            except ValueError:
                raise ConfigError(
                    f"{g}={value!r} is not in the space; valid: {choices(self.values[g])}"
                ) from None
        return tuple(out)

    def is_valid(self, genes: Sequence[int]) -> bool:
        """Whether a gene tuple is a valid configuration of this space."""
        return tuple(int(x) for x in genes) in self._row

    def index(self, genes: Sequence[int]) -> int:
        """Row of a valid gene tuple in :attr:`genes` (KeyError when invalid)."""
        return self._row[tuple(int(x) for x in genes)]

    # -- geometry used by the variation operators -------------------------------------

    def distances(self, genes: Sequence[int]) -> np.ndarray:
        """Gene distance from ``genes`` to every valid configuration.

        Ordinal genes count index steps scaled so that the whole range is 1;
        a different categorical value counts 1.
        """
        g = np.asarray(genes, dtype=np.int64)
        d = np.zeros(len(self.genes))
        for i, (ordinal, n) in enumerate(zip(self.ordinal, self.gene_sizes, strict=True)):
            diff = self.genes[:, i] - g[i]
            d += np.abs(diff) / max(n - 1, 1) if ordinal else (diff != 0)
        return d

    def nearest(
        self,
        genes: Sequence[int],
        rng: np.random.Generator,
        exclude: np.ndarray | None = None,
        keep: Sequence[str] = (),
    ) -> Genes | None:
        """The valid configuration nearest to ``genes`` (itself when valid).

        Args:
            genes: any gene tuple within the gene sizes.
            rng: breaks ties at random among equally near configurations.
            exclude: boolean mask over :attr:`genes` rows that may not be chosen
                (e.g. configurations already tried).
            keep: gene names to hold fixed where some allowed configuration has
                their values (otherwise they may change too).

        Returns:
            The chosen gene tuple, or None when every configuration is excluded.
        """
        d = self.distances(genes)
        if exclude is not None:
            d = np.where(exclude, np.inf, d)
        if keep:
            cols = [self.gene_names.index(name) for name in keep]
            same = (self.genes[:, cols] == [int(genes[i]) for i in cols]).all(axis=1)
            if np.isfinite(d[same]).any():
                d = np.where(same, d, np.inf)
        best = d.min()
        if not np.isfinite(best):
            return None
        ties = np.flatnonzero(d <= best + 1e-9)
        row = ties[0] if len(ties) == 1 else rng.choice(ties)
        return tuple(int(x) for x in self.genes[row])


@dataclass(frozen=True, eq=False)
class _MinAccuracy:
    """Keep configurations whose known mean accuracy is at least ``threshold``."""

    threshold: float
    accuracy: Mapping[tuple, float]
    genes: tuple[str, ...]

    def __call__(self, config: Mapping[str, Any]) -> bool:
        acc = self.accuracy.get(tuple(_value(config, k) for k in self.genes))
        return acc is not None and acc >= self.threshold

    def __repr__(self) -> str:
        return f"min_accuracy({self.threshold})"


def _value(mapping: Mapping[str, Any], key: str) -> Any:
    return coerce_value(key, mapping[key])


def _check_strategies(strategies: Iterable[str]) -> list[str]:
    """Strategy names, checked against :func:`toolkit.partition.strategy_names`."""
    from toolkit.partition.execution.spec import strategy_names  # Keras: only when partitioning

    names = [str(s) for s in strategies]
    valid = strategy_names()
    unknown = [s for s in names if s not in valid]
    if unknown:
        raise ConfigError(f"unknown strategy(ies) {choices(unknown)}; valid: {choices(valid)}")
    return names
