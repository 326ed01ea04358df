"""The one home of configuration names; every other part of the toolkit asks it.

A *configuration* is a mapping with the keys :data:`CONFIG_KEYS`, the dimensions
of a measurement cube too (:mod:`toolkit.cube`); extra keys (:data:`EXTRA_KEYS`:
``codec``, and ``strategy``, ``devices`` for multi-device partitioning) appear
only where a study varies them. :data:`KEYS` holds every key's type and domain,
:func:`config_problems` the rules across keys, :data:`ACCELERATORS` what each
accelerator value means, :data:`OBJECTIVES` the objectives with their senses,
:data:`VARIABLES` the cube's variables with units. A new key goes into :data:`KEYS`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from toolkit.errors import ConfigError, choices

__all__ = ["ACCELERATORS", "CLOUD_ACCELS", "CODECS", "CONFIG_KEYS", "EDGE_ACCELS", "EXTRA_KEYS",
           "IDLE_ACCOUNTINGS", "KEYS", "MAX_RUNS", "MAX_SAMPLES", "OBJECTIVES",
           "PARTITION_VARIABLES", "SENSES", "TPU_ACCELS", "VARIABLES",
           "Accelerator", "Config", "Key", "coerce_value", "config_keys", "config_problems",
           "domain_values", "is_whole", "listed", "single_extras", "whole_number"]


@dataclass(frozen=True)
class Accelerator:
    """What one accelerator value means.

    Attributes:
        device: where the part runs: ``cpu``, ``tpu`` (the Coral Edge TPU) or ``gpu``.
        int8: whether the part runs int8-quantised.
        tpu_mode: the Coral runtime mode (``std``, ``max``); None: the TPU is off.
    """

    device: str = "cpu"
    int8: bool = False
    tpu_mode: str | None = None

    @property
    def tpu(self) -> str:
        """The Coral TPU's state this accelerator needs: ``off``, ``std`` or ``max``."""
        return self.tpu_mode or "off"


#: side (``edge``/``cloud``) -> accelerator value -> its meaning, in canonical order
ACCELERATORS: dict[str, dict[str, Accelerator]] = {
    "edge": {"none": Accelerator(), "int8": Accelerator(int8=True),
             "tpu-std": Accelerator("tpu", True, "std"),
             "tpu-max": Accelerator("tpu", True, "max")},
    "cloud": {"none": Accelerator(), "gpu": Accelerator("gpu")},
}
EDGE_ACCELS: tuple[str, ...] = tuple(ACCELERATORS["edge"])
CLOUD_ACCELS: tuple[str, ...] = tuple(ACCELERATORS["cloud"])
#: edge accelerators that run the head on the Coral Edge TPU
TPU_ACCELS: tuple[str, ...] = tuple(a for a, m in ACCELERATORS["edge"].items() if m.tpu_mode)
#: activation codecs: fp32/fp16/int8, lossy low-bit q4/q2/q1 (see toolkit.models.codecs)
CODECS: tuple[str, ...] = ("fp32", "fp16", "int8", "q4", "q2", "q1")
#: how a partitioned device's idle energy is counted (the first is the default):
#: ``request``, powered from the request's start to its end; ``busy``, only while it
#: computes and by the bytes it moves (see ``toolkit.partition.cost.energy``)
IDLE_ACCOUNTINGS: tuple[str, ...] = ("request", "busy")
#: the most samples one run streams (DynaSplit's runs stream 1000): a run of a
#: million digits samples takes about 20 minutes, of VGG16 on the emulated Pi days
MAX_SAMPLES = 1_000_000
#: the most runs of one configuration a campaign plans (each is journalled)
MAX_RUNS = 10_000


@dataclass(frozen=True)
class Key:
    """One configuration key and its domain.

    Attributes:
        type: ``int`` or ``str``; values are coerced to it (:func:`coerce_value`).
        label: how messages name a value of the key.
        values: the finite domain in canonical order, or None where it is open.
        minimum: the smallest valid value of an integer key.
        extra: whether the key is optional (:data:`EXTRA_KEYS`).
        ordinal: whether neighbouring values are neighbouring settings.
    """

    type: type
    label: str
    values: tuple[str, ...] | None = None
    minimum: int = 0
    extra: bool = False
    ordinal: bool = False


