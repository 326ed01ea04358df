"""``dynasplit partition``: the JSON contract of the design page and the table."""

from __future__ import annotations

import json
import re

import pytest

import toolkit.cli as cli
from toolkit.partition import STRATEGIES

DEVICE_KEYS = {"macs", "weight_bytes", "peak_activation_bytes", "sent_bytes", "received_bytes",
               "latency_ms", "energy_j"}


def test_registered():
    assert "partition" in cli.COMMANDS


@pytest.fixture
def dynasplit(capsys):
    """Run the real command line in-process."""

    def run(*argv: str) -> tuple[int, str, str]:
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_json_schema(dynasplit):
    status, out, _ = dynasplit("partition", "vgg-stack", "--devices", "2", "--strategy", "all",
                               "--json", "--link-mbps", "50")
    assert status == 0
    report = json.loads(out)
    assert {"model", "devices", "strategies"} <= set(report)
    assert report["model"] == "vgg-stack" and report["devices"] == 2
    assert report["energy_source"] == "model:raspberry-pi-4"
    assert report["cost_model"]["link_mbps"] == 50 and report["cost_model"]["predicted"]
    assert list(report["strategies"]) == [*STRATEGIES, "hybrid"]  # hybrid: least energy
    hybrid = report["strategies"]["hybrid"]
    assert hybrid["objective"] == "total" and hybrid["min_accuracy"] is None
    assert hybrid["pinned"] == {} and hybrid["candidates"] == hybrid["feasible_candidates"] > 1
    assert hybrid["head_strategy"] in STRATEGIES and hybrid["label_source"] == "fp32-model"
    status, out, _ = dynasplit("partition", "vgg-stack", "--devices", "2", "--strategy",
                               "hybrid", "--json", "--link-mbps", "50", "--split",
                               str(hybrid["split"]), "--hybrid-strategy",
                               hybrid["head_strategy"], "--codec", hybrid["codec"])
    assert status == 0
    alone = json.loads(out)["strategies"]["hybrid"]  # the choice, pinned: the same plan
    assert hybrid["split"] == alone["split"] and hybrid["layer"] == alone["layer"]
    assert hybrid["per_device"] == alone["per_device"]
    for entry in report["strategies"].values():
        lossless = entry.get("codec", "fp32") == "fp32"  # a lossy hybrid codec rounds
        assert 0 <= entry["max_abs_error"] <= (1e-4 if lossless else 1.0)
        assert entry["energy_source"].startswith("model:raspberry-pi-4")  # hybrid: +cloud
        assert len(entry["per_device"]) == 2
        for device in entry["per_device"]:
            assert set(device) >= DEVICE_KEYS
            assert all(isinstance(device[k], (int, float)) and device[k] >= 0
                       for k in DEVICE_KEYS)
        assert sum(d["sent_bytes"] for d in entry["per_device"]) > 0


def test_table_of_all_strategies_ends_with_hybrid(dynasplit):
    status, out, _ = dynasplit("partition", "vgg-stack", "--devices", "2")  # --strategy all
    assert status == 0
    titles = [line.split(":")[0] for line in out.splitlines()
              if ": max |error|" in line]
    assert titles == [*STRATEGIES, "hybrid"]
    hybrid = next(line for line in out.splitlines() if line.startswith("hybrid: "))
    assert re.search(r"head [a-z-]+, split \d+ \(\w+\), \w+, \d+ B to the cloud", hybrid)
    assert "; least total energy of " in hybrid


