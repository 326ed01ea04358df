"""ScpiPowerMeter against a real SCPI server on loopback.

The server is an asyncio TCP server that answers the GPM-8213's numeric command
set (``*IDN?``, ``:NUMeric:NORMal:NUMBer``, ``:NUMeric:NORMal:ITEM<n> <fn>``,
``:NUMeric:NORMal:VALue?``, long or short forms, several commands per line
separated by ``;``, ``:SYSTem:ERRor?``) with a power that follows a known curve.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from toolkit.energy import MeterUnavailableError, ScpiPowerMeter, open_meter
from toolkit.errors import ConfigError, ToolkitError


def power_w(t: float) -> float:
    return 60.0 + 25.0 * math.sin(2 * math.pi * t / 0.45)


def volts(t: float) -> float:
    return 230.0 + 2.0 * math.sin(2 * math.pi * t / 0.7)


_HEAD = r":?NUM(?:ERIC)?:NORM(?:AL)?:"


class Gpm8213:
    """The instrument's side of the protocol (behaviour = "ok", "garbage", "bad-values",
    "silent")."""

    def __init__(self, behaviour: str = "ok") -> None:
        self.behaviour = behaviour
        self.t0 = time.perf_counter()
        self.items: dict[int, str] = {1: "U", 2: "I", 3: "P"}
        self.number = 3
        self.errors: list[str] = []
        self.answered: list[tuple[float, float]] = []  # (time, watts) per VALUE?
        self.commands: list[str] = []

    def execute(self, command: str) -> str | None:
        self.commands.append(command)
        c = command.strip().upper()
        if self.behaviour == "garbage":
            return "\x8f\x00\xff@@"
        if self.behaviour == "silent":
            return None
        if c == "*IDN?":
            return "GWInstek,GPM-8213,GES000001,V1.05"
        if m := re.fullmatch(_HEAD + r"NUMB(?:ER)?\s+(\d+)", c):
            self.number = int(m[1])
            return None
        if m := re.fullmatch(_HEAD + r"ITEM(\d+)\s+(\w+)", c):
            if m[2] not in ("U", "I", "P", "S", "Q", "LAMBDA", "PHI", "FU", "FI"):
                self.errors.append('-224,"Illegal parameter value"')
            else:
                self.items[int(m[1])] = m[2]
            return None
        if re.fullmatch(_HEAD + r"VAL(?:UE)?\?", c):
            if self.behaviour == "bad-values":
                return "OVER,12.0E+00,??"
            t = time.perf_counter() - self.t0
            p, u = power_w(t), volts(t)
            self.answered.append((t, p))
            reading = {"P": p, "U": u, "I": p / u}
            return ",".join(
                f"{reading[self.items[n]]:.4E}" if self.items.get(n) in reading else "NAN"
                for n in range(1, self.number + 1)
            )
        if re.fullmatch(r":?SYST(?:EM)?:ERR(?:OR)?\?", c):
            return self.errors.pop(0) if self.errors else '0,"No error"'
        self.errors.append('-113,"Undefined header"')
        return None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                for command in line.decode("ascii", "replace").strip().split(";"):
                    answer = self.execute(command)
                    if answer is not None:
                        writer.write(answer.encode("latin-1") + b"\r\n")
                await writer.drain()
        writer.close()


@pytest.fixture
def scpi_server() -> Iterator[Callable[..., tuple[Gpm8213, str]]]:
    """Start instruments on 127.0.0.1; returns (instrument, "127.0.0.1:PORT")."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    servers = []

    def start(behaviour: str = "ok") -> tuple[Gpm8213, str]:
        instrument = Gpm8213(behaviour)
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(instrument.serve, "127.0.0.1", 0), loop
        ).result(5)
        servers.append(server)
        return instrument, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start

    async def shutdown() -> None:
        for server in servers:
            server.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_identifies_selects_items_and_integrates_the_power_curve(scpi_server):
    instrument, address = scpi_server()
    meter = ScpiPowerMeter(address, period_s=0.01)
    assert meter.idn == ("GWInstek", "GPM-8213", "GES000001", "V1.05")
    assert meter.source == "meter:gpm-8213"
    assert instrument.items == {1: "P", 2: "U", 3: "I"} and instrument.number == 3
    assert meter.query(":SYSTEM:ERROR?") == '0,"No error"'
    reading = meter.read()
    assert reading["W"] == pytest.approx(reading["V"] * reading["A"], rel=1e-3)

    instrument.answered.clear()
    with meter.window() as out:
        time.sleep(0.4)
    meter.close()
    m = out[0]
    t, p = np.array(instrument.answered).T
    assert np.allclose(m.watts, p, rtol=1e-4)  # each sample is what the meter displayed
    assert m.duration_s == pytest.approx(t[-1] - t[0], abs=0.02)
    # the trapezoid of the power curve at the sampled instants
    assert m.joules == pytest.approx(float(np.sum((p[1:] + p[:-1]) * np.diff(t)) / 2), rel=0.05)
    assert len(m.watts) >= 5 and np.all((m.watts > 30) & (m.watts < 90))


def test_serial_transport_through_pyserial(scpi_server):
    instrument, address = scpi_server()
    meter = open_meter(
        {"kind": "scpi", "address": f"socket://{address}", "transport": "serial", "name": "wall"}
    )
    assert meter.source == "meter:wall"
    with meter.window() as out:
        time.sleep(0.25)
    meter.close()
    t, p = np.array(instrument.answered[-len(out[0].watts) :]).T
    assert np.allclose(out[0].watts, p, rtol=1e-4)
    assert out[0].joules == pytest.approx(
        float(np.sum((p[1:] + p[:-1]) * np.diff(t)) / 2), rel=0.05
    )


def test_server_down_names_the_meter_and_the_address():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MeterUnavailableError, match=rf"scpi meter at 127.0.0.1:{port} .*connect"):
        ScpiPowerMeter(f"127.0.0.1:{port}")


def test_garbage_answers_are_refused(scpi_server):
    _, address = scpi_server("garbage")
    with pytest.raises(ToolkitError, match=rf"scpi meter at {address}.*\*IDN\?.*not text"):
        ScpiPowerMeter(address)

    _, address = scpi_server("bad-values")
    with pytest.raises(ToolkitError, match=rf"{address}.*VALUE\? answered 'OVER,12.0E\+00,\?\?'"):
        ScpiPowerMeter(address)


def test_silent_instrument_times_out(scpi_server):
    _, address = scpi_server("silent")
    with pytest.raises(MeterUnavailableError, match=rf"{address}.*no answer to '\*IDN\?' within"):
        ScpiPowerMeter(address, timeout_s=0.2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"address": "meter.local"}, "HOST:PORT"),
        ({"address": "10.0.0.2:23", "transport": "gpib"}, "valid: tcp, serial"),
        ({"address": "10.0.0.2:23", "period_s": 0}, "period_s"),
        ({"address": "10.0.0.2:23", "timeout_s": float("inf")},
         r"timeout_s must be a number of seconds in \(0, 3600\], got inf"),
        ({"address": "10.0.0.2:23", "timeout_s": True}, "timeout_s"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ScpiPowerMeter(**kwargs)
