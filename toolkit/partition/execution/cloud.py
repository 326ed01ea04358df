"""The cloud of hybrid partition plans: the runtime's cloud worker on a partitioning model.

Run it as ``python -m toolkit.partition.execution.cloud --model M [--input-size S]``.
It serves :class:`toolkit.runtime.cloud.CloudWorker`'s protocol (``configure``
with a split, then one tensor in, the tail's output back, with ``cloud_ms`` and
``decode_ms``) for any model :func:`~toolkit.partition.load_partition_model`
resolves — the built-in stacks included — so that the device workers and the
cloud load the model the same way and cut it at the same points.
"""

from __future__ import annotations

import argparse

from toolkit.runtime.worker import run_worker, serve, worker_parser

__all__ = ["main"]


async def _amain(args: argparse.Namespace) -> None:
    from toolkit.models.split import SplitModel
    from toolkit.partition.model.stacks import load_partition_model
    from toolkit.runtime.cloud import CloudWorker
    from toolkit.runtime.stages import StageCache, configure_threads

    configure_threads(args.threads)
    model = load_partition_model(args.model, args.input_size)
    worker = CloudWorker(StageCache(SplitModel(model, name=model.name), threads=args.threads))
    await serve("cloud", worker.handle, args.host, args.port)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m toolkit.partition.execution.cloud``."""
    parser = worker_parser("toolkit.partition.execution.cloud", __doc__)
    parser.add_argument("--model", required=True, help="partitioning model name or .keras path")
    parser.add_argument("--input-size", type=int, default=None)
    args = parser.parse_args(argv)
    return run_worker("cloud", lambda: _amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
