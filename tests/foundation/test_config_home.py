"""``toolkit.config`` is the one home of keys, accelerators, objectives and variables."""

from __future__ import annotations

import dataclasses

import pytest

from toolkit import config, cube, pareto, switching
from toolkit.devices.testbeds.testbed import RunRecord
from toolkit.errors import ConfigError
from toolkit.optimize import objectives, space


def test_the_other_modules_reexport_the_one_definition():
    assert cube.VARIABLES is config.VARIABLES
    assert cube.DEFAULT_OBJECTIVES is config.OBJECTIVES
    assert objectives.OBJECTIVES is config.OBJECTIVES
    assert pareto.SENSES is config.SENSES
    assert set(config.OBJECTIVES.values()) <= set(config.SENSES)
    assert set(config.OBJECTIVES) <= set(config.VARIABLES)


def test_keys_and_their_derived_lists():
    assert config.CONFIG_KEYS == ("model", "split", "cpu_freq", "edge_accel", "cloud_accel")
    assert config.EXTRA_KEYS == ("codec", "strategy", "devices")
    assert config.CONFIG_KEYS[1:] == space.GENES
    assert space.ORDINAL_GENES == ("split", "cpu_freq", "devices")
    assert config.KEYS["edge_accel"].values == config.EDGE_ACCELS == (
        "none", "int8", "tpu-std", "tpu-max")
    assert config.KEYS["cloud_accel"].values == config.CLOUD_ACCELS == ("none", "gpu")
    assert config.TPU_ACCELS == ("tpu-std", "tpu-max")


def test_a_run_record_writes_exactly_the_cube_variables():
    fields = {f.name for f in dataclasses.fields(RunRecord)}
    assert set(config.VARIABLES) <= fields


def test_accelerator_meaning_drives_the_hardware_state():
    tpu = {a: switching.hardware_state({"split": 1, "cpu_freq": 600, "edge_accel": a,
                                        "cloud_accel": "none"}, 3).tpu
           for a in config.EDGE_ACCELS}
    assert tpu == {"none": "off", "int8": "off", "tpu-std": "std", "tpu-max": "max"}


def test_config_keys_and_single_extras():
    assert config.config_keys(["devices", "repeat", "split", "codec", "model"]) == [
        "model", "split", "codec", "devices"]
    assert config.single_extras({"codec": ["q4", "q4"], "devices": [2, 3],
                                 "split": [1, 1]}) == {"codec": "q4"}


def test_domain_values_order_and_refusals():
    assert config.domain_values("edge_accel", ["tpu-max", "none", "none"]) == (
        "none", "tpu-max")
    assert config.domain_values("devices", [3, "2"]) == (2, 3)
    assert config.domain_values("strategy", ["b", "a"]) == ("a", "b")
    with pytest.raises(ConfigError, match=r"unknown codec\(s\) bf16"):
        config.domain_values("codec", ["bf16"])
    with pytest.raises(ConfigError, match="devices must be integers >= 1, got 0"):
        config.domain_values("devices", [0])
    with pytest.raises(ConfigError, match="unknown configuration key 'colour'"):
        config.domain_values("colour", ["red"])
    assert config.coerce_value("cpu_freq", "600") == 600
    assert config.coerce_value("codec", "fp16") == "fp16"
