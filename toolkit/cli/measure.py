"""``dynasplit measure``: a resumable measurement campaign into a cube."""

from __future__ import annotations

import argparse

from toolkit.cli.common import (
    add_command,
    int_list,
    non_negative_int,
    output_file,
    positive_int,
    str_list,
)
from toolkit.models.names import GELU_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``measure`` sub-command."""
    p = add_command(sub, "measure", run)
    p.add_argument("--testbed", default="local",
                   help="local, or a testbed inventory TOML; several, comma-separated, "
                   "make a pool of identical testbeds")
    p.add_argument("--testbeds", metavar="N",
                   help="measure on a pool of N local emulated testbeds (local-1 .. local-N)")
    p.add_argument("--model", required=True, type=str_list, help="model name(s), comma-separated")
    p.add_argument("--splits", type=int_list, help="splits (default: all)")
    p.add_argument("--cpu-freqs", type=int_list, help="edge CPU frequencies in MHz "
                   "(default: all of the edge profile)")
    p.add_argument("--edge-accels", type=str_list, help="edge accelerators (default: all the "
                   "testbed runs)")
    p.add_argument("--cloud-accels", type=str_list, help="cloud accelerators (default: all "
                   "the testbed runs)")
    p.add_argument("--codecs", type=str_list, default=["fp32"],
                   help="activation codecs (more than one adds a codec dimension; edge-only, "
                   "which sends nothing, is measured with the first one only)")
    p.add_argument("--runs", default="1",
                   help="runs per configuration (repeats), or 'auto': repeat until the 95%% "
                   "confidence half-width of mean latency and energy is within --rel-ci of "
                   "the mean (at least 2 runs, at most --max-runs)")
    p.add_argument("--rel-ci", help="with --runs auto: largest CI half-width as a fraction "
                   "of the mean (default 0.05)")
    p.add_argument("--max-runs", help="with --runs auto: most runs per configuration "
                   "(default 10)")
    p.add_argument("--samples", type=int, default=100, help="samples per run")
    p.add_argument("--order", choices=("grid", "shuffle"), default="grid")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the shuffled order")
    p.add_argument("--input-size", type=positive_int, default=None,
                   help="input size of keras.applications models and vit-b16")
    p.add_argument("--gelu", choices=GELU_NAMES, default=None,
                   help="GELU variant of vit-b16 (the model is then named e.g. vit-b16:igelu)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="image folder, one subfolder per class: accuracy against its real "
                   "labels (deployed to the edge host of an SSH testbed; default: the "
                   "built-in data)")
    p.add_argument("--edgetpu-dir", default=None, metavar="DIR",
                   help="SSH testbeds: folder of precompiled *_edgetpu.tflite heads for "
                   "tpu-std/tpu-max, used where edgetpu_compiler is not on PATH")
    p.add_argument("-o", "--out", required=True, type=output_file, help="output cube (.nc)")


def _whole(text: str, option: str, minimum: int, also: str = "") -> int:
    """``text`` as an integer >= ``minimum``, else a one-line ConfigError."""
    from toolkit.errors import ConfigError

    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ConfigError(f"{option} {text!r} is not valid; valid: a whole number from "
                          f"{minimum} ({minimum}, {minimum + 1}, ...){also}")
    return value


def repeats_from(args: argparse.Namespace):
    """(fixed runs, adaptive rule or None) from ``--runs``, ``--rel-ci``, ``--max-runs``."""
    from toolkit.errors import ConfigError
    from toolkit.repeats import AdaptiveRepeats

    if args.runs != "auto":
        if args.rel_ci is not None or args.max_runs is not None:
            raise ConfigError("--rel-ci and --max-runs go with --runs auto; valid --runs: "
                              "a whole number from 1, or auto")
        return _whole(args.runs, "--runs", 1, " or auto"), None
    rel_ci = 0.05
    if args.rel_ci is not None:
        try:
            rel_ci = float(args.rel_ci)
        except ValueError:
            rel_ci = float("nan")
        if not 0 < rel_ci < 1:
            raise ConfigError(f"--rel-ci {args.rel_ci!r} is not valid; valid: a fraction "
                              "between 0 and 1, e.g. 0.05 for within 5 % of the mean")
    max_runs = 10 if args.max_runs is None else _whole(args.max_runs, "--max-runs", 2)
    return 1, AdaptiveRepeats(rel_ci=rel_ci, max_runs=max_runs)


def open_testbeds(args: argparse.Namespace):
    """The testbed, or the pool, that ``--testbed`` and ``--testbeds`` ask for."""
    from toolkit.devices.testbeds.factory import open_pool, open_testbed

    specs = [s.strip() for s in args.testbed.split(",") if s.strip()] or ["local"]
    options = {"model": args.model[0], "input_size": args.input_size}
    if args.data:
        from toolkit.models.data import image_files

        image_files(args.data)  # a missing or empty folder is said before any worker starts
        options["data"] = args.data
    if args.edgetpu_dir:
        options["edgetpu_dir"] = args.edgetpu_dir
    if args.testbeds is None and len(specs) == 1:
        return open_testbed(specs[0], **options)
    copies = 1 if args.testbeds is None else _whole(args.testbeds, "--testbeds", 1)
    return open_pool(specs, copies, **options)


def run(args: argparse.Namespace) -> int:
    """Measure configurations into a cube (resumable).

    Run split inference for every configuration of a grid and write the runs into a
    NetCDF cube. Every finished run is journalled; rerunning the same command after an
    interruption continues where it stopped. Several testbeds (--testbed a.toml,b.toml
    or --testbeds N) measure different configurations at the same time into one cube.
    """
    from toolkit.campaign import Campaign, CampaignSpec, grid
    from toolkit.config import KEYS
    from toolkit.errors import ConfigError
    from toolkit.models.zoo import check_input_size, model_name

    args.model = [model_name(m, args.gelu) for m in args.model]
    check_input_size(args.model, args.input_size)
    runs, repeats = repeats_from(args)
    if args.testbeds is not None:
        _whole(args.testbeds, "--testbeds", 1)  # before any testbed is opened
    testbed = open_testbeds(args)
    try:
        freqs = args.cpu_freqs or list(testbed.edge_profile.frequencies_mhz)
        for f in freqs:
            testbed.edge_profile.check_freq(f)
        edge_accels = args.edge_accels or list(testbed.edge_accels)
        cloud_accels = args.cloud_accels or list(testbed.cloud_accels)
        for key, wanted, valid in (("edge_accel", edge_accels, testbed.edge_accels),
                                   ("cloud_accel", cloud_accels, testbed.cloud_accels)):
            for a in (a for a in wanted if a not in valid):
                raise ConfigError(f"{KEYS[key].label} {a!r} is not available on testbed "
                                  f"{testbed.name!r}; valid: {', '.join(valid)}")
        n_splits, splits = {}, {}
        for model in args.model:
            sm = testbed.split_model(model)
            n_splits[model] = sm.n_splits
            splits[model] = [sm.check_split(s) for s in args.splits] if args.splits else list(
                range(sm.n_splits))
        configs, skipped = grid(args.model, splits, freqs, edge_accels, cloud_accels, n_splits)
        if skipped:
            print(f"skipping {len(skipped)} invalid combinations (e.g. {skipped[0]})")
        spec = CampaignSpec(configs, codecs=args.codecs, runs=runs, samples=args.samples,
                            order=args.order, seed=args.seed, repeats=repeats,
                            n_splits=n_splits)
        campaign = Campaign(testbed, spec, args.out)
        campaign.run()
        print(campaign.summary)
        print(f"cube written to {args.out} (energy: {testbed.energy_source})")
        return 1 if campaign.summary.failures else 0
    finally:
        testbed.close()
