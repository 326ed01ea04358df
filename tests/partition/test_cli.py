"""``dynasplit partition``: the JSON contract of the design page and the table."""

from __future__ import annotations

import json
import re

import keras
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
def test_keras_file_and_refused_strategy(dynasplit, tmp_path):
    L = keras.layers
    mlp = keras.Sequential([keras.Input((6, 6, 2)), L.Flatten(), L.Dense(8, activation="relu"),
                            L.Dense(3)], name="mlp")
    path = tmp_path / "mlp.keras"
    mlp.save(path)
    status, out, _ = dynasplit("partition", str(path), "--devices", "2", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["model"] == str(path)
    assert "must start with spatial layers" in report["refused"]["spatial"]
    assert set(report["strategies"]) == {"layer-wise", "output-channel", "input-channel",
                                         "hybrid"}
    assert report["strategies"]["hybrid"]["head_strategy"] != "spatial"
    status, out, _ = dynasplit("partition", str(path), "--devices", "2", "--json",
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
                                 "--measure")
    assert status == 2 and out == "" and "predicted only" in err


def test_bad_device_count_is_a_usage_error(dynasplit):
    for bad in ("0", "raspberry-pi-4,,jetson-nano"):
        with pytest.raises(SystemExit) as exit_:
            dynasplit("partition", "vgg-stack", "--devices", bad)
        assert exit_.value.code == 2


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
