"""digits-vgg-fc: fixed random dense layers regenerated from a seed, trained layers shipped."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import ToolkitError
from toolkit.models import eval_data, load_model
from toolkit.models.digits_fc import (
    FIXED_LAYERS,
    build_digits_vgg_fc,
    fixed_dense_weights,
    fixed_digest,
    load_digits_vgg_fc,
    save_trained_weights,
)


@pytest.fixture(scope="module")
def shipped():
    return load_model("digits-vgg-fc")


def test_fixed_weights_are_regenerated_identically_and_he_uniform():
    model = build_digits_vgg_fc(with_fixed=False)
    a, b = fixed_dense_weights(model), fixed_dense_weights(model)
    for (ka, ba), (kb, bb) in zip(a, b, strict=True):
        assert np.array_equal(ka, kb) and np.array_equal(ba, bb)
        limit = np.sqrt(6.0 / ka.shape[0])
        assert np.abs(ka).max() <= limit and not ba.any()
        assert abs(float(ka.std()) - limit / np.sqrt(3)) < 0.01 * limit
    assert not np.array_equal(fixed_dense_weights(model, seed=1)[0][0], a[0][0])
    # the layers are independent draws, not one stream reused
    assert not np.array_equal(a[0][0][:8, :8], a[1][0][:8, :8])


def test_shipped_model_holds_heavy_dense_layers_and_is_accurate(shipped):
    assert shipped.name == "digits_vgg_fc"
    dense = sum(shipped.get_layer(n).count_params() for n in FIXED_LAYERS)
    assert shipped.count_params() > 13e6 and dense / shipped.count_params() > 0.9
    assert all(not shipped.get_layer(n).trainable for n in FIXED_LAYERS)
    data = eval_data(shipped)
    assert data.label_source == "labels"
    pred = np.argmax(shipped.predict(data.x_eval, batch_size=60, verbose=0), axis=-1)
    assert (pred == data.y_eval).mean() >= 0.9


def test_trained_weights_round_trip_and_other_fixed_weights_are_refused(shipped, tmp_path):
    path = tmp_path / "m.npz"
    save_trained_weights(shipped, path)
    again = load_digits_vgg_fc(path)
    assert all(np.array_equal(x, y) for x, y in
               zip(shipped.get_weights(), again.get_weights(), strict=True))
    assert fixed_digest(again) == fixed_digest(shipped)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["fixed_digest"] = np.array("0" * 64)
    np.savez(path, **arrays)
    with pytest.raises(ToolkitError, match="other fixed random features"):
        load_digits_vgg_fc(path)
    with pytest.raises(ToolkitError, match="does not exist"):
        load_digits_vgg_fc(tmp_path / "missing.npz")
