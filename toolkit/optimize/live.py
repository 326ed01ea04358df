"""Live evaluation: the optimizer measures what it asks for on a testbed.

:class:`CampaignEvaluator` turns each batch of configurations the optimizer
proposes into a campaign (:mod:`toolkit.campaign`) on the testbed, into one
cube file whose journal keeps every run. A configuration the journal already
holds is not measured again, so an interrupted optimisation rerun with the same
seed replays its measurements from the journal and continues where it stopped.
A run that still fails after the campaign's retries is reported as unmeasured
(None), which the optimizer does not count against its budget.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from toolkit.campaign import Campaign, CampaignSpec
from toolkit.config import Config
from toolkit.devices.testbed import Testbed
from toolkit.optimize.evaluate import CubeEvaluator, Evaluator, Objectives
from toolkit.optimize.objectives import Normalizer

__all__ = ["CampaignEvaluator"]


class CampaignEvaluator(Evaluator):
    """Measures configurations on a testbed into a resumable cube.

    Args:
        testbed: where to measure (local emulated, or an SSH testbed).
        out: the cube file (its journal is ``out + ".journal"``).
        samples: samples per run; runs: runs per configuration.
        codec: activation codec of the runs.
        latency_stat: ``mean``, ``median`` or a quantile over runs (see
            :class:`~toolkit.optimize.CubeEvaluator`).
        progress: show the campaign's progress bar for each batch.
    """

    def __init__(self, testbed: Testbed, out: str | os.PathLike, *, samples: int = 100,
                 runs: int = 1, codec: str = "fp32", latency_stat: str | float = "mean",
                 progress: bool = False) -> None:
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
        spec = CampaignSpec([Config.from_mapping(c) for c in configs], codecs=[self.codec],
                            runs=self.runs, samples=self.samples)
        campaign = Campaign(self.testbed, spec, self.out, progress=self.progress)
        self.cube = campaign.run()
        self.campaigns.append(campaign)
        lookup = CubeEvaluator(self.cube, latency_stat=self.latency_stat)
        self.objectives = lookup.objectives
        return lookup.evaluate(configs)

    def normalizer(self, objectives: Sequence[str]) -> Normalizer | None:
        """None: ranges are unknown before measuring (the optimizer uses what it saw)."""
        return None
