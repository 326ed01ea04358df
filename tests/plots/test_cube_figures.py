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


@pytest.mark.parametrize(("figure", "kwargs", "message"), [
    (latency_breakdown, {"cpu_freq": 1000}, r"latency_breakdown: cpu_freq=1000 is not in this "
                                            r"cube; valid cpu_freq values: 600, 1200"),
    (latency_breakdown, {"edge_accel": "tpu"}, r"latency_breakdown: edge_accel='tpu' is not in "
                                               r"this cube; valid edge_accel values: int8, none, "
                                               r"tpu-max"),
    (energy_vs_split, {"edge_accel": "gpu"}, r"energy_vs_split: edge_accel='gpu' is not in"),
    (energy_vs_split, {"by": "edge_accel", "cpu_freq": 900}, r"energy_vs_split: cpu_freq=900 "),
    (energy_vs_split, {"cloud_accel": "tpu"}, r"energy_vs_split: cloud_accel='tpu' is not in "
                                              r"this cube; valid cloud_accel values: gpu, none"),
    (pareto_front_2d, {"hue": "acuracy"}, r"pareto_front_2d: no column 'acuracy' to colour the "
                                          r"points by; valid: model, .* or None"),
    (pareto_front_2d, {"marks": {"pick": (3.0,)}}, r"pareto_front_2d: mark 'pick' should be an "
                                                   r"\(x, y\) pair of numbers, got \(3.0,\)"),
    (pareto_front_2d, {"marks": {"pick": "3,4"}}, r"pareto_front_2d: mark 'pick' should be "),
    (pareto_front_2d, {"marks": [(3.0, 4.0)]}, r"pareto_front_2d: marks should map a label to an "
                                                r"\(x, y\) point, got list"),
    (pareto_pairs, {"objectives": ("latency_ms", "energy")}, r"pareto_pairs: unknown "
                                                             r"objective\(s\) energy; valid: "
                                                             r"latency_ms, energy_j, accuracy"),
    (pareto_pairs, {"objectives": "latency_ms"}, r"pareto_pairs: objectives should be a tuple"),
])
def test_a_value_the_cube_does_not_hold_is_named_with_the_valid_ones(figure, kwargs, message):
    # before: an empty or uncoloured figure, or a ValueError from unpacking a mark
    with pytest.raises(ToolkitError, match=rf"^{message}"):
        figure(make_cube(), **kwargs)


def test_energy_is_labelled_unknown_where_the_cube_does_not_say_where_it_comes_from():
    from toolkit.plots import energy_kind, energy_label

    assert [energy_kind(s) for s in ("model:raspberry-pi-4", "meter:splinter", "rapl+model:x",
                                     "unknown", "", None)] == [
        "modelled", "measured", "modelled", "unknown", "unknown", "unknown"]
    assert energy_label(make_cube().drop_attrs()).endswith("(unknown: unknown)")
    fig = pareto_front_2d(make_cube(), marks={"pick": (10, 2.5)})
    assert "pick" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