def test_table(dynasplit):
    status, out, _ = dynasplit("partition", "mobilenet-stack", "--devices", "3",
                               "--strategy", "spatial", "--fuse", "none", "--gmacs", "2")
    assert status == 0
    assert "spatial: max |error|" in out and "model:raspberry-pi-4" in out
    assert "2 GMAC/s" in out and "not measured" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("device"))
    rows = out.splitlines()[out.splitlines().index(header) + 1:]
    assert [r.split()[0] for r in rows[:3]] == ["0", "1", "2"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras saving
def test_keras_file_and_refused_strategy(dynasplit, mlp_file):
    status, out, _ = dynasplit("partition", str(mlp_file), "--devices", "2", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["model"] == str(mlp_file)
    assert "must start with spatial layers" in report["refused"]["spatial"]
    assert set(report["strategies"]) == {"layer-wise", "output-channel", "input-channel",
                                         "hybrid"}
    assert report["strategies"]["hybrid"]["head_strategy"] != "spatial"
    status, out, _ = dynasplit("partition", str(mlp_file), "--devices", "2", "--json",
                               "--hybrid-strategy", "spatial")
    assert "must start with spatial layers" in json.loads(out)["refused"]["hybrid"]


@pytest.mark.parametrize(("argv", "message"), [
    (("no-such-model", "--devices", "2"), "unknown model 'no-such-model'"),
    (("vgg-stack", "--devices", "2", "--fuse", "some"), "fuse must be 'all', 'none'"),
    (("vgg-stack", "--devices", "2", "--profile", "no-such-board"), "no-such-board"),
])
def test_errors_are_one_line(dynasplit, argv, message):
    status, out, err = dynasplit("partition", *argv)
    assert status == 2 and out == ""
    assert err.startswith("dynasplit: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_devices_as_a_list_of_profiles(dynasplit):
    boards = ["raspberry-pi-4", "raspberry-pi-4", "raspberry-pi-3b", "jetson-nano"]
    status, out, _ = dynasplit("partition", "vgg-stack", "--devices", ",".join(boards),
                               "--strategy", "all", "--json", "--codec", "fp32")
    assert status == 0
    report = json.loads(out)
    assert report["devices"] == 4 and report["cost_model"]["device_profiles"] == boards
    assert report["energy_source"] == (
        "model:raspberry-pi-4+model:raspberry-pi-3b+model:jetson-nano")
    assert list(report["strategies"]) == [*STRATEGIES, "hybrid"]
    for entry in report["strategies"].values():
        assert [d["profile"] for d in entry["per_device"]] == boards
        assert 0 <= entry["max_abs_error"] <= 1e-4
    # shares follow each device's speed by default; --equal-shares gives equal ones, and
    # then the Pi 3B+ computes longest and every device waits for it
    status, out, _ = dynasplit("partition", "vgg-stack", "--devices", ",".join(boards),
                               "--strategy", "output-channel", "--equal-shares", "--json")
    equal = json.loads(out)["strategies"]["output-channel"]
    balanced = report["strategies"]["output-channel"]
    assert "speeds" not in equal["options"]
    assert balanced["options"]["speeds"][2] < 0.3 < 1 == balanced["options"]["speeds"][0]
    times = [d["compute_ms"] for d in equal["per_device"]]
    assert times[2] == max(times) and times[0] == min(times)
    assert max(d["compute_ms"] for d in balanced["per_device"]) < max(times)
    assert balanced["latency_ms"] < equal["latency_ms"]
    status, out, _ = dynasplit("partition", "vgg-stack", "--devices", ",".join(boards),
                               "--strategy", "spatial")
    assert status == 0 and f"on 4 devices ({', '.join(boards)})" in out.splitlines()[0]
    status, out, err = dynasplit("partition", "vgg-stack", "--devices", ",".join(boards),
                                 "--measure", "-o", "study.nc")
    assert status == 2 and out == "" and "leave out -o" in err


def test_bad_device_count_is_a_usage_error(dynasplit):
    for bad in ("0", "raspberry-pi-4,,jetson-nano"):
        with pytest.raises(SystemExit) as exit_:
            dynasplit("partition", "vgg-stack", "--devices", bad)
        assert exit_.value.code == 2


SPLIT_KEYS = ("compute_energy_j", "comm_energy_j", "idle_energy_j")


def test_energy_split_per_device_for_every_strategy(dynasplit):
    boards = ["raspberry-pi-4", "raspberry-pi-4", "raspberry-pi-3b", "jetson-nano"]
    reports, pins = {}, []
    for idle in ("request", "busy"):
        # the hybrid plan is chosen by energy, which the accounting changes: pin the
        # request accounting's choice so that both describe the same plans
        status, out, _ = dynasplit("partition", "digits-cnn", "--devices", ",".join(boards),
                                   "--strategy", "all", "--json", "--idle-accounting", idle,
                                   *pins)
        assert status == 0
        reports[idle] = report = json.loads(out)
        hybrid = report["strategies"]["hybrid"]
        pins = ["--split", str(hybrid["split"]), "--codec", hybrid["codec"],
                "--hybrid-strategy", hybrid["head_strategy"]]
        assert report["cost_model"]["idle"] == idle
        assert list(report["strategies"]) == [*STRATEGIES, "hybrid"]
        for entry in report["strategies"].values():
            for d in entry["per_device"]:
                compute, comm, idle_j = (d[k] for k in SPLIT_KEYS)
                assert compute + comm + idle_j == d["energy_j"]  # exactly, through JSON too
                assert comm == 5e-8 * (d["sent_bytes"] + d["received_bytes"])  # every board's
                assert (idle_j == 0) == (idle == "busy")
            assert sum(entry[k] for k in SPLIT_KEYS) == pytest.approx(entry["energy_j"],
                                                                      rel=1e-12)
            cloud = entry.get("cloud_energy_j", 0.0)
            assert entry["compute_energy_j"] == pytest.approx(
                sum(d["compute_energy_j"] for d in entry["per_device"]) + cloud)
    for name, request in reports["request"]["strategies"].items():
        busy = reports["busy"]["strategies"][name]
        assert busy["energy_j"] == pytest.approx(request["energy_j"] - request["idle_energy_j"])
        assert busy["comm_energy_j"] == request["comm_energy_j"]
    status, out, _ = dynasplit("partition", "digits-cnn", "--devices", "2", "--strategy",
                               "spatial", "--idle-accounting", "busy")
    split = next(line for line in out.splitlines() if "energy split" in line)
    assert "(busy accounting)" in split and split.endswith("idle 0.000")


def test_bad_idle_accounting_names_the_choices(dynasplit, capsys):
    with pytest.raises(SystemExit) as exit_:
        dynasplit("partition", "vgg-stack", "--devices", "2", "--idle-accounting", "waiting")
    assert exit_.value.code == 2
    assert "invalid choice: 'waiting' (choose from 'request', 'busy')" in capsys.readouterr().err


def test_residual_model_by_name_at_a_small_default_size(dynasplit):
    """``mobilenetv2`` (weights=None) partitions at 32x32 unless --input-size says otherwise:
    layer-wise, spatial and hybrid (spatial head) exactly, the channel strategies refused
    naming the Add. The hybrid is pinned (its search over every cut and codec is
    tested on digits-cnn) to a spatial head cut after three residual Adds."""
    status, out, _ = dynasplit("partition", "mobilenetv2", "--devices", "3", "--json",
                               "--fuse", "none", "--split", "30",
                               "--hybrid-strategy", "spatial", "--codec", "fp32")
    assert status == 0
    report = json.loads(out)
    assert report["input_shape"] == [32, 32, 3]
    assert set(report["strategies"]) == {"layer-wise", "spatial", "hybrid"}
    for entry in report["strategies"].values():
        assert entry["max_abs_error"] <= 1e-4
        assert all(d["macs"] > 0 for d in entry["per_device"])
    hybrid = report["strategies"]["hybrid"]
    assert (hybrid["layer"], hybrid["head_strategy"]) == ("block_6_expand", "spatial")
    for name in ("output-channel", "input-channel"):
        assert f"{name} cannot partition residual Add 'block_2_add'" in report["refused"][name]


STREAM_KEYS = {"requests", "interval_ms", "throughput_rps", "p50_ms", "p99_ms",
               "energy_per_request_j", "energy_source", "predicted"}


def test_stream_of_requests(dynasplit):
    status, out, _ = dynasplit("partition", "digits-cnn", "--devices", "4", "--json",
                               "--requests", "20", "--interval-ms", "0.2")
    assert status == 0
    report = json.loads(out)
    assert list(report["strategies"]) == [*STRATEGIES, "hybrid"]
    for name, entry in report["strategies"].items():
        stream = entry["stream"]
        assert set(stream) >= STREAM_KEYS and stream["predicted"] is True
        assert stream["requests"] == 20 and stream["interval_ms"] == 0.2
        assert stream["pipelined"] == (name == "layer-wise")
        assert stream["p99_ms"] >= stream["p50_ms"] >= entry["latency_ms"] - 1e-9
        assert stream["energy_source"] == entry["energy_source"]
    # requests arrive faster than any strategy serves one: layer-wise, slowest on one
    # request, pipelines them and serves the stream fastest
    s = report["strategies"]
    assert s["layer-wise"]["latency_ms"] > s["spatial"]["latency_ms"]
    assert s["layer-wise"]["stream"]["throughput_rps"] == max(
        e["stream"]["throughput_rps"] for e in s.values())
    status, out, _ = dynasplit("partition", "digits-cnn", "--devices", "4", "--strategy",
                               "layer-wise", "--requests", "3")
    assert status == 0
    assert "stream of 3 requests every 0 ms (pipelined; predicted): throughput" in out
    status, out, _ = dynasplit("partition", "digits-cnn", "--devices", "4", "--strategy",
                               "spatial", "--json")
    assert "stream" not in json.loads(out)["strategies"]["spatial"]  # only when asked


def test_bad_stream_flags(dynasplit):
    for flag, bad in (("--requests", "0"), ("--requests", "1.5"), ("--interval-ms", "-1"),
                      ("--interval-ms", "soon")):
        with pytest.raises(SystemExit) as exit_:
            dynasplit("partition", "digits-cnn", "--devices", "2", "--requests", "2", flag, bad)
        assert exit_.value.code == 2
    status, out, err = dynasplit("partition", "digits-cnn", "--devices", "2",
                                 "--interval-ms", "5")
    assert status == 2 and out == "" and "add --requests K" in err
    status, out, err = dynasplit("partition", "digits-cnn", "--devices", "2", "--requests", "3",
                                 "--measure", "-o", "never.nc")
    assert status == 2 and out == "" and "drop one of them" in err


def test_hybrid_objective_and_accuracy_floor(dynasplit):
    """The trained digits CNN: the floor and the objective change the chosen plan."""
    def hybrid(*argv: str) -> dict:
        status, out, _ = dynasplit("partition", "digits-cnn", "--devices", "3", "--strategy",
                                   "hybrid", "--json", *argv)
        assert status == 0
        return json.loads(out)["strategies"]["hybrid"]

    free = hybrid()
    assert (free["objective"], free["min_accuracy"], free["codec"]) == ("total", None, "q1")
    assert free["label_source"] == "labels" and free["accuracy"] < 0.97
    floored = hybrid("--min-accuracy", "0.97")
    assert floored["min_accuracy"] == 0.97 and floored["accuracy"] >= 0.97
    assert floored["energy_j"] > free["energy_j"]
    assert floored["feasible_candidates"] < floored["candidates"] == free["candidates"]
    most = hybrid("--min-accuracy", "0.97", "--hybrid-objective", "max")
    assert most["objective"] == "max" and most["split"] != floored["split"]
    assert max(d["energy_j"] for d in most["per_device"]) < max(
        d["energy_j"] for d in floored["per_device"])
    pinned = hybrid("--split", "3", "--hybrid-strategy", "output-channel", "--codec", "int8")
    assert (pinned["split"], pinned["head_strategy"], pinned["codec"]) == (
        3, "output-channel", "int8")
    assert pinned["pinned"] == {"split": 3, "strategy": "output-channel", "codec": "int8"}
    assert pinned["candidates"] == 1


@pytest.mark.parametrize("strategy", ["hybrid", "all"])
def test_an_unreachable_accuracy_floor_is_an_error(dynasplit, strategy):
    status, out, err = dynasplit("partition", "digits-cnn", "--devices", "2", "--strategy",
                                 strategy, "--min-accuracy", "1")
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert re.search(r"no hybrid plan of 'digits-cnn' reaches accuracy 1 \(labels, 360 "
                     r"samples\): the best reached is 0\.9\d{3} \(split \d, codec \w+\)", err)


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "most"])
def test_bad_accuracy_floor_is_a_usage_error(dynasplit, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        dynasplit("partition", "digits-cnn", "--devices", "2", "--min-accuracy", bad)
    assert exc.value.code == 2 and "expected a number in [0, 1]" in capsys.readouterr().err


@pytest.mark.slow
def test_measured_hybrid_runs_the_chosen_plan(dynasplit):
    status, out, _ = dynasplit("partition", "digits-cnn", "--devices", "2", "--strategy",
                               "hybrid", "--json", "--measure", "--samples", "3",
                               "--min-accuracy", "0.97")
    assert status == 0
    hybrid = json.loads(out)["strategies"]["hybrid"]
    measured = hybrid["measured"]
    assert hybrid["codec"] not in ("fp32", "fp16") and hybrid["accuracy"] >= 0.97
    assert measured["strategy"] == f"hybrid-{hybrid['head_strategy']}"
    assert measured["cloud_bytes"] == hybrid["cloud_bytes"]  # the chosen codec's payload
