"""Benchmark: ViT-B/16's GELU variants and int8 heads, top-1 agreement.

Usage::

    python benchmarks/vit.py [--input-size 32] [--samples 200] [--splits 4,6,16,29]

Builds ``vit-b16`` with exact GELU, the tanh approximation and DynaSplit's
I-GELU from the same seed (the same weights), feeds them the evaluation inputs
(the real digits images resized to the input size: there are no trained
ImageNet weights offline) and reports how often each variant's top-1 agrees
with exact GELU's. Then, on the I-GELU model DynaSplit deployed, it converts the
head of each split to full-integer int8 (calibrated on the calibration inputs),
runs it on LiteRT and reports the top-1 agreement of int8 head + fp32 tail with
the fp32 model. Prints one JSON object: ``gelu_agreement`` and
``int8_agreement`` are the figures.

With random weights the predictions crowd onto few classes (``distinct_top1``
says how many), so agreement here is an upper-bound-ish sanity figure, not an
ImageNet accuracy.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from toolkit.models import SplitModel, eval_inputs, load_model
from toolkit.models.quantize import Int8Runner, quantize_int8


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--splits", default="4,6,16,29",
                        help="splits whose int8 head is measured (I-GELU model)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    top1 = {}
    models = {}
    for gelu in ("exact", "tanh", "igelu"):
        models[gelu] = load_model("vit-b16", input_size=args.input_size, gelu=gelu)
        x_calib, x_eval = eval_inputs(models[gelu], n_calib=100)
        x_eval = x_eval[:args.samples]
        top1[gelu] = np.argmax(models[gelu].predict(x_eval, batch_size=32, verbose=0), -1)
    agreement = {g: float(np.mean(top1[g] == top1["exact"])) for g in ("tanh", "igelu")}
    sm = SplitModel(models["igelu"], name="vit-b16:igelu")
    int8 = {}
    for split in (int(s) for s in args.splits.split(",")):
        runner = Int8Runner(quantize_int8(sm.head(split), x_calib))
        h = np.concatenate([runner(x[None]) for x in x_eval])
        y = np.argmax(sm.tail(split).predict(h, batch_size=32, verbose=0), -1)
        int8[str(split)] = {"layer": sm.cut_points[split].layer,
                            "agreement": float(np.mean(y == top1["igelu"]))}
    out = {
        "gelu_agreement": agreement,
        "int8_agreement": {k: v["agreement"] for k, v in int8.items()},
        "int8_heads": int8,
        "input_size": args.input_size,
        "samples": len(x_eval),
        "distinct_top1": {g: len(np.unique(t)) for g, t in top1.items()},
        "label_source": "fp32-model (exact GELU for the variants, I-GELU for int8)",
        "runtime_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
