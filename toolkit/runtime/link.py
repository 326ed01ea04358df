"""The emulated network link: one type for the edge-cloud link and the links of partitions.

A :class:`Link` is a rate in Mbit/s (``None``: loopback speed, no serialisation
time) and a round-trip time. Its JSON form, ``{"mbps", "rtt_ms"}``, is the
``link`` field of the edge worker's and the partition workers' requests. The
link is emulated in user space (``netem`` is not always available); loopback TCP
is much faster than the emulated link, so the emulation decides the timing:

* the edge worker (:mod:`toolkit.runtime.edge`) pads each tensor's real
  transfer to :meth:`Link.round_trip_s` of the bytes both ways;
* a partition device's :class:`Uplink` holds each frame for its serialisation
  time (``bytes × 8 / (mbps × 10⁶)``) before writing it, so a device's sends
  are serialised and the sender is busy meanwhile; the receiver's
  :class:`Downlink` delivers frames one at a time at the same rate (frames from
  several senders arriving together queue behind each other) and adds the
  one-way delay ``rtt_ms / 2``, which occupies no link.

Defaults: a link built without an RTT adds none (``rtt_ms = 0``, the one
default RTT), and a message without a link, or a link without ``rtt_ms``, means
the same. :data:`DEFAULT_LINK` (100 Mbit/s, 2 ms: wired Ethernet to a nearby
cloud node) is the edge-cloud link where an edge profile has no ``[link]`` table
and the partition cluster's default link to the cloud.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from toolkit.errors import check_number

if TYPE_CHECKING:
    from toolkit.hardware.profile import DeviceProfile

__all__ = ["DEFAULT_LINK", "DEFAULT_RTT_MS", "Downlink", "Link", "Uplink"]

#: the round-trip time of a link that names none (ms)
DEFAULT_RTT_MS = 0.0


@dataclass(frozen=True)
class Link:
    """An emulated link: rate in Mbit/s (None = loopback speed) and round-trip time (ms).

    Raises:
        ToolkitError: a rate that is not positive or a negative RTT.
    """

    mbps: float | None = 100.0
    rtt_ms: float = DEFAULT_RTT_MS

    def __post_init__(self) -> None:
        if self.mbps is not None:
            check_number(self.mbps, "link rate", low_open=True, finite=False, unit="Mbit/s")
        check_number(self.rtt_ms, "link RTT", unit="ms")

    def seconds(self, nbytes: int) -> float:
        """Serialisation time of ``nbytes`` on this link."""
        return nbytes * 8 / (self.mbps * 1e6) if self.mbps else 0.0

    def round_trip_s(self, nbytes: int) -> float:
        """The link's time for a round trip carrying ``nbytes`` in total."""
        return self.rtt_ms / 1e3 + self.seconds(nbytes)

    def as_dict(self) -> dict[str, Any]:
        """JSON form: the ``link`` field of worker requests."""
        return {"mbps": self.mbps, "rtt_ms": self.rtt_ms}

    @classmethod
    def from_message(cls, message: dict[str, Any] | None) -> Link:
        """Read the JSON form (None or empty: loopback speed)."""
        if not message:
            return cls(None, DEFAULT_RTT_MS)
        mbps = message.get("mbps")
        return cls(None if mbps is None else float(mbps),
                   float(message.get("rtt_ms", DEFAULT_RTT_MS)))

    @classmethod
    def of_profile(cls, profile: DeviceProfile) -> Link:
        """An edge profile's ``[link]`` table, or :data:`DEFAULT_LINK` where it has none."""
        if profile.link is None:
            return DEFAULT_LINK
        return cls(float(profile.link["mbps"]), float(profile.link["rtt_ms"]))


#: Wired Ethernet to a nearby cloud node (the edge-cloud link where nothing else is given).
DEFAULT_LINK = Link(100.0, 2.0)


class Uplink:
    """The sending side: hold each frame for its serialisation time."""

    def __init__(self, link: Link) -> None:
        self.link = link

    async def send_delay(self, nbytes: int) -> None:
        """Wait until ``nbytes`` have left the device."""
        seconds = self.link.seconds(nbytes)
        if seconds > 0:
            await asyncio.sleep(seconds)


class Downlink:
    """The receiving side: one frame at a time at the link rate, plus the one-way delay."""

    def __init__(self) -> None:
        self._free = 0.0

    async def deliver_delay(self, link: Link, nbytes: int) -> None:
        """Wait until a frame of ``nbytes`` that just arrived is delivered."""
        now = time.monotonic()
        end = max(now, self._free + link.seconds(nbytes)) if link.mbps else now
        self._free = end
        wait = end + link.rtt_ms / 2e3 - now
        if wait > 0:
            await asyncio.sleep(wait)
