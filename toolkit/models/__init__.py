"""Models: the zoo, cut points and splitting, int8 heads, activation codecs.

Names load on first use, so importing a light module of this package (the
codecs, the digits data) does not pull in TensorFlow.
"""

from __future__ import annotations

from toolkit.lazy import lazy_exports

_MODULES = {
    "Encoded": "codecs", "decode": "codecs", "encode": "codecs",
    "EvalData": "data", "eval_data": "data", "eval_inputs": "data", "folder_data": "data",
    "image_files": "data", "reference_labels": "data",
    "build_digits_cnn": "digits", "load_digits_data": "digits", "train_digits": "digits",
    "accuracy_table": "evaluate",
    "model_macs": "macs",
    "Int8Runner": "quantize", "quantize_int8": "quantize",
    "CutPoint": "split", "SplitModel": "split",
    "MODEL_NAMES": "names", "load_model": "zoo",
}

#: public name -> module that defines it
_EXPORTS = {name: f"toolkit.models.{module}" for name, module in _MODULES.items()}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
