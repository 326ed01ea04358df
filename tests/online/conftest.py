"""Cubes, fronts and policies shared by the online-phase tests, request builders, and the
one live run of the exported scheduler on the local testbed."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
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


def requests(n: int, start: int = 0) -> list[str]:
    """``n`` request lines ``r{start}``... for sample indices, deadlines 60 to 900 ms."""
    return [json.dumps({"id": f"r{i}", "deadline_ms": [60, 120, 400, 900][i % 4],
                        "input": i}) for i in range(start, start + n)]


def npy_b64(array: np.ndarray) -> str:
    """``array`` as a base64 ``.npy`` (an inline input)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode()


def png_b64(pixels: np.ndarray, fmt: str = "PNG") -> str:
    """``pixels`` as a base64 image file (an inline input)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def inline_requests(n: int = 3) -> list[str]:
    """The first ``n`` held-out digits three ways each (a PNG with ``top_k`` 3, a ``.npy``,
    a sample index: ``img{i}``, ``npy{i}``, ``sample{i}``), and an array of the wrong shape
    (``wrong-shape``)."""
    from toolkit.models.digits import load_digits_data

    digits = load_digits_data()
    lines = []
    for i in range(n):
        pixels = np.round(digits.x_test[i, ..., 0] * 255).astype(np.uint8)
        lines.append({"id": f"img{i}", "deadline_ms": 500, "top_k": 3,
                      "input": {"image": png_b64(pixels)}})
        lines.append({"id": f"npy{i}", "deadline_ms": 500,
                      "input": {"npy": npy_b64(digits.x_test[i])}})
        lines.append({"id": f"sample{i}", "deadline_ms": 500, "input": i})
    lines.append({"id": "wrong-shape", "deadline_ms": 500,
                  "input": {"npy": npy_b64(np.zeros((9, 9, 1), np.float32))}})
    return [json.dumps(x) for x in lines]


@dataclass
class LiveRun:
    """The exported scheduler's run on the local testbed: its policy, what it was sent
    (one request a line), its exit status and output; :attr:`answers` by request id."""

    policy: Path
    sent: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def answers(self) -> dict[str, dict]:
        return {a["id"]: a for a in map(json.loads, self.stdout.splitlines()) if "id" in a}


@pytest.fixture(scope="session")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    """One exported scheduler on the local testbed (its own edge and cloud workers) for
    the session, serving :func:`digits_policy`: a batch of sample indices with a missing
    file among them (``r0``...``r19``, ``file``; ``test_scheduler.py``) and the inline
    inputs of :func:`inline_requests` (``test_service.py``). One process answers both,
    so the testbed starts once."""
    from toolkit.scheduler import export_script

    tmp_path = tmp_path_factory.mktemp("live")
    policy = digits_policy(tmp_path / "digits.json")
    script = export_script(tmp_path / "scheduler.py", policy)
    batch = requests(20)
    batch.insert(5, json.dumps({"id": "file", "deadline_ms": 100, "input": "nowhere.npy"}))
    sent = [*batch, *inline_requests()]
    proc = subprocess.run([sys.executable, str(script), "--log-level", "warning"],
                          input="\n".join(sent) + "\n", capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                          cwd=tmp_path)
    return LiveRun(policy, sent, proc.returncode, proc.stdout, proc.stderr)
