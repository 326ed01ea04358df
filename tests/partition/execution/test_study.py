"""Partitioning studies: real runs into a cube with strategy and devices dims, resumably."""

from __future__ import annotations

import json

import numpy as np
import pytest

import toolkit.cli as cli
from toolkit.cube import configurations, cube_info, open_cube, select, to_dataframe
from toolkit.errors import ToolkitError
from toolkit.partition import PARTITION_VARIABLES, Link, PartitionStudy, StudySpec, format_table

pytestmark = pytest.mark.slow


def test_study_writes_a_cube_and_resumes(cluster, tmp_path):
    out = tmp_path / "partition.nc"
    spec = StudySpec("digits-cnn", ["spatial", "hybrid-spatial"], [2, 3], split=3,
                     codecs=["fp32", "int8"], samples=2, warmup=0, inputs="random",
                     link=Link(200.0, 0.5))
    study = PartitionStudy(cluster, spec, out, progress=False)
    study.run()
    assert study.summary.done_now == 6 and not study.summary.failures
    cube = open_cube(out)
    assert {"strategy", "devices", "codec"} <= set(cube.dims)
    assert cube["strategy"].values.tolist() == ["hybrid-spatial", "spatial"]
    assert cube["devices"].values.tolist() == [2, 3]
    assert cube["split"].values.tolist() == [3, 9]  # hybrid cut; all on the edge devices
    for name, (units, _) in PARTITION_VARIABLES.items():
        assert cube[name].attrs["units"] == units
    df = to_dataframe(cube)
    assert len(df) == 6 and set(df["codec"]) == {"fp32", "int8"}
    assert (df.loc[df["codec"] == "fp32", "max_abs_error"] <= 1e-4).all()
    assert (df["energy_j"] >= df["max_device_energy_j"]).all()
    split = df["compute_energy_j"] + df["comm_energy_j"] + df["idle_energy_j"]
    np.testing.assert_allclose(split, df["energy_j"], rtol=1e-12)
    assert (df["comm_energy_j"] > 0).all() and (df["idle_energy_j"] > 0).all()
    assert cube.attrs["idle_accounting"] == "request"
    hybrid = select(cube, {"strategy": "hybrid-spatial", "devices": 2, "codec": "int8",
                           "split": 3})
    assert float(hybrid["cloud_energy_j"].sel(repeat=0).squeeze()) > 0
    assert len(configurations(cube)) == 6
    assert cube.attrs["energy_source"] == "model:raspberry-pi-4+model:cloud-gpu-server"
    assert cube_info(cube)["runs"] == 6
    assert len(study.records) == 6 and len(study.records[0]["run"]["per_device"]) >= 2

    again = PartitionStudy(cluster, spec, out, progress=False)
    again.run()  # every run is in the journal: nothing runs again
    assert again.summary.done_now == 0 and again.summary.done_before == 6
    np.testing.assert_array_equal(open_cube(out)["latency_ms"].values, cube["latency_ms"].values)

    other = StudySpec("digits-cnn", ["spatial"], [2], samples=3)
    with pytest.raises(ToolkitError, match="belongs to a different study"):
        PartitionStudy(cluster, other, out, progress=False).run()


def test_a_grown_study_measures_only_its_new_runs(cluster, tmp_path):
    """The campaign's resume rule: a larger grid keeps the runs measured before."""
    out = tmp_path / "grow.nc"
    small = StudySpec("digits-cnn", ["spatial"], [2], samples=2, warmup=0, inputs="random")
    PartitionStudy(cluster, small, out, progress=False).run()
    before = open_cube(out)
    journal = (tmp_path / "grow.nc.journal").read_text().splitlines()

    grown = StudySpec("digits-cnn", ["spatial", "output-channel"], [2, 3], samples=2, warmup=0,
                      inputs="random")
    study = PartitionStudy(cluster, grown, out, progress=False)
    cube = study.run()
    assert (study.summary.done_before, study.summary.done_now, study.summary.planned) == (1, 3, 4)
    assert "4/4 runs measured (3 now, 1 before)" in str(study.summary)
    now = (tmp_path / "grow.nc.journal").read_text().splitlines()
    assert now[:len(journal)] == journal  # the earlier runs are kept, not measured again
    keys = [json.loads(line)["key"] for line in now[1:]]
    assert len(keys) == len(set(keys)) == 4
    assert cube["strategy"].values.tolist() == ["output-channel", "spatial"]
    assert cube["devices"].values.tolist() == [2, 3]
    old = {"strategy": "spatial", "devices": 2}
    np.testing.assert_array_equal(select(cube, old)["latency_ms"].values,
                                  select(before, old)["latency_ms"].values)
    assert [r["config"]["devices"] for r in study.measured()] == [2, 3, 2, 3]

    slower = StudySpec("digits-cnn", ["spatial"], [2], samples=3, warmup=0, inputs="random",
                       link=Link(10.0, 1.0))
    with pytest.raises(ToolkitError, match=r"belongs to a different study, measured with other "
                       r"settings \(link .* samples 2 -> 3\)") as refused:
        PartitionStudy(cluster, slower, out, progress=False).run()
    assert "model" not in str(refused.value) and "strategies" not in str(refused.value)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras saving
