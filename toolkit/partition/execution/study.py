"""Partitioning studies: strategies × device counts × frequencies, measured into a cube.

A :class:`StudySpec` lists what to measure for one model on one emulated link;
:class:`PartitionStudy` runs every ``(strategy, devices, cpu_freq, codec,
repeat)`` on a :class:`~toolkit.partition.execution.runtime.PartitionCluster` and
collects the runs into a cube with the extra dimensions ``strategy`` and
``devices`` (and ``codec`` when several codecs are studied).

A study is a campaign over partition configurations, with the campaign's
journal (``CUBE.nc.journal``), resume rule, progress and retry
(:mod:`toolkit.retry`; dead workers are restarted): a study may grow (more
strategies, device counts, frequencies, codecs or runs) and measures only its
new runs; other settings (:meth:`StudySpec.settings`) are refused. A run that
still fails is recorded as failed; a plan the strategy refuses for the model is
recorded as refused, with the reason, and not retried.

The cube holds one row per run (per-sample means; see ``docs/partitioning.md``,
"Cubes"): the standard variables aggregated over the devices, plus
:data:`PARTITION_VARIABLES`. The per-device figures of every run stay in the
journal and in :attr:`PartitionStudy.records`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import product
from typing import Any

import xarray as xr

from toolkit.campaign import CampaignSummary, progress_bar
from toolkit.config import MAX_RUNS, MAX_SAMPLES, PARTITION_VARIABLES, listed, whole_number
from toolkit.cube import cube_from_runs, save_cube
from toolkit.errors import ConfigError, ToolkitError, check_count, check_seed
from toolkit.models.codecs import check_codec
from toolkit.partition.cost.energy import check_idle
from toolkit.partition.execution.runtime import INPUT_KINDS, PartitionCluster
from toolkit.partition.execution.spec import PlanSpec
from toolkit.partition.strategies.hybrid import HYBRID_PREFIX
from toolkit.retry import JournalledRun, retry_run
from toolkit.runtime.link import DEFAULT_LINK, Link

__all__ = ["PARTITION_VARIABLES", "PartitionStudy", "StudySpec", "StudySummary"]

#: the :class:`StudySpec` fields that list what is measured (a study may grow in them);
#: every other field is a setting (:meth:`StudySpec.settings`)
GRID_FIELDS = ("strategies", "devices", "cpu_freqs", "codecs", "runs")

#: what a study did (a campaign's summary, with its ``refused``)
StudySummary = CampaignSummary


def _study_model(model: Any) -> str:
    """A partitioning model's name: a built-in stack, a zoo name or a ``.keras`` path."""
    from toolkit.models.names import check_model_name
    from toolkit.partition.model.stacks import STACKS

    if isinstance(model, str | os.PathLike) and str(model) in STACKS:
        return str(model)
    try:
        return check_model_name(model)
    except ToolkitError:
        raise ToolkitError(f"unknown model {model!r}; valid: {', '.join(STACKS)}, a model of "
                           "the zoo or a .keras path") from None


