"""``dynasplit split MODEL --list [--json]``: the valid cut points of a model."""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_command, positive_int, print_json
from toolkit.models.names import GELU_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``split`` sub-command."""
    p = add_command(sub, "split", run)
    p.add_argument("model", help="digits-cnn, vgg16, resnet50, mobilenetv2, vit-b16 or a "
                   ".keras path")
    p.add_argument("--list", action="store_true", help="list the cut points (the default)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--layer", help="show the split that sends this layer's output, or why "
                   "it cannot be cut there")
    p.add_argument("--input-size", type=positive_int, default=None,
                   help="input size of keras.applications models and vit-b16 (default 224; "
                   "a multiple of 16 for vit-b16)")
    p.add_argument("--gelu", choices=GELU_NAMES, default=None,
                   help="GELU variant of vit-b16 (default exact; igelu is DynaSplit's I-GELU)")


def run(args: argparse.Namespace) -> int:
    """List a model's valid cut points.

    List the valid cut points of a model: the layer whose output is sent, its shape, its
    fp32 size and the MACs of head and tail.
    """
    from toolkit.models import SplitModel, load_model
    from toolkit.models.zoo import check_input_size, model_name

    name = model_name(args.model, args.gelu)
    check_input_size([name], args.input_size)
    sm = SplitModel(load_model(name, input_size=args.input_size), name=name)
    if args.layer:
        split = sm.split_for_layer(args.layer)
        point = sm.cut_points[split]
        print_json(point.as_dict()) if args.json else print(
            f"layer {args.layer!r} is cut point {split}: sends {point.shape} "
            f"({point.bytes} bytes fp32)")
        return 0
    table = sm.table()
    if args.json:
        print_json(table)
        return 0
    print(f"{name}: {sm.n_splits} splits (0 = all cloud, {sm.last_split} = all edge)")
    print(f"{'split':>5}  {'layer':<28} {'shape':<18} {'bytes':>10} {'head MACs':>14} "
          f"{'tail MACs':>14}")
    for c in table:
        shape = "x".join(str(d) for d in c["shape"])
        print(f"{c['split']:>5}  {c['layer']:<28} {shape:<18} {c['bytes']:>10,} "
              f"{c['head_macs']:>14,} {c['tail_macs']:>14,}")
    return 0
