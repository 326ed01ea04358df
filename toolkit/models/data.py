"""Evaluation data for a model: inputs, calibration samples and reference labels.

The shipped digits models (``digits-cnn`` on 8x8, ``digits-vgg`` on the digits
upsampled to 64x64) are evaluated against the true labels of the held-out digits.
The ``keras.applications`` architectures have no trained weights here (nothing
can be downloaded) and no dataset of their own, so they are fed the real digits
images resized to their input size, and their "accuracy" is the top-1
*agreement with the unsplit fp32 model* (``label_source = "fp32-model"``): the
figure that shows what int8 heads and lossy codecs cost. Every accuracy the
toolkit reports carries its ``label_source``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.models.digits import load_digits_data

__all__ = ["EvalData", "eval_data", "eval_inputs", "reference_labels"]


@dataclass(frozen=True)
class EvalData:
    """Inputs and labels to run and score a model.

    Attributes:
        x_calib: representative inputs for int8 calibration (training split).
        x_eval: held-out inputs streamed by split inference.
        y_eval: reference labels of ``x_eval``.
        label_source: ``labels`` (true labels) or ``fp32-model`` (agreement).
    """

    x_calib: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    label_source: str

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` evaluation samples (cycling when n exceeds them)."""
        idx = np.arange(n) % len(self.x_eval)
        return self.x_eval[idx], self.y_eval[idx]


def _resize(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import tensorflow as tf

    h, w, c = shape
    out = tf.image.resize(x, (h, w), method="bilinear").numpy()
    if c != out.shape[-1]:
        out = np.repeat(out, c, axis=-1)
    return out.astype("float32")


#: Keras names of the models trained on the digits (scored against true labels)
DIGITS_KERAS_NAMES = ("digits_cnn", "digits_vgg")


def _native(model) -> bool:
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return shape == (8, 8, 1)


def _trained_on_digits(model) -> bool:
    return _native(model) or model.name in DIGITS_KERAS_NAMES


def eval_inputs(model, n_calib: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Calibration and evaluation inputs for ``model`` (cheap: no inference).

    The digits images as they are for an 8x8x1 model, otherwise resized (and
    repeated over channels) to the model's input shape.
    """
    digits = load_digits_data()
    if _native(model):
        return digits.x_train[:n_calib], digits.x_test
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return _resize(digits.x_train[:n_calib], shape), _resize(digits.x_test, shape)


def reference_labels(model, x_eval: np.ndarray) -> tuple[np.ndarray, str]:
    """Reference labels of ``x_eval`` and where they come from.

    True digit labels for a model trained on the digits (8x8x1 input, or a
    shipped digits model at its larger input); otherwise the unsplit fp32
    model's own top-1 predictions (``fp32-model``: accuracy then means agreement).
    """
    if _trained_on_digits(model):
        return load_digits_data().y_test, "labels"
    return np.argmax(model.predict(x_eval, batch_size=32, verbose=0), axis=-1), "fp32-model"


def eval_data(model, n_calib: int = 200) -> EvalData:
    """Inputs and reference labels for ``model`` in one record."""
    x_calib, x_eval = eval_inputs(model, n_calib)
    y_eval, source = reference_labels(model, x_eval)
    return EvalData(x_calib, x_eval, y_eval, source)
