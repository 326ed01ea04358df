"""A small synthetic cube whose exhaustive front the tests compute directly."""

from __future__ import annotations

import itertools

import pytest

from toolkit.cube import cube_from_runs

SPLITS = range(8)
FREQS = (600, 1000, 1400, 1800)
EDGE = ("none", "tpu-std", "tpu-max")
CLOUD = ("none", "gpu")
#: configurations left out of the synthetic cube (holes, as in real campaigns)
HOLES = {(3, 1000, "tpu-max", "gpu"), (5, 600, "none", "none"), (0, 1400, "none", "gpu")}


def synthetic_objectives(split: int, freq: int, edge: str, cloud: str) -> dict[str, float]:
    """A split-inference-like model: head on the edge, tensor transfer, tail in the cloud."""
    last = len(SPLITS) - 1
    speed = {"none": 1.0, "tpu-std": 0.35, "tpu-max": 0.25}[edge]
    head_ms = 60.0 * split * speed * 1800 / freq
    tensor_kb = [600, 900, 450, 300, 120, 90, 40, 0][split]
    transfer_ms = tensor_kb * 0.08
    tail_ms = (last - split) * (6.0 if cloud == "gpu" else 25.0)
    edge_w = 2.5 + 1.5 * freq / 1800 + {"none": 0.0, "tpu-std": 1.7, "tpu-max": 1.9}[edge]
    cloud_w = 0.0 if split == last else (650.0 if cloud == "gpu" else 800.0)
    latency = head_ms + transfer_ms + tail_ms
    energy = edge_w * latency / 1000 + cloud_w * tail_ms / 1000
    accuracy = 0.76 - (0.004 if edge != "none" and split > 0 else 0.0) - 0.001 * ((split * 5) % 3)
    return {"latency_ms": latency, "energy_j": energy, "accuracy": accuracy}


def synthetic_runs(model: str = "toy", accuracy: bool = True, repeats: int = 2) -> list[dict]:
    """Run records of every valid configuration except :data:`HOLES`."""
    last = len(SPLITS) - 1
    runs = []
    for split, freq, edge, cloud in itertools.product(SPLITS, FREQS, EDGE, CLOUD):
        if (split == 0 and edge != "none") or (split == last and cloud != "none"):
            continue
        if (split, freq, edge, cloud) in HOLES:
            continue
        values = synthetic_objectives(split, freq, edge, cloud)
        if not accuracy:
            values.pop("accuracy")
        for r in range(repeats):  # a little spread over repeats: +-1 % latency
            runs.append({"model": model, "split": split, "cpu_freq": freq, "edge_accel": edge,
                         "cloud_accel": cloud, **values,
                         "latency_ms": values["latency_ms"] * (1 + 0.01 * (2 * r - 1))})
    return runs


@pytest.fixture(scope="session")
def toy_cube():
    """Synthetic cube: 8 splits x 4 frequencies x 3 edge x 2 cloud accelerators, 2 repeats."""
    return cube_from_runs(synthetic_runs(), {"testbed": "synthetic",
                                             "energy_source": "model:synthetic"})


@pytest.fixture(scope="session")
def toy_cube_no_accuracy():
    """The synthetic cube without an accuracy variable (two objectives)."""
    return cube_from_runs(synthetic_runs(accuracy=False),
                          {"testbed": "synthetic", "energy_source": "model:synthetic"})


@pytest.fixture(scope="session")
def toy_objectives():
    """The synthetic objective function (split, freq, edge, cloud) -> objectives."""
    return synthetic_objectives