@dataclass
class StudySpec:
    """What a partitioning study measures (one model, one emulated link).

    Attributes:
        model: a partitioning model name or ``.keras`` path.
        strategies: strategy names; ``hybrid-<s>`` ones need ``split``.
        devices: device counts.
        cpu_freqs: emulated CPU frequencies (None: the profile's highest).
        input_size: square input size of the built-in stacks and zoo models.
        fuse: the spatial strategy's fusion.
        split: the hybrid strategies' edge/cloud cut.
        codecs: the hybrid strategies' activation codecs (the others send fp32).
        link: the emulated link between devices.
        cloud_link: the emulated link to the cloud (hybrid).
        samples: measured samples per run.
        runs: runs (cube repeats) per configuration.
        warmup: unmeasured samples before each run.
        inputs: ``digits`` or ``random``.
        seed: seed of random inputs.
        idle: the idle accounting of the runs' modelled energies (``request`` or
            ``busy``; a setting, recorded as the cube's ``idle_accounting``).
    """

    model: str
    strategies: list[str]
    devices: list[int]
    cpu_freqs: list[int] | None = None
    input_size: int | None = None
    fuse: int | str = "all"
    split: int | None = None
    codecs: list[str] = field(default_factory=lambda: ["fp32"])
    link: Link = field(default_factory=Link)
    cloud_link: Link = DEFAULT_LINK
    samples: int = 20
    runs: int = 1
    warmup: int = 2
    inputs: str = "digits"
    seed: int = 0
    idle: str = "request"

    def __post_init__(self) -> None:
        self.model = _study_model(self.model)
        self.strategies, self.devices, self.codecs = (
            listed(self.strategies), listed(self.devices), listed(self.codecs))
        if self.cpu_freqs is not None:
            self.cpu_freqs = [whole_number("cpu_freq", f, 1) for f in listed(self.cpu_freqs)]
        if self.input_size is not None:
            check_count(self.input_size, "input_size")
        check_count(self.warmup, "warmup", 0)
        check_seed(self.seed)
        check_idle(self.idle)
        if not self.strategies or not self.devices:
            raise ConfigError("a partitioning study needs at least one strategy and device count")
        for strategy, n in product(self.strategies, self.devices):  # validates names and counts
            PlanSpec(strategy, n, self.fuse, self.split if strategy.startswith(HYBRID_PREFIX)
                     else None)
        for codec in self.codecs:
            check_codec(codec)
        if self.inputs not in INPUT_KINDS:
            raise ConfigError(f"unknown inputs {self.inputs!r}; valid: {', '.join(INPUT_KINDS)}")
        check_count(self.runs, "runs", maximum=MAX_RUNS)
        check_count(self.samples, "samples", maximum=MAX_SAMPLES)

    def plan(self) -> list[tuple[str, int, int | None, str, int]]:
        """Every run as ``(strategy, devices, cpu_freq, codec, repeat)``, in order."""
        return [(strategy, n, freq, codec, repeat)
                for repeat, strategy, n, freq in product(range(self.runs), self.strategies,
                                                         self.devices, self.cpu_freqs or [None])
                for codec in (self.codecs if strategy.startswith(HYBRID_PREFIX) else ["fp32"])]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the journal's first line records it."""
        d = asdict(self)
        d["link"], d["cloud_link"] = self.link.as_dict(), self.cloud_link.as_dict()
        return d

    def settings(self) -> dict[str, Any]:
        """How each run is measured (the model, its options, the links, samples...):
        what must match for runs to share a cube. Everything but :data:`GRID_FIELDS`."""
        return {k: v for k, v in self.as_dict().items() if k not in GRID_FIELDS}


def _key(strategy: str, devices: int, freq: int | None, codec: str, repeat: int) -> str:
    return json.dumps([strategy, devices, freq, codec, repeat])


