"""Real data from image folders: the digits written as PNG class folders."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import ToolkitError
from toolkit.models import SplitModel, accuracy_table, eval_data, folder_data, load_model
from toolkit.models.data import image_files, preprocess
from toolkit.models.digits import load_digits_data


def _png(path, x):
    """An 8x8 greyscale PNG of a digit (pixels 0..1)."""
    import tensorflow as tf

    path.write_bytes(tf.io.encode_png(np.rint(x * 255).astype(np.uint8)).numpy())


def _write_digits(root):
    """The held-out digits as 8x8 greyscale PNGs, one folder per class."""
    digits = load_digits_data()
    for i, (x, y) in enumerate(zip(digits.x_test, digits.y_test, strict=True)):
        folder = root / str(int(y))
        folder.mkdir(parents=True, exist_ok=True)
        _png(folder / f"{i:04d}.png", x)
    return digits


def test_png_class_folders_give_the_built_in_accuracy(tmp_path):
    digits = _write_digits(tmp_path / "digits")
    sm = SplitModel(load_model("digits-cnn"), name="digits-cnn")
    data = folder_data(tmp_path / "digits", sm.model, "digits-cnn", n_calib=100)
    assert data.label_source == "labels" and len(data.x_eval) == len(digits.x_test)
    assert sorted(np.bincount(data.y_eval)) == sorted(np.bincount(digits.y_test))
    np.testing.assert_allclose(np.sort(data.x_eval.ravel()), np.sort(digits.x_test.ravel()),
                               atol=0.5 / 255)
    built_in = eval_data(sm.model)
    ours = accuracy_table(sm, data, splits=[0, 3], codecs=["fp32"], edge_accels=["none"],
                          progress=False)
    theirs = accuracy_table(sm, built_in, splits=[0, 3], codecs=["fp32"],
                            edge_accels=["none"], progress=False)
    assert ours["accuracy"].tolist() == theirs["accuracy"].tolist()
    assert ours["accuracy"].min() > 0.9 and set(ours["label_source"]) == {"labels"}


def test_preprocessing_follows_the_model():
    x = np.array([[0.0, 127.5, 255.0]], dtype="float32")
    np.testing.assert_allclose(preprocess("vit-b16:igelu", x), [[-1.0, 0.0, 1.0]])
    np.testing.assert_allclose(preprocess("digits-cnn", x), [[0.0, 0.5, 1.0]])
    rgb = np.full((1, 2, 2, 3), 100.0, dtype="float32")
    vgg = preprocess("vgg16", rgb)  # caffe: BGR, ImageNet means subtracted
    np.testing.assert_allclose(vgg[0, 0, 0], [100 - 103.939, 100 - 116.779, 100 - 123.68],
                               atol=1e-4)


def test_bad_folders_are_refused(tmp_path):
    model = load_model("digits-cnn")
    with pytest.raises(ToolkitError, match="does not exist; give a folder with one subfolder"):
        folder_data(tmp_path / "missing", model, "digits-cnn")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolkitError, match=r"data folder .*empty"):
        folder_data(tmp_path / "empty", model, "digits-cnn")
    with pytest.raises(ToolkitError, match=r"empty has no subfolders; it needs one subfolder "
                                           r"of images \(.bmp, .gif, .jpeg, .jpg, .png\) per "
                                           r"class"):
        image_files(tmp_path / "empty")
    (tmp_path / "empty" / "a").mkdir()
    with pytest.raises(ToolkitError, match=r"holds no images in its class subfolders \(a\)"):
        image_files(tmp_path / "empty")
    with pytest.raises(ToolkitError, match="does not exist; give a folder with one subfolder"):
        image_files(tmp_path / "missing")


def test_a_broken_image_is_named(tmp_path):
    """TensorFlow's decode error names no file; the loader finds and names it."""
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(2):
            _png(tmp_path / label / f"{i}.png", rng.random((8, 8, 1)))
    (tmp_path / "b" / "broken.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ToolkitError, match=r"data folder .*: cannot read image b/broken.jpg "
                                           r"\(UnidentifiedImageError: .*\); remove or replace"):
        folder_data(tmp_path, load_model("digits-cnn"), "digits-cnn")


def test_image_files_lists_what_the_loader_reads(tmp_path):
    import keras

    _write_digits(tmp_path / "digits")
    (tmp_path / "digits" / "README.txt").write_text("not an image, not in a class")
    (tmp_path / "digits" / "3" / "deeper").mkdir()
    _png(tmp_path / "digits" / "3" / "deeper" / "x.PNG", np.zeros((8, 8, 1)))
    (tmp_path / "digits" / "3" / "notes.txt").write_text("skipped")
    files = image_files(tmp_path / "digits")
    ds = keras.utils.image_dataset_from_directory(tmp_path / "digits", shuffle=False,
                                                  color_mode="grayscale", image_size=(8, 8),
                                                  verbose=False)
    root = str(tmp_path / "digits") + "/"
    assert files == [p.removeprefix(root) for p in ds.file_paths]
    assert "3/deeper/x.PNG" in files and len(files) == len(load_digits_data().y_test) + 1
