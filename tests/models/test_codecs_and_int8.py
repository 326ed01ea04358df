"""Activation codecs and int8 heads on the real digits data."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import ConfigError
from toolkit.models import Int8Runner, SplitModel, decode, encode, eval_data, load_model
from toolkit.models.quantize import quantize_int8


@pytest.fixture(scope="module")
def digits():
    model = load_model("digits-cnn")
    return SplitModel(model, name="digits-cnn"), eval_data(model)


def test_fp32_is_lossless_and_zero_copy():
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 32)).astype(np.float32)
    e = encode(x, "fp32")
    assert e.nbytes == x.nbytes
    assert np.shares_memory(np.frombuffer(e.payload, np.float32), x)
    assert np.array_equal(decode(e), x)


def test_fp16_halves_the_size_within_half_precision():
    x = np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32)
    e = encode(x, "fp16")
    assert e.nbytes == x.nbytes // 2
    np.testing.assert_allclose(decode(e), x, rtol=1e-3, atol=1e-3)


def test_int8_affine_error_is_at_most_half_a_step_and_zero_is_exact():
    x = np.random.default_rng(2).uniform(-3, 5, size=(4, 4, 16)).astype(np.float32)
    x[0, 0, 0] = 0.0
    e = encode(x, "int8")
    assert e.nbytes == x.size
    y = decode(e)
    assert np.max(np.abs(y - x)) <= e.scale / 2 + 1e-6
    assert y[0, 0, 0] == 0.0


@pytest.mark.parametrize(("codec", "bits"), [("q4", 4), ("q2", 2), ("q1", 1)])
def test_low_bit_codecs_pack_and_stay_within_half_a_step(codec, bits):
    x = np.random.default_rng(3).uniform(0, 4, size=(1, 7, 5, 3)).astype(np.float32)
    x[0, 0, 0, 0] = 0.0
    e = encode(x, codec)
    assert e.nbytes == -(-x.size * bits // 8)  # packed, rounded up to whole bytes
    y = decode(e)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.max(np.abs(y - x)) <= e.scale / 2 + 1e-6
    assert y[0, 0, 0, 0] == 0.0
    assert len(np.unique(y)) <= 2 ** bits


def test_q1_trades_bytes_for_accuracy_on_real_labels():
    from toolkit.models import accuracy_table

    model = load_model("digits-vgg")
    sm = SplitModel(model, name="digits-vgg")
    split = sm.split_for_layer("block1_pool")
    acc = accuracy_table(sm, eval_data(model), splits=[split], edge_accels=("none",),
                         codecs=("fp32", "q4", "q1"), progress=False).set_index("codec")
    assert acc.loc["fp32", "accuracy"] >= 0.9
    # 32x fewer bytes than fp32, and a measurable loss on the true labels
    assert acc.loc["fp32", "accuracy"] - acc.loc["q1", "accuracy"] >= 0.005
    assert (acc.label_source == "labels").all()


def test_unknown_codec_names_the_valid_ones():
    with pytest.raises(ConfigError,
                       match="unknown codec 'bf16'; valid: fp32, fp16, int8, q4, q2, q1"):
        encode(np.zeros(3, np.float32), "bf16")


def test_int8_head_keeps_the_accuracy_on_real_labels(digits):
    sm, data = digits
    split = 4  # after conv3
    runner = Int8Runner(quantize_int8(sm.head(split), data.x_calib))
    h = np.concatenate([runner(x[None]) for x in data.x_eval])
    y = sm.tail(split).predict(h, verbose=0)
    accuracy = float(np.mean(np.argmax(y, -1) == data.y_eval))
    assert data.label_source == "labels"
    assert accuracy >= 0.95


def test_shipped_digits_model_is_really_trained(digits):
    sm, data = digits
    y = sm.model.predict(data.x_eval, verbose=0)
    assert len(data.y_eval) == 360
    assert float(np.mean(np.argmax(y, -1) == data.y_eval)) >= 0.95
