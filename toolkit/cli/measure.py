"""``dynasplit measure``: a resumable measurement campaign into a cube."""

from __future__ import annotations

import argparse

from toolkit.cli.common import int_list, str_list


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``measure`` sub-command."""
    p = sub.add_parser(
        "measure", help="measure configurations into a cube (resumable)",
        description="Run split inference for every configuration of a grid and write the "
        "runs into a NetCDF cube. Every finished run is journalled; rerunning the same "
        "command after an interruption continues where it stopped.")
    p.add_argument("--testbed", default="local", help="local, or a testbed inventory TOML")
    p.add_argument("--model", required=True, type=str_list, help="model name(s), comma-separated")
    p.add_argument("--splits", type=int_list, help="splits (default: all)")
    p.add_argument("--cpu-freqs", type=int_list, help="edge CPU frequencies in MHz "
                   "(default: all of the edge profile)")
    p.add_argument("--edge-accels", type=str_list, help="edge accelerators (default: all the "
                   "testbed runs)")
    p.add_argument("--cloud-accels", type=str_list, help="cloud accelerators (default: all "
                   "the testbed runs)")
    p.add_argument("--codecs", type=str_list, default=["fp32"],
                   help="activation codecs (more than one adds a codec dimension)")
    p.add_argument("--runs", type=int, default=1, help="runs per configuration (repeats)")
    p.add_argument("--samples", type=int, default=100, help="samples per run")
    p.add_argument("--order", choices=("grid", "shuffle"), default="grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffled order")
    p.add_argument("--input-size", type=int, default=None,
                   help="input size of keras.applications models and vit-b16")
    p.add_argument("--gelu", choices=("exact", "tanh", "igelu"), default=None,
                   help="GELU variant of vit-b16 (the model is then named e.g. vit-b16:igelu)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="image folder, one subfolder per class: accuracy against its real "
                   "labels (local testbed; default: the built-in data)")
    p.add_argument("-o", "--out", required=True, help="output cube (.nc)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the campaign and print its summary."""
    from toolkit.campaign import Campaign, CampaignSpec, grid
    from toolkit.devices.factory import open_testbed
    from toolkit.errors import ConfigError
    from toolkit.models.zoo import model_name

    args.model = [model_name(m, args.gelu) for m in args.model]
    extra = {"data": args.data} if args.data else {}
    testbed = open_testbed(args.testbed, model=args.model[0], input_size=args.input_size,
                           **extra)
    try:
        freqs = args.cpu_freqs or list(testbed.edge_profile.frequencies_mhz)
        for f in freqs:
            testbed.edge_profile.check_freq(f)
        edge_accels = args.edge_accels or list(testbed.edge_accels)
        cloud_accels = args.cloud_accels or list(testbed.cloud_accels)
        for a in edge_accels:
            if a not in testbed.edge_accels:
                raise ConfigError(f"edge accelerator {a!r} is not available on testbed "
                                  f"{testbed.name!r}; valid: {', '.join(testbed.edge_accels)}")
        for a in cloud_accels:
            if a not in testbed.cloud_accels:
                raise ConfigError(f"cloud accelerator {a!r} is not available on testbed "
                                  f"{testbed.name!r}; valid: {', '.join(testbed.cloud_accels)}")
        n_splits, splits = {}, {}
        for model in args.model:
            sm = testbed.split_model(model)
            n_splits[model] = sm.n_splits
            splits[model] = [sm.check_split(s) for s in args.splits] if args.splits else list(
                range(sm.n_splits))
        configs, skipped = grid(args.model, splits, freqs, edge_accels, cloud_accels, n_splits)
        if skipped:
            print(f"skipping {len(skipped)} invalid combinations (e.g. {skipped[0]})")
        spec = CampaignSpec(configs, codecs=args.codecs, runs=args.runs, samples=args.samples,
                            order=args.order, seed=args.seed)
        campaign = Campaign(testbed, spec, args.out)
        campaign.run()
        print(campaign.summary)
        print(f"cube written to {args.out} (energy: {testbed.energy_source})")
        return 1 if campaign.summary.failures else 0
    finally:
        testbed.close()
