"""The cube figures: what they take (a cube, its file, a table of means) and what
they name when given anything else."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from toolkit.cube import config_means, cube_from_runs, save_cube
from toolkit.errors import ToolkitError
from toolkit.plots import (
    energy_latency,
    energy_vs_split,
    latency_breakdown,
    pareto_front_2d,
    pareto_pairs,
)


def make_cube():
    runs = []
    for split in range(3):
        for freq in (600, 1200):
            accels = ["none"] if split == 0 else ["int8", "tpu-max"]
            for accel in accels:
                edge = 0.0 if split == 0 else 10.0 * split * 1200 / freq
                runs.append({"model": "m", "split": split, "cpu_freq": freq, "edge_accel": accel,
                             "cloud_accel": "gpu" if split < 2 else "none",
                             "edge_ms": edge, "transfer_ms": 5.0 - split, "cloud_ms": 8 - 4 * split,
                             "latency_ms": edge + 13 - 5 * split, "energy_j": 1 + edge / 10,
                             "accuracy": 0.9 - 0.01 * split})
    return cube_from_runs(runs, {"testbed": "unit", "energy_source": "model:unit"})


FIGURES = {
    "energy_latency": energy_latency,
    "latency_breakdown": latency_breakdown,
    "energy_vs_split": energy_vs_split,
    "pareto_front_2d": pareto_front_2d,
    "pareto_pairs": pareto_pairs,
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_a_figure_takes_a_cube_or_its_file(name, tmp_path):
    cube = make_cube()
    path = save_cube(cube, tmp_path / "c.nc")
    for data in (cube, path, str(path)):
        fig = FIGURES[name](data)
        assert fig.axes and all(ax.has_data() for ax in fig.axes if ax.get_label() != "<colorbar>")
        plt.close(fig)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_a_figure_names_what_is_no_cube(name):
    takes_table = name.startswith("pareto")
    wanted = ("a cube, a cube file's path or a per-configuration table" if takes_table
              else r"a cube \(an xarray Dataset, e.g. from open_cube, or a cube file's path\)")
    for value in (None, 3) if takes_table else (None, 3, pd.DataFrame()):
        with pytest.raises(ToolkitError, match=rf"^{name} needs {wanted}"):
            FIGURES[name](value)


def test_tables_and_cubes_without_what_a_figure_needs_are_named():
    cube = make_cube()
    with pytest.raises(ToolkitError, match=r"pareto_front_2d: the table has no column "
                                           r"latency_ms, energy_j; it needs latency_ms, energy_j"):
        pareto_front_2d(pd.DataFrame({"split": [1]}))
    with pytest.raises(ToolkitError, match=r"the cube has no edge_ms; latency_breakdown needs "
                                           r"edge_ms, transfer_ms, cloud_ms per run"):
        latency_breakdown(cube.drop_vars("edge_ms"))
    with pytest.raises(ToolkitError, match=r"the cube has no energy_j; energy_latency needs"):
        energy_latency(cube.drop_vars("energy_j"))
    fig = pareto_front_2d(config_means(cube))  # a table of means is taken as it is
    plt.close(fig)
