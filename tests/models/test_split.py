"""Cut points and head/tail models: equivalence with the unsplit model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from toolkit.errors import ToolkitError
from toolkit.models import SplitModel, build_digits_cnn, load_model


def _check_all_splits(model: keras.Model, x: np.ndarray, name: str) -> SplitModel:
    sm = SplitModel(model, name=name)
    ref = np.asarray(model(x, training=False))
    for c in sm.cut_points:
        head, tail = sm.head(c.split), sm.tail(c.split)
        h = x if head is None else np.asarray(head(x, training=False))
        assert h.shape[1:] == c.shape, (name, c)
        y = h if tail is None else np.asarray(tail(h, training=False))
        err = float(np.max(np.abs(y - ref)))
        assert err <= 1e-5, f"{name} split {c.split} ({c.layer}): max abs error {err}"
    return sm


def test_sequential_cnn_all_splits_equal_full_model():
    model = build_digits_cnn()
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    sm = _check_all_splits(model, x, "digits-cnn")
    assert [c.layer for c in sm.cut_points] == [
        "image", "conv1", "conv2", "pool1", "conv3", "pool2", "flatten", "fc1", "dropout",
        "predictions"]
    assert sm.head(0) is None and sm.tail(sm.last_split) is None


@pytest.mark.parametrize("arch", ["VGG16", "MobileNetV2", "ResNet50"])
def test_keras_applications_all_splits_equal_full_model(arch):
    model = getattr(keras.applications, arch)(weights=None, input_shape=(32, 32, 3))
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    sm = _check_all_splits(model, x, arch)
    assert sm.n_splits > 10


def test_heads_and_tails_share_the_original_weights():
    model = build_digits_cnn()
    sm = SplitModel(model)
    conv = model.get_layer("conv1")
    assert sm.head(3).get_layer("conv1") is conv
    tail_layers = {layer.name: layer for layer in sm.tail(1).layers}
    assert tail_layers["conv2"] is model.get_layer("conv2")


def test_residual_blocks_are_never_cut_inside():
    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
    sm = SplitModel(model, name="resnet50")
    offered = {c.layer for c in sm.cut_points}
    inside = "conv2_block1_2_conv"  # on the residual branch of the first block
    assert inside not in offered
    assert "conv2_block1_out" in offered  # the block's output is a valid cut
    with pytest.raises(ToolkitError, match="inside a residual or branching block") as info:
        sm.split_for_layer(inside)
    assert "conv2_block1_out" in str(info.value)  # lists the valid cut points


def test_functional_skip_connection_cut_points():
    inp = keras.Input((8,))
    a = keras.layers.Dense(8, name="a")(inp)
    b = keras.layers.Dense(8, name="b")(a)
    c = keras.layers.Add(name="add")([a, b])
    out = keras.layers.Dense(2, name="out")(c)
    sm = SplitModel(keras.Model(inp, out), name="skip")
    assert [c.layer for c in sm.cut_points] == [sm.cut_points[0].layer, "a", "add", "out"]
    with pytest.raises(ToolkitError, match="2 tensors cross"):
        sm.split_for_layer("b")


def test_split_out_of_range_lists_valid_cut_points():
    sm = SplitModel(build_digits_cnn(), name="digits-cnn")
    with pytest.raises(ToolkitError, match=r"valid splits are 0\.\.9 \(0=image, 1=conv1"):
        sm.check_split(10)


def test_a_cube_coordinate_is_a_split_and_what_is_no_integer_is_named():
    """A cube's split coordinate is a NumPy integer: it was refused as 'out of range'."""
    sm = SplitModel(build_digits_cnn(), name="digits-cnn")
    assert sm.check_split(np.int64(3)) == 3 and type(sm.check_split(np.int64(3))) is int
    assert sm.head(np.int64(3)) is sm.head(3) and sm.tail(np.int32(3)) is sm.tail(3)
    for bad in ("3", 2.5, True, None):
        with pytest.raises(ToolkitError, match=rf"split {bad!r} is not an integer; valid "
                                               r"splits of model 'digits-cnn' are 0\.\.9"):
            sm.check_split(bad)
    with pytest.raises(ToolkitError, match=r"SplitModel needs a Keras model, e\.g\. "
                                           r"SplitModel\(load_model\('digits-cnn'\)\), got str"):
        SplitModel("digits-cnn")


