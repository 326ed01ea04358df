"""``dynasplit train-digits``: retrain a shipped digits model reproducibly."""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_command, non_negative_int, output_file
from toolkit.errors import ToolkitError
from toolkit.models.digits import DIGITS_MODELS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train-digits`` sub-command."""
    p = add_command(sub, "train-digits", run)
    p.add_argument("--model", default="digits-cnn",
                   help=f"which: {', '.join(DIGITS_MODELS)} (default digits-cnn)")
    p.add_argument("-o", "--out", default=None, type=output_file,
                   help="output file: .keras, or .npz for digits-vgg-fc (default: the shipped "
                   "file, datasets/models/)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default 40 for digits-cnn, 8 for the others)")
    p.add_argument("--seed", type=non_negative_int, default=0)


def run(args: argparse.Namespace) -> int:
    """Train a shipped digits model.

    Train a digits model on scikit-learn's digits (seeded, deterministic) and save it
    with a metadata JSON beside it.
    """
    from toolkit.models import train_digits

    if args.model not in DIGITS_MODELS:
        raise ToolkitError(f"unknown --model {args.model!r}; valid: {', '.join(DIGITS_MODELS)}")
    epochs = args.epochs if args.epochs is not None else (
        40 if args.model == "digits-cnn" else 8)
    if epochs < 1:
        raise ToolkitError(f"--epochs must be at least 1, got {epochs}")
    suffix = DIGITS_MODELS[args.model][1].suffix
    if args.out is not None and not str(args.out).endswith(suffix):
        raise ToolkitError(f"--out must end in {suffix} for {args.model}, got {args.out}")
    meta = train_digits(args.out, epochs=epochs, seed=args.seed, model=args.model)
    args.out = args.out or str(DIGITS_MODELS[args.model][1])
    print(f"saved {args.out}: held-out test accuracy {meta['test_accuracy']:.2%} "
          f"on {meta['test_samples']} digits")
    return 0
