"""SCPI power meters (GW Instek GPM-8213 class) over TCP or a serial port.

DynaSplit measured its devices with a GW Instek GPM-8213 digital power meter.
This meter speaks the numeric-readout subset of its SCPI command set, which
Yokogawa's WT300 series shares:

* ``*IDN?`` — identity, ``maker,model,serial,firmware`` (IEEE 488.2);
* ``:NUMERIC:NORMAL:NUMBER 3`` and ``:NUMERIC:NORMAL:ITEM<n> <function>`` —
  select what ``VALUE?`` returns: ``P`` (active power, W), ``U`` (voltage, V),
  ``I`` (current, A);
* ``:NUMERIC:NORMAL:VALUE?`` — the selected items, comma-separated
  (``127.58E+00,240.02E-03,17.688E+00``; ``NAN`` where not measurable).

Commands end with LF; answers end with CR LF or LF. Power is sampled at
``period_s`` on a background thread and integrated with the trapezoid rule.
Serial ports go through pyserial (the toolkit's ``serial`` extra); any pyserial
URL works, e.g. ``/dev/ttyUSB0`` or ``socket://host:port``.
"""

from __future__ import annotations

import math
import socket
import threading
from typing import Any

from toolkit.energy.meter import MeterUnavailableError
from toolkit.energy.sampling import PowerSampledMeter
from toolkit.errors import ConfigError, DeviceError, ToolkitError, check_number, choices

__all__ = ["ScpiPowerMeter", "parse_idn", "parse_values"]

TRANSPORTS = ("tcp", "serial")
#: the items the meter selects, in ``VALUE?`` order: power, voltage, current
ITEMS = ("P", "U", "I")
_MAX_LINE = 4096


def parse_idn(text: str) -> tuple[str, str, str, str]:
    """Split an ``*IDN?`` answer into (maker, model, serial, firmware).

    Raises:
        ValueError: not four comma-separated printable fields.
    """
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != 4 or not fields[1] or not all(f.isprintable() for f in fields):
        raise ValueError("not an IEEE 488.2 identity (maker,model,serial,firmware)")
    return fields[0], fields[1], fields[2], fields[3]


def parse_values(text: str, count: int) -> list[float]:
    """Parse a ``:NUMERIC:NORMAL:VALUE?`` answer of ``count`` numbers (``NAN`` allowed).

    Raises:
        ValueError: the wrong number of fields, or a field that is not a number.
    """
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != count:
        raise ValueError(f"expected {count} comma-separated values, got {len(fields)}")
    values = []
    for f in fields:
        if f.upper() in ("NAN", "NAN.0"):
            values.append(math.nan)
            continue
        v = float(f)  # raises ValueError on garbage
        if math.isinf(v):
            raise ValueError(f"{f!r} is not a finite number")
        values.append(v)
    return values


class _TcpLink:
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def readline(self) -> bytes:
        while b"\n" not in self._buf:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionError("connection closed by the meter")
            self._buf += chunk
            if len(self._buf) > _MAX_LINE:
                raise ValueError(f"answer longer than {_MAX_LINE} bytes without a line end")
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def close(self) -> None:
        self._sock.close()


class _SerialLink:
    def __init__(self, url: str, baudrate: int, timeout_s: float) -> None:
        import serial

        self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout_s)

    def write(self, data: bytes) -> None:
        self._port.write(data)
        self._port.flush()

    def readline(self) -> bytes:
        line = self._port.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            if len(line) >= _MAX_LINE:
                raise ValueError(f"answer longer than {_MAX_LINE} bytes without a line end")
            raise TimeoutError("timed out")
        return line[:-1]

    def close(self) -> None:
        self._port.close()


def _split_tcp(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"scpi meter: TCP address must be HOST:PORT (the port is set on the meter's "
            f"LAN menu), got {address!r}"
        )
    return host.strip("[]"), int(port)


