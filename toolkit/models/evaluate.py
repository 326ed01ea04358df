"""Accuracy of a split model for every (split, edge accelerator, codec).

Runs in-process over the whole held-out set: the head (Keras fp32 or the int8
flatbuffer), the codec's encode/decode round trip of the tensor sent to the
cloud, then the tail. What the wire does not change (framing, timing) is left to
the runtime; what changes predictions (int8 heads, lossy codecs) is all here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from toolkit.config import ACCELERATORS, CODECS
from toolkit.errors import ConfigError, ToolkitError, choices
from toolkit.models.codecs import decode, encode
from toolkit.models.data import EvalData
from toolkit.models.quantize import Int8Runner, quantize_int8
from toolkit.models.split import SplitModel

__all__ = ["accuracy_table"]


def accuracy_table(
    split_model: SplitModel,
    data: EvalData,
    splits: Sequence[int] | None = None,
    edge_accels: Sequence[str] = ("none", "int8"),
    codecs: Sequence[str] = CODECS,
    progress: bool = True,
) -> pd.DataFrame:
    """Top-1 accuracy per (split, edge_accel, codec) against ``data``'s labels.

    An accelerator that runs the head int8-quantised (``int8`` and the Edge TPU's
    ``tpu-*``, :data:`toolkit.config.ACCELERATORS`) is scored with the int8 head.

    Returns:
        A DataFrame with columns ``split, layer, edge_accel, codec, accuracy,
        label_source``; combinations that do not exist (an int8 head at split 0,
        a codec at the edge-only split) are left out.
    """
    from tqdm.auto import tqdm

    if not isinstance(split_model, SplitModel):
        raise ToolkitError(f"accuracy_table needs a SplitModel, e.g. "
                           f"accuracy_table(SplitModel(load_model('digits-cnn')), data), got "
                           f"{type(split_model).__name__}")
    if not isinstance(data, EvalData):
        raise ToolkitError(f"accuracy_table needs its data as an EvalData, e.g. "
                           f"eval_data(model), got {type(data).__name__}")
    splits = list(range(split_model.n_splits)) if splits is None else list(splits)
    unknown = [a for a in edge_accels if a not in ACCELERATORS["edge"]]
    if unknown:
        raise ConfigError(f"unknown edge_accel {unknown[0]!r}; "
                          f"valid: {choices(ACCELERATORS['edge'])}")
    rows = []
    combos = [(s, a) for s in splits for a in edge_accels if not (s == 0 and a != "none")]
    for split, accel in tqdm(combos, desc="accuracy", disable=not progress):
        head_model = split_model.head(split)
        tail_model = split_model.tail(split)
        if head_model is None:
            h = data.x_eval
        elif ACCELERATORS["edge"][accel].int8:
            runner = Int8Runner(quantize_int8(head_model, data.x_calib))
            h = np.concatenate([runner(x[None]) for x in data.x_eval])
        else:
            h = head_model.predict(data.x_eval, batch_size=64, verbose=0)
        for codec in codecs if tail_model is not None else ["none"]:
            if tail_model is None:
                y = h
            else:
                sent = np.concatenate([decode(encode(x[None], codec)) for x in h])
                y = tail_model.predict(sent, batch_size=64, verbose=0)
            rows.append({
                "split": split,
                "layer": split_model.cut_points[split].layer,
                "edge_accel": accel,
                "codec": codec,
                "accuracy": float(np.mean(np.argmax(y, axis=-1) == data.y_eval)),
                "label_source": data.label_source,
            })
    return pd.DataFrame(rows)
