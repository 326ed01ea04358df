"""Cubes, fronts and policies shared by the online-phase tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toolkit.cube import cube_from_runs, pareto_configs, save_cube
from toolkit.policy import Policy

REPO_ROOT = Path(__file__).resolve().parents[2]


def toy_runs(seed: int = 0, model: str = "toy") -> list[dict]:
    """Runs of a 4-split model (split 3 = edge only) at two frequencies.

    Cloud time (600 W) costs most energy, so energy falls and latency rises
    towards the edge; 600 MHz is slower but cheaper than 1800 MHz; ``int8`` is
    faster and cheaper but less accurate. Split 2 at 1800 MHz without int8 has
    40 noisy runs, the others 1 to 4.
    """
    rng = np.random.default_rng(seed)
    runs = []
    for split in range(4):
        for freq in (600, 1800):
            for edge in ("none", "int8"):
                if split == 0 and edge != "none":
                    continue
                edge_ms = split * 60.0 * (1800 / freq) * (0.85 if edge == "int8" else 1.0)
                transfer = 0.0 if split == 3 else 40.0 - 10.0 * split
                cloud = 20.0 * (3 - split) / 3
                repeats = 40 if (split, freq, edge) == (2, 1800, "none") else 1 + split
                for _ in range(repeats):
                    noise = rng.lognormal(0.0, 0.08)
                    t = transfer * rng.lognormal(0.0, 0.05)
                    e_ms = edge_ms * noise
                    runs.append({
                        "model": model, "split": split, "cpu_freq": freq, "edge_accel": edge,
                        "cloud_accel": "none", "latency_ms": e_ms + t + cloud,
                        "edge_ms": e_ms, "transfer_ms": t, "cloud_ms": cloud,
                        "energy_j": 0.6 * cloud + e_ms * (4.0 if freq == 1800 else 1.2) / 1e3
                        + 0.001 * t,
                        "accuracy": 0.85 if edge == "int8" else 0.9,
                    })
    return runs


def toy_cube(seed: int = 0, model: str = "toy"):
    """A small cube of :func:`toy_runs` (modelled energy: a test fixture)."""
    return cube_from_runs(toy_runs(seed, model), {"testbed": "test",
                                                  "energy_source": "model:test"})


def front_doc(configs: list[dict], model: str = "toy") -> dict:
    """A minimal FRONT.json document over ``configs``."""
    return {"schema": "dynasplit.front/1", "model": model, "algorithm": "nsga2", "seed": 0,
            "objectives": {"latency_ms": "min", "energy_j": "min"}, "space_size": 20,
            "evaluations": len(configs), "evaluated": configs,
            "front": [{"config": c, "latency_ms": 1.0, "energy_j": 1.0, "accuracy": None}
                      for c in configs], "history": []}


@pytest.fixture()
def toy(tmp_path):
    """(cube, cube path, front path, policy path) of the toy model, default rule."""
    cube = toy_cube()
    cube_path = save_cube(cube, tmp_path / "toy.nc")
    front = pareto_configs(cube)
    front_path = tmp_path / "front.json"
    front_path.write_text(json.dumps(front_doc(front)))
    policy_path = tmp_path / "policy.json"
    Policy.from_front(front_path, cube).save(policy_path)
    return cube, cube_path, front_path, policy_path


def digits_policy(path: Path) -> Path:
    """A policy for the shipped digits CNN over settings the local testbed can run.

    The latency and energy figures are a hand-made cube (the scheduler test
    checks serving, not the figures); the runs it serves are real.
    """
    runs = []
    for split in (0, 3, 9):
        for freq in (600, 1800):
            for edge in ("none", "int8"):
                if split == 0 and edge != "none":
                    continue
                latency = 5.0 + split * (3.0 if freq == 1800 else 9.0)
                runs.append({"model": "digits-cnn", "split": split, "cpu_freq": freq,
                             "edge_accel": edge, "cloud_accel": "none",
                             "latency_ms": latency, "transfer_ms": 2.0 if split < 9 else 0.0,
                             "energy_j": 1.0 / (1 + split) + (0.01 if freq == 1800 else 0.0),
                             "accuracy": 0.95})
    cube = cube_from_runs(runs, {"energy_source": "model:test"})
    Policy.from_front(pareto_configs(cube, {"latency_ms": "min", "energy_j": "min"}),
                      cube).save(path)
    return path
