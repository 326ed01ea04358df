"""The one link type: its defaults, its JSON form and its two emulations' timing."""

from __future__ import annotations

import asyncio
import time

import pytest

from toolkit.errors import ToolkitError
from toolkit.hardware.profile import load_profile
from toolkit.runtime.link import DEFAULT_LINK, DEFAULT_RTT_MS, Downlink, Link, Uplink


def test_one_default_rtt_for_the_constructor_and_the_wire():
    assert DEFAULT_RTT_MS == 0.0
    assert Link() == Link(100.0, DEFAULT_RTT_MS)
    assert Link.from_message(None) == Link.from_message({}) == Link(None, DEFAULT_RTT_MS)
    assert Link.from_message({"mbps": 50}) == Link(50.0, DEFAULT_RTT_MS)
    assert Link(100.0, 2.0) == DEFAULT_LINK


@pytest.mark.parametrize("link", [Link(), Link(None, 0.0), Link(1.5, 20.0), DEFAULT_LINK])
def test_json_form_round_trips(link):
    assert link.as_dict() == {"mbps": link.mbps, "rtt_ms": link.rtt_ms}
    assert Link.from_message(link.as_dict()) == link


def test_times():
    link = Link(8.0, 10.0)  # 1 MB/s
    assert link.seconds(1000) == pytest.approx(1e-3)
    assert link.round_trip_s(1000) == pytest.approx(11e-3)
    assert Link(None, 10.0).seconds(10**9) == 0.0
    assert Link(None, 10.0).round_trip_s(10**9) == pytest.approx(10e-3)


@pytest.mark.parametrize(("mbps", "rtt_ms", "why"), [
    (0.0, 0.0, "link rate must be a number of Mbit/s > 0, got 0.0"), (-1.0, 0.0, "> 0"),
    (True, 0.0, "> 0"), ("10", 0.0, "> 0, got '10'"),
    (10.0, -1.0, "RTT must be a number of ms >= 0"), (10.0, float("nan"), "RTT"),
    (10.0, float("inf"), "RTT must be a number of ms >= 0, got inf"),
])
def test_bad_links_are_refused(mbps, rtt_ms, why):
    with pytest.raises(ToolkitError, match=why):
        Link(mbps, rtt_ms)


def test_a_profile_gives_its_link_table_or_the_default():
    pi = load_profile("raspberry-pi-4")
    assert Link.of_profile(pi) == Link(pi.link["mbps"], pi.link["rtt_ms"])
    cloud = load_profile("cloud-gpu-server")
    assert cloud.link is None and Link.of_profile(cloud) is DEFAULT_LINK


def test_uplink_holds_and_downlink_queues_frames():
    link = Link(8.0, 40.0)  # 1 MB/s, 20 ms one way

    async def scenario() -> tuple[float, float]:
        start = time.monotonic()
        await Uplink(link).send_delay(20_000)  # 20 ms on the wire
        sent = time.monotonic() - start
        down = Downlink()
        start = time.monotonic()
        # two frames arriving together (their sender already spent the first's 20 ms
        # on the wire): the second queues 20 ms behind it, and both take 20 ms one way
        await asyncio.gather(down.deliver_delay(link, 20_000), down.deliver_delay(link, 20_000))
        return sent, time.monotonic() - start

    sent, delivered = asyncio.run(scenario())
    assert sent >= 0.019
    assert delivered >= 0.020 + 0.020 - 0.001
