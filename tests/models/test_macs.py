"""The one MAC counting rule, per layer type, against hand-counted figures."""

from __future__ import annotations

import keras
import pytest

from toolkit.models.graph import Graph
from toolkit.models.macs import graph_macs, model_macs

L = keras.layers


@pytest.mark.parametrize(("layer", "in_shape", "expected"), [
    # 6x6 outputs x 8 filters x 3x3 window x 4 input channels
    (L.Conv2D(8, 3), (8, 8, 4), 6 * 6 * 8 * 9 * 4),
    # two groups: each output sees half the input channels
    (L.Conv2D(8, 3, groups=2), (8, 8, 4), 6 * 6 * 8 * 9 * 2),
    # one 3x3 window per output element (4 channels x multiplier 2)
    (L.DepthwiseConv2D(3, depth_multiplier=2), (8, 8, 4), 6 * 6 * 8 * 9),
    # depthwise (6x6x8 outputs x 3x3) + pointwise (6x6x5 outputs x 8 channels)
    (L.SeparableConv2D(5, 3, depth_multiplier=2), (8, 8, 4), 6 * 6 * 8 * 9 + 6 * 6 * 5 * 8),
    # every input element is scattered over a 3x3 window x 8 output channels
    (L.Conv2DTranspose(8, 3), (5, 5, 4), 5 * 5 * 4 * 9 * 8),
    # per position: 7 outputs x 4 inputs
    (L.Dense(7), (3, 4), 3 * 7 * 4),
    (L.MaxPooling2D(), (8, 8, 4), 0),
    (L.BatchNormalization(), (8, 8, 4), 0),
])
def test_counting_rule_per_layer_type(layer, in_shape, expected):
    model = keras.Sequential([keras.Input(in_shape), layer])
    assert graph_macs(Graph(model)) == [expected]
    assert model_macs(model) == expected


def test_self_attention_counts_projections_and_both_products():
    inputs = keras.Input((10, 16))
    outputs = L.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)
    tokens, dim, inner = 10, 16, 2 * 4
    projections = 3 * tokens * dim * inner + tokens * inner * dim
    assert model_macs(keras.Model(inputs, outputs)) == projections + 2 * tokens * tokens * inner


def test_a_nested_model_counts_as_the_sum_of_its_layers():
    block = keras.Sequential([keras.Input((8, 8, 4)), L.Conv2D(8, 3), L.Flatten(), L.Dense(2)])
    outer = keras.Sequential([keras.Input((8, 8, 4)), block])
    assert model_macs(outer) == model_macs(block) == 6 * 6 * 8 * 9 * 4 + 2 * 6 * 6 * 8
