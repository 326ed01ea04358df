"""ViT-B/16 (DynaSplit's vit_keras vit_b16): architecture, cuts, GELU variants, int8 heads.

The model is ViT-B/16 in full (86 M parameters) at a 32x32 input (5 tokens).
"""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from toolkit.cli import main
from toolkit.errors import ToolkitError
from toolkit.models import SplitModel, eval_inputs, load_model
from toolkit.models.quantize import Int8Runner, quantize_int8
from toolkit.models.vit import AddPositionEmbs, ClassToken, ExtractToken, gelu_tanh, igelu
from toolkit.models.zoo import model_name
from toolkit.splinter import SPLIT_MAPS, VIT_LAYER_NAMES

SIZE = 32


@pytest.fixture(scope="module")
def vit():
    return SplitModel(load_model("vit-b16", input_size=SIZE), name="vit-b16")


@pytest.fixture(scope="module")
def inputs(vit):
    x_calib, x_eval = eval_inputs(vit.model, n_calib=50)
    return x_calib, x_eval[:24]


def test_architecture_is_vit_b16(vit):
    m = vit.model
    assert m.get_layer("embedding").kernel_size == (16, 16)
    assert m.get_layer("embedding").strides == (16, 16)
    blocks = [la for la in m.layers if isinstance(la, keras.layers.MultiHeadAttention)]
    assert len(blocks) == 12
    assert {(b.num_heads, b.key_dim) for b in blocks} == {(12, 64)}
    assert m.get_layer("encoderblock_0_mlp_dense1").units == 3072
    assert m.get_layer("class_token").cls.shape == (1, 1, 768)
    assert m.get_layer("posembed_input").pe.shape == (1, (SIZE // 16) ** 2 + 1, 768)
    assert isinstance(m.get_layer("encoder_norm"), keras.layers.LayerNormalization)
    assert m.get_layer("head").units == 1000 and tuple(m.output.shape) == (None, 1000)
    # ViT-B/16 has 86.6 M parameters at 224 (197 positions); here 5 positions
    assert m.count_params() == 86_567_656 - (197 - 5) * 768


def test_cut_points_are_dynasplits_and_the_import_map_agrees(vit):
    layers = [c.layer for c in vit.cut_points]
    assert layers[:5] == ["image", "embedding", "reshape", "class_token", "posembed_input"]
    assert layers[-3:] == ["encoder_norm", "extract_token", "head"]
    # every encoder block's output is a cut; so is the residual add after its attention
    for i in range(12):
        assert f"encoderblock_{i}" in layers and f"encoderblock_{i}_attention_add" in layers
    assert vit.n_splits == 32
    # DynaSplit's layer k is the toolkit's split SPLIT_MAPS["vit-b16"][k]
    assert [vit.split_for_layer(n) for n in VIT_LAYER_NAMES] == list(SPLIT_MAPS["vit-b16"])
    assert vit.cut_points[30].shape == (768,) and vit.cut_points[3].shape == (5, 768)


@pytest.mark.parametrize("layer", ["encoderblock_3_attention", "encoderblock_7_mlp_dense1",
                                   "encoderblock_11_norm2"])
def test_a_cut_inside_a_block_is_refused_with_the_valid_cuts(vit, layer):
    with pytest.raises(ToolkitError, match=r"tensors cross there .*valid cut points: image, "
                                           r"embedding, reshape, class_token, posembed_input"):
        vit.split_for_layer(layer)


def test_head_then_tail_is_the_full_model(vit, inputs):
    x = inputs[1][:4]
    full = vit.model(x).numpy()
    for split in (1, 2, 3, 4, 5, 6, 17, 28, 29, 30):
        y = vit.tail(split)(vit.head(split)(x)).numpy()
        assert np.abs(y - full).max() <= 1e-5, split
    assert vit.head(0) is None and vit.tail(31) is None
    # heads and tails share the model's weights
    assert vit.head(6).get_layer("encoderblock_0_mlp_dense1") is \
        vit.model.get_layer("encoderblock_0_mlp_dense1")


def test_int8_head_converts_and_agrees_with_fp32(vit, inputs):
    x_calib, x_eval = inputs
    split = 6  # after encoder block 0
    runner = Int8Runner(quantize_int8(vit.head(split), x_calib))
    h8 = np.concatenate([runner(x[None]) for x in x_eval])
    h32 = vit.head(split)(x_eval).numpy()
    cos = np.sum(h8 * h32) / (np.linalg.norm(h8) * np.linalg.norm(h32))
    assert cos > 0.99
    tail = vit.tail(split)
    agree = np.mean(np.argmax(tail(h8).numpy(), -1) == np.argmax(tail(h32).numpy(), -1))
    assert agree >= 0.8


def test_gelu_variants_follow_their_formulas():
    x = np.linspace(-6, 6, 2001).astype("float32")
    exact = keras.ops.convert_to_numpy(keras.activations.gelu(x, approximate=False))
    a, b = -0.2888, -1.769
    s = np.tanh(1000 * x / math.sqrt(2))
    reference = 0.5 * x * (1 + s * (a * (np.minimum(s * x / math.sqrt(2), -b) + b) ** 2 + 1))
    ours = keras.ops.convert_to_numpy(igelu(x))
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert np.abs(ours - exact).max() < 0.02  # a second-order erf
    assert np.abs(keras.ops.convert_to_numpy(gelu_tanh(x)) - exact).max() < 1e-3


def test_variants_share_weights_and_mostly_agree(vit, inputs):
    x = inputs[1][:16]
    ref = np.argmax(vit.model(x).numpy(), -1)
    for gelu in ("tanh", "igelu"):
        other = load_model("vit-b16", input_size=SIZE, gelu=gelu)
        assert other.get_layer("encoderblock_0_gelu").activation is not \
            vit.model.get_layer("encoderblock_0_gelu").activation
        w0, w1 = (m.get_layer("encoderblock_5_mlp_dense2").kernel.numpy()
                  for m in (vit.model, other))
        np.testing.assert_array_equal(w0, w1)  # same seed, same weights
        agree = np.mean(np.argmax(other(x).numpy(), -1) == ref)
        assert agree >= (0.99 if gelu == "tanh" else 0.75), (gelu, agree)
        del other


def test_names_carry_the_gelu_variant():
    assert model_name("vit-b16", "igelu") == "vit-b16:igelu"
    assert model_name("vit-b16", "exact") == "vit-b16"
    assert model_name("vit-b16:tanh") == "vit-b16:tanh"
    with pytest.raises(ToolkitError, match="applies to vit-b16 only"):
        model_name("vgg16", "tanh")
    with pytest.raises(ToolkitError, match="valid: exact, tanh, igelu"):
        model_name("vit-b16", "relu")
    with pytest.raises(ToolkitError, match="valid: exact, tanh, igelu"):
        load_model("vit-b16:relu", input_size=SIZE)


@pytest.mark.parametrize("size", [40, 8, 17])
def test_input_size_must_be_a_multiple_of_16(size):
    with pytest.raises(ToolkitError, match="use a multiple of 16"):
        load_model("vit-b16", input_size=size)


def test_custom_layers_serialize():
    inp = keras.Input((4, 8))
    x = ClassToken(name="class_token")(inp)
    x = AddPositionEmbs(name="posembed_input")(x)
    x = keras.layers.Activation(igelu)(x)
    out = ExtractToken(name="extract_token")(x)
    model = keras.Model(inp, out)
    again = keras.Model.from_config(json.loads(json.dumps(model.get_config())))
    again.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), atol=1e-6)
    assert again.output.shape == (None, 8)


