"""Measurement campaigns: every configuration × repeat, crash-safe and resumable.

A campaign runs a list of configurations (a grid or an explicit list), each
``runs`` times with ``samples`` samples per run, on a :class:`Testbed` or a
:class:`~toolkit.devices.testbeds.pool.TestbedPool` of interchangeable testbeds that
measure different configurations at the same time, and collects the runs into
a cube. With adaptive repeats (:class:`~toolkit.repeats.AdaptiveRepeats`) each
configuration is repeated until the confidence interval of its means is narrow
enough, or up to a maximum number of runs.

Persistence (shared with partitioning studies): an append-only journal
(:class:`~toolkit.retry.Journal`, JSON lines) beside the output cube,
``CUBE.nc.journal``. Its first line records the campaign's specification; each
finished run appends one line (naming the testbed that measured it), written,
flushed and ``fsync``-ed before that testbed's next run starts. A crash (even
``kill -9``) can only cut the last line short; the reader drops such a torn
line. Rerunning the same command reads the journal, skips every run it holds and
continues. A campaign may also grow: rerun with more configurations, codecs or
runs and only the new runs are measured. The journal refuses runs measured with
other settings (samples or warm-up per run), which could not share a cube. The
output cube holds every run its journal holds; it is written from the journal at
the end (and every ``save_every_s`` seconds during a long campaign), atomically
(temp file + rename), so it is never half-written.

Failures: a run that raises (device error, timeout, lost worker) is retried
with exponential backoff after restarting the testbed's workers, up to
``retries`` times, then recorded as failed with its reason; the campaign goes on
and its summary lists the failures. In a pool, a run that failed is first given
to one other testbed, and a testbed that keeps failing leaves the pool (see
:class:`Campaign`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import product
from typing import Any

import xarray as xr

from toolkit.config import MAX_RUNS, MAX_SAMPLES, Config, config_problems, listed
from toolkit.cube import cube_from_runs, save_cube
from toolkit.devices.testbeds.pool import TestbedPool
from toolkit.devices.testbeds.testbed import Testbed
from toolkit.errors import ConfigError, ToolkitError, check_count, check_seconds, check_seed
from toolkit.models.codecs import check_codec
from toolkit.repeats import AdaptiveRepeats, stopping_rule_attr
from toolkit.retry import JournalledRun, retry_run
from toolkit.workqueue import Task, WorkQueue, gather_or_cancel

__all__ = ["Campaign", "CampaignSpec", "CampaignSummary", "grid", "progress_bar"]

log = logging.getLogger("toolkit.campaign")

def grid(
    models: Sequence[str],
    splits: Mapping[str, Sequence[int]] | Sequence[int],
    cpu_freqs: Sequence[int],
    edge_accels: Sequence[str] = ("none",),
    cloud_accels: Sequence[str] = ("none",),
    n_splits: Mapping[str, int] | None = None,
) -> tuple[list[Config], list[str]]:
    """All valid configurations of a grid, and why the others were skipped.

    Args:
        models: model names.
        splits: split indices (the same for every model, or per model).
        cpu_freqs, edge_accels, cloud_accels: values of the other keys.
        n_splits: number of splits per model, to apply the validity rules
            (edge accelerator ``none`` at split 0, cloud ``none`` at the last split).

    Returns:
        (valid configurations in grid order, one reason per skipped combination).

    A single name or number stands for a list of one (``grid("vgg16", 3, 600)``),
    not for its characters.
    """
    models, cpu_freqs = listed(models), listed(cpu_freqs)
    edge_accels, cloud_accels = listed(edge_accels), listed(cloud_accels)
    if not isinstance(splits, Mapping):
        splits = listed(splits)
    configs, skipped = [], []
    for model in models:
        model_splits = splits[model] if isinstance(splits, Mapping) else splits
        for split, freq, ea, ca in product(model_splits, cpu_freqs, edge_accels, cloud_accels):
            config = Config(model, split, freq, ea, ca)
            problems = config_problems(config, n_splits[model]) if n_splits else []
            if problems:
                skipped.append(f"{config.as_dict()}: {'; '.join(problems)}")
            else:
                configs.append(config)
    return configs, skipped


@dataclass
class CampaignSpec:
    """What a campaign measures.

    Attributes:
        configs: configurations to measure.
        codecs: activation codecs; more than one adds a ``codec`` cube dimension.
        runs: runs (cube repeats) per configuration and codec.
        samples: samples per run.
        warmup: unmeasured samples before each run.
        order: ``grid`` (as listed) or ``shuffle`` (seeded; spreads drift over
            the configurations, as DynaSplit did).
        seed: seed of the shuffle.
        repeats: adaptive repeats: each configuration (and codec) is repeated
            until this rule is met or its ``max_runs`` are measured; ``runs`` is
            then not used.
        n_splits: per model, its number of splits. Where given, a model's last
            split (edge-only: nothing is sent, so a codec changes nothing) is
            measured with the first codec only; its other codecs' cells stay
            empty rather than repeat the same configuration.
    """

    configs: list[Config]
    codecs: list[str] = field(default_factory=lambda: ["fp32"])
    runs: int = 1
    samples: int = 100
    warmup: int = 3
    order: str = "grid"
    seed: int = 0
    repeats: AdaptiveRepeats | None = None
    n_splits: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.configs, str | Mapping | Config) or not isinstance(
                self.configs, Iterable):
            raise ConfigError(f"configs must be a list of configurations (e.g. grid(...)[0]), "
                              f"got {self.configs!r}")
        self.configs = [c if isinstance(c, Config) else Config.from_mapping(c)
                        for c in self.configs]
        if not self.configs:
            raise ConfigError("the campaign has no configurations to measure")
        check_count(self.warmup, "warmup", 0)
        check_seed(self.seed)
        if self.order not in ("grid", "shuffle"):
            raise ConfigError(f"unknown order {self.order!r}; valid: grid, shuffle")
        check_count(self.runs, "runs", maximum=MAX_RUNS)
        check_count(self.samples, "samples", maximum=MAX_SAMPLES)
        if isinstance(self.repeats, Mapping):  # read back from a journal
            self.repeats = AdaptiveRepeats(**{k: tuple(v) if isinstance(v, list) else v
                                              for k, v in self.repeats.items()})
        for codec in self.codecs:
            check_codec(codec)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as written to the journal's first line."""
        return asdict(self)

    def settings(self) -> dict[str, Any]:
        """How each run is measured: what must match for runs to share a cube."""
        return {"samples": self.samples, "warmup": self.warmup}

    def codecs_for(self, config: Config) -> list[str]:
        """The codecs measured for ``config``: one at a model's last split (see
        ``n_splits``), else all."""
        last = None if self.n_splits is None else self.n_splits.get(config.model)
        return self.codecs[:1] if last is not None and config.split == last - 1 \
            else self.codecs

    def plan(self) -> list[tuple[Config, str, int]]:
        """Every run, as (configuration, codec, repeat), in execution order."""
        return self._ordered([(c, codec, r) for r in range(self.runs) for c in self.configs
                              for codec in self.codecs_for(c)])

    def cells(self) -> list[tuple[Config, str]]:
        """Every (configuration, codec), in execution order (adaptive repeats)."""
        return self._ordered([(c, codec) for c in self.configs for codec in self.codecs_for(c)])

    def _ordered(self, items: list) -> list:
        """``items`` as listed, or shuffled with :attr:`seed` (``order="shuffle"``)."""
        if self.order == "shuffle":
            random.Random(self.seed).shuffle(items)
        return items


