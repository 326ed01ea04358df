"""NVIDIA GPU energy through NVML (``nvidia-ml-py``, imported as ``pynvml``).

Volta and newer GPUs have a total-energy counter
(``nvmlDeviceGetTotalEnergyConsumption``, millijoules since the driver loaded);
the meter takes the window's joules from it. Older GPUs only report power
(``nvmlDeviceGetPowerUsage``, milliwatts): the meter then samples power at
``period_s`` and integrates the trace with the trapezoid rule.

``pynvml`` is imported only when a meter is opened, so the toolkit imports on
machines without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from toolkit.energy.meter import Measurement, Meter, MeterUnavailableError
from toolkit.energy.sampling import CounterMeter, PowerSampledMeter
from toolkit.errors import ConfigError, DeviceError, ToolkitError, is_count

__all__ = ["NvmlDevice", "NvmlMeter", "PynvmlDevice"]


class NvmlDevice(Protocol):
    """What :class:`NvmlMeter` reads from a GPU.

    :class:`PynvmlDevice` is the real one; a simulated GPU with the same three
    members lets tests check the meter's arithmetic without NVML.
    """

    name: str

    def total_energy_mj(self) -> int | None:
        """Cumulative energy in millijoules, or None where the GPU has no counter."""

    def power_mw(self) -> int:
        """Current power draw in milliwatts."""


class PynvmlDevice:
    """One GPU through pynvml.

    Args:
        index: the GPU's NVML index.

    Raises:
        MeterUnavailableError: nvidia-ml-py is not installed, the NVML library or
            driver is missing, or there is no GPU at ``index``; the message names
            what was probed.
    """

    def __init__(self, index: int = 0) -> None:
        try:
            import pynvml
        except ImportError:
            raise MeterUnavailableError(
                "nvml meter: the Python package nvidia-ml-py (module pynvml) is not "
                "installed; install it with `pip install nvidia-ml-py`"
            ) from None
        self._nvml = pynvml
        self.index = index
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise MeterUnavailableError(
                f"nvml meter: cannot initialise NVML for GPU {index} ({exc}); probed the "
                "NVIDIA driver's libnvidia-ml.so.1 through pynvml: no NVIDIA driver or GPU here"
            ) from None
        try:
            count = pynvml.nvmlDeviceGetCount()
            if not 0 <= index < count:
                raise MeterUnavailableError(
                    f"nvml meter: no GPU at index {index}; NVML sees {count} GPU(s) "
                    f"(valid indices: 0..{count - 1})"
                    if count
                    else f"nvml meter: no GPU at index {index}; NVML sees no GPU"
                )
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(self._handle)
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise MeterUnavailableError(f"nvml meter: cannot open GPU {index}: {exc}") from None
        except MeterUnavailableError:
            pynvml.nvmlShutdown()
            raise
        self.name = name.decode() if isinstance(name, bytes) else str(name)
        self._closed = False

    def total_energy_mj(self) -> int | None:
        """The total-energy counter, or None where this GPU has none."""
        nvml = self._nvml
        try:
            return int(nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except nvml.NVMLError_NotSupported:
            return None
        except nvml.NVMLError as exc:
            raise DeviceError(f"nvml meter: GPU {self.index} energy read failed: {exc}") from None

    def power_mw(self) -> int:
        """Current power draw."""
        try:
            return int(self._nvml.nvmlDeviceGetPowerUsage(self._handle))
        except self._nvml.NVMLError as exc:
            raise DeviceError(f"nvml meter: GPU {self.index} power read failed: {exc}") from None

    def close(self) -> None:
        """Shut NVML down (once)."""
        if not self._closed:
            self._closed = True
            self._nvml.nvmlShutdown()


class _CounterMode(CounterMeter):
    source = "nvml"

    def __init__(self, device: NvmlDevice, period_s: float) -> None:
        super().__init__(period_s, "nvml")
        self._device = device

    def read_counters(self) -> Mapping[str, float]:
        value = self._device.total_energy_mj()
        if value is None:
            raise DeviceError("nvml meter: the GPU's energy counter disappeared mid-window")
        return {"gpu": value / 1000.0}


class _PowerMode(PowerSampledMeter):
    source = "nvml"

    def __init__(self, device: NvmlDevice, period_s: float) -> None:
        super().__init__(period_s, "nvml")
        self._device = device

    def read_watts(self) -> float:
        return self._device.power_mw() / 1000.0


class NvmlMeter(Meter):
    """GPU energy from NVML: the energy counter where there is one, else sampled power.

    ``Measurement.domains`` holds ``{"gpu": joules}`` in counter mode.

    Args:
        index: the GPU's NVML index.
        period_s: sampling period of the power trace (and of the integration
            where the GPU has no energy counter).
        device: read this device instead of opening GPU ``index`` with pynvml.

    Raises:
        MeterUnavailableError: no nvidia-ml-py, no NVML, or no GPU at ``index``.
        ConfigError: ``index`` is not a non-negative integer.
    """

    source = "nvml"

    def __init__(
        self, index: int = 0, *, period_s: float = 0.1, device: NvmlDevice | None = None
    ) -> None:
        if not is_count(index, 0):
            raise ConfigError(f"nvml meter: index must be a GPU index 0, 1, ..., got {index!r}")
        self.index = int(index)
        self.device: NvmlDevice = device if device is not None else PynvmlDevice(index)
        try:
            counter = self.device.total_energy_mj()
        except ToolkitError:
            self.close()
            raise
        self.mode = "counter" if counter is not None else "power"
        impl = _CounterMode if counter is not None else _PowerMode
        self._impl: Meter = impl(self.device, period_s)

    @property
    def name(self) -> str:
        """The GPU's name as NVML reports it."""
        return self.device.name

    def begin_window(self) -> None:
        """Start a window."""
        self._impl.begin_window()

    def end_window(self) -> Measurement:
        """Stop the window and return its measurement (source ``nvml``)."""
        return self._impl.end_window()

    def close(self) -> None:
        """Release NVML."""
        close = getattr(self.device, "close", None)
        if close is not None:
            close()
