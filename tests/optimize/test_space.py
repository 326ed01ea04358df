"""ConfigSpace: construction, validity rules, constraints, encoding."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.config import Config, config_problems
from toolkit.errors import ConfigError
from toolkit.optimize import ConfigSpace

TOY_VALID = 8 + 12 + 6 * 4 * 3 * 2 - 3  # split 0 + last split + middle - holes


def test_from_cube_holds_measured_valid_configurations(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    assert space.model == "toy"
    assert len(space) == TOY_VALID
    assert space.n_splits == 8
    configs = space.configs()
    assert len({tuple(c.values()) for c in configs}) == TOY_VALID
    for config in configs:
        assert config_problems(Config.from_mapping(config), space.n_splits) == []
    assert {"model": "toy", "split": 3, "cpu_freq": 1000, "edge_accel": "tpu-max",
            "cloud_accel": "gpu"} not in space  # a hole of the cube
    assert {"model": "toy", "split": 3, "cpu_freq": 1000, "edge_accel": "tpu-std",
            "cloud_accel": "gpu"} in space


def test_from_profiles_counts_and_rules():
    space = ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server")
    freqs, edges, clouds = 7, 4, 2
    assert len(space) == freqs * clouds + freqs * edges + 3 * freqs * edges * clouds
    assert all(c["edge_accel"] == "none" for c in space if c["split"] == 0)
    assert all(c["cloud_accel"] == "none" for c in space if c["split"] == 4)
    small = ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server",
                                      edge_accels=["none", "tpu-max"], cloud_accels=["gpu"])
    # cloud_accel gpu only: the edge-only split has no valid configuration left
    assert {c["split"] for c in small} == {0, 1, 2, 3}
    with pytest.raises(ConfigError, match=r"tpu-ultra.*valid: none, int8, tpu-std, tpu-max"):
        ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server",
                                  edge_accels=["tpu-ultra"])
    with pytest.raises(ConfigError, match="edge and a cloud profile"):
        ConfigSpace.from_profiles("vgg16", 5, "cloud-gpu-server", "raspberry-pi-4")


def test_constraints(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    low = space.constrain(cpu_freqs=[600, 1000])
    assert {c["cpu_freq"] for c in low} == {600, 1000}
    assert len(low) < len(space)
    no_tpu_max = space.constrain(lambda c: c["edge_accel"] != "tpu-max")
    assert "tpu-max" not in {c["edge_accel"] for c in no_tpu_max}
    accurate = space.constrain(min_accuracy=0.759)
    assert len(accurate) > 0
    assert all(space.accuracy[tuple(c[k] for k in ("split", "cpu_freq", "edge_accel",
                                                   "cloud_accel"))] >= 0.759
               for c in accurate)
    both = ConfigSpace.from_cube(toy_cube, cpu_freqs=[1800], min_accuracy=0.759)
    assert len(both) == len(accurate.constrain(cpu_freqs=[1800]))
    with pytest.raises(ConfigError, match="cpu_freqs 700 are not in the space; valid: 600"):
        space.constrain(cpu_freqs=[700])
    with pytest.raises(ConfigError, match="no valid configuration"):
        space.constrain(lambda c: False)
    with pytest.raises(ConfigError, match="callable"):
        space.constrain(42)


def test_min_accuracy_needs_accuracy(toy_cube_no_accuracy):
    space = ConfigSpace.from_cube(toy_cube_no_accuracy)
    with pytest.raises(ConfigError, match="min_accuracy needs accuracy data"):
        space.constrain(min_accuracy=0.5)
    profiles = ConfigSpace.from_profiles("m", 3, "raspberry-pi-4", "cloud-gpu-server")
    with pytest.raises(ConfigError, match="min_accuracy"):
        profiles.constrain(min_accuracy=0.5)


def test_encode_decode_round_trip(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    for row in space.genes:
        config = space.decode(row)
        assert space.encode(config) == tuple(row)
        assert space.is_valid(row)
    with pytest.raises(ConfigError, match="cpu_freq=700 is not in the space"):
        space.encode({"split": 1, "cpu_freq": 700, "edge_accel": "none", "cloud_accel": "gpu"})
    with pytest.raises(ConfigError, match="model 'other'"):
        space.encode({"model": "other", "split": 1, "cpu_freq": 600, "edge_accel": "none",
                      "cloud_accel": "gpu"})


def test_nearest_repairs_onto_valid_and_respects_exclusion(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    rng = np.random.default_rng(0)
    split0_tpu = (0, 0, space.values["edge_accel"].index("tpu-std"), 0)
    assert not space.is_valid(split0_tpu)
    repaired = space.nearest(split0_tpu, rng)
    assert space.is_valid(repaired)
    exclude = np.ones(len(space), bool)
    assert space.nearest(split0_tpu, rng, exclude) is None
    exclude[5] = False
    assert space.nearest(split0_tpu, rng, exclude) == tuple(space.genes[5])


def test_cube_with_several_models_needs_a_choice(toy_cube):
    import xarray as xr

    other = toy_cube.assign_coords(model=["other"])
    both = xr.concat([toy_cube, other], dim="model")
    with pytest.raises(ConfigError, match="several models; choose one of toy, other"):
        ConfigSpace.from_cube(both)
    assert ConfigSpace.from_cube(both, model="other").model == "other"
    with pytest.raises(ConfigError, match="model 'nope' is not in the cube; valid: toy, other"):
        ConfigSpace.from_cube(both, model="nope")
