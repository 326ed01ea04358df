"""Ina219Meter / Ina260Meter: Adafruit's real drivers on a simulated I²C bus.

The bus below implements the ``busio.I2C`` surface the drivers use, and each chip
is a register file that follows the TI datasheets (INA219: SBOS448, INA260:
SBOSA16): a pointer register set by the first byte of a write, 16-bit registers
sent MSB first, read-only measurement registers, the calibration register with
its always-zero bit 0, the reset bit, conversion modes, the conversion-ready
flag, and the chips' own arithmetic from shunt and bus voltage to current and
power. The "physical" side is a rail whose voltage and current are functions of
time; the chip converts them when it is read, as in continuous mode.
"""

from __future__ import annotations

import errno
import math
import threading
import time
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pytest

from toolkit.energy import Ina219Meter, Ina260Meter, MeterUnavailableError, open_meter
from toolkit.errors import ConfigError


class Rail:
    """The supply line through the shunt: volts(t) and amps(t), t from perf_counter."""

    def __init__(self, volts: Callable[[float], float], amps: Callable[[float], float]) -> None:
        self.volts, self.amps = volts, amps

    def power(self, t: float) -> float:
        return self.volts(t) * self.amps(t)


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


class RegisterChip:
    """I²C register-file semantics shared by both chips."""

    defaults: ClassVar[dict[int, int]] = {}
    writable: frozenset[int] = frozenset()

    def __init__(self, rail: Rail) -> None:
        self.rail = rail
        self.regs = dict(self.defaults)
        self.pointer = 0
        self.power_reads: list[float] = []  # when the power register was read

    # one I2C transaction each
    def write(self, data: bytes) -> None:
        if not data:
            return  # address-only write: the chip ACKs (probing)
        if data[0] not in self.regs:
            raise OSError(errno.EREMOTEIO, "NACK: no such register")
        self.pointer = data[0]
        if len(data) >= 3:
            value = (data[1] << 8) | data[2]
            if self.pointer in self.writable:
                self.write_register(self.pointer, value)

    def read(self, n: int) -> bytes:
        value = self.read_register(self.pointer)
        return bytes([value >> 8, value & 0xFF] * (n // 2 + 1))[:n]

    def reset(self) -> None:
        self.regs = dict(self.defaults)

    def write_register(self, reg: int, value: int) -> None:
        raise NotImplementedError

    def read_register(self, reg: int) -> int:
        raise NotImplementedError


class Ina219Chip(RegisterChip):
    """TI INA219: config 0x00, shunt 0x01, bus 0x02, power 0x03, current 0x04, cal 0x05."""

    defaults: ClassVar[dict[int, int]] = {0x00: 0x399F, 0x01: 0, 0x02: 0, 0x03: 0, 0x04: 0, 0x05: 0}
    writable = frozenset({0x00, 0x05})

    def __init__(self, rail: Rail, shunt_ohms: float = 0.1) -> None:
        super().__init__(rail)
        self.shunt_ohms = shunt_ohms

    def write_register(self, reg: int, value: int) -> None:
        if reg == 0x00:
            if value & 0x8000:  # RST: all registers to defaults; the bit self-clears
                self.reset()
                return
            self.regs[0x00] = value
            self.regs[0x02] &= ~0x0002  # writing config clears CNVR
            if 1 <= value & 0x7 <= 3:  # triggered: one conversion now
                self.convert(time.perf_counter())
        else:  # calibration: bit 0 is always 0
            self.regs[0x05] = value & 0xFFFE
            self.compute()

    def read_register(self, reg: int) -> int:
        now = time.perf_counter()
        if self.regs[0x00] & 0x7 >= 5:  # continuous modes convert all the time
            self.convert(now)
        value = self.regs[reg]
        if reg == 0x03:
            self.regs[0x02] &= ~0x0002  # reading power clears CNVR
            self.power_reads.append(now)
        return value

    def convert(self, t: float) -> None:
        cfg = self.regs[0x00]
        mode, pga, brng = cfg & 0x7, (cfg >> 11) & 0x3, (cfg >> 13) & 0x1
        if mode & 0x1:  # shunt voltage: 10 uV LSB, full scale 40 mV x PGA
            fs = round(0.04 * (1 << pga) / 10e-6)
            raw = _clamp(round(self.rail.amps(t) * self.shunt_ohms / 10e-6), -fs, fs)
            self.regs[0x01] = raw & 0xFFFF
        if mode & 0x2:  # bus voltage: 4 mV LSB in bits 15..3, 16 or 32 V range
            fs_v = 32.0 if brng else 16.0
            raw = _clamp(round(min(self.rail.volts(t), fs_v) / 4e-3), 0, 0x1FFF)
            self.regs[0x02] = (raw << 3) | (self.regs[0x02] & 0x1)
        self.regs[0x02] |= 0x0002  # CNVR
        self.compute()

    def compute(self) -> None:
        """Current = shunt x cal / 4096; power = current x bus / 5000 (datasheet 8.5.1)."""
        shunt = self.regs[0x01] - 0x10000 if self.regs[0x01] & 0x8000 else self.regs[0x01]
        bus = self.regs[0x02] >> 3
        current = math.trunc(shunt * self.regs[0x05] / 4096)
        power = math.trunc(abs(current) * bus / 5000)
        overflow = not (-0x8000 <= current <= 0x7FFF) or power > 0xFFFF
        self.regs[0x04] = _clamp(current, -0x8000, 0x7FFF) & 0xFFFF
        self.regs[0x03] = _clamp(power, 0, 0xFFFF)
        self.regs[0x02] = (self.regs[0x02] & ~0x1) | int(overflow)


class Ina260Chip(RegisterChip):
    """TI INA260: integrated 2 mOhm shunt; current 1.25 mA, bus 1.25 mV, power 10 mW LSB."""

    defaults: ClassVar[dict[int, int]] = {
        0x00: 0x6127,
        0x01: 0,
        0x02: 0,
        0x03: 0,
        0x06: 0,
        0x07: 0,
        0xFE: 0x5449,  # "TI"
        0xFF: 0x2270,  # device 0x227, revision 0
    }
    writable = frozenset({0x00, 0x06, 0x07})

    def write_register(self, reg: int, value: int) -> None:
        if reg == 0x00:
            if value & 0x8000:
                self.reset()
                return
            self.regs[0x00] = value
            self.regs[0x06] &= ~0x0008  # writing config clears CVRF
            if 1 <= value & 0x7 <= 3:
                self.convert(time.perf_counter())
        elif reg == 0x06:
            self.regs[0x06] = (self.regs[0x06] & 0x001F) | (value & 0xFC03)
        else:
            self.regs[reg] = value

    def read_register(self, reg: int) -> int:
        now = time.perf_counter()
        if self.regs[0x00] & 0x7 >= 5:
            self.convert(now)
        value = self.regs[reg]
        if reg == 0x06:
            self.regs[0x06] &= ~0x0008  # reading mask/enable clears CVRF
        if reg == 0x03:
            self.power_reads.append(now)
        return value

    def convert(self, t: float) -> None:
        mode = self.regs[0x00] & 0x7
        if mode & 0x1:
            current = _clamp(round(self.rail.amps(t) / 1.25e-3), -0x8000, 0x7FFF)
            self.regs[0x01] = current & 0xFFFF
        if mode & 0x2:
            self.regs[0x02] = _clamp(round(self.rail.volts(t) / 1.25e-3), 0, 0x7FFF)
        current = self.regs[0x01] - 0x10000 if self.regs[0x01] & 0x8000 else self.regs[0x01]
        # P = I x V in 10 mW units: (1.25 mA x 1.25 mV) / 10 mW = 1 / 6400
        self.regs[0x03] = _clamp(math.trunc(abs(current) * self.regs[0x02] / 6400), 0, 0xFFFF)
        self.regs[0x06] |= 0x0008  # CVRF


class FakeI2CBus:
    """The busio.I2C surface (locking, writeto, readfrom_into, writeto_then_readfrom)."""

    def __init__(self, devices: dict[int, RegisterChip]) -> None:
        self.devices = devices
        self._lock = threading.Lock()
        self.closed = False

    def try_lock(self) -> bool:
        return self._lock.acquire(blocking=False)

    def unlock(self) -> None:
        self._lock.release()

    def _chip(self, address: int) -> RegisterChip:
        assert self._lock.locked(), "the driver must lock the bus around transactions"
        if address not in self.devices:
            raise OSError(errno.EREMOTEIO, f"no ACK from 0x{address:02x}")
        return self.devices[address]

    def writeto(self, address, buffer, *, start=0, end=None, stop=True) -> None:
        self._chip(address).write(bytes(buffer[start:end]))

    def readfrom_into(self, address, buffer, *, start=0, end=None, stop=True) -> None:
        end = len(buffer) if end is None else end
        buffer[start:end] = self._chip(address).read(end - start)

    def writeto_then_readfrom(
        self, address, out, into, *, out_start=0, out_end=None, in_start=0, in_end=None, stop=False
    ) -> None:
        self.writeto(address, out, start=out_start, end=out_end)
        self.readfrom_into(address, into, start=in_start, end=in_end)

    def deinit(self) -> None:
        self.closed = True


def _const(v: float) -> Callable[[float], float]:
    return lambda t: v


def check_against_rail(m, rail: Rail, reads: list[float]) -> None:
    """Each sample is the rail's power when the chip converted it (to the chip's
    resolution), and the joules are the trapezoid of those samples."""
    t = np.array(reads)
    true_p = np.array([rail.power(x) for x in t])
    assert len(m.watts) == len(t) >= 5
    assert np.allclose(m.watts, true_p, rtol=0.005, atol=0.02)
    truth = float(np.sum((true_p[1:] + true_p[:-1]) * np.diff(t)) / 2)
    assert m.joules == pytest.approx(truth, rel=0.05)
    assert m.duration_s == pytest.approx(t[-1] - t[0], abs=0.02)


@pytest.mark.parametrize(
    ("calibration", "volts", "amps", "watts", "config"),
    [
        # 32 V range, PGA /8, 12-bit ADCs, continuous: the chip's default config
        ("32V_2A", 5.0, 0.8, 4.0, 0x399F),
        # 16 V range, PGA /1 (40 mV), 12-bit, continuous
        ("16V_400mA", 5.0, 0.3, 1.5, 0x019F),
    ],
)
def test_ina219_constant_load_through_the_driver(calibration, volts, amps, watts, config):
    chip = Ina219Chip(Rail(_const(volts), _const(amps)))
    bus = FakeI2CBus({0x40: chip})
    meter = Ina219Meter(i2c=bus, calibration=calibration, period_s=0.01)
    assert chip.regs[0x00] == config  # the driver configured the chip
    assert chip.regs[0x05] == 4096  # both presets: Current_LSB 0.1 mA on 0.1 Ohm
    with meter.window() as out:
        time.sleep(0.15)
    m = out[0]
    assert m.source == "meter:ina219"
    assert np.allclose(m.watts, watts)
    assert m.joules == pytest.approx(watts * m.duration_s, rel=1e-9)
    assert len(m.watts) >= 5


def test_ina219_varying_load_matches_the_rail_energy():
    rail = Rail(
        lambda t: 5.1 + 0.1 * math.sin(2 * math.pi * t / 0.37),
        lambda t: 0.9 + 0.5 * math.sin(2 * math.pi * t / 0.3),
    )
    chip = Ina219Chip(rail)
    meter = Ina219Meter(i2c=FakeI2CBus({0x41: chip}), address=0x41, period_s=0.01, name="pi")
    chip.power_reads.clear()
    with meter.window() as out:
        time.sleep(0.3)
    m = out[0]
    assert m.source == "meter:pi"
    check_against_rail(m, rail, chip.power_reads)


def test_ina260_constant_and_varying_load():
    chip = Ina260Chip(Rail(_const(5.0), _const(0.8)))
    meter = Ina260Meter(i2c=FakeI2CBus({0x40: chip}), period_s=0.01)
    assert chip.regs[0x00] & 0x7 == 0x7  # continuous
    with meter.window() as out:
        time.sleep(0.1)
    assert np.allclose(out[0].watts, 4.0)
    assert out[0].source == "meter:ina260"

    chip.rail = rail = Rail(
        lambda t: 12.0 + 0.2 * math.sin(2 * math.pi * t / 0.41),
        lambda t: 1.5 + 0.7 * math.sin(2 * math.pi * t / 0.3),
    )
    chip.power_reads.clear()
    with meter.window() as out:
        time.sleep(0.3)
    check_against_rail(out[0], rail, chip.power_reads)


def test_chip_reset_and_calibration_register_semantics_seen_by_the_driver():
    import adafruit_ina219

    chip = Ina219Chip(Rail(_const(5.0), _const(0.8)))
    sensor = adafruit_ina219.INA219(FakeI2CBus({0x40: chip}))
    sensor.calibration = 4097
    assert sensor._raw_calibration == 4096  # bit 0 reads back as 0
    sensor.reset = 1
    assert chip.regs == Ina219Chip.defaults
    assert sensor.raw_current == 0  # no calibration, no current (datasheet)


def test_nothing_at_the_address_names_it():
    bus = FakeI2CBus({0x40: Ina219Chip(Rail(_const(5), _const(1)))})
    with pytest.raises(MeterUnavailableError, match=r"ina219 meter: no device answers at .*0x44"):
        Ina219Meter(i2c=bus, address=0x44)


def test_ina260_meter_refuses_another_chip():
    bus = FakeI2CBus({0x40: Ina219Chip(Rail(_const(5), _const(1)))})
    with pytest.raises(MeterUnavailableError, match=r"ina260 meter: .*0x40 is not a working"):
        Ina260Meter(i2c=bus)


def test_missing_bus_names_the_device_file():
    with pytest.raises(MeterUnavailableError, match=r"ina219 meter: I2C bus /dev/i2c-250 does not"):
        Ina219Meter(bus=250)
    with pytest.raises(MeterUnavailableError, match=r"ina260 meter: I2C bus /dev/i2c-251"):
        open_meter({"kind": "ina260", "bus": 251})


def test_bad_options_are_config_errors():
    bus = FakeI2CBus({})
    with pytest.raises(ConfigError, match=r"unknown calibration '5V_9A'; valid: .*32V_2A"):
        Ina219Meter(i2c=bus, calibration="5V_9A")
    with pytest.raises(ConfigError, match=r"address must be 0x40..0x4F"):
        Ina260Meter(i2c=bus, address=0x20)
    with pytest.raises(ConfigError, match=r"address must be 0x40..0x4F .*got 80"):
        Ina260Meter(i2c=bus, address=0x50)
    with pytest.raises(ConfigError, match=r"address must be 0x40..0x4F .*got True"):
        Ina260Meter(i2c=bus, address=True)
    with pytest.raises(ConfigError, match=r"bus must be an I2C bus number, got -1"):
        Ina219Meter(bus=-1)


def test_numpy_integer_address_and_bus_are_taken():
    bus = FakeI2CBus({})
    with pytest.raises(MeterUnavailableError, match=r"no device answers at .*0x44"):
        Ina219Meter(i2c=bus, address=np.int64(0x44))  # past the check, to the bus
    with pytest.raises(MeterUnavailableError, match=r"I2C bus /dev/i2c-250 does not"):
        Ina219Meter(bus=np.int64(250))
