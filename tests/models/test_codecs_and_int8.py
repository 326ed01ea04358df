"""Activation codecs and int8 heads on the real digits data."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import ConfigError
from toolkit.models import Int8Runner, SplitModel, decode, encode, eval_data, load_model
from toolkit.models.quantize import quantize_int8, quantize_int8_cached


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


def _float32_zoo() -> list[np.ndarray]:
    """Every class of float32: normals, fp16 subnormals and ties, overflow, inf, NaN."""
    rng = np.random.default_rng(3)
    edges = np.array([0.0, -0.0, 1e-8, -1e-8, 2.98e-8, 2.9802322e-8, 5.96e-8, 6.1e-5, 6.11e-5,
                      1 / 3, 65504, 65519.99, 65520, -65520, 1e6, 1e-45, np.inf, -np.inf, np.nan,
                      -np.nan], np.float32)
    ties = (np.arange(1, 4097, dtype=np.uint32) << 12 | 0x3F800000).view(np.float32)  # x.5 ulp
    wide = (rng.standard_normal(200_000) * 10.0 ** rng.integers(-9, 6, 200_000)).astype(
        np.float32)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint32).view(np.float32)  # NaNs included
    relu = np.maximum(rng.standard_normal((1, 16, 16, 32), dtype=np.float32), 0)
    return [edges, ties, wide, bits, relu, relu.transpose(0, 3, 1, 2), np.float32(2.5),
            np.zeros((0, 4), np.float32)]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_fp16_is_bit_identical_to_numpy_half_precision():
    for x in _float32_zoo():
        e = encode(x, "fp16")
        reference = np.asarray(x).astype(np.float16)
        got = np.frombuffer(e.payload, np.float16).reshape(e.shape)
        assert e.shape == reference.shape
        nan = np.isnan(reference)
        np.testing.assert_array_equal(got.view(np.uint16)[~nan], reference.view(np.uint16)[~nan])
        assert np.isnan(got[nan]).all()
        np.testing.assert_array_equal(decode(e), reference.astype(np.float32))  # NaN == NaN
    every_half = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    decoded = decode(encode(every_half, "fp16"))
    np.testing.assert_array_equal(decoded, every_half.astype(np.float32))
    assert decoded.dtype == np.float32


def test_int8_matches_the_affine_formula_for_any_input():
    rng = np.random.default_rng(4)
    for x in [rng.uniform(-3, 5, (1, 32, 32, 8)).astype(np.float32),
              np.maximum(rng.standard_normal((8, 8, 32)), 0).astype(np.float32),
              rng.standard_normal((3, 5, 7)) * 4, np.arange(12).reshape(3, 4),
              np.float32(2.5)]:
        e = encode(x, "int8")
        expected = np.clip(np.rint(np.asarray(x) / e.scale) + e.zero_point, -128,
                           127).astype(np.int8)
        np.testing.assert_array_equal(np.frombuffer(e.payload, np.int8).reshape(e.shape),
                                      expected)
        np.testing.assert_array_equal(
            decode(e), (expected.astype(np.float32) - e.zero_point) * np.float32(e.scale))


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


def test_accuracy_of_an_unknown_edge_accelerator_names_the_valid_ones(digits):
    from toolkit.models import accuracy_table

    sm, data = digits
    with pytest.raises(ConfigError,
                       match="unknown edge_accel 'gpu'; valid: none, int8, tpu-std, tpu-max"):
        accuracy_table(sm, data, splits=[1], edge_accels=("int8", "gpu"), progress=False)


def test_int8_head_keeps_the_accuracy_on_real_labels(digits):
    sm, data = digits
    split = 4  # after conv3
    runner = Int8Runner(quantize_int8(sm.head(split), data.x_calib))
    h = np.concatenate([runner(x[None]) for x in data.x_eval])
    y = sm.tail(split).predict(h, verbose=0)
    accuracy = float(np.mean(np.argmax(y, -1) == data.y_eval))
    assert data.label_source == "labels"
    assert accuracy >= 0.95


def test_int8_cache_keys_on_the_calibration_samples(digits, tmp_path):
    """A head calibrated on other data (e.g. a --data folder) is never reused."""
    sm, data = digits
    head = sm.head(4)
    first = quantize_int8_cached(head, data.x_calib, tmp_path, "digits-cnn-split4")
    again = quantize_int8_cached(head, data.x_calib, tmp_path, "digits-cnn-split4")
    assert again == first and len(list(tmp_path.glob("*.tflite"))) == 1
    other = data.x_calib[::-1] * 0.5  # other samples, other ranges
    quantize_int8_cached(head, other, tmp_path, "digits-cnn-split4")
    assert len(list(tmp_path.glob("*.tflite"))) == 2


def test_shipped_digits_model_is_really_trained(digits):
    sm, data = digits
    y = sm.model.predict(data.x_eval, verbose=0)
    assert len(data.y_eval) == 360
    assert float(np.mean(np.argmax(y, -1) == data.y_eval)) >= 0.95
