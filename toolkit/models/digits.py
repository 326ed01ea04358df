"""The shipped models trained on scikit-learn's digits.

scikit-learn bundles the UCI optical digits (1797 grey 8x8 images of handwritten
digits with their true labels), so training and evaluation work offline. The
split into training and held-out test data is fixed (stratified, seed 0, 20 %
test). Three models are shipped, each reproduced by :func:`train_digits`
(``dynasplit train-digits --model NAME``):

* ``digits-cnn`` (``datasets/models/digits-cnn.keras``): a small CNN on the
  8x8 images (a fraction of a millisecond anywhere);
* ``digits-vgg`` (``datasets/models/digits-vgg.keras``): a VGG-style CNN on the
  digits upsampled (bilinear) to 64x64 -- three blocks of two 3x3 convolutions
  and a pooling, then two dense layers, 114 MMAC: tens of milliseconds on a
  Raspberry Pi, so that split points matter;
* ``digits-vgg-fc`` (``datasets/models/digits-vgg-fc.npz``): the demo's model,
  four VGG blocks and two heavy dense layers of fixed random features
  regenerated from a seed at load time (:mod:`toolkit.models.digits_fc`).

All are scored against the true labels (``label_source = "labels"``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError, choices
from toolkit.models.digits_fc import DIGITS_VGG_FC_PATH, DIGITS_VGG_FC_SIZE, build_digits_vgg_fc
from toolkit.paths import DATASETS_DIR

__all__ = [
    "DIGITS_MODELS",
    "DIGITS_MODEL_PATH",
    "DIGITS_VGG_PATH",
    "DigitsData",
    "build_digits_cnn",
    "build_digits_vgg",
    "load_digits_data",
    "train_digits",
]

DIGITS_MODEL_PATH = DATASETS_DIR / "models" / "digits-cnn.keras"
DIGITS_VGG_PATH = DATASETS_DIR / "models" / "digits-vgg.keras"
#: input size of digits-vgg (the 8x8 digits upsampled)
DIGITS_VGG_SIZE = 64


@dataclass(frozen=True)
class DigitsData:
    """The digits images scaled to [0, 1], shape (n, 8, 8, 1), with integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_data(test_size: float = 0.2, seed: int = 0) -> DigitsData:
    """Load scikit-learn's digits and split them (stratified, reproducible)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int64")
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    return DigitsData(x_tr, y_tr, x_te, y_te)


def build_digits_cnn():
    """The digits CNN architecture (untrained): three convolutions, two dense layers."""
    return _digits_classifier("digits_cnn", 8, [
        ("conv1", 16), ("conv2", 32), ("pool1", None), ("conv3", 64), ("pool2", None)])


def build_digits_vgg():
    """The digits-vgg architecture (untrained): VGG-style blocks on 64x64 digits."""
    features = []
    for block, filters in enumerate((16, 64, 128), start=1):
        features += [(f"block{block}_conv1", filters), (f"block{block}_conv2", filters),
                     (f"block{block}_pool", None)]
    return _digits_classifier("digits_vgg", DIGITS_VGG_SIZE, features)


def _digits_classifier(name: str, size: int, features: list[tuple[str, int | None]]):
    """A Sequential classifier of ``size``² grey digits: the named feature layers
    (3×3 same-padded ReLU convolutions of the given filters, or 2×2 max pooling
    where filters is None), then flatten, a 64-unit ReLU layer, dropout and a
    10-class softmax."""
    import keras

    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((size, size, 1), name="image"),
            *(layers.MaxPooling2D(name=n) if f is None
              else layers.Conv2D(f, 3, padding="same", activation="relu", name=n)
              for n, f in features),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="fc1"),
            layers.Dropout(0.3, name="dropout"),
            layers.Dense(10, activation="softmax", name="predictions"),
        ],
        name=name,
    )


#: shipped digits models: name -> (builder, file, input size)
DIGITS_MODELS = {
    "digits-cnn": (build_digits_cnn, DIGITS_MODEL_PATH, 8),
    "digits-vgg": (build_digits_vgg, DIGITS_VGG_PATH, DIGITS_VGG_SIZE),
    "digits-vgg-fc": (build_digits_vgg_fc, DIGITS_VGG_FC_PATH, DIGITS_VGG_FC_SIZE),
}


def _upsample(x, size: int):
    if size == x.shape[1]:
        return x
    import tensorflow as tf

    return tf.image.resize(x, (size, size), method="bilinear").numpy().astype("float32")


def train_digits(
    out: str | os.PathLike | None = None, epochs: int = 40, seed: int = 0,
    model: str = "digits-cnn",
) -> dict:
    """Train a shipped digits model reproducibly and save it with a metadata JSON beside it.

    Args:
        out: the ``.keras`` file (default: the shipped one of ``model``).
        epochs: training epochs.
        seed: seeds Keras, NumPy and Python (ops are deterministic).
        model: ``digits-cnn``, ``digits-vgg`` or ``digits-vgg-fc`` (whose file is an
            ``.npz`` of the trained layers only, see :mod:`toolkit.models.digits_fc`).

    Returns:
        The metadata: held-out test accuracy, epochs, seed, sample counts.
    """
    import keras
    import tensorflow as tf
    from tqdm.auto import tqdm

    if model not in DIGITS_MODELS:
        raise ToolkitError(f"unknown digits model {model!r}; valid: {choices(DIGITS_MODELS)}")
    build, default_out, size = DIGITS_MODELS[model]
    out = default_out if out is None else out
    name = model
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    data = load_digits_data(seed=seed)
    data = DigitsData(_upsample(data.x_train, size), data.y_train,
                      _upsample(data.x_test, size), data.y_test)
    model = build()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    bar = tqdm(total=epochs, desc=f"train {name}", unit="epoch")

    class _Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            bar.update(1)
            bar.set_postfix(loss=f"{(logs or {}).get('loss', 0):.3f}")

    model.fit(
        data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0,
        shuffle=True, callbacks=[_Progress()],
    )
    bar.close()
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":  # digits-vgg-fc: the trained layers only
        from toolkit.models.digits_fc import save_trained_weights

        save_trained_weights(model, out)
    else:  # an uncompiled copy: no optimizer state in the shipped file
        shipped = build()
        shipped.set_weights(model.get_weights())
        shipped.save(out)
    meta = {
        "model": name,
        "dataset": "sklearn.datasets.load_digits (UCI optical digits), 20 % stratified test split"
                   + ("" if size == 8 else f", upsampled (bilinear) to {size}x{size}"),
        "test_accuracy": round(float(accuracy), 4),
        "train_samples": len(data.y_train),
        "test_samples": len(data.y_test),
        "epochs": epochs,
        "seed": seed,
        "trained_at": _dt.date.today().isoformat(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    if out.suffix == ".npz":
        from toolkit.models.digits_fc import FIXED_LAYERS, FIXED_SEED, fixed_digest

        meta |= {"fixed_layers": list(FIXED_LAYERS), "fixed_seed": FIXED_SEED,
                 "fixed_init": "He-uniform from numpy.random.PCG64([seed, layer]).random_raw",
                 "fixed_digest": fixed_digest(model), "numpy": np.__version__}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
