"""``measure --data DIR``: a campaign scored against the labels of an image folder."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.cli import main
from toolkit.cube import open_cube
from toolkit.models.digits import load_digits_data


def _png(path, x):
    """An 8x8 greyscale PNG of a digit (pixels 0..1)."""
    import tensorflow as tf

    path.write_bytes(tf.io.encode_png(np.rint(x * 255).astype(np.uint8)).numpy())


def _write(root, relabel):
    digits = load_digits_data()
    for i, (x, y) in enumerate(zip(digits.x_test[:60], digits.y_test[:60], strict=True)):
        folder = root / f"class_{relabel(int(y))}"
        folder.mkdir(parents=True, exist_ok=True)
        _png(folder / f"{i:03d}.png", x)


@pytest.mark.slow  # starts the local testbed's workers
def test_measure_scores_against_the_folders_labels(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DYNASPLIT_LOG", "WARNING")
    _write(tmp_path / "true", lambda d: d)
    _write(tmp_path / "shifted", lambda d: (d + 1) % 10)  # every label wrong on purpose
    accuracy = {}
    for name in ("true", "shifted"):
        out = tmp_path / f"{name}.nc"
        assert main(["measure", "--model", "digits-cnn", "--splits", "3", "--cpu-freqs", "1800",
                     "--edge-accels", "none", "--samples", "60", "--data",
                     str(tmp_path / name), "-o", str(out)]) == 0, capsys.readouterr()
        cube = open_cube(out)
        assert cube.attrs["label_source"] == "labels"
        accuracy[name] = float(cube["accuracy"].max())
    assert accuracy["true"] > 0.9 and accuracy["shifted"] < 0.1


def test_a_malformed_folder_is_refused_in_one_line_on_an_ssh_testbed(tmp_path, capsys):
    """Checked before any host is contacted (the shipped inventory's hosts are TEST-NET)."""
    (tmp_path / "flat").mkdir()
    _png(tmp_path / "flat" / "0.png", np.zeros((8, 8, 1)))  # no class subfolder
    assert main(["measure", "--testbed", "pi-coral-gpu", "--model", "digits-cnn", "--data",
                 str(tmp_path / "flat"), "-o", str(tmp_path / "never.nc")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no subfolders; it needs one subfolder of images" in err[0]
    assert not (tmp_path / "never.nc").exists()


def test_edgetpu_dir_is_refused_on_the_local_testbed(tmp_path, capsys):
    assert main(["measure", "--model", "digits-cnn", "--edgetpu-dir", str(tmp_path),
                 "-o", str(tmp_path / "never.nc")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is for SSH testbeds" in err[0]
