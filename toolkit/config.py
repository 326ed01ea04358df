"""Canonical configuration names shared by every part of the toolkit.

A *configuration* is a mapping with the keys :data:`CONFIG_KEYS`; they are also
the dimensions of a measurement cube (see :mod:`toolkit.cube`). Optional extra
keys (:data:`EXTRA_KEYS`) appear only where a study varies them: the activation
``codec`` and, for multi-device partitioning, ``strategy`` and ``devices``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from toolkit.errors import ConfigError, choices

__all__ = [
    "CLOUD_ACCELS",
    "CODECS",
    "CONFIG_KEYS",
    "EDGE_ACCELS",
    "EXTRA_KEYS",
    "Config",
    "config_problems",
]

CONFIG_KEYS: tuple[str, ...] = ("model", "split", "cpu_freq", "edge_accel", "cloud_accel")
EXTRA_KEYS: tuple[str, ...] = ("codec", "strategy", "devices")
EDGE_ACCELS: tuple[str, ...] = ("none", "int8", "tpu-std", "tpu-max")
CLOUD_ACCELS: tuple[str, ...] = ("none", "gpu")
#: activation codecs: fp32/fp16/int8, lossy low-bit q4/q2/q1 (see toolkit.models.codecs)
CODECS: tuple[str, ...] = ("fp32", "fp16", "int8", "q4", "q2", "q1")


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
        if self.edge_accel not in EDGE_ACCELS:
            raise ConfigError(
                f"unknown edge accelerator {self.edge_accel!r}; valid: {choices(EDGE_ACCELS)}"
            )
        if self.cloud_accel not in CLOUD_ACCELS:
            raise ConfigError(
                f"unknown cloud accelerator {self.cloud_accel!r}; valid: {choices(CLOUD_ACCELS)}"
            )
        if int(self.split) < 0:
            raise ConfigError(f"split must be >= 0, got {self.split}")
        object.__setattr__(self, "split", int(self.split))
        object.__setattr__(self, "cpu_freq", int(self.cpu_freq))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Config:
        """Build a configuration from a mapping with (at least) :data:`CONFIG_KEYS`."""
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