def _key(config: Config, codec: str, *repeat: int) -> str:
    """The journal key of a run (with its repeat) or of a cell (without)."""
    return json.dumps([*config.as_dict().values(), codec, *repeat])


@dataclass
class CampaignSummary:
    """What a campaign did: runs done now and before, failures with reasons.

    With adaptive repeats ``planned`` counts the runs the rule asked for (measured
    or failed). ``inference_s`` sums split-inference time over all testbeds;
    ``per_testbed`` (pools only) counts the runs each measured now, ``dropped``
    says why a testbed left the pool, ``unmet`` counts configurations that
    reached ``max_runs`` before the adaptive rule was met, ``refused`` lists the
    configurations refused before measuring (a partitioning strategy that does not
    fit the model).
    """

    planned: int
    done_before: int
    done_now: int
    failures: list[dict[str, Any]]
    wall_s: float
    inference_s: float = 0.0
    testbeds: int = 1
    per_testbed: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    unmet: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)

    @property
    def overhead_fraction(self) -> float:
        """Share of the testbeds' wall time spent outside split inference."""
        wall = self.wall_s * self.testbeds
        return 1.0 - self.inference_s / wall if wall > 0 else 0.0

    def __str__(self) -> str:
        refused = f"{len(self.refused)} refused, " if self.refused else ""
        lines = [f"{self.done_before + self.done_now}/{self.planned} runs measured "
                 f"({self.done_now} now, {self.done_before} before), "
                 f"{refused}{len(self.failures)} failed"]
        if self.per_testbed:
            lines.append("  runs per testbed: " + ", ".join(
                f"{name} {n}" for name, n in self.per_testbed.items()))
        for name, reason in self.dropped.items():
            lines.append(f"  taken out of the pool: {name}: {reason}")
        if self.unmet:
            lines.append(f"  {self.unmet} configurations reached max-runs before their "
                         "confidence interval was narrow enough")
        for what, entries in (("refused", self.refused), ("failed", self.failures)):
            lines += [f"  {what}: {e['config']} codec={e['codec']} repeat={e['repeat']}: "
                      f"{e['reason']}" for e in entries]
        return "\n".join(lines)