#: every configuration key: the canonical ones, then the extra ones, in canonical order
KEYS: dict[str, Key] = {
    "model": Key(str, "model"),
    "split": Key(int, "split", ordinal=True),
    "cpu_freq": Key(int, "cpu_freq", ordinal=True),
    "edge_accel": Key(str, "edge accelerator", EDGE_ACCELS),
    "cloud_accel": Key(str, "cloud accelerator", CLOUD_ACCELS),
    "codec": Key(str, "codec", CODECS, extra=True),
    "strategy": Key(str, "strategy", extra=True),
    "devices": Key(int, "devices", minimum=1, extra=True, ordinal=True),
}
CONFIG_KEYS: tuple[str, ...] = tuple(k for k, v in KEYS.items() if not v.extra)
EXTRA_KEYS: tuple[str, ...] = tuple(k for k, v in KEYS.items() if v.extra)

#: valid optimisation senses
SENSES: tuple[str, ...] = ("min", "max")
#: every objective, with its sense
OBJECTIVES: dict[str, str] = {"latency_ms": "min", "energy_j": "min", "accuracy": "max"}

#: cube data variable -> (units, long_name)
VARIABLES: dict[str, tuple[str, str]] = {
    "latency_ms": ("ms", "end-to-end latency per sample"),
    "edge_ms": ("ms", "edge compute time per sample (head)"),
    "transfer_ms": ("ms", "transfer time per sample (encode, send, receive, decode)"),
    "cloud_ms": ("ms", "cloud compute time per sample (tail)"),
    "energy_j": ("J", "energy per sample, edge + cloud"),
    "edge_energy_j": ("J", "edge energy per sample"),
    "cloud_energy_j": ("J", "cloud energy per sample"),
    "accuracy": ("1", "top-1 accuracy of the run"),
    "tensor_kb": ("KiB", "size of the encoded tensor sent to the cloud per sample"),
    "edge_cpu_util": ("%", "edge CPU utilisation during the run"),
}
#: variables a partition cube holds besides :data:`VARIABLES`
PARTITION_VARIABLES: dict[str, tuple[str, str]] = {
    "max_device_energy_j": ("J", "largest per-device energy per sample (edge devices)"),
    "max_abs_error": ("1", "largest absolute difference from the unpartitioned model"),
    "compute_energy_j": ("J", "compute energy per sample, edge devices + cloud"),
    "comm_energy_j": ("J", "communication energy per sample (bytes sent and received)"),
    "idle_energy_j": ("J", "idle (waiting) energy per sample, by the cube's idle_accounting"),
}


def is_whole(value: Any) -> bool:
    """Whether ``value`` is an integer (Python's or NumPy's) or a finite whole float
    (``600.0``), not a bool."""
    return not isinstance(value, bool) and (
        isinstance(value, numbers.Integral)
        or (isinstance(value, numbers.Real) and math.isfinite(value)
            and float(value).is_integer()))


def whole_number(key: str, value: Any, minimum: int) -> int:
    """A configuration's integer value: an ``int``, a NumPy integer, a whole float
    (``600.0``) or a numeral (``"600"``), at least ``minimum``.

    Raises:
        ConfigError: a fraction (``600.5`` was cut to 600), NaN, a non-number, a bool
            or a value below ``minimum``, naming the key.
    """
    whole = is_whole(value) or (isinstance(value, str) and value.strip().lstrip("-").isdigit())
    if isinstance(value, bool) or not whole:
        raise ConfigError(f"{key} must be a whole number, got {value!r}")
    number = int(value)
    if number < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {number}")
    return number


