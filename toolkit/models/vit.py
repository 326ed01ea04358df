"""ViT-B/16 as DynaSplit used it (``vit_keras.vit.vit_b16``), in Keras 3.

A functional graph of standard Keras layers: the patch embedding (a 16x16
convolution with stride 16), a reshape to tokens, a class token, learned
position embeddings, 12 encoder blocks (pre-norm multi-head self-attention with
12 heads, then an MLP of size 3072, each with its residual add), a final
LayerNorm, extraction of the class token and a 1000-class softmax head. Only the
class token, the position embeddings and the token extraction are small custom
layers (registered serializable); dropout is left out (inference only).

Layer names follow ``vit_keras`` (``/`` is not allowed in Keras 3 names, so
``Transformer/encoderblock_3`` is ``encoderblock_3``), which is how DynaSplit's
ViT split index ``layer`` 0-19 maps onto the toolkit's split index: see
:data:`toolkit.splinter.VIT_LAYER_NAMES` and ``docs/cube.md``.

GELU in the MLP blocks comes in three variants (``gelu=``):

* ``exact``: ``0.5·x·(1 + erf(x/√2))`` (``vit_keras``' choice);
* ``tanh``: the tanh approximation;
* ``igelu``: DynaSplit's integer-friendly I-GELU that the Edge TPU compiler
  accepts, ``0.5·x·(1 + s·(a·(min(s·x/√2, −b) + b)² + 1))`` with
  ``a = −0.2888``, ``b = −1.769`` and ``s = tanh(1000·x/√2)`` standing in for
  sign(x).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from toolkit.errors import ToolkitError, choices
from toolkit.models.names import GELU_NAMES

__all__ = [
    "GELU_VARIANTS",
    "PATCH_SIZE",
    "AddPositionEmbs",
    "ClassToken",
    "ExtractToken",
    "build_vit_b16",
    "gelu_tanh",
    "igelu",
]

PATCH_SIZE = 16
HIDDEN = 768
BLOCKS = 12
HEADS = 12
MLP = 3072
CLASSES = 1000
_EPS = 1e-6
_IGELU_A = -0.2888
_IGELU_B = -1.769
_SQRT2 = math.sqrt(2.0)


@keras.saving.register_keras_serializable(package="toolkit")
def gelu_tanh(x):
    """GELU, tanh approximation."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="toolkit")
def igelu(x):
    """DynaSplit's I-GELU: a second-order polynomial erf with a tanh sign."""
    s = ops.tanh(1000.0 * x / _SQRT2)
    clipped = ops.minimum(s * x / _SQRT2, -_IGELU_B)
    erf = s * (_IGELU_A * ops.square(clipped + _IGELU_B) + 1.0)
    return 0.5 * x * (1.0 + erf)


#: GELU variant name -> activation for the MLP blocks
GELU_VARIANTS = dict(zip(GELU_NAMES, ("gelu", gelu_tanh, igelu), strict=True))


@keras.saving.register_keras_serializable(package="toolkit")
class ClassToken(keras.layers.Layer):
    """Prepends a learned class token to a sequence of tokens."""

    def build(self, input_shape):
        self.cls = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="zeros",
                                   name="cls")

    def call(self, x):
        batch = ops.shape(x)[0]
        cls = ops.broadcast_to(ops.cast(self.cls, x.dtype), (batch, 1, x.shape[-1]))
        return ops.concatenate([cls, x], axis=1)

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], n, input_shape[2])


@keras.saving.register_keras_serializable(package="toolkit")
class AddPositionEmbs(keras.layers.Layer):
    """Adds learned position embeddings to a sequence of tokens."""

    def build(self, input_shape):
        self.pe = self.add_weight(
            shape=(1, input_shape[1], input_shape[2]),
            initializer=keras.initializers.RandomNormal(stddev=0.06), name="pos_embedding")

    def call(self, x):
        return x + ops.cast(self.pe, x.dtype)


@keras.saving.register_keras_serializable(package="toolkit")
class ExtractToken(keras.layers.Layer):
    """The class token (the first token) of a sequence."""

    def call(self, x):
        return x[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def _block(x, i: int, activation):
    name = f"encoderblock_{i}"
    y = keras.layers.LayerNormalization(epsilon=_EPS, name=f"{name}_norm1")(x)
    y = keras.layers.MultiHeadAttention(HEADS, HIDDEN // HEADS, name=f"{name}_attention")(y, y)
    x = keras.layers.Add(name=f"{name}_attention_add")([x, y])
    y = keras.layers.LayerNormalization(epsilon=_EPS, name=f"{name}_norm2")(x)
    y = keras.layers.Dense(MLP, name=f"{name}_mlp_dense1")(y)
    y = keras.layers.Activation(activation, name=f"{name}_gelu")(y)
    y = keras.layers.Dense(HIDDEN, name=f"{name}_mlp_dense2")(y)
    return keras.layers.Add(name=name)([x, y])


def build_vit_b16(input_size: int = 224, gelu: str = "exact") -> keras.Model:
    """ViT-B/16 with freshly initialised weights (seed Keras first to make them repeatable).

    Args:
        input_size: square input size, a multiple of 16.
        gelu: ``exact``, ``tanh`` or ``igelu`` (see the module docstring).

    Raises:
        ToolkitError: an input size that is not a positive multiple of 16, or an
            unknown GELU variant.
    """
    if gelu not in GELU_VARIANTS:
        raise ToolkitError(f"unknown GELU variant {gelu!r}; valid: {choices(GELU_VARIANTS)}")
    if not isinstance(input_size, int) or input_size < PATCH_SIZE or input_size % PATCH_SIZE:
        raise ToolkitError(
            f"input size {input_size} does not suit vit-b16; use a multiple of {PATCH_SIZE} "
            "(e.g. 32, 64 or 224)")
    n = (input_size // PATCH_SIZE) ** 2
    inp = keras.Input((input_size, input_size, 3), name="image")
    x = keras.layers.Conv2D(HIDDEN, PATCH_SIZE, strides=PATCH_SIZE, padding="valid",
                            name="embedding")(inp)
    x = keras.layers.Reshape((n, HIDDEN), name="reshape")(x)
    x = ClassToken(name="class_token")(x)
    x = AddPositionEmbs(name="posembed_input")(x)
    for i in range(BLOCKS):
        x = _block(x, i, GELU_VARIANTS[gelu])
    x = keras.layers.LayerNormalization(epsilon=_EPS, name="encoder_norm")(x)
    x = ExtractToken(name="extract_token")(x)
    out = keras.layers.Dense(CLASSES, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name=f"vit_b16_{gelu}" if gelu != "exact" else "vit_b16")
