"""Models: the zoo, cut points and splitting, int8 heads, activation codecs.

Names load on first use, so importing a light module of this package (the
codecs, the digits data) does not pull in TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module that defines it
_EXPORTS = {
    "Encoded": "codecs", "decode": "codecs", "encode": "codecs",
    "EvalData": "data", "eval_data": "data", "eval_inputs": "data",
    "reference_labels": "data",
    "build_digits_cnn": "digits", "load_digits_data": "digits", "train_digits": "digits",
    "accuracy_table": "evaluate",
    "model_macs": "macs",
    "Int8Runner": "quantize", "quantize_int8": "quantize",
    "CutPoint": "split", "SplitModel": "split",
    "MODEL_NAMES": "zoo", "load_model": "zoo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'toolkit.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"toolkit.models.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