def listed(values: Any) -> list[Any]:
    """``values`` as a list, where one name or number stands for a list of one
    (``"vgg16"`` is ``["vgg16"]``, not its characters)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        return [values]
    return list(values)


def coerce_value(key: str, value: Any) -> Any:
    """A configuration value in its key's type: int for ``split``, ``cpu_freq``
    and ``devices``, str for the other keys (numpy scalars and JSON numbers alike)."""
    return int(value) if key in KEYS and KEYS[key].type is int else str(value)


def config_keys(present: Iterable[str]) -> list[str]:
    """The configuration keys among ``present`` (columns, dimensions, a
    configuration's keys), in canonical order: canonical keys, then extra ones."""
    present = set(present)
    return [k for k in KEYS if k in present]


def single_extras(columns: Mapping[str, Iterable[Any]]) -> dict[str, Any]:
    """The extra keys among ``columns`` (key -> its values) that hold one value, with it."""
    distinct = {k: list(dict.fromkeys(v)) for k, v in columns.items() if k in EXTRA_KEYS}
    return {k: v[0] for k, v in distinct.items() if len(v) == 1}


def domain_values(key: str, values: Iterable[Any]) -> tuple:
    """Candidate values of a key, checked against its domain, distinct and in
    canonical order (the domain's order, else sorted).

    Raises:
        ConfigError: an unknown key, no values, a value outside the domain, an
            integer below the minimum or an empty name.
    """
    if key not in KEYS:
        raise ConfigError(f"unknown configuration key {key!r}; valid: {choices(KEYS)}")
    spec, values = KEYS[key], list(values)
    if not values:
        raise ConfigError(f"the configuration space has no values for {key!r}")
    if spec.type is int:
        try:
            ints = tuple(sorted({int(v) for v in values}))
        except (TypeError, ValueError):
            ints = None
        if ints is None or ints[0] < spec.minimum:
            raise ConfigError(f"{key} must be integers >= {spec.minimum}, got "
                              f"{values if ints is None else ints[0]!r}")
        return ints
    names = sorted({str(v) for v in values})
    if spec.values is None:
        if "" in names:
            raise ConfigError(f"a {spec.label} name is empty")
        return tuple(names)
    bad = [v for v in names if v not in spec.values]
    if bad:
        raise ConfigError(f"unknown {spec.label}(s) {choices(bad)}; valid: {choices(spec.values)}")
    return tuple(v for v in spec.values if v in names)


@dataclass(frozen=True, order=True)
class Config:
    """One point of the configuration space.

    Attributes:
        model: model name, e.g. ``digits-cnn`` or ``vgg16``.
        split: 0 = everything in the cloud; k = after the k-th valid cut point;
            the last split = everything on the edge.
        cpu_freq: edge CPU frequency in MHz.
        edge_accel: one of :data:`EDGE_ACCELS`.
        cloud_accel: one of :data:`CLOUD_ACCELS`.
    """

    model: str
    split: int
    cpu_freq: int
    edge_accel: str = "none"
    cloud_accel: str = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"model must be a model's name, got {self.model!r}")
        for key in ("edge_accel", "cloud_accel"):
            spec, value = KEYS[key], getattr(self, key)
            if value not in (spec.values or ()):
                raise ConfigError(f"unknown {spec.label} {value!r}; valid: {choices(spec.values)}")
        object.__setattr__(self, "split", whole_number("split", self.split, 0))
        object.__setattr__(self, "cpu_freq", whole_number("cpu_freq", self.cpu_freq, 1))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Config:
        """Build a configuration from a mapping with (at least) :data:`CONFIG_KEYS`."""
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"a configuration is a mapping of {choices(CONFIG_KEYS)}, "
                              f"got {mapping!r}")
        missing = [k for k in CONFIG_KEYS if k not in mapping]
        if missing:
            raise ConfigError(
                f"configuration is missing {choices(missing)}; it needs {choices(CONFIG_KEYS)}"
            )
        return cls(**{k: mapping[k] for k in CONFIG_KEYS})

    def as_dict(self) -> dict[str, Any]:
        """The configuration as a plain JSON-ready dict with the canonical keys."""
        return asdict(self)


def config_problems(config: Config, n_splits: int) -> list[str]:
    """Why a configuration is invalid for a model with splits ``0..n_splits-1``.

    The rules of the design page: the split must exist; the edge accelerator is
    ``none`` at split 0 (nothing runs on the edge); the cloud accelerator is
    ``none`` at the last split (nothing runs in the cloud). An empty list means
    the configuration is valid.
    """
    problems = []
    last = n_splits - 1
    if not 0 <= config.split <= last:
        problems.append(f"split {config.split} is out of range 0..{last}")
    if config.split == 0 and config.edge_accel != "none":
        problems.append("edge_accel must be 'none' at split 0 (everything runs in the cloud)")
    if config.split == last and config.cloud_accel != "none":
        problems.append(
            f"cloud_accel must be 'none' at split {last} (everything runs on the edge)"
        )
    return problems
