"""A small synthetic cube with real trade-offs, for the panel tests.

Built with :func:`toolkit.cube.cube_from_runs` from a closed-form model of a
6-split network: later splits do more work on the (slow, frequency-scaled)
edge and send less; ``int8`` halves edge time and costs accuracy; the ``gpu``
speeds the cloud up at a higher power. Three repeats per configuration with a
deterministic spread.
"""

from __future__ import annotations

import itertools

import pytest
import xarray as xr

from toolkit.config import Config, config_problems
from toolkit.cube import cube_from_runs

LAST = 5
FREQS = (600, 1200, 1800)


def toy_runs(model: str = "toy") -> list[dict]:
    runs = []
    for split, freq, edge, cloud in itertools.product(range(LAST + 1), FREQS, ("none", "int8"),
                                                      ("none", "gpu")):
        config = Config(model, split, freq, edge, cloud)
        if config_problems(config, LAST + 1):
            continue
        for repeat in range(3):
            edge_ms = split * 8.0 * 1800 / freq * (0.5 if edge == "int8" else 1.0)
            transfer_ms = 0.0 if split == LAST else 40.0 / (split + 1)
            cloud_ms = (LAST - split) * 3.0 * (0.3 if cloud == "gpu" else 1.0)
            jitter = 1.0 + 0.04 * (repeat - 1)
            latency = (edge_ms + transfer_ms + cloud_ms) * jitter
            edge_j = edge_ms / 1e3 * (1.0 + freq / 600) + transfer_ms / 1e3 * 0.5
            cloud_j = cloud_ms / 1e3 * (60.0 if cloud == "gpu" else 25.0)
            runs.append({**config.as_dict(), "latency_ms": latency, "edge_ms": edge_ms,
                         "transfer_ms": transfer_ms, "cloud_ms": cloud_ms,
                         "energy_j": (edge_j + cloud_j) * jitter, "edge_energy_j": edge_j,
                         "cloud_energy_j": cloud_j,
                         "accuracy": 0.95 - (0.03 if edge == "int8" and split < LAST else 0.0)
                         - (0.01 if edge == "int8" and split == LAST else 0.0)})
    return runs


@pytest.fixture(scope="session")
def make_toy_runs():
    """:func:`toy_runs`, for tests that need the runs of another model name."""
    return toy_runs


@pytest.fixture(scope="session")
def toy_cube() -> xr.Dataset:
    """The synthetic cube (energy labelled ``model:toy``: it is modelled, not measured)."""
    return cube_from_runs(toy_runs(), {"testbed": "toy", "energy_source": "model:toy",
                                       "samples_per_run": 1})
