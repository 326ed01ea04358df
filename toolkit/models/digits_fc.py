"""``digits-vgg-fc``: a VGG-style digits CNN with VGG16-like heavy dense layers.

The demo's model. Its shape is DynaSplit's VGG16 in small: four convolution
blocks (16, 64, 128, 256 channels, two 3x3 convolutions each) on the digits
upsampled to 64x64, then two 2048-wide dense layers that hold 91 % of its
13.8 M weights, then a 10-way classifier. The heavy dense layers are what puts
interior splits on DynaSplit's front: they exceed the Edge TPU's 8 MB of
on-chip memory and cost DynaSplit's cloud CPU time per weight
(``docs/calibration.md``).

The two dense layers ``fc1`` and ``fc2`` are **fixed random features**: their
weights are not trained but regenerated at load time from a seed
(:func:`fixed_dense_weights`), He-uniform from the raw 64-bit stream of
NumPy's ``PCG64`` bit generator, whose output NumPy keeps stable across
versions. Only the convolutions and the classifier are trained, with the fixed
layers in place (frozen), and only they are shipped
(``datasets/models/digits-vgg-fc.npz``, 4.7 MB instead of 55 MB). The
shipped file records a digest of the fixed weights it was trained with, and
loading refuses a model whose regenerated weights differ.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.models.quantize import weights_digest
from toolkit.paths import DATASETS_DIR

__all__ = [
    "DIGITS_VGG_FC_PATH",
    "FIXED_LAYERS",
    "FIXED_SEED",
    "build_digits_vgg_fc",
    "fixed_dense_weights",
    "fixed_digest",
    "load_digits_vgg_fc",
    "save_trained_weights",
]

DIGITS_VGG_FC_PATH = DATASETS_DIR / "models" / "digits-vgg-fc.npz"
#: input size of digits-vgg-fc (the 8x8 digits upsampled)
DIGITS_VGG_FC_SIZE = 64
#: the dense layers whose weights are fixed random features, and their width
FIXED_LAYERS = ("fc1", "fc2")
FC_UNITS = 2048
#: seed of the fixed random features
FIXED_SEED = 14


def build_digits_vgg_fc(with_fixed: bool = True):
    """The digits-vgg-fc architecture, trained weights not loaded.

    Args:
        with_fixed: set the fixed layers' weights (:func:`fixed_dense_weights`)
            and freeze them, as for training and loading.
    """
    import keras

    layers = keras.layers
    stack = [keras.Input((DIGITS_VGG_FC_SIZE, DIGITS_VGG_FC_SIZE, 1), name="image")]
    for block, channels in enumerate((16, 64, 128, 256), start=1):
        stack += [layers.Conv2D(channels, 3, padding="same", activation="relu",
                                name=f"block{block}_conv{i}") for i in (1, 2)]
        stack.append(layers.MaxPooling2D(name=f"block{block}_pool"))
    stack.append(layers.Flatten(name="flatten"))
    stack += [layers.Dense(FC_UNITS, activation="relu", name=name) for name in FIXED_LAYERS]
    stack.append(layers.Dense(10, activation="softmax", name="predictions"))
    model = keras.Sequential(stack, name="digits_vgg_fc")
    if with_fixed:
        for layer, weights in zip(FIXED_LAYERS, fixed_dense_weights(model), strict=True):
            model.get_layer(layer).set_weights(weights)
            model.get_layer(layer).trainable = False
    return model


def fixed_dense_weights(model, seed: int = FIXED_SEED) -> list[list[np.ndarray]]:
    """The fixed layers' ``[kernel, bias]``, regenerated from ``seed``.

    Kernel entries are uniform in ``±sqrt(6 / fan_in)`` (He-uniform, which keeps
    ReLU activations at a steady scale); biases are zero. Layer ``i`` draws from
    ``PCG64([seed, i])``'s raw 64-bit output (its top 53 bits as a float in
    [0, 1)), a stream NumPy keeps stable across versions, unlike its
    distribution methods.
    """
    out = []
    for i, name in enumerate(FIXED_LAYERS):
        kernel_shape = tuple(int(d) for d in model.get_layer(name).kernel.shape)
        raw = np.random.PCG64([seed, i]).random_raw(int(np.prod(kernel_shape)))
        unit = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53
        limit = np.sqrt(6.0 / kernel_shape[0])
        kernel = ((2.0 * unit - 1.0) * limit).astype(np.float32).reshape(kernel_shape)
        out.append([kernel, np.zeros(kernel_shape[1], np.float32)])
    return out


def fixed_digest(model) -> str:
    """sha256 of the fixed layers' weights as ``model`` holds them."""
    return weights_digest(w for name in FIXED_LAYERS
                          for w in model.get_layer(name).get_weights()).hexdigest()


def _trained_layers(model):
    return [layer for layer in model.layers if layer.weights and layer.name not in FIXED_LAYERS]


def save_trained_weights(model, out: str | os.PathLike) -> None:
    """Write the trained layers' weights (all but :data:`FIXED_LAYERS`) and the
    fixed layers' digest to an ``.npz`` file."""
    arrays = {f"{layer.name}/{i}": w for layer in _trained_layers(model)
              for i, w in enumerate(layer.get_weights())}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, fixed_digest=np.array(fixed_digest(model)), **arrays)


def load_digits_vgg_fc(path: str | os.PathLike = DIGITS_VGG_FC_PATH):
    """digits-vgg-fc with its fixed layers regenerated and its trained weights loaded.

    Raises:
        ToolkitError: the file is missing or unreadable, does not fit the
            architecture, or was trained with other fixed weights than those
            regenerated here.
    """
    path = Path(path)
    if not path.is_file():
        raise ToolkitError(f"model file {path} does not exist; run "
                           "`dynasplit train-digits --model digits-vgg-fc`")
    model = build_digits_vgg_fc()
    try:
        with np.load(path) as data:
            expected = str(data["fixed_digest"])
            for layer in _trained_layers(model):
                layer.set_weights([data[f"{layer.name}/{i}"]
                                   for i in range(len(layer.get_weights()))])
    except Exception as exc:
        raise ToolkitError(f"cannot load model file {path}: {exc}") from None
    if fixed_digest(model) != expected:
        raise ToolkitError(f"{path} was trained with other fixed random features than this "
                           "NumPy regenerates; retrain with `dynasplit train-digits --model "
                           "digits-vgg-fc`")
    return model
