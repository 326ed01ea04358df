"""Emulated links between partition devices, in user space.

Every device has a full-duplex link of ``mbps`` to a switch, and any two
devices are ``rtt_ms`` apart (round trip), as the cost model of
:mod:`toolkit.partition.cost` assumes:

* the sender's :class:`Uplink` holds each frame for its serialisation time
  (``bytes × 8 / (mbps × 10⁶)``) before writing it, so a device's sends are
  serialised and the sender is busy meanwhile;
* the receiver's :class:`Downlink` delivers frames one at a time at the same
  rate (frames from several senders arriving together queue behind each other)
  and adds the one-way delay ``rtt_ms / 2``, which occupies no link.

Loopback TCP is much faster than the emulated link, so the emulation decides
the timing; with ``mbps=None`` and ``rtt_ms=0`` frames go at loopback speed.
Byte counts are payload bytes, as in the cost model.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ToolkitError

__all__ = ["Downlink", "LinkSpec", "Uplink"]


@dataclass(frozen=True)
class LinkSpec:
    """An emulated link: rate in Mbit/s (None = loopback speed) and round-trip time.

    Raises:
        ToolkitError: a rate that is not positive or a negative RTT.
    """

    mbps: float | None = 100.0
    rtt_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.mbps is not None and (isinstance(self.mbps, bool) or not self.mbps > 0):
            raise ToolkitError(f"link rate must be a positive number of Mbit/s, got {self.mbps!r}")
        if isinstance(self.rtt_ms, bool) or not self.rtt_ms >= 0:
            raise ToolkitError(f"link RTT must be a number of ms >= 0, got {self.rtt_ms!r}")

    def seconds(self, nbytes: int) -> float:
        """Serialisation time of ``nbytes`` on this link."""
        return nbytes * 8 / (self.mbps * 1e6) if self.mbps else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"mbps": self.mbps, "rtt_ms": self.rtt_ms}

    @classmethod
    def from_message(cls, message: dict[str, Any] | None) -> LinkSpec:
        """Read the JSON form (None: loopback speed)."""
        if not message:
            return cls(None, 0.0)
        mbps = message.get("mbps")
        return cls(None if mbps is None else float(mbps), float(message.get("rtt_ms", 0.0)))


class Uplink:
    """The sending side: hold each frame for its serialisation time."""

    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec

    async def send_delay(self, nbytes: int) -> None:
        """Wait until ``nbytes`` have left the device."""
        seconds = self.spec.seconds(nbytes)
        if seconds > 0:
            await asyncio.sleep(seconds)


class Downlink:
    """The receiving side: one frame at a time at the link rate, plus the one-way delay."""

    def __init__(self) -> None:
        self._free = 0.0

    async def deliver_delay(self, spec: LinkSpec, nbytes: int) -> None:
        """Wait until a frame of ``nbytes`` that just arrived is delivered."""
        now = time.monotonic()
        end = max(now, self._free + spec.seconds(nbytes)) if spec.mbps else now
        self._free = end
        wait = end + spec.rtt_ms / 2e3 - now
        if wait > 0:
            await asyncio.sleep(wait)
