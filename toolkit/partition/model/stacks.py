"""Built-in conv stacks for partitioning studies, and resolving model names.

``vgg-stack`` and ``mobilenet-stack`` are small chain models that exercise
everything the strategies must handle: 3x3 convolutions with ``same`` and
``valid`` padding, strides 2, a dilated convolution, max and average pooling
(``same`` and ``valid``), depthwise convolutions (with a depth multiplier),
a separable convolution, ``ZeroPadding2D``, batch normalisation, ReLU6,
``Flatten`` / global pooling and dense layers. Their weights are random but
reproducible (:func:`randomize_weights`), with non-zero biases and batch
normalisation statistics so that a bias added twice shows.
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np

from toolkit.errors import ToolkitError, check_count, choices

__all__ = [
    "STACKS",
    "as_partition_model",
    "load_partition_model",
    "mobilenet_stack",
    "randomize_weights",
    "vgg_stack",
]

DEFAULT_INPUT_SIZE = 32


def randomize_weights(model: keras.Model, seed: int = 0) -> keras.Model:
    """Give every weight of ``model`` a reproducible random value; returns ``model``.

    Kernels are normal with variance ``2 / fan_in``; biases and batch
    normalisation offsets and means are normal with deviation 0.1; scales and
    variances uniform in [0.5, 1.5].
    """
    rng = np.random.default_rng(seed)
    for layer in _leaf_layers(model):
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        for var in layer.weights:
            shape = tuple(var.shape)
            name = var.name.split("/")[-1]
            if name in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, shape)
            elif name in ("bias", "beta", "moving_mean"):
                value = rng.normal(0.0, 0.1, shape)
            else:
                per_channel = name == "depthwise_kernel" or (depthwise and name == "kernel")
                fan_in = math.prod(shape[:2]) if per_channel else math.prod(shape[:-1])
                value = rng.normal(0.0, math.sqrt(2.0 / max(fan_in, 1)), shape)
            var.assign(value.astype(np.float32))
    return model


def _leaf_layers(model: keras.Model) -> list:
    return [leaf for layer in model.layers
            for leaf in (_leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])]


def vgg_stack(input_size: int = DEFAULT_INPUT_SIZE, seed: int = 0) -> keras.Model:
    """A VGG-style stack on ``input_size`` x ``input_size`` x 3 images (at least 16)."""
    check_count(input_size, "input size", 16)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((input_size, input_size, 3), name="image"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        L.Conv2D(16, 3, padding="same", dilation_rate=2, activation="relu", name="conv2"),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(32, 3, padding="valid", name="conv3"),
        L.BatchNormalization(name="bn3"),
        L.ReLU(name="relu3"),
        L.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv4"),
        L.AveragePooling2D(3, strides=2, padding="same", name="pool2"),
        L.Conv2D(48, 1, activation="relu", name="conv5"),
        L.MaxPooling2D(2, strides=1, padding="valid", name="pool3"),
        L.Flatten(name="flatten"),
        L.Dense(32, activation="relu", name="fc1"),
        L.Dropout(0.5, name="dropout"),
        L.Dense(10, activation="softmax", name="predictions"),
    ], name="vgg_stack")
    return randomize_weights(model, seed)


def mobilenet_stack(input_size: int = DEFAULT_INPUT_SIZE, seed: int = 0) -> keras.Model:
    """A MobileNet-style stack on ``input_size`` x ``input_size`` x 3 images (at least 32)."""
    check_count(input_size, "input size", 32)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((input_size, input_size, 3), name="image"),
        L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem"),
        L.BatchNormalization(name="stem_bn"),
        L.ReLU(6.0, name="stem_relu"),
        L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw1"),
        L.BatchNormalization(name="dw1_bn"),
        L.ReLU(6.0, name="dw1_relu"),
        L.Conv2D(24, 1, use_bias=False, name="project1"),
        L.BatchNormalization(name="project1_bn"),
        L.Conv2D(48, 1, name="expand2"),
        L.BatchNormalization(name="expand2_bn"),
        L.ReLU(6.0, name="expand2_relu"),
        L.ZeroPadding2D(((0, 1), (0, 1)), name="dw2_pad"),
        L.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False, name="dw2"),
        L.BatchNormalization(name="dw2_bn"),
        L.ReLU(6.0, name="dw2_relu"),
        L.Conv2D(32, 1, name="project2"),
        L.MaxPooling2D(3, strides=2, padding="same", name="pool"),
        L.DepthwiseConv2D(3, padding="valid", depth_multiplier=2, activation="relu6", name="dw3"),
        L.SeparableConv2D(32, 3, padding="same", activation="relu", name="sep4"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(10, activation="softmax", name="predictions"),
    ], name="mobilenet_stack")
    return randomize_weights(model, seed)


#: built-in stack names and their builders
STACKS = {"vgg-stack": vgg_stack, "mobilenet-stack": mobilenet_stack}


def load_partition_model(name: str | os.PathLike, input_size: int | None = None) -> keras.Model:
    """Resolve a model for partitioning.

    ``vgg-stack`` and ``mobilenet-stack`` are built here (``input_size``,
    default 32); the model zoo's names and ``.keras`` paths go to
    ``toolkit.models.load_model`` (``input_size`` passed on where given; the
    ``keras.applications`` architectures -- ``resnet50``, ``mobilenetv2``,
    ``vgg16``, built with ``weights=None`` from a seed -- default to 32 here, not
    the zoo's 224, so that every strategy's check against Keras stays fast); without
    the zoo, only a ``.keras`` path is accepted besides the stacks.

    Raises:
        ToolkitError: an unknown name, an unreadable file, or ``input_size`` for a
            model with a fixed input (the digits models, ``.keras`` files).
    """
    from toolkit.models import MODEL_NAMES, load_model
    from toolkit.models.zoo import APPLICATIONS, check_input_size

    text = str(name)
    if text in STACKS:
        return STACKS[text](input_size or DEFAULT_INPUT_SIZE)
    check_input_size([text], input_size, also=tuple(STACKS))  # a fixed input would stay
    if input_size is None and text in APPLICATIONS:
        input_size = DEFAULT_INPUT_SIZE  # resnet50, mobilenetv2...: small by default
    if text in MODEL_NAMES or text.endswith(".keras"):
        kwargs = {"input_size": input_size} if input_size is not None else {}
        return load_model(text, **kwargs)
    valid = choices((*STACKS, *MODEL_NAMES))
    raise ToolkitError(f"unknown model {text!r}; valid: {valid} or a path to a .keras file")


def as_partition_model(model: Any, purpose: str, also: tuple[type, ...] = (),
                       kinds: str = "a Keras model") -> Any:
    """What a partitioning entry point was given as its model: a Keras model (or
    an instance of ``also``) as it is, a name or path loaded by
    :func:`load_partition_model`.

    Args:
        model: the argument.
        purpose: the entry point, for messages (e.g. ``"choose_hybrid"``).
        also: other model types it takes (``partition`` takes a ``Chain`` or a
            ``Network`` too).
        kinds: how the message names what it takes besides a name.

    Raises:
        ToolkitError: anything else, named with ``purpose``; the errors of
            :func:`load_partition_model` for a name.
    """
    if isinstance(model, str | os.PathLike):  # a name, as the command line takes it
        return load_partition_model(model)
    if not isinstance(model, (keras.Model, *also)):
        raise ToolkitError(f"{purpose} needs {kinds} or a model's name (e.g. 'vgg-stack', "
                           f"'digits-cnn'), got {type(model).__name__}")
    return model
