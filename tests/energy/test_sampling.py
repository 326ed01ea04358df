"""The background sampler and counter arithmetic shared by the meters."""

from __future__ import annotations

import time

import numpy as np
import pytest

from toolkit.energy.sampling import PeriodicSampler, counter_delta
from toolkit.errors import ConfigError, ToolkitError


def test_counter_delta_wraps_once_and_refuses_a_backwards_counter_without_range():
    assert counter_delta(10.0, 15.0, None) == 5.0
    assert counter_delta(90.0, 5.0, 100.0) == 15.0
    with pytest.raises(ToolkitError, match="went backwards"):
        counter_delta(90.0, 5.0, None)


def test_sampler_brackets_the_window_at_its_period():
    calls = []
    sampler = PeriodicSampler(lambda: calls.append(time.perf_counter()) or len(calls), 0.02, "t")
    sampler.start()
    time.sleep(0.25)
    times, values = sampler.stop()
    assert values == list(range(1, len(values) + 1))
    assert times[0] == 0.0 and times[-1] >= 0.25
    assert np.all(np.diff(times) > 0)
    assert 8 <= len(values) <= 16  # about 0.25 / 0.02 + 2, with scheduling slack


def test_background_read_error_is_raised_by_stop():
    n = {"calls": 0}

    def read() -> int:
        n["calls"] += 1
        if n["calls"] == 3:
            raise ToolkitError("sensor gone")
        return n["calls"]

    sampler = PeriodicSampler(read, 0.01, "t")
    sampler.start()
    time.sleep(0.1)
    with pytest.raises(ToolkitError, match="sensor gone"):
        sampler.stop()
    assert not sampler.running
    sampler.start()  # usable again after the error
    sampler.stop()


def test_first_read_error_leaves_no_window_open():
    def read() -> float:
        raise ToolkitError("nothing there")

    sampler = PeriodicSampler(read, 0.01, "t")
    with pytest.raises(ToolkitError, match="nothing there"):
        sampler.start()
    assert not sampler.running


@pytest.mark.parametrize("period", [0, -1, "fast", 3600])
def test_bad_period_is_a_config_error(period):
    with pytest.raises(ConfigError, match="period_s"):
        PeriodicSampler(lambda: 0, period, "meter x")
