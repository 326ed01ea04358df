"""Model names the toolkit knows, and loading them.

* ``digits-cnn``: the shipped CNN trained on scikit-learn's digits (real labels).
* ``digits-vgg``: the shipped VGG-style CNN on the digits upsampled to 64x64
  (real labels; the demo's model, slow enough on a Pi for splits to matter).
* ``vgg16``, ``resnet50``, ``mobilenetv2``: ``keras.applications`` architectures
  built with ``weights=None`` (nothing can be downloaded), or with a local
  weights file.
* a path to a ``.keras`` file.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from toolkit.errors import ToolkitError, choices
from toolkit.models.digits import DIGITS_MODELS

__all__ = ["APPLICATIONS", "MODEL_NAMES", "load_model"]

APPLICATIONS = {
    "vgg16": "VGG16",
    "resnet50": "ResNet50",
    "mobilenetv2": "MobileNetV2",
}
MODEL_NAMES: tuple[str, ...] = (*DIGITS_MODELS, *APPLICATIONS)
DEFAULT_INPUT_SIZE = 224


def load_model(
    name: str | os.PathLike,
    *,
    input_size: int | None = None,
    weights: str | os.PathLike | None = None,
    seed: int = 0,
) -> keras.Model:
    """Load a model by name or ``.keras`` path.

    Args:
        name: one of :data:`MODEL_NAMES` or a path to a ``.keras`` file.
        input_size: square input size for the ``keras.applications`` models
            (default 224; at least 32).
        weights: optional local weights file for the ``keras.applications`` models.
        seed: without a weights file, the architectures are initialised from this
            seed (Keras' global seed is set before building), so that every
            process -- controller, edge worker, cloud worker -- builds the very
            same weights.

    Raises:
        ToolkitError: unknown name, missing or unreadable file.
    """
    name_str = str(name)
    if name_str in DIGITS_MODELS:
        return _load_file(
            DIGITS_MODELS[name_str][1],
            hint=f"the trained model is missing; run `dynasplit train-digits --model {name_str}`",
        )
    if name_str in APPLICATIONS:
        size = input_size or DEFAULT_INPUT_SIZE
        if size < 32:
            raise ToolkitError(f"input size {size} is too small for {name_str}; use 32 or more")
        builder = getattr(keras.applications, APPLICATIONS[name_str])
        if weights is None:
            keras.utils.set_random_seed(seed)
        model = builder(weights=None, input_shape=(size, size, 3))
        if weights is not None:
            try:
                model.load_weights(weights)
            except Exception as exc:
                raise ToolkitError(
                    f"cannot load weights {weights} into {name_str}: {exc}"
                ) from None
        return model
    path = Path(name_str)
    if path.suffix == ".keras":
        return _load_file(path)
    raise ToolkitError(
        f"unknown model {name_str!r}; valid: {choices(MODEL_NAMES)}, or a path to a .keras file"
    )


def _load_file(path: Path, hint: str = "") -> keras.Model:
    if not path.is_file():
        raise ToolkitError(f"model file {path} does not exist" + (f"; {hint}" if hint else ""))
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise ToolkitError(f"cannot load model file {path}: {exc}") from None