class Campaign(JournalledRun):
    """Runs a :class:`CampaignSpec` on a testbed, or a pool of testbeds, into a cube file.

    With a pool (a :class:`~toolkit.devices.testbeds.pool.TestbedPool` or a list of
    testbeds), each testbed takes the next run (the next configuration, with
    adaptive repeats) as soon as it is free, so different configurations run on
    different testbeds at the same time. There is still one journal: resume,
    retries and failure records work as with one testbed, and every journal
    record names the testbed that measured it. A run that fails on one testbed
    (after its retries) is given to one other testbed; if it fails there too it
    is recorded as failed. A testbed that fails ``drop_after`` runs in a row,
    which other testbeds could measure, or that cannot start, is taken out of the
    pool with a warning and its work goes to the others; the last testbed is
    never taken out.

    Args:
        testbed: a testbed, a pool, or a list of testbeds (made into a pool: close
            it with ``campaign.runner.close()``).
        spec, out, retries, backoff_s, attrs: as for every
            :class:`~toolkit.retry.JournalledRun`.
        progress: show tqdm progress bars (and one per testbed of a pool).
        save_every_s: also rewrite the cube during the campaign at most this often
            (the journal is what makes it crash-safe; the cube is for looking at).
        drop_after: failed runs in a row after which a testbed leaves the pool.
    """

    kind = "campaign"
    spec_type = CampaignSpec

    def __init__(self, testbed: Testbed | TestbedPool | Sequence[Testbed], spec: CampaignSpec,
                 out: str | os.PathLike, *, retries: int = 2, backoff_s: float = 0.5,
                 attrs: Mapping[str, Any] | None = None, progress: bool = True,
                 save_every_s: float = 30.0, drop_after: int = 3) -> None:
        is_list = isinstance(testbed, Sequence) and not isinstance(testbed, str)
        if not (isinstance(testbed, Testbed | TestbedPool)
                or (is_list and testbed and all(isinstance(t, Testbed) for t in testbed))):
            raise ConfigError("a campaign runs on a testbed (e.g. LocalTestbed() or "
                              "open_testbed('pi.toml')), a TestbedPool or a list of testbeds, "
                              f"got {testbed!r}")
        super().__init__(spec, out, retries=retries, backoff_s=backoff_s, attrs=attrs,
                         progress=progress)
        check_count(drop_after, "drop_after", 1)
        check_seconds(save_every_s, "save_every_s", finite=False)  # inf: only at the end
        if isinstance(testbed, Testbed):
            self.runner: Testbed | TestbedPool = testbed
            self.testbeds = [testbed]
        else:
            self.runner = testbed if isinstance(testbed, TestbedPool) else TestbedPool(testbed)
            self.testbeds = list(self.runner)
        self.testbed = self.testbeds[0]
        self.save_every_s = save_every_s
        self.drop_after = drop_after
        self.summary: CampaignSummary | None = None
        self.records: list[Any] = []

    @property
    def runs_on(self) -> Testbed | TestbedPool:
        """The testbed or pool (its private event loop serves :meth:`run`)."""
        return self.runner

    def _cube(self, label_source: str | None) -> xr.Dataset:
        done = self.journal.done
        codecs = sorted({e["row"]["codec"] for e in done.values()} or set(self.spec.codecs))
        throttled = (all(e.get("throttled", True) for e in done.values()) if done
                     else self.runner.throttled)
        runs_by_testbed = Counter(e.get("testbed", self._first_testbed) for e in done.values())
        attrs = {
            "testbed": self.runner.name,
            "energy_source": self.runner.energy_source,
            "samples_per_run": self.spec.samples,
            "seed": self.spec.seed,
            "order": self.spec.order,
            "codecs": ",".join(codecs),
            "throttled": int(throttled),
            "device_profiles": {"edge": self.runner.edge_profile.name,
                                "cloud": self.runner.cloud_profile.name},
            "testbed_runs": dict(sorted(runs_by_testbed.items())),
            "stopping_rule": stopping_rule_attr(self.spec.repeats, self.spec.runs,
                                                self._unmet()),
            **self.attrs,
        }
        if label_source:
            attrs["label_source"] = label_source
        if self.testbed.latency_source:
            attrs["latency_source"] = self.testbed.latency_source
        return cube_from_runs(self.journal.rows(with_codec=len(codecs) > 1), attrs)

    def _unmet(self) -> int:
        """Configurations that reached ``max_runs`` without meeting the adaptive rule."""
        rule = self.spec.repeats
        if rule is None:
            return 0
        return sum(1 for c, codec in self.spec.cells()
                   if len(rows := self._rows(c, codec)) >= rule.max_runs and not rule.met(rows))

    def _rows(self, config: Config, codec: str) -> list[dict[str, Any]]:
        return list(self._cells.get(_key(config, codec), {}).values())

    async def _run_locked(self) -> xr.Dataset:
        header = self.journal.open({"spec": self.spec.as_dict(), "testbed": self.runner.name})
        self._first_testbed = str(header.get("testbed", self.runner.name))
        done = self.journal.done
        self._cells: dict[str, dict[int, dict[str, Any]]] = {}
        for e in done.values():
            row = e["row"]
            cell = _key(Config.from_mapping(row), row["codec"])
            self._cells.setdefault(cell, {})[e["repeat"]] = row
        rule = self.spec.repeats
        if rule is None:
            plan = self.spec.plan()
            tasks = [Task(c, codec, r) for c, codec, r in plan if _key(c, codec, r)
                     not in done]
            planned = len(plan)
            done_before = planned - len(tasks)
            self._bar = progress_bar(planned, done_before, desc="campaign", show=self.progress)
        else:
            cells = self.spec.cells()
            done_before = sum(len(self._rows(c, codec)) for c, codec in cells)
            tasks = [Task(c, codec) for c, codec in cells if not rule.done(self._rows(c, codec))]
            self._bar = progress_bar(len(cells), len(cells) - len(tasks), desc="campaign",
                                     unit="config", show=self.progress)
        pooled = len(self.testbeds) > 1
        self._tb_bars = {tb.name: progress_bar(desc=tb.name, position=i + 1,
                                               show=self.progress and pooled)
                         for i, tb in enumerate(self.testbeds)}
        self._label_source = next((e.get("label_source") for e in done.values()), None)
        self._live = [tb.name for tb in self.testbeds]
        self._strikes = dict.fromkeys(self._live, 0)
        self._per_testbed = dict.fromkeys(self._live, 0)
        self._dropped: dict[str, str] = {}
        self._inference_s = 0.0
        self._done_now = 0
        t_start = self._last_save = time.perf_counter()
        self._queue = queue = WorkQueue(tasks)
        try:
            if tasks:  # a finished campaign resumed starts no testbed
                await gather_or_cancel(self._serve(tb, queue) for tb in self.testbeds)
            for task in queue.tasks:  # put back for a testbed that left the pool since
                self._record_failure(task, task.failed_repeat)
        finally:
            for bar in (self._bar, *self._tb_bars.values()):
                bar.close()
        cube = self._cube(self._label_source)
        save_cube(cube, self.out)
        if rule is not None:
            planned = done_before + self._done_now + len(self.journal.failures)
        self.summary = CampaignSummary(
            planned, done_before, self._done_now, self.journal.all_failures(),
            time.perf_counter() - t_start, self._inference_s, testbeds=len(self.testbeds),
            per_testbed=self._per_testbed if pooled else {}, dropped=self._dropped,
            unmet=self._unmet())
        return cube

    # -- one testbed's share of the work ----------------------------------------------
    async def _serve(self, tb: Testbed, queue: WorkQueue) -> None:
        """Start ``tb``, then measure what the queue hands it until nothing is left."""
        try:
            if isinstance(self.runner, TestbedPool):
                await self.runner.astart_one(tb)
            else:
                await tb.astart()
        except (ToolkitError, OSError) as exc:
            if not self._drop(tb.name, f"it could not start: {exc}"):
                raise  # the only testbed left: the campaign cannot go on
        while tb.name in self._live and (task := await queue.take(tb.name)) is not None:
            put_back = None
            try:
                put_back = await (self._measure_cell(tb, task) if task.repeat is None
                                  else self._measure_run(tb, task, task.repeat))
            finally:
                await queue.release(put_back)
        if tb.name not in self._live:
            await tb.aclose()

    async def _measure_run(self, tb: Testbed, task: Task, repeat: int) -> Task | None:
        """Measure one run; returns the task where it should go to another testbed."""
        config, codec = task.config, task.codec
        self._tb_bars[tb.name].set_postfix_str(
            f"split={config.split} f={config.cpu_freq} "
            f"{config.edge_accel}/{config.cloud_accel} {codec}")
        record, reason, spent = await self._attempt(tb, config, codec, repeat)
        self._inference_s += spent
        if record is None:
            return self._failed(tb.name, task, repeat, reason)
        self._measured(tb.name, config, codec, repeat, record)
        self._blame(task, tb.name)
        if task.repeat is not None:
            self._bar.update(1)
        return None

    async def _measure_cell(self, tb: Testbed, task: Task) -> Task | None:
        """Repeat a configuration until the adaptive rule says stop (or a run fails)."""
        rule = self.spec.repeats
        assert rule is not None
        cell = self._cells.setdefault(_key(task.config, task.codec), {})
        while not rule.done(list(cell.values())):
            repeat = next(r for r in range(len(cell) + 1) if r not in cell)
            if (put_back := await self._measure_run(tb, task, repeat)) is not None:
                return put_back
            if task.failed:
                break
        self._bar.update(1)
        return None

    def _measured(self, testbed: str, config: Config, codec: str, repeat: int,
                  record: Any) -> None:
        row = record.cube_row(with_codec=True)
        self.journal.record({"type": "run", "key": _key(config, codec, repeat), "repeat": repeat,
                             "row": row, "label_source": record.label_source,
                             "throttled": record.throttled, "testbed": testbed})
        self._cells.setdefault(_key(config, codec), {})[repeat] = row
        self._label_source = record.label_source
        self.records.append(record)
        self._done_now += 1
        self._per_testbed[testbed] += 1
        self._tb_bars[testbed].update(1)
        if time.perf_counter() - self._last_save > self.save_every_s:
            save_cube(self._cube(self._label_source), self.out)
            self._last_save = time.perf_counter()

    def _failed(self, testbed: str, task: Task, repeat: int, reason: str) -> Task | None:
        """A run failed on ``testbed`` after its retries: give it to one other testbed,
        or record it as failed. Returns the task where it goes to another testbed."""
        task.tried.append(testbed)
        task.reason, task.failed_repeat = reason, repeat
        others = [name for name in self._live if name not in task.tried]
        if len(task.tried) < 2 and others:
            return task
        self._record_failure(task, repeat)  # it failed wherever it ran: the configuration
        return None

    def _blame(self, task: Task, measured_on: str) -> None:
        """``measured_on`` measured what the testbeds in ``task.tried`` failed: a strike
        for each of those (``drop_after`` in a row take it out of the pool)."""
        self._strikes[measured_on] = 0
        for name in task.tried:
            self._strikes[name] += 1
            if self._strikes[name] >= self.drop_after:
                self._drop(name, f"{self._strikes[name]} runs in a row failed there that "
                           f"another testbed measured; last: {task.reason}")
        task.tried.clear()

    def _record_failure(self, task: Task, repeat: int) -> None:
        entry = {"type": "failure", "key": _key(task.config, task.codec, repeat),
                 "config": task.config.as_dict(), "codec": task.codec, "repeat": repeat,
                 "reason": task.reason, "testbed": task.tried[-1] if task.tried else None}
        if len(task.tried) > 1:
            entry["tried"] = list(task.tried)
        self.journal.record(entry)
        task.failed = True
        if task.repeat is not None:
            self._bar.update(1)

    def _drop(self, testbed: str, reason: str) -> bool:
        """Take a testbed out of the pool (never the last one); True if it was."""
        if testbed not in self._live or len(self._live) <= 1:
            return False
        self._live.remove(testbed)
        self._dropped[testbed] = reason
        log.warning("testbed %s is taken out of the pool: %s; its work goes to %s", testbed,
                    reason, ", ".join(self._live))
        self._queue.retire(testbed)
        return True

    async def _attempt(self, tb: Testbed, config: Config, codec: str, repeat: int):
        """One run with retries: (record or None, failure reason, seconds of inference)."""

        async def restart() -> None:
            await tb.aclose()
            await tb.astart()

        record, reason = await retry_run(
            lambda: tb.arun(config, samples=self.spec.samples, codec=codec,
                            warmup=self.spec.warmup, offset=repeat * self.spec.samples),
            retries=self.retries, backoff_s=self.backoff_s,
            what=f"run {config.as_dict()} {codec} repeat {repeat} on {tb.name}",
            recover=restart, recovering="restarting the testbed")
        return record, reason, record.execute_s if record is not None else 0.0


def progress_bar(total: int | None = None, initial: int = 0, *, desc: str, unit: str = "run",
                 position: int | None = None, show: bool = True) -> Any:
    """A campaign's (or a partition study's) tqdm progress bar, hidden unless ``show``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, position=position,
                disable=not show)