class ScpiPowerMeter(PowerSampledMeter):
    """A GPM-8213-class SCPI power meter (source ``meter:<name>``).

    Opening connects, checks ``*IDN?``, selects P, U and I as the numeric items
    and takes one reading. :attr:`idn` keeps the identity; :meth:`read` returns all three.

    Args:
        address: ``HOST:PORT`` for TCP; a device or pyserial URL for serial.
        period_s: sampling period (the GPM-8213 updates about 10 times a second).
        transport: ``tcp`` or ``serial``.
        name: meter name in ``source``; default: the model from ``*IDN?``, lower-case.
        timeout_s: how long to wait for an answer.
        baudrate: serial baud rate (USB virtual COM ports ignore it).

    Raises:
        MeterUnavailableError: the meter cannot be reached or does not answer
            (names the meter and the address).
        ToolkitError: it answers, but not as a SCPI power meter.
        ConfigError: a bad transport, address or option.
    """

    def __init__(
        self,
        address: str,
        period_s: float = 0.2,
        transport: str = "tcp",
        *,
        name: str | None = None,
        timeout_s: float = 2.0,
        baudrate: int = 115200,
    ) -> None:
        super().__init__(period_s, f"scpi meter {address}")
        if transport not in TRANSPORTS:
            raise ConfigError(
                f"scpi meter: unknown transport {transport!r}; valid: {choices(TRANSPORTS)}"
            )
        if not isinstance(address, str) or not address:
            raise ConfigError(f"scpi meter: address must be a non-empty string, got {address!r}")
        check_number(timeout_s, "scpi meter: timeout_s", 0, 3600, low_open=True,
                     unit="seconds")
        self.address = address
        self.transport = transport
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._link: Any = None
        self._connect(baudrate)
        try:
            self.idn = self._identify()
            self.query(":NUMERIC:NORMAL:NUMBER 3", answer=False)
            for n, function in enumerate(ITEMS, start=1):
                self.query(f":NUMERIC:NORMAL:ITEM{n} {function}", answer=False)
            self.read()  # a round trip: the settings are applied and readings parse
        except BaseException:
            self.close()
            raise
        self.name = name or self.idn[1].lower()
        self.source = f"meter:{self.name}"

    def _where(self) -> str:
        return f"scpi meter at {self.address} ({self.transport})"

    def _connect(self, baudrate: int) -> None:
        try:
            if self.transport == "tcp":
                host, port = _split_tcp(self.address)
                self._link = _TcpLink(host, port, self.timeout_s)
            else:
                try:
                    import serial  # noqa: F401
                except ImportError:
                    raise MeterUnavailableError(
                        f"{self._where()}: pyserial is not installed; install the toolkit's "
                        "'serial' extra"
                    ) from None
                self._link = _SerialLink(self.address, baudrate, self.timeout_s)
        except (OSError, ValueError) as exc:
            raise MeterUnavailableError(f"{self._where()}: cannot connect: {exc}") from None

    def _identify(self) -> tuple[str, str, str, str]:
        text = self.query("*IDN?")
        try:
            return parse_idn(text)
        except ValueError as exc:
            raise ToolkitError(
                f"{self._where()}: *IDN? answered {text[:80]!r}: {exc}; is this a SCPI meter?"
            ) from None

    def query(self, command: str, *, answer: bool = True) -> str:
        """Send one command; return its answer line (decoded, stripped) when ``answer``.

        Raises:
            MeterUnavailableError: no answer within ``timeout_s`` or the link broke.
            ToolkitError: the answer is not text.
        """
        with self._lock:
            if self._link is None:
                raise ToolkitError(f"{self._where()}: the meter is closed")
            try:
                self._link.write(command.encode("ascii") + b"\n")
                if not answer:
                    return ""
                raw = self._link.readline()
            except TimeoutError:
                raise MeterUnavailableError(
                    f"{self._where()}: no answer to {command!r} within {self.timeout_s:g} s"
                ) from None
            except ValueError as exc:
                raise DeviceError(f"{self._where()}: bad answer to {command!r}: {exc}") from None
            except OSError as exc:
                raise MeterUnavailableError(
                    f"{self._where()}: link failed during {command!r}: {exc}"
                ) from None
        try:
            return raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise ToolkitError(
                f"{self._where()}: answer to {command!r} is not text: {raw[:40]!r}"
            ) from None

    def read(self) -> dict[str, float]:
        """One reading: ``{"W": watts, "V": volts, "A": amps}`` (NaN where unmeasurable).

        Raises:
            ToolkitError: the answer is not three numbers.
        """
        text = self.query(":NUMERIC:NORMAL:VALUE?")
        try:
            p, u, i = parse_values(text, len(ITEMS))
        except ValueError as exc:
            raise ToolkitError(
                f"{self._where()}: :NUMERIC:NORMAL:VALUE? answered {text[:80]!r}: {exc}"
            ) from None
        return {"W": p, "V": u, "A": i}

    def read_watts(self) -> float:
        """Active power in watts.

        Raises:
            ToolkitError: the meter reports no valid power (NaN).
        """
        watts = self.read()["W"]
        if math.isnan(watts):
            raise ToolkitError(f"{self._where()}: the meter reports no valid power (NAN)")
        return watts

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._link is not None:
                self._link.close()
                self._link = None
