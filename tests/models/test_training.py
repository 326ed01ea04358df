"""`dynasplit train-digits` is reproducible: same seed, same weights."""

from __future__ import annotations

import json

import numpy as np

from toolkit.models import load_model, train_digits


def test_training_is_reproducible(tmp_path):
    a = train_digits(tmp_path / "a.keras", epochs=2, seed=3)
    b = train_digits(tmp_path / "b.keras", epochs=2, seed=3)
    assert a["test_accuracy"] == b["test_accuracy"]
    wa = load_model(str(tmp_path / "a.keras")).get_weights()
    wb = load_model(str(tmp_path / "b.keras")).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))
    meta = json.loads((tmp_path / "a.json").read_text())
    assert meta["seed"] == 3 and meta["test_samples"] == 360
