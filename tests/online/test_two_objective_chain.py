"""A ViT-style pool without accuracy: import -> optimize -> export -> simulate -> scheduler.

DynaSplit's ViT pool is not in the shared data, so the pool here is *derived*
from their VGG16 pool: the accuracy column is dropped, the columns are put in the
ViT pool's order, and the VGG16 layers 0-18 and 22 (all edge) become ViT layers
0-19 (their layers 19-21 are left out). Everything downstream must then work
on latency x energy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from toolkit.cli import main
from toolkit.cube import open_cube, pareto_configs
from toolkit.optimize import Normalizer
from toolkit.splinter import SPLIT_MAPS

VIT_COLUMNS = ["latency", "energy", "avg energy edge (J)", "avg latency edge (ms)",
               "avg latency cloud (ms)", "avg latency transfer (ms)", "avg energy cloud (J)",
               "avg energy cloud gpu (J)", "utilization cloud cpu (%)",
               "utilization cloud gpu (%)", "utilization edge cpu (%)", "tensor size (KB)",
               "cpu-freq", "layer", "edge-accelerator", "server-accelerator"]
TWO = {"latency_ms": "min", "energy_j": "min"}
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def chain(splinter_dir, tmp_path_factory):
    """The derived pool, imported, optimised and exported through the CLI."""
    out = tmp_path_factory.mktemp("vit")
    vgg = pd.read_csv(splinter_dir / "simulation_pool_vgg16.csv")
    vit = vgg[~vgg["layer"].isin([19, 20, 21])].drop(columns=["accuracy"])
    vit.loc[vit["layer"] == 22, "layer"] = 19
    pool = out / "simulation_pool_vit.csv"
    vit[VIT_COLUMNS].to_csv(pool, index=False)
    paths = {k: out / v for k, v in {"cube": "vit.nc", "front": "FRONT.json",
                                     "policy": "policy.json", "script": "scheduler.py"}.items()}
    assert main(["cube", "import-splinter", str(pool), "-o", str(paths["cube"]),
                 "--model", "vit-b16"]) == 0
    assert main(["optimize", str(paths["cube"]), "-o", str(paths["front"]), "--budget", "0.2",
                 "--quiet"]) == 0
    assert main(["export", str(paths["front"]), "--cube", str(paths["cube"]),
                 "-o", str(paths["policy"]), "--script", str(paths["script"])]) == 0
    return paths


def test_import_has_no_accuracy_and_vit_splits(chain):
    cube = open_cube(chain["cube"])
    assert "accuracy" not in cube.data_vars and cube.attrs["accuracy_mode"] == "absent"
    assert set(cube["split"].values.tolist()) <= set(SPLIT_MAPS["vit-b16"])
    assert int(cube["split"].max()) == 31


def test_front_lists_the_two_objectives_it_used(chain):
    doc = json.loads(chain["front"].read_text())
    assert doc["objectives"] == TWO
    assert doc["normalization"]["objectives"] == list(TWO)
    assert all(set(e) >= set(TWO) and e.get("accuracy") is None for e in doc["front"])
    # the hypervolume is two-dimensional: at most 1.1 x 1.1 in normalised space
    assert 0 < doc["hypervolume"] <= 1.1 ** 2
    cube = open_cube(chain["cube"])
    true_front = pareto_configs(cube, TWO)
    norm = Normalizer.from_dict(doc["normalization"])
    ours = [[e["latency_ms"], e["energy_j"]] for e in doc["front"]]
    best = norm.hypervolume(_values(cube, true_front))
    assert norm.hypervolume(ours) >= 0.95 * best


def _values(cube, configs):
    from toolkit.cube import select

    out = []
    for c in configs:
        runs = select(cube, c)
        out.append([float(runs["latency_ms"].mean()), float(runs["energy_j"].mean())])
    return out


def test_simulate_scores_every_strategy_on_latency_and_energy(chain, splinter_dir, capsys):
    trace = splinter_dir / "network_latency_50_samples.csv"
    assert main(["simulate", str(chain["cube"]), "--policy", str(chain["policy"]),
                 "--trace", str(trace), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["requests"] == 50  # DynaSplit's "vit" requests
    strategies = doc["strategies"]
    assert {"cloud", "edge", "static-energy", "static-latency", "static-energy-space",
            "static-latency-space", "dynasplit", "policy"} <= set(strategies)
    assert strategies["dynasplit"]["energy_j_mean"] < strategies["cloud"]["energy_j_mean"]
    assert strategies["static-energy-space"]["energy_j_mean"] <= \
        strategies["static-energy"]["energy_j_mean"] + 1e-9


def test_exported_scheduler_dry_run(chain):
    lines = [json.dumps({"id": i, "deadline_ms": d})
             for i, d in enumerate([120, 500, 2000, 10000])]
    proc = subprocess.run([sys.executable, str(chain["script"]), "--dry-run"],
                          input="\n".join(lines), capture_output=True, text=True, timeout=120,
                          env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = [json.loads(x) for x in proc.stdout.splitlines() if '"status"' in x]
    assert [o["status"] for o in done] == ["ok"] * 4
    assert {o["config"]["model"] for o in done} == {"vit-b16"}
    energy = {o["deadline_ms"]: o["energy_j"] for o in done}
    assert energy[10000.0] < energy[120.0]  # a loose threshold lets it save energy


def test_panels_and_plots_work_on_latency_and_energy(chain):
    import matplotlib.pyplot as plt

    from toolkit.plots import pareto_front_2d, pareto_pairs
    from toolkit.widgets import OptimizerPanel, TradeoffExplorer

    cube = open_cube(chain["cube"])
    panel = OptimizerPanel(cube, budget=0.1, seed=1)
    panel.run_button.click()
    assert dict(panel.result.objectives) == TWO
    assert "objectives latency_ms, energy_j;" in panel.widget.children[0].value
    assert 0.5 < panel.result.hypervolume / panel.exhaustive_hypervolume <= 1.0
    explorer = TradeoffExplorer(cube, threshold=500.0)
    assert "accuracy" not in explorer.x.options and explorer.colour.value == "none"
    pairs = pareto_pairs(cube)
    assert len(pairs.axes) == 1 and "latency and energy" in pairs._suptitle.get_text()
    front = pareto_front_2d(cube)
    assert len(front.axes) == 1  # no accuracy colour bar
    plt.close("all")
