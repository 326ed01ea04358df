"""``dynasplit train-digits``: retrain the shipped digits CNN reproducibly."""

from __future__ import annotations

import argparse

from toolkit.models.digits import DIGITS_MODEL_PATH


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train-digits`` sub-command."""
    p = sub.add_parser("train-digits", help="train the shipped digits CNN",
                       description="Train the digits CNN on scikit-learn's digits (seeded, "
                       "deterministic) and save it with a metadata JSON beside it.")
    p.add_argument("-o", "--out", default=str(DIGITS_MODEL_PATH),
                   help=f"output .keras file (default {DIGITS_MODEL_PATH})")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train and report the held-out accuracy."""
    from toolkit.errors import ToolkitError
    from toolkit.models import train_digits

    if args.epochs < 1:
        raise ToolkitError(f"--epochs must be at least 1, got {args.epochs}")
    if not str(args.out).endswith(".keras"):
        raise ToolkitError(f"--out must end in .keras, got {args.out}")
    meta = train_digits(args.out, epochs=args.epochs, seed=args.seed)
    print(f"saved {args.out}: held-out test accuracy {meta['test_accuracy']:.2%} "
          f"on {meta['test_samples']} digits")
    return 0
