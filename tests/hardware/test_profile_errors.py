"""A device profile with a bad value is refused at load, naming the file and the key.

A user's own profile feeds the power model, the emulated timing and the switching
costs: a NaN, a negative power or a string where a number belongs used to be taken
(or to crash with a ``TypeError``) and poison every energy figure downstream.
"""

from __future__ import annotations

import re

import pytest

from toolkit.devices.controllers.pi import PiSettings
from toolkit.errors import ConfigError
from toolkit.hardware import available_profiles, load_profile
from toolkit.paths import PROFILES_DIR

#: a ``key = number`` or ``key = [numbers]`` line of a profile
NUMBER_LINE = re.compile(r"^(\s*[\w-]+\s*=\s*)(\[[-0-9.eE, ]*\]|[-0-9.eE]+)\s*(#.*)?$")
#: tables the device controllers read when they start (checked there, below)
CONTROLLER_TABLES = ("[tpu]",)


def _numeric_lines():
    for name in available_profiles():
        table = ""
        for i, line in enumerate((PROFILES_DIR / f"{name}.toml").read_text().splitlines()):
            table = line.strip() if line.startswith("[") else table
            if NUMBER_LINE.match(line) and table not in CONTROLLER_TABLES:
                yield name, i, f"{table} {line.split('=')[0].strip()}"


def _mutated(tmp_path, name: str, old: str, new: str, count: int = 1):
    text = (PROFILES_DIR / f"{name}.toml").read_text()
    assert text.count(old) >= count, old
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace(old, new, count))
    return path


@pytest.mark.parametrize("bad", ["nan", "inf", "-1", '"x"', "[]"])
def test_every_number_of_every_shipped_profile_is_checked(tmp_path, bad):
    lines = list(_numeric_lines())
    assert len(lines) > 60  # the sweep covers the whole of every file
    for name, i, where in lines:
        text = (PROFILES_DIR / f"{name}.toml").read_text().splitlines()
        key, value = NUMBER_LINE.match(text[i]).group(1, 2)
        if value == bad:  # the cloud's empty frequency list is valid
            continue
        text[i] = key + bad
        path = tmp_path / f"{name}-{i}.toml"
        path.write_text("\n".join(text) + "\n")
        with pytest.raises(ConfigError, match=re.escape(str(path))):
            load_profile(path)
            pytest.fail(f"{name}: {where} = {bad} was taken")


@pytest.mark.parametrize(("name", "old", "new", "message"), [
    ("raspberry-pi-4", "network_j_per_byte = 5e-8", "network_j_per_byte = nan",
     "key 'power.network_j_per_byte' should be a number >= 0, got nan"),
    ("raspberry-pi-4", "wait_w = [", "wait_w = [-1.0, ",
     "key 'power.wait_w' should be a list of numbers >= 0"),
    ("raspberry-pi-4", "none = { extra_w = 0.0 }", 'none = { extra_w = "x" }',
     "key 'power.accelerators.none.extra_w' should be a number, got 'x'"),
    ("raspberry-pi-4", "none = { extra_w = 0.0 }", "none = { extra = 1.0 }",
     "unknown key 'power.accelerators.none.extra'; valid keys: busy_w, extra_w"),
    ("raspberry-pi-4", "none = { extra_w = 0.0 }", "none = 3",
     "key 'power.accelerators.none' should be a table, got 3"),
    ("raspberry-pi-4", 'available = ["none", "int8", "tpu-std", "tpu-max"]',
     'available = ["none", "gpu"]',
     "key 'accelerators.available' should be a non-empty list of none, int8, tpu-std, "
     "tpu-max (the edge's accelerators)"),
    ("raspberry-pi-4", 'role = "edge"', 'role = "fog"',
     "key 'profile.role' should be one of edge, cloud, got 'fog'"),
    ("raspberry-pi-4", "frequencies_mhz = [600,", "frequencies_mhz = [600.5,",
     "key 'cpu.frequencies_mhz' should be whole MHz, ascending and unique"),
    ("raspberry-pi-4", "one = [0.0, 5.84]", "one = [0.0, -5.84]",
     "key 'timing.int8.one' should be a list of numbers >= 0"),
    ("raspberry-pi-4", "one = [0.0, 5.84]", 'one = "fast"',
     "key 'timing.int8.one' should be a list, got 'fast'"),
    ("raspberry-pi-4", "one = [0.0, 5.84]", "one = [0.0]",
     "key 'timing.int8.one' should have 2 values ([fixed_ms, scaled_ms]), got 1"),
    ("raspberry-pi-4", "fp32_per_int8 = 1.565", "fp32_per_int8 = inf",
     "key 'timing.fp32_per_int8' should be a number > 0, got inf"),
    ("raspberry-pi-4", "mbps = 575.0", "mbps = 0",
     "key 'link.mbps' should be a number > 0, got 0"),
    ("cloud-gpu-server", "request_ms = 0.5", "request_ms = -1",
     "key 'tail_timing.request_ms' should be a number >= 0, got -1"),
    ("cloud-gpu-server", "gmac = 2.390", "gmac = nan",
     "key 'tail_timing.none.gmac' should be a number >= 0, got nan"),
    ("cloud-gpu-server", "gpu = { busy_w = 650.0 }", "gpu = { busy_w = -650.0 }",
     "key 'power.accelerators.gpu.busy_w' should be a number > 0, got -650.0"),
])
def test_a_bad_value_is_named_with_its_file_and_key(tmp_path, name, old, new, message):
    path = _mutated(tmp_path, name, old, new)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {message}")):
        load_profile(path)


def test_an_empty_timing_table_is_refused(tmp_path):
    """An empty [timing.int8] would time every int8 head at 0 ms."""
    text = (PROFILES_DIR / "jetson-nano.toml").read_text()
    head, _, _ = text.partition("\n[timing.int8]\n")
    path = tmp_path / "jetson.toml"
    path.write_text(head + "\n[timing.int8]\n")
    with pytest.raises(ConfigError, match=r"\[timing.int8\] should have at least one of one, gmac"):
        load_profile(path)


def test_the_pi_controller_checks_its_hub_port(tmp_path):
    path = _mutated(tmp_path, "raspberry-pi-4", "port = 1", "port = 0")
    profile = load_profile(path)  # the [tpu] table is the controller's to read
    with pytest.raises(ConfigError, match=re.escape(f"{path}: key 'tpu.port' should be an "
                                                    "integer >= 1, got 0")):
        PiSettings.from_profile(profile)