def test_cli_lists_the_cuts(capsys):
    assert main(["split", "vit-b16", "--list", "--json", "--input-size", "32",
                 "--gelu", "igelu"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert [c["split"] for c in table] == list(range(32))
    assert [table[s]["layer"] for s in SPLIT_MAPS["vit-b16"]] == list(VIT_LAYER_NAMES)
    assert table[-1]["head_macs"] > 400e6 and table[0]["tail_macs"] == table[-1]["head_macs"]
    assert main(["split", "vit-b16", "--input-size", "32", "--layer",
                 "encoderblock_2_attention"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "valid cut points" in err[0]


def test_a_saved_vit_file_loads_by_path_in_a_fresh_process(tmp_path):
    """What the SSH testbed ships: the controller's model as a .keras file, loaded by
    a worker that has not imported the ViT module (a small graph of ViT's layers)."""
    import subprocess
    import sys

    inp = keras.Input((4, 8))
    x = ClassToken(name="class_token")(inp)
    x = AddPositionEmbs(name="posembed_input")(x)
    x = keras.layers.Activation(igelu, name="gelu")(x)
    model = keras.Model(inp, ExtractToken(name="extract_token")(x))
    path = tmp_path / "vit-b16:igelu-16.keras"
    model.save(path)
    x = np.random.default_rng(1).normal(size=(1, 4, 8)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = ("import numpy as np, sys; from toolkit.models.zoo import load_model; "
            "m = load_model(sys.argv[1]); np.save(sys.argv[2], m(np.load(sys.argv[3])))")
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "y.npy"),
                    str(tmp_path / "x.npy")], check=True, timeout=120, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model(x).numpy(), atol=1e-6)


def test_imagenet_weights_are_refused_clearly_where_there_are_none():
    with pytest.raises(ToolkitError, match="vit-b16 has no Keras ImageNet weights; pass "
                                           "--weights FILE"):
        load_model("vit-b16", input_size=SIZE, weights="imagenet")
    # checked before any download: the weights fit 224 only
    with pytest.raises(ToolkitError, match=r"cannot use Keras' ImageNet weights for vgg16: .*"
                                           r"\(224, 224, 3\)"):
        load_model("vgg16", input_size=SIZE, weights="imagenet")
