"""The optimizer benchmark's clairvoyant ceiling, on DynaSplit's real VGG16 pool."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from toolkit.cube import save_cube
from toolkit.splinter import read_pool

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench_module():
    """``benchmarks/optimizer.py`` (not a package) loaded as a module."""
    spec = importlib.util.spec_from_file_location("optimizer_benchmark",
                                                  REPO_ROOT / "benchmarks" / "optimizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def vgg16(tmp_path_factory, splinter_dir):
    """DynaSplit's VGG16 simulation pool as a cube, and its file."""
    cube = read_pool(splinter_dir / "simulation_pool_vgg16.csv", model="vgg16")
    return cube, save_cube(cube, tmp_path_factory.mktemp("pool") / "vgg16.nc")


def test_clairvoyant_without_noise_measures_the_front_first(bench_module, vgg16):
    cube, _ = vgg16
    bench = bench_module.Bench(bench_module.perturbed(cube, 0.2, 0.0, 0), None)
    order = bench_module.clairvoyant_order(bench, bench.table.copy(), 1e-9,
                                           len(bench.reference), seed=0)
    keys = {tuple(int(g) for g in bench.space.encode(bench.configs[i])) for i in order}
    assert keys == bench.reference.keys      # told the values exactly: the front, nothing else
    assert bench_module.evaluations_for_goal(bench, order) <= len(bench.reference)


def test_benchmark_reports_the_clairvoyant_ceiling_on_a_noisy_pool(bench_module, vgg16, capsys):
    _, path = vgg16
    common = [str(path), "--seeds", "1", "--budgets", "0.05", "--algorithms", "nsga2",
              "--optuna-populations", "", "--drop", "0.2"]
    out = bench_module.main([*common, "--noise", "0.05"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(out))
    row = out["budgets"]["0.05"]
    ceiling = row["clairvoyant"]
    assert set(ceiling) >= {"hv_ratio", "igd_plus", "front_share"}
    # knowing every value before the noise beats drawing at random, and ours
    assert ceiling["front_share"]["median"] > row["random"]["front_share"]["median"]
    assert ceiling["hv_ratio"]["median"] >= row["nsga2"]["hv_ratio"]["median"]
    about = out["clairvoyant"]
    assert about["seeds"] == 3 and about["searched"] == row["evaluations"]
    assert all(k is None or 1 <= k <= row["evaluations"] for k in about["evaluations_for_goal"])
    assert out["front_share"]["0.05"]["clairvoyant"] == ceiling["front_share"]["median"]
    without = bench_module.main([*common, "--noise", "0"])
    assert without["clairvoyant"].startswith("not run")
    assert "clairvoyant" not in without["budgets"]["0.05"]
    assert np.isfinite(without["budgets"]["0.05"]["nsga2"]["hv_ratio"]["median"])