class PartitionStudy(JournalledRun):
    """Runs a :class:`StudySpec` on a cluster into a cube file, resumably.

    Args:
        cluster: the device workers (started on demand).
        spec, out, retries, backoff_s, attrs, progress: as for every
            :class:`~toolkit.retry.JournalledRun`.

    Attributes:
        records: the journal entry of every measured run (``config``, ``codec``,
            ``repeat``, the cube ``row`` and the ``run``'s JSON form).
        runs: the :class:`~toolkit.partition.PartitionRun` of each run measured now.
    """

    kind = "study"
    spec_type = StudySpec

    def __init__(self, cluster: PartitionCluster, spec: StudySpec, out: str | os.PathLike, *,
                 retries: int = 1, backoff_s: float = 0.5,
                 attrs: Mapping[str, Any] | None = None, progress: bool = True) -> None:
        if not isinstance(cluster, PartitionCluster):
            raise ConfigError(f"a study runs on a PartitionCluster (e.g. PartitionCluster(4)), "
                              f"got {cluster!r}")
        super().__init__(spec, out, retries=retries, backoff_s=backoff_s, attrs=attrs,
                         progress=progress)
        self.cluster = cluster
        self.records: list[dict[str, Any]] = []
        self.runs: list[Any] = []
        self.summary: StudySummary | None = None

    def measured(self) -> list[dict[str, Any]]:
        """The records of this specification's runs (of a grown journal, only those),
        in plan order."""
        return [e for p in self.spec.plan() if (e := self.journal.done.get(_key(*p)))]

    def _cube(self) -> xr.Dataset:
        sources = list(dict.fromkeys(part for r in self.records
                                     for part in r["run"]["energy_source"].split("+")))
        labels = list(dict.fromkeys(r["run"]["label_source"] for r in self.records))
        cp = self.cluster
        attrs = {
            "testbed": "local-partition",
            "study": "partition",
            "energy_source": "+".join(sources),
            "samples_per_run": self.spec.samples,
            "seed": self.spec.seed,
            "inputs": self.spec.inputs,
            "link_mbps": self.spec.link.mbps if self.spec.link.mbps else "loopback",
            "link_rtt_ms": self.spec.link.rtt_ms,
            "fuse": str(self.spec.fuse),
            "idle_accounting": self.spec.idle,
            "throttled": int(all(r["run"]["throttled"] for r in self.records)),
            "device_profiles": {"edge": cp.profile.name, "cloud": cp.cloud_profile.name},
            "aggregation": "per run: latency on device 0; edge_ms the busiest device's "
                           "compute; energies summed over devices (compute_energy_j, "
                           "comm_energy_j and idle_energy_j sum to energy_j, the cloud's "
                           "all compute); tensor_kb all bytes sent",
            **self.attrs,
        }
        if labels:
            attrs["label_source"] = labels[0] if len(labels) == 1 else labels
        codecs = {*self.spec.codecs, *(r["codec"] for r in self.records
                                       if r["config"]["strategy"].startswith(HYBRID_PREFIX))}
        return cube_from_runs(self.journal.rows(len(codecs) > 1), attrs, PARTITION_VARIABLES)

    @property
    def runs_on(self) -> PartitionCluster:
        """The cluster (its private event loop serves :meth:`run`)."""
        return self.cluster

    async def _run_locked(self) -> xr.Dataset:
        journal = self.journal
        journal.open({"study": "partition", "spec": self.spec.as_dict(),
                      "testbed": "local-partition"})
        plan = self.spec.plan()
        done_before = sum(_key(*p) in journal.done for p in plan)
        todo = [p for p in plan if _key(*p) not in journal.done and _key(*p) not in journal.refused]
        t0 = time.perf_counter()
        bar = progress_bar(len(plan), len(plan) - len(todo), desc="partition study",
                           show=self.progress)
        for strategy, n, freq, codec, repeat in todo:
            bar.set_postfix_str(f"{strategy} N={n} f={freq or 'max'} {codec}")
            entry = await self._attempt(strategy, n, freq, codec)
            journal.record({**entry, "key": _key(strategy, n, freq, codec, repeat), "config": {
                "strategy": strategy, "devices": n, "cpu_freq": freq}, "codec": codec,
                "repeat": repeat})
            bar.update(1)
        bar.close()
        self.records = list(journal.done.values())
        self.summary = StudySummary(len(plan), done_before, len(self.runs),
                                    journal.all_failures(), time.perf_counter() - t0,
                                    refused=list(journal.refused.values()))
        if not self.records:
            raise ToolkitError(f"no run of the study succeeded: {self.summary}")
        cube = self._cube()
        save_cube(cube, self.out)
        return cube

    async def _attempt(self, strategy: str, n: int, freq: int | None, codec: str
                       ) -> dict[str, Any]:
        s = self.spec
        split = s.split if strategy.startswith(HYBRID_PREFIX) else None
        try:
            self.cluster.plan(s.model, strategy, n, input_size=s.input_size, fuse=s.fuse,
                              split=split, codec=codec)
        except ToolkitError as exc:
            return {"type": "refused", "reason": str(exc)}
        run, reason = await retry_run(
            lambda: self.cluster.arun(
                s.model, strategy, n, samples=s.samples, inputs=s.inputs,
                input_size=s.input_size, fuse=s.fuse, split=split, codec=codec,
                cpu_freq=freq, link=s.link, cloud_link=s.cloud_link, warmup=s.warmup,
                seed=s.seed, idle=s.idle),
            retries=self.retries, backoff_s=self.backoff_s,
            what=f"partition run {strategy} N={n}")
        if run is None:
            return {"type": "failure", "reason": reason}
        self.runs.append(run)
        return {"type": "run", "row": run.cube_row(), "run": run.as_dict()}