def test_a_refused_strategy_is_recorded_not_retried(cluster, mlp_file, tmp_path):
    spec = StudySpec(str(mlp_file), ["spatial", "output-channel"], [2], samples=2, inputs="random")
    study = PartitionStudy(cluster, spec, tmp_path / "mlp.nc", progress=False)
    cube = study.run()
    assert cube["strategy"].values.tolist() == ["output-channel"]
    [refused] = study.summary.refused
    assert refused["config"]["strategy"] == "spatial" and "must start with spatial layers" in \
        refused["reason"]


def test_cli_measures_and_writes_a_cube(tmp_path, capsys):
    out = tmp_path / "cli.nc"
    status = cli.main(["partition", "digits-cnn", "--devices", "2", "--strategy", "spatial",
                       "--measure", "--samples", "3", "--link-mbps", "50", "--json",
                       "--idle-accounting", "busy", "-o", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    entry = report["strategies"]["spatial"]
    assert entry["measured"]["samples"] == 3 and entry["measured"]["max_abs_error"] <= 1e-4
    assert entry["measured"]["link"] == {"mbps": 50.0, "rtt_ms": 0.0}
    for device in entry["per_device"]:
        measured = device["measured"]
        assert measured["sent_bytes"] == device["sent_bytes"]
        assert measured["received_bytes"] == device["received_bytes"]
        assert measured["energy_source"] == "model:raspberry-pi-4"
        assert measured["latency_ms"] > 0 and measured["energy_j"] > 0
        assert measured["idle_energy_j"] == device["idle_energy_j"] == 0  # busy accounting
        assert measured["compute_energy_j"] + measured["comm_energy_j"] == measured["energy_j"]
    assert entry["measured"]["idle_accounting"] == "busy"
    assert entry["measured"]["idle_energy_j"] == 0 < entry["measured"]["comm_energy_j"]
    line = next(x for x in format_table(report).splitlines() if "energy split" in x)
    assert line.startswith("  energy split mJ pred/meas (busy accounting): compute ")
    assert line.endswith("idle 0.000/0.000")
    cube = open_cube(out)
    assert cube["strategy"].values.tolist() == ["spatial"] and cube["devices"].values.tolist() \
        == [2]
    assert cube.attrs["idle_accounting"] == "busy"
    assert float(cube["idle_energy_j"].max()) == 0
    np.testing.assert_allclose(cube["compute_energy_j"] + cube["comm_energy_j"],
                               cube["energy_j"], rtol=1e-12)


def test_cli_output_needs_measure(capsys):
    status = cli.main(["partition", "vgg-stack", "--devices", "2", "-o", "x.nc"])
    err = capsys.readouterr().err
    assert status == 2 and "add --measure" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "vgg-stak"}, r"unknown model 'vgg-stak'; valid: vgg-stack, mobilenet-stack"),
    ({"cpu_freqs": [600.5]}, "cpu_freq must be a whole number, got 600.5"),
    ({"warmup": -1}, "warmup must be an integer >= 0, got -1"),
    ({"seed": -1}, "seed must be None or an integer >= 0, got -1"),
    ({"input_size": 0}, "input_size must be an integer >= 1, got 0"),
])
def test_a_study_spec_names_what_it_cannot_measure(change, message):
    """Checked when the spec is made; a typo was found when the cluster ran it."""
    with pytest.raises(ToolkitError, match=message):
        StudySpec(**{"model": "vgg-stack", "strategies": ["spatial"], "devices": [2], **change})


def test_one_strategy_or_count_is_a_list_of_one():
    spec = StudySpec("vgg-stack", "spatial", 2, cpu_freqs=600)
    assert (spec.strategies, spec.devices, spec.cpu_freqs) == (["spatial"], [2], [600])


def test_a_study_names_what_it_cannot_run_with(tmp_path):
    from toolkit.partition import PartitionCluster

    spec = StudySpec("vgg-stack", ["spatial"], [2])
    cluster = PartitionCluster(2)  # not started: nothing runs before the checks
    for args, kwargs, message in (
            (("local", spec, tmp_path / "s.nc"), {}, "a study runs on a PartitionCluster"),
            ((cluster, {"model": "vgg-stack"}, tmp_path / "s.nc"), {}, "needs a StudySpec"),
            ((cluster, spec, None), {}, "needs its output cube's path, got None"),
            ((cluster, spec, tmp_path / "s.nc"), {"retries": -1}, "retries must be an "
             "integer >= 0"),
            ((cluster, spec, tmp_path / "s.nc"), {"backoff_s": float("inf")}, "backoff_s must "
             "be a number of seconds >= 0, got inf")):
        with pytest.raises(ToolkitError, match=message):
            PartitionStudy(*args, **kwargs)
    assert not (tmp_path / "s.nc.journal").exists()


def test_a_cluster_names_profiles_of_the_wrong_role_and_bad_timeouts():
    from toolkit.partition import PartitionCluster

    for kwargs, message in (({"cloud_profile": "raspberry-pi-4"}, "role 'edge'; here a profile "
                             "with role 'cloud'"),
                            ({"workers": 1, "device_profiles": ["cloud-gpu-server"]},
                             "role 'cloud'; here a profile with role 'edge'"),
                            ({"workers": 2, "device_profiles": "raspberry-pi-4"},
                             "names 1 profiles for 2 workers"),
                            ({"startup_timeout": float("nan")}, "startup_timeout must be a "
                             "number of seconds > 0, got nan"),
                            ({"run_timeout": -1}, "run_timeout must be a number of seconds > 0")):
        with pytest.raises(ToolkitError, match=message):
            PartitionCluster(**kwargs)
