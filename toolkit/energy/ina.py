"""INA219 and INA260 power monitors on a Raspberry Pi's I²C bus.

The chips are driven by Adafruit's maintained CircuitPython drivers
(``adafruit-circuitpython-ina219``, ``adafruit-circuitpython-ina260``), which run
on Linux through Adafruit Blinka. The meter opens ``/dev/i2c-<bus>`` itself
(Blinka's Linux I²C backend), so it works with any bus number; any other
``busio.I2C``-compatible object can be passed as ``i2c`` instead.

Both chips compute power on-chip from shunt and bus voltage; the meter samples
the power register at ``period_s`` and integrates the trace (trapezoid rule).
The INA219 needs its calibration for the shunt on the board: ``calibration``
names one of the driver's presets (``32V_2A`` for Adafruit's 0.1 Ω breakout).
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

from toolkit.energy.meter import MeterUnavailableError
from toolkit.energy.sampling import PowerSampledMeter
from toolkit.errors import ConfigError, DeviceError, choices, is_count

__all__ = ["Ina219Meter", "Ina260Meter", "LinuxI2CBus", "ina219_calibrations"]

# Adafruit's register descriptors share one module-level buffer: serialise all
# driver calls, whichever meter or thread makes them.
_DRIVER_LOCK = threading.RLock()


class LinuxI2CBus:
    """A ``busio.I2C``-compatible bus on ``/dev/i2c-<bus>`` (Blinka's Linux backend).

    Raises:
        MeterUnavailableError: Blinka is missing or the bus device cannot be opened.
    """

    def __init__(self, bus: int, meter: str = "ina") -> None:
        device = Path(f"/dev/i2c-{bus}")
        if not device.exists():
            raise MeterUnavailableError(
                f"{meter} meter: I2C bus {device} does not exist (enable I2C with "
                "raspi-config, or pass the right bus number)"
            )
        try:
            from adafruit_blinka.microcontroller.generic_linux.i2c import I2C
        except ImportError:
            raise MeterUnavailableError(
                f"{meter} meter: Adafruit Blinka is not installed (needed to open {device}); "
                "install the toolkit's 'pi' extra"
            ) from None
        try:
            self._bus = I2C(bus)
        except (OSError, RuntimeError) as exc:
            raise MeterUnavailableError(f"{meter} meter: cannot open {device}: {exc}") from None
        self._lock = threading.Lock()

    def try_lock(self) -> bool:
        """Take the bus lock without waiting; True when taken."""
        return self._lock.acquire(blocking=False)

    def unlock(self) -> None:
        """Release the bus lock."""
        self._lock.release()

    def writeto(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        """Write ``buffer[start:end]`` to the device at ``address``."""
        self._bus.writeto(address, buffer, start=start, end=end)

    def readfrom_into(self, address: int, buffer, *, start: int = 0, end: int | None = None):
        """Read into ``buffer[start:end]`` from the device at ``address``."""
        self._bus.readfrom_into(address, buffer, start=start, end=end)

    def writeto_then_readfrom(self, address: int, out_buffer, in_buffer, **kwargs: Any) -> None:
        """Write, then read without a stop condition in between (register reads)."""
        self._bus.writeto_then_readfrom(address, out_buffer, in_buffer, **kwargs)

    def deinit(self) -> None:
        """Close the bus device."""
        inner = getattr(self._bus, "_i2c_bus", None)
        if inner is not None:
            inner.close()


def _driver(module: str, package: str, meter: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MeterUnavailableError(
            f"{meter} meter: the driver {package} is not installed; install the "
            "toolkit's 'pi' extra"
        ) from None


def ina219_calibrations() -> list[str]:
    """Calibration presets of the INA219 driver (``32V_2A``, ``16V_400mA``...)."""
    mod = _driver("adafruit_ina219", "adafruit-circuitpython-ina219", "ina219")
    prefix = "set_calibration_"
    return [m[len(prefix) :] for m in dir(mod.INA219) if m.startswith(prefix)]


class _InaMeter(PowerSampledMeter):
    chip = "ina"

    def __init__(self, bus: int, address: int, i2c: Any, period_s: float, name: str | None) -> None:
        name = name or self.chip
        super().__init__(period_s, name)
        if not is_count(address, 0x40) or address > 0x4F:
            raise ConfigError(
                f"{self.chip} meter: address must be 0x40..0x4F (set by A0/A1), got {address!r}"
            )
        if i2c is None and not is_count(bus, 0):
            raise ConfigError(f"{self.chip} meter: bus must be an I2C bus number, got {bus!r}")
        self.name = name
        self.source = f"meter:{name}"
        self.address = address = int(address)
        self.where = (f"I2C bus {bus} " if i2c is None else "") + f"address 0x{address:02x}"
        self._own_bus = i2c is None
        self._i2c = LinuxI2CBus(int(bus), self.chip) if i2c is None else i2c
        try:
            with _DRIVER_LOCK:
                self._sensor = self._open_sensor()
        except ValueError as exc:  # the driver's probe: nothing answers
            self.close()
            raise MeterUnavailableError(
                f"{self.chip} meter: no device answers at {self.where} ({exc})"
            ) from None
        except (RuntimeError, OSError) as exc:
            self.close()
            raise MeterUnavailableError(
                f"{self.chip} meter: the device at {self.where} is not a working "
                f"{self.chip.upper()}: {exc}"
            ) from None

    def _open_sensor(self) -> Any:
        raise NotImplementedError

    def _power_w(self) -> float:
        raise NotImplementedError

    def read_watts(self) -> float:
        """Read the chip's power register, in watts."""
        try:
            with _DRIVER_LOCK:
                return self._power_w()
        except OSError as exc:
            raise DeviceError(f"{self.chip} meter: read at {self.where} failed: {exc}") from None

    def close(self) -> None:
        """Close the bus if this meter opened it."""
        if self._own_bus and getattr(self, "_i2c", None) is not None:
            self._i2c.deinit()
            self._i2c = None


class Ina219Meter(_InaMeter):
    """An INA219 current/power monitor (source ``meter:<name>``).

    Args:
        bus: I²C bus number (``/dev/i2c-<bus>``; 1 on a Raspberry Pi header).
        address: 7-bit address, 0x40..0x4F.
        calibration: the driver's calibration preset for the shunt on the board,
            see :func:`ina219_calibrations` (``32V_2A`` assumes 0.1 Ω).
        period_s: sampling period.
        name: meter name in ``source`` (default ``ina219``).
        i2c: a ``busio.I2C``-compatible bus to use instead of opening ``bus``.

    Raises:
        MeterUnavailableError: no driver, no bus, or nothing INA219-like answers.
        ConfigError: bad address, bus or calibration.
    """

    chip = "ina219"

    def __init__(
        self,
        bus: int = 1,
        address: int = 0x40,
        *,
        calibration: str = "32V_2A",
        period_s: float = 0.05,
        name: str | None = None,
        i2c: Any = None,
    ) -> None:
        presets = ina219_calibrations()
        if calibration not in presets:
            raise ConfigError(
                f"ina219 meter: unknown calibration {calibration!r}; valid: {choices(presets)}"
            )
        self.calibration = calibration
        super().__init__(bus, address, i2c, period_s, name)

    def _open_sensor(self) -> Any:
        mod = _driver("adafruit_ina219", "adafruit-circuitpython-ina219", self.chip)
        sensor = mod.INA219(self._i2c, self.address)
        getattr(sensor, f"set_calibration_{self.calibration}")()
        return sensor

    def _power_w(self) -> float:
        return float(self._sensor.power)  # driver: watts


class Ina260Meter(_InaMeter):
    """An INA260 power monitor with its integrated 2 mΩ shunt (source ``meter:<name>``).

    Args:
        bus: I²C bus number (``/dev/i2c-<bus>``).
        address: 7-bit address, 0x40..0x4F.
        period_s: sampling period.
        name: meter name in ``source`` (default ``ina260``).
        i2c: a ``busio.I2C``-compatible bus to use instead of opening ``bus``.

    Raises:
        MeterUnavailableError: no driver, no bus, or the device's IDs are not an INA260's.
        ConfigError: bad address or bus.
    """

    chip = "ina260"

    def __init__(
        self,
        bus: int = 1,
        address: int = 0x40,
        *,
        period_s: float = 0.05,
        name: str | None = None,
        i2c: Any = None,
    ) -> None:
        super().__init__(bus, address, i2c, period_s, name)

    def _open_sensor(self) -> Any:
        mod = _driver("adafruit_ina260", "adafruit-circuitpython-ina260", self.chip)
        sensor = mod.INA260(self._i2c, self.address)
        sensor.mode = mod.Mode.CONTINUOUS
        return sensor

    def _power_w(self) -> float:
        return float(self._sensor.power) / 1000.0  # driver: milliwatts
