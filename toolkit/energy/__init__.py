"""Energy meters and the power model.

A :class:`Meter` measures windows (``begin_window()`` / ``end_window()`` or
``with meter.window() as out``) and returns a :class:`Measurement`: joules, a
power trace and the ``source`` label that a cube stores as ``energy_source``.

* :class:`RaplMeter` — CPU package and DRAM energy counters; source ``rapl``;
* :class:`NvmlMeter` — NVIDIA GPU energy counter (or sampled power); ``nvml``;
* :class:`Ina219Meter`, :class:`Ina260Meter` — I²C power monitors on a
  Raspberry Pi; ``meter:<name>``;
* :class:`ScpiPowerMeter` — GPM-8213-class power meter over TCP or serial;
  ``meter:<name>``;
* :class:`PowerModelMeter` — the device profile's power model driven by a
  process's CPU use; ``model:<profile>`` (modelled, not measured).

:func:`open_meter` builds one from an inventory entry and can fall back to the
model. Optional libraries (pynvml, the Adafruit drivers, pyserial) are imported
only when their meter is opened.
"""

from __future__ import annotations

from toolkit.energy.factory import METER_KINDS, open_meter
from toolkit.energy.ina import Ina219Meter, Ina260Meter
from toolkit.energy.meter import Measurement, Meter, MeterUnavailableError, trapezoid_joules
from toolkit.energy.model import PowerModel
from toolkit.energy.model_meter import PowerModelMeter
from toolkit.energy.nvml import NvmlMeter
from toolkit.energy.rapl import RaplMeter
from toolkit.energy.scpi import ScpiPowerMeter

__all__ = [
    "METER_KINDS",
    "Ina219Meter",
    "Ina260Meter",
    "Measurement",
    "Meter",
    "MeterUnavailableError",
    "NvmlMeter",
    "PowerModel",
    "PowerModelMeter",
    "RaplMeter",
    "ScpiPowerMeter",
    "open_meter",
    "trapezoid_joules",
]
