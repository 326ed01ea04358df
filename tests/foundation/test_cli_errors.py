"""Bad input: one clear line on stderr naming the problem and the choices, exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from toolkit.cli import main


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "toolkit", *args], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def _in_process(capsys, *args):
    """:func:`_cli`'s result from :func:`toolkit.cli.main` in this process (the exit
    status and stderr of ``python -m toolkit`` are checked by ``test_unknown_model``),
    without starting another interpreter that imports TensorFlow."""
    capsys.readouterr()
    status = main(list(args))
    return subprocess.CompletedProcess(args, status, "", capsys.readouterr().err)


def _assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    error_lines = [x for x in lines if x.startswith("dynasplit: error:")]
    assert len(error_lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0]


def test_unknown_model():
    _assert_one_line_error(_cli("split", "alexnet", "--list"), "unknown model 'alexnet'",
                           "digits-cnn, digits-vgg, digits-vgg-fc, vgg16, resnet50, mobilenetv2")


def test_split_out_of_range_lists_the_cut_points(tmp_path, capsys):
    _assert_one_line_error(
        _in_process(capsys, "measure", "--model", "digits-cnn", "--splits", "12", "-o",
                    str(tmp_path / "c.nc")),
        "split 12 is out of range", "0=image, 1=conv1")


def test_frequency_not_in_the_profile(tmp_path, capsys):
    _assert_one_line_error(
        _in_process(capsys, "measure", "--model", "digits-cnn", "--cpu-freqs", "700", "-o",
                    str(tmp_path / "c.nc")),
        "frequency 700 MHz is not in profile 'raspberry-pi-4'", "600, 800, 1000")


def test_unreadable_profile_file(tmp_path, capsys):
    testbed = tmp_path / "tb.toml"
    testbed.write_text('[testbed]\nname = "t"\nkind = "local"\n[[hosts]]\nname = "e"\n'
                       'address = "127.0.0.1"\nroles = ["edge"]\nprofile = "broken.toml"\n'
                       '[[hosts]]\nname = "c"\naddress = "127.0.0.1"\nroles = ["cloud"]\n'
                       'profile = "cloud-gpu-server"\n')
    (tmp_path / "broken.toml").write_text("[profile\nname=")
    result = _in_process(capsys, "measure", "--testbed", str(testbed), "--model", "digits-cnn",
                         "-o", str(tmp_path / "c.nc"))
    _assert_one_line_error(result, "broken.toml")


def test_invalid_layer_is_refused(capsys):
    assert main(["split", "digits-cnn", "--layer", "nope"]) == 2
    err = capsys.readouterr().err
    assert "has no layer 'nope'; valid cut points: image, conv1" in err


@pytest.mark.parametrize("argv", [["measure", "--model", "digits-cnn", "--splits", "a,b", "-o",
                                   "x.nc"], ["demo", "--bogus"]])
def test_argument_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_split_list_json_format(capsys):
    assert main(["split", "digits-cnn", "--list", "--json"]) == 0
    import json

    table = json.loads(capsys.readouterr().out)
    assert [set(row) for row in table] == [
        {"split", "layer", "shape", "bytes", "head_macs", "tail_macs"}] * 10
    assert table[1] == {"split": 1, "layer": "conv1", "shape": [8, 8, 16], "bytes": 4096,
                        "head_macs": 9216, "tail_macs": table[0]["tail_macs"] - 9216}


@pytest.mark.parametrize("argv", [
    ["optimize", "cube.nc", "-o", "FRONT.json", "--seed", "-5"],
    ["trace", "generate", "--model", "vgg16", "--min", "1", "--max", "5", "-n", "10",
     "--seed", "-1", "-o", "t.csv"],
    ["simulate", "cube.nc", "--policy", "p.json", "--trace", "t.csv", "--seed", "-3"],
    ["measure", "--model", "digits-cnn", "--seed", "-1", "-o", "c.nc"],
    ["partition", "digits-cnn", "--devices", "raspberry-pi-4,raspberry-pi-4", "--seed", "-2"],
    ["train-digits", "--seed", "-1", "-o", "m.keras"],
])
def test_a_negative_seed_is_refused_before_anything_runs(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seed: expected an integer >= 0, got '-" in err
    assert "Traceback" not in err


def test_an_input_size_is_refused_where_no_model_takes_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["split", "vgg16", "--input-size", "0"])
    assert info.value.code == 2
    assert "argument --input-size: expected an integer >= 1, got '0'" in capsys.readouterr().err
    _assert_one_line_error(_in_process(capsys, "split", "digits-cnn", "--input-size", "64"),
                           "--input-size applies to vgg16, resnet50, mobilenetv2, vit-b16 only",
                           "digits-cnn has a fixed input")
    _assert_one_line_error(
        _in_process(capsys, "measure", "--model", "digits-cnn", "--input-size", "64",
                    "--splits", "0", "-o", str(tmp_path / "c.nc")),
        "--input-size applies to", "digits-cnn has a fixed input")
    assert not (tmp_path / "c.nc").exists()


@pytest.mark.parametrize("argv", [
    ["measure", "--model", "digits-cnn", "-o", "{bad}/c.nc"],
    ["optimize", "cube.nc", "-o", "{bad}/FRONT.json"],
    ["export", "FRONT.json", "-o", "{bad}/policy.json"],
    ["export", "FRONT.json", "-o", "policy.json", "--script", "{bad}/scheduler.py"],
    ["simulate", "cube.nc", "--policy", "p.json", "--trace", "t.csv", "--plot", "{bad}/s.png"],
    ["trace", "generate", "--model", "vgg16", "--min", "1", "--max", "5", "-n", "10",
     "--seed", "1", "-o", "{bad}/t.csv"],
    ["cube", "import-splinter", "pool.csv", "--model", "vgg16", "-o", "{bad}/c.nc"],
    ["partition", "digits-cnn", "--devices", "2", "--measure", "-o", "{bad}/c.nc"],
    ["train-digits", "-o", "{bad}/m.keras"],
    ["demo", "--out", "{bad}/demo"],
])
def test_an_output_that_cannot_be_written_is_refused_before_anything_runs(argv, tmp_path,
                                                                        capsys):
    """Where a file stands in the way of an output's folder, the command stops at once (a
    measurement would otherwise be lost when its results were written)."""
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(SystemExit) as info:
        main([a.replace("{bad}", str(tmp_path / "file")) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path / 'file'}/" in err and "is a file, not a folder" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_figure_format_matplotlib_does_not_write_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "cube.nc", "--policy", "p.json", "--trace", "t.csv", "--plot",
              "summary.jpg2000"])
    assert ("argument --plot: cannot write figure summary.jpg2000: unknown image format "
            ".jpg2000; valid: ") in capsys.readouterr().err


@pytest.mark.parametrize("value", ["inf", "nan", "1e400"])
def test_an_infinite_or_undefined_number_is_refused(value, capsys):
    with pytest.raises(SystemExit):
        main(["partition", "digits-cnn", "--devices", "2", "--link-mbps", value])
    assert f"argument --link-mbps: expected a positive number, got '{value}'" in \
        capsys.readouterr().err


def test_a_negative_device_count_is_a_bad_count_not_a_profile_name(capsys):
    with pytest.raises(SystemExit):
        main(["partition", "digits-cnn", "--devices", "-1"])
    assert "argument --devices: expected an integer >= 1, got '-1'" in capsys.readouterr().err


def test_a_missing_data_folder_is_said_before_any_worker_starts(tmp_path, capsys):
    _assert_one_line_error(
        _in_process(capsys, "measure", "--model", "digits-cnn", "--splits", "0",
                    "--data", str(tmp_path / "images"), "-o", str(tmp_path / "c.nc")),
        f"data folder {tmp_path / 'images'} does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