def test_what_takes_a_model_names_anything_else():
    from toolkit.models import accuracy_table, eval_data
    from toolkit.models.data import eval_inputs
    from toolkit.models.graph import Graph
    from toolkit.models.macs import model_macs

    for call in (SplitModel, Graph, model_macs, eval_data, eval_inputs):
        name = call.__name__
        for value, hint in ((None, "'digits-cnn'"), (3, "'digits-cnn'"), ("vgg16", "'vgg16'")):
            with pytest.raises(ToolkitError, match=rf"^{name} needs a Keras model, e\.g\. "
                                                   rf"{name}\(load_model\({hint}\)\), got "
                                                   rf"{type(value).__name__}$"):
                call(value)
    sm = SplitModel(build_digits_cnn(), name="digits-cnn")
    with pytest.raises(ToolkitError, match=r"^accuracy_table needs a SplitModel, e\.g\. "
                                           r"accuracy_table\(SplitModel\(load_model\("
                                           r"'digits-cnn'\)\), data\), got str$"):
        accuracy_table("digits-cnn", eval_data(sm.model))
    with pytest.raises(ToolkitError, match=r"^accuracy_table needs its data as an EvalData, "
                                           r"e\.g\. eval_data\(model\), got tuple$"):
        accuracy_table(sm, eval_inputs(sm.model))
    for bad in (0, 2.5, float("nan")):
        with pytest.raises(ToolkitError, match=r"^n_calib \(calibration inputs\) must be an "
                                               r"integer >= 1"):
            eval_data(sm.model, n_calib=bad)


def test_macs_and_bytes_of_known_layers():
    sm = SplitModel(build_digits_cnn(), name="digits-cnn")
    by_layer = {c.layer: c for c in sm.cut_points}
    # conv1: 8x8 outputs x 16 filters x 3x3 kernel x 1 input channel
    assert by_layer["conv1"].head_macs == 8 * 8 * 16 * 9
    # conv2: 8x8x32 outputs x 3x3 x 16 input channels, added to conv1's
    assert by_layer["conv2"].head_macs == 8 * 8 * 16 * 9 + 8 * 8 * 32 * 9 * 16
    assert by_layer["conv2"].bytes == 8 * 8 * 32 * 4
    total = sm.cut_points[0].tail_macs
    assert all(c.head_macs + c.tail_macs == total for c in sm.cut_points)
    assert sm.cut_points[-1].head_macs == total


def test_vgg16_total_macs_match_the_literature():
    sm = SplitModel(load_model("vgg16"), name="vgg16")  # 224x224, weights=None
    # VGG16 at 224x224 is about 15.47 G multiply-accumulates (Simonyan & Zisserman).
    assert sm.cut_points[0].tail_macs == pytest.approx(15.47e9, rel=0.01)
    assert sm.n_splits == 23  # 0 = input, 22 = all on the edge, as in DynaSplit


def test_unknown_model_and_subclassed_models_are_refused():
    with pytest.raises(ToolkitError, match="unknown model 'nope'; valid: digits-cnn, "
                       "digits-vgg, digits-vgg-fc, vgg16"):
        load_model("nope")

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ToolkitError, match="subclassed"):
        SplitModel(Sub())


def test_a_file_that_is_not_a_keras_model_is_named_with_what_it_is(tmp_path):
    from toolkit.partition import load_partition_model

    (tmp_path / "noise.keras").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "folder.keras").mkdir()
    for load in (load_model, load_partition_model):  # the partition CLI reads models alike
        for name in ("noise.keras", "empty.keras"):
            with pytest.raises(ToolkitError, match=f"model file .*{name} is not a .keras file: "
                                                   "a .keras file is the zip archive"):
                load(str(tmp_path / name))
        with pytest.raises(ToolkitError, match=r"folder\.keras is a folder; give a \.keras file"):
            load(str(tmp_path / "folder.keras"))
        with pytest.raises(ToolkitError, match=r"missing\.keras does not exist"):
            load(str(tmp_path / "missing.keras"))


def test_an_input_size_whose_weights_cannot_fit_in_memory_is_one_line():
    """VGG16's first dense layer grows with the input: at 100 000 pixels a side its
    weights would take 80 TB, which TensorFlow refuses to allocate."""
    with pytest.raises(ToolkitError, match="vgg16 at input size 100000 needs more memory than "
                                           "this machine can give its weights; use a smaller"):
        load_model("vgg16", input_size=100_000)


def test_architectures_without_weights_are_identical_in_every_process():
    import hashlib
    import subprocess
    import sys

    code = ("import hashlib, numpy as np\nfrom toolkit.models import load_model\n"
            "h = hashlib.sha256()\n"
            "for w in load_model('mobilenetv2', input_size=32).get_weights():\n"
            "    h.update(np.ascontiguousarray(w).tobytes())\nprint(h.hexdigest())\n")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.strip() for _ in range(2)}
    here = hashlib.sha256()
    for w in load_model("mobilenetv2", input_size=32).get_weights():
        here.update(np.ascontiguousarray(w).tobytes())
    assert digests == {here.hexdigest()}
