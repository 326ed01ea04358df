"""Models shared by the partitioning tests (built once per session, random weights)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from toolkit.models.digits import build_digits_cnn
from toolkit.partition import PartitionCluster, mobilenet_stack, randomize_weights, vgg_stack


def digits_cnn() -> keras.Model:
    """The shipped digits CNN's architecture, built fresh (the trained file is not needed)."""
    return randomize_weights(build_digits_cnn(), seed=3)


def coverage_model() -> keras.Model:
    """A functional chain with a nested block and every other supported layer type."""
    L = keras.layers
    block = keras.Sequential([
        L.Conv2D(12, 3, strides=2, padding="valid", use_bias=False, name="b_conv"),
        L.LeakyReLU(0.1, name="b_leaky"),
        L.AveragePooling2D(2, strides=1, padding="valid", name="b_avg"),
    ], name="block")
    inputs = keras.Input((21, 19, 4), name="image")
    x = L.Rescaling(0.5, offset=-0.25, name="rescale")(inputs)
    x = L.Conv2D(8, (3, 5), padding="same", name="conv1")(x)
    x = L.ELU(0.7, name="elu")(x)
    x = L.GaussianNoise(0.3, name="noise")(x)
    x = block(x)
    x = L.SpatialDropout2D(0.2, name="sdrop")(x)
    x = L.Dense(10, activation="tanh", name="pixel_dense")(x)
    x = L.Softmax(name="channel_softmax")(x)
    x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=3, name="dw")(x)
    x = L.Activation("sigmoid", name="sig")(x)
    x = L.SeparableConv2D(16, 3, strides=2, padding="same", depth_multiplier=2, name="sep")(x)
    x = L.GlobalMaxPooling2D(keepdims=True, name="gmp")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(7, name="logits")(x)
    return randomize_weights(keras.Model(inputs, x, name="coverage"), seed=5)


def _logits(model: keras.Model) -> keras.Model:
    model.layers[-1].activation = keras.activations.linear
    return model


BUILDERS = {
    "vgg-stack": lambda: vgg_stack(32),
    "vgg-stack-logits": lambda: _logits(vgg_stack(32)),
    "mobilenet-stack": lambda: mobilenet_stack(32),
    "mobilenet-stack-logits": lambda: _logits(mobilenet_stack(32)),
    "digits-cnn": digits_cnn,
    "digits-cnn-logits": lambda: _logits(digits_cnn()),
    "coverage": coverage_model,
}


class ModelCache:
    """Builds each test model once, with a seeded input batch and its Keras output."""

    def __init__(self) -> None:
        self._models: dict[str, tuple[keras.Model, np.ndarray, np.ndarray]] = {}

    def __call__(self, name: str) -> tuple[keras.Model, np.ndarray, np.ndarray]:
        if name not in self._models:
            model = BUILDERS[name]()
            shape = tuple(model.inputs[0].shape[1:])
            x = np.random.default_rng(1).standard_normal((2, *shape)).astype(np.float32)
            self._models[name] = (model, x, np.asarray(model(x, training=False)))
        return self._models[name]


@pytest.fixture(scope="session")
def models() -> ModelCache:
    """``models(name)`` -> (Keras model, input batch, the model's output on it)."""
    return ModelCache()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """Four real device worker processes, shared by the real-execution tests."""
    with PartitionCluster(4, log_dir=tmp_path_factory.mktemp("partition"),
                          run_timeout=120) as c:
        yield c


@pytest.fixture
def mlp_file(tmp_path) -> Path:
    """A saved Keras MLP (``tmp_path/mlp.keras``), which spatial partitioning refuses."""
    L = keras.layers
    mlp = keras.Sequential([keras.Input((6, 6, 2)), L.Flatten(), L.Dense(8, activation="relu"),
                            L.Dense(3)], name="mlp")
    path = tmp_path / "mlp.keras"
    mlp.save(path)
    return path
