"""Model names the toolkit knows, and loading them.

* ``digits-cnn``: the shipped CNN trained on scikit-learn's digits (real labels).
* ``digits-vgg``: the shipped VGG-style CNN on the digits upsampled to 64x64
  (real labels; slow enough on a Pi for splits to matter).
* ``digits-vgg-fc``: the demo's model, four VGG blocks and two heavy dense
  layers of fixed random features regenerated from a seed
  (:mod:`toolkit.models.digits_fc`; real labels).
* ``vgg16``, ``resnet50``, ``mobilenetv2``: ``keras.applications`` architectures
  built with ``weights=None`` (nothing can be downloaded), or with a local
  weights file.
* ``vit-b16``: DynaSplit's ViT-B/16 (see :mod:`toolkit.models.vit`), with a
  choice of GELU (``gelu=exact|tanh|igelu``), built with ``weights=None`` from a
  seed or with a local weights file; any input size that is a multiple of 16.
  The GELU variant changes what the model computes, so it is part of the
  model's name wherever a name travels (configurations, cubes, workers):
  ``vit-b16`` is exact GELU, ``vit-b16:tanh`` and ``vit-b16:igelu`` the others
  (:func:`model_name` spells it; the CLI's ``--gelu`` does the same).
* a path to a ``.keras`` file.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from toolkit.errors import ToolkitError, choices, first_line
from toolkit.fileio import not_a_file
from toolkit.models.digits import DIGITS_MODELS
from toolkit.models.names import (
    APPLICATIONS,
    MODEL_NAMES,
    VIT_MODELS,
    check_input_size,
    check_model_name,
    split_variant,
)

__all__ = ["APPLICATIONS", "MODEL_NAMES", "check_input_size", "load_model", "model_name"]

DEFAULT_INPUT_SIZE = 224


def model_name(name: str | os.PathLike, gelu: str | None = None) -> str:
    """The name a model travels under: ``vit-b16`` with a GELU variant other than
    ``exact`` becomes ``vit-b16:<variant>``; other names are returned unchanged.

    Raises:
        ToolkitError: a GELU variant for a model that has none, or an unknown one.
    """
    from toolkit.models.vit import GELU_VARIANTS

    text = str(name)
    base, variant = split_variant(text)
    if gelu is None:
        return text
    if base not in VIT_MODELS:
        raise ToolkitError(f"--gelu applies to {choices(VIT_MODELS)} only, not {text!r}")
    if variant is not None and variant != gelu:
        raise ToolkitError(f"model {text!r} already names GELU {variant!r}; drop --gelu {gelu}")
    if gelu not in GELU_VARIANTS:
        raise ToolkitError(f"unknown GELU variant {gelu!r}; valid: {choices(GELU_VARIANTS)}")
    return base if gelu == "exact" else f"{base}:{gelu}"


def load_model(
    name: str | os.PathLike,
    *,
    input_size: int | None = None,
    weights: str | os.PathLike | None = None,
    seed: int = 0,
    gelu: str | None = None,
) -> keras.Model:
    """Load a model by name or ``.keras`` path.

    Args:
        name: one of :data:`MODEL_NAMES` or a path to a ``.keras`` file.
        input_size: square input size for the ``keras.applications`` models
            (default 224; at least 32).
        weights: optional local weights file, or ``"imagenet"``: Keras' own
            ImageNet weights of the ``keras.applications`` models, where the
            machine can download them (a clear error offline; ``vit-b16`` has
            none).
        seed: without a weights file, the architectures are initialised from this
            seed (Keras' global seed is set before building), so that every
            process -- controller, edge worker, cloud worker -- builds the very
            same weights.
        gelu: GELU variant of ``vit-b16`` (``exact``, ``tanh`` or ``igelu``;
            default exact, or the variant the name carries, e.g.
            ``vit-b16:igelu``).

    Raises:
        ToolkitError: unknown name, missing or unreadable file.
    """
    name_str, variant = split_variant(model_name(name, gelu))
    if name_str in DIGITS_MODELS and DIGITS_MODELS[name_str][1].suffix == ".npz":
        from toolkit.models.digits_fc import load_digits_vgg_fc

        return load_digits_vgg_fc(DIGITS_MODELS[name_str][1])
    if name_str in DIGITS_MODELS:
        return _load_file(
            DIGITS_MODELS[name_str][1],
            hint=f"the trained model is missing; run `dynasplit train-digits --model {name_str}`",
        )
    if name_str in APPLICATIONS or name_str in VIT_MODELS:
        size = DEFAULT_INPUT_SIZE if input_size is None else input_size
        if name_str in VIT_MODELS:
            from toolkit.models.vit import build_vit_b16

            def builder():
                return build_vit_b16(size, variant or "exact")
        else:
            if size < 32:
                raise ToolkitError(
                    f"input size {size} is too small for {name_str}; use 32 or more")
            app = getattr(keras.applications, APPLICATIONS[name_str])

            def builder():
                return app(weights=None, input_shape=(size, size, 3))
        if str(weights) == "imagenet":
            return _imagenet(name_str, size)
        if weights is None:
            keras.utils.set_random_seed(seed)
        try:
            model = builder()
        except Exception as exc:  # TensorFlow's ResourceExhaustedError, or MemoryError
            if not isinstance(exc, MemoryError) and "ResourceExhausted" not in type(exc).__name__:
                raise
            raise ToolkitError(f"{name_str} at input size {size} needs more memory than this "
                               f"machine can give its weights; use a smaller --input-size "
                               f"(default {DEFAULT_INPUT_SIZE})") from None
        if weights is not None:
            try:
                model.load_weights(weights)
            except Exception as exc:
                raise ToolkitError(
                    f"cannot load weights {weights} into {name_str}: {exc}"
                ) from None
        return model
    return _load_file(Path(check_model_name(name_str)))  # a .keras path, or refused


def _imagenet(name: str, size: int) -> keras.Model:
    """A ``keras.applications`` model with Keras' ImageNet weights (downloaded once)."""
    if name not in APPLICATIONS:
        raise ToolkitError(f"{name} has no Keras ImageNet weights; pass --weights FILE "
                           "(a local weights file)")
    builder = getattr(keras.applications, APPLICATIONS[name])
    try:
        return builder(weights="imagenet", input_shape=(size, size, 3))
    except ValueError as exc:  # e.g. an input size the weights do not fit
        raise ToolkitError(f"cannot use Keras' ImageNet weights for {name}: "
                           f"{first_line(exc)}") from None
    except Exception as exc:  # the download: offline, proxy, disk
        raise ToolkitError(f"cannot download Keras' ImageNet weights for {name} "
                           f"({first_line(exc)}); "
                           "offline? pass --weights FILE with a local weights file") from None


def _load_file(path: Path, hint: str = "") -> keras.Model:
    import zipfile

    if path.is_dir():
        raise ToolkitError(f"model file {path} is a folder; give a .keras file "
                           "(`model.save('name.keras')` writes one)")
    if problem := not_a_file(path):
        raise ToolkitError(f"model file {path} {problem}" + (f"; {hint}" if hint else ""))
    if not zipfile.is_zipfile(path):
        raise ToolkitError(f"model file {path} is not a .keras file: a .keras file is the zip "
                           "archive `model.save('name.keras')` writes")
    import toolkit.models.vit  # noqa: F401  (registers ViT's layers and activations)

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise ToolkitError(f"cannot load model file {path}: {exc}") from None
