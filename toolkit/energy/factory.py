"""Build a meter from an inventory entry, falling back to the power model if asked.

A spec is a mapping with ``kind`` and that kind's options (the same keys as the
meter's constructor), or just the kind as a string::

    {"kind": "rapl", "domains": ["package-0", "dram"]}
    {"kind": "nvml", "index": 0}
    {"kind": "ina219", "bus": 1, "address": 0x40, "calibration": "32V_2A"}
    {"kind": "ina260", "bus": 1, "address": 0x41}
    {"kind": "scpi", "address": "192.168.1.50:23", "transport": "tcp", "name": "gpm-8213"}
    {"kind": "model", "profile": "raspberry-pi-4", "freq": 1800, "accel": "tpu-std"}

When the hardware is missing (:class:`MeterUnavailableError`) and a fallback is
given, the model meter is returned instead and a warning is logged; its
``source`` is ``model:<profile>``, so a cube records the fallback in
``energy_source``. Configuration mistakes are never hidden by the fallback.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Mapping
from typing import Any

from toolkit.energy.meter import Meter, MeterUnavailableError
from toolkit.energy.model import PowerModel
from toolkit.energy.model_meter import PowerModelMeter
from toolkit.errors import ConfigError, choices

__all__ = ["METER_KINDS", "meter_parameters", "open_meter"]

log = logging.getLogger(__name__)


#: meter kinds an inventory may name: (module, class) of each
METER_KINDS: dict[str, tuple[str, str]] = {
    "rapl": ("toolkit.energy.rapl", "RaplMeter"),
    "nvml": ("toolkit.energy.nvml", "NvmlMeter"),
    "ina219": ("toolkit.energy.ina", "Ina219Meter"),
    "ina260": ("toolkit.energy.ina", "Ina260Meter"),
    "scpi": ("toolkit.energy.scpi", "ScpiPowerMeter"),
    "model": ("toolkit.energy.model_meter", "PowerModelMeter"),
}


def _class_of(kind: str) -> type[Meter]:
    module, name = METER_KINDS[kind]
    return getattr(importlib.import_module(module), name)


def _build(kind: str, options: dict[str, Any]) -> Meter:
    if kind != "model":
        return _class_of(kind)(**options)
    from toolkit.hardware.profile import load_profile

    profile = options.pop("profile", None)
    if not profile or not isinstance(profile, str | os.PathLike):
        raise ConfigError(
            "meter kind 'model' needs 'profile' (a shipped profile name or a .toml path), "
            f"got {profile!r}"
        )
    return PowerModelMeter(PowerModel(load_profile(profile)), **options)


# options a spec must not set: objects, not inventory values
_NOT_IN_SPECS = {"self", "device", "i2c", "model"}


def meter_parameters(kind: str) -> dict[str, inspect.Parameter]:
    """The options a spec of meter ``kind`` may set: its constructor's parameters, less
    the objects (``device``, ``i2c``, ``model``), with ``profile`` first for ``model``
    (one source of truth for :func:`open_meter` and the inventories' meter keys)."""
    params = {n: p for n, p in inspect.signature(_class_of(kind).__init__).parameters.items()
              if n not in _NOT_IN_SPECS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    if kind != "model":
        return params
    return {"profile": inspect.Parameter("profile", inspect.Parameter.KEYWORD_ONLY,
                                         default=None), **params}


def open_meter(
    spec: Mapping[str, Any] | str,
    *,
    fallback: PowerModel | PowerModelMeter | None = None,
) -> Meter:
    """Open the meter an inventory entry describes.

    Args:
        spec: ``{"kind": ..., option: value, ...}`` or just the kind.
        fallback: the power model (or a configured model meter) to use when the
            hardware is missing.

    Returns:
        The meter; with a fallback, possibly the model meter (check ``source``).

    Raises:
        ConfigError: unknown kind, unknown option or bad value (lists the choices);
            never replaced by the fallback.
        MeterUnavailableError: the hardware is missing and there is no fallback.
    """
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"a meter spec is a mapping with 'kind' or a kind name, got {spec!r}")
    options = dict(spec)
    kind = options.pop("kind", None)
    if kind not in METER_KINDS:
        raise ConfigError(f"unknown meter kind {kind!r}; valid: {choices(METER_KINDS)}")
    valid = list(meter_parameters(kind))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"meter kind {kind!r} has no option(s) {choices(unknown)}; valid: {choices(valid)}"
        )
    try:
        return _build(kind, options)
    except MeterUnavailableError as exc:
        if fallback is None:
            raise
        meter = fallback if isinstance(fallback, PowerModelMeter) else PowerModelMeter(fallback)
        log.warning("%s; falling back to the power model (%s)", exc, meter.source)
        return meter
