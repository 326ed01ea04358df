"""Live evaluation: the optimizer measures what it asks for on a testbed.

:class:`CampaignEvaluator` turns each batch of configurations the optimizer
proposes into a campaign (:mod:`toolkit.campaign`) on the testbed, into one
cube file whose journal keeps every run. A configuration the journal already
holds is not measured again, so an interrupted optimisation rerun with the same
seed replays its measurements from the journal and continues where it stopped.
A run that still fails after the campaign's retries is reported as unmeasured
(None), which the optimizer does not count against its budget.

The codec of a run is the configuration's ``codec`` (a space with a codec gene,
e.g. ``ConfigSpace.from_profiles(..., codecs=("fp32", "int8"))``) or else the
evaluator's ``codec``; a batch is measured as one campaign per codec, into the
same cube (which gains a ``codec`` dimension once it holds several). The
campaign runner measures single edge/cloud splits: configurations with a
``strategy`` or ``devices`` (multi-device partitioning) are refused — measure
them with :class:`toolkit.partition.PartitionStudy` and optimise over its cube.
"""

from __future__ import annotations

import os
from typing import Any

from toolkit.campaign import Campaign, CampaignSpec
from toolkit.config import Config
from toolkit.devices.testbeds.testbed import Testbed
from toolkit.errors import ConfigError, ToolkitError
from toolkit.optimize.evaluate import CubeEvaluator, Evaluator, Objectives

__all__ = ["CampaignEvaluator"]


class CampaignEvaluator(Evaluator):
    """Measures configurations on a testbed into a resumable cube.

    Args:
        testbed: where to measure (local emulated, or an SSH testbed).
        out: the cube file (its journal is ``out + ".journal"``).
        samples: samples per run; runs: runs per configuration.
        codec: activation codec of configurations without a ``codec`` key.
        latency_stat: ``mean``, ``median`` or a quantile over runs (see
            :class:`~toolkit.optimize.CubeEvaluator`).
        progress: show the campaign's progress bar for each batch.
    """

    def __init__(self, testbed: Testbed, out: str | os.PathLike, *, samples: int = 100,
                 runs: int = 1, codec: str = "fp32", latency_stat: str | float = "mean",
                 progress: bool = False) -> None:
        if not isinstance(testbed, Testbed):
            raise ToolkitError(f"CampaignEvaluator needs a testbed (LocalTestbed, "
                               f"open_testbed's...), got {type(testbed).__name__}")
        self.testbed = testbed
        self.out = out
        self.samples = samples
        self.runs = runs
        self.codec = codec
        self.latency_stat = latency_stat
        self.progress = progress
        self.energy_source = testbed.energy_source
        self.cube: Any = None
        self.campaigns: list[Campaign] = []

    def evaluate(self, configs: list[dict[str, Any]]) -> list[Objectives | None]:
        if not configs:
            return []
        partition = [c for c in configs if "strategy" in c or "devices" in c]
        if partition:
            raise ConfigError(
                f"the campaign runner measures single edge/cloud splits, not multi-device "
                f"partition configurations such as {dict(partition[0])}; measure those with "
                "toolkit.partition.PartitionStudy and optimise over its cube (CubeEvaluator)")
        runs = [{**c, "codec": str(c.get("codec", self.codec))} for c in configs]
        by_codec: dict[str, list[Config]] = {}
        for run in runs:
            by_codec.setdefault(run["codec"], []).append(Config.from_mapping(run))
        for codec, group in by_codec.items():
            spec = CampaignSpec(group, codecs=[codec], runs=self.runs, samples=self.samples)
            campaign = Campaign(self.testbed, spec, self.out, progress=self.progress)
            self.cube = campaign.run()
            self.campaigns.append(campaign)
        lookup = CubeEvaluator(self.cube, latency_stat=self.latency_stat)
        self.objectives = lookup.objectives
        return lookup.evaluate(runs)
