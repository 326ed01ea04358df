"""Models: the zoo, cut points and splitting, int8 heads, activation codecs."""

from toolkit.models.codecs import Encoded, decode, encode
from toolkit.models.data import EvalData, eval_data, eval_inputs, reference_labels
from toolkit.models.digits import build_digits_cnn, load_digits_data, train_digits
from toolkit.models.evaluate import accuracy_table
from toolkit.models.macs import model_macs
from toolkit.models.quantize import Int8Runner, quantize_int8
from toolkit.models.split import CutPoint, SplitModel
from toolkit.models.zoo import MODEL_NAMES, load_model

__all__ = [
    "MODEL_NAMES",
    "CutPoint",
    "Encoded",
    "EvalData",
    "Int8Runner",
    "SplitModel",
    "accuracy_table",
    "build_digits_cnn",
    "decode",
    "encode",
    "eval_data",
    "eval_inputs",
    "load_digits_data",
    "load_model",
    "model_macs",
    "quantize_int8",
    "reference_labels",
    "train_digits",
]
