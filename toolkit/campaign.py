"""Measurement campaigns: every configuration × repeat, crash-safe and resumable.

A campaign runs a list of configurations (a grid or an explicit list), each
``runs`` times with ``samples`` samples per run, on a :class:`Testbed`, and
collects the runs into a cube.

Persistence: an append-only journal (JSON lines) beside the output cube,
``CUBE.nc.journal``. Its first line records the campaign's specification; each
finished run appends one line, written, flushed and ``fsync``-ed before the next
run starts. A crash (even ``kill -9``) can only cut the last line short; the
reader drops such a torn line. Rerunning the same command reads the journal,
skips every run it holds and continues. A campaign may also grow: rerun with
more configurations, codecs or runs and only the new runs are measured. The
journal refuses runs measured with other settings (samples or warm-up per run),
which could not share a cube. The output cube holds every run its journal
holds; it is written from the journal at the end (and every ``save_every_s``
seconds during a long campaign), atomically (temp file + rename), so it is
never half-written.

Failures: a run that raises (device error, timeout, lost worker) is retried
with exponential backoff after restarting the testbed's workers, up to
``retries`` times, then recorded as failed with its reason; the campaign goes on
and its summary lists the failures.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, TypeVar

import xarray as xr

from toolkit.config import Config, config_problems
from toolkit.cube import cube_from_runs, save_cube
from toolkit.devices.testbed import Testbed
from toolkit.errors import ConfigError, ToolkitError
from toolkit.models.codecs import check_codec

__all__ = ["Campaign", "CampaignSpec", "CampaignSummary", "Journal", "grid", "retry_run"]

log = logging.getLogger("toolkit.campaign")

T = TypeVar("T")

JOURNAL_SCHEMA = "dynasplit.journal/1"


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
    """
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
    """

    configs: list[Config]
    codecs: list[str] = field(default_factory=lambda: ["fp32"])
    runs: int = 1
    samples: int = 100
    warmup: int = 3
    order: str = "grid"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.configs:
            raise ConfigError("the campaign has no configurations to measure")
        if self.order not in ("grid", "shuffle"):
            raise ConfigError(f"unknown order {self.order!r}; valid: grid, shuffle")
        if self.runs < 1 or self.samples < 1:
            raise ConfigError("runs and samples must be at least 1")
        for codec in self.codecs:
            check_codec(codec)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form, as written to the journal's first line."""
        d = asdict(self)
        d["configs"] = [c.as_dict() for c in self.configs]
        return d

    def settings(self) -> dict[str, Any]:
        """How each run is measured: what must match for runs to share a cube."""
        return {"samples": self.samples, "warmup": self.warmup}

    def fingerprint(self) -> str:
        """A digest of :meth:`settings`."""
        blob = json.dumps(self.settings(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def plan(self) -> list[tuple[Config, str, int]]:
        """Every run, as (configuration, codec, repeat), in execution order."""
        runs = [(c, codec, r) for r in range(self.runs) for c in self.configs
                for codec in self.codecs]
        if self.order == "shuffle":
            random.Random(self.seed).shuffle(runs)
        return runs


def _run_key(config: Config, codec: str, repeat: int) -> str:
    return json.dumps([*config.as_dict().values(), codec, repeat])


@dataclass
class CampaignSummary:
    """What a campaign did: runs done now and before, failures with reasons."""

    planned: int
    done_before: int
    done_now: int
    failures: list[dict[str, Any]]
    wall_s: float
    inference_s: float

    @property
    def overhead_fraction(self) -> float:
        """Share of the wall time spent outside split inference."""
        return 1.0 - self.inference_s / self.wall_s if self.wall_s > 0 else 0.0

    def __str__(self) -> str:
        lines = [f"{self.done_before + self.done_now}/{self.planned} runs measured "
                 f"({self.done_now} now, {self.done_before} before), "
                 f"{len(self.failures)} failed"]
        for f in self.failures:
            lines.append(f"  failed: {f['config']} codec={f['codec']} repeat={f['repeat']}: "
                         f"{f['reason']}")
        return "\n".join(lines)


class Journal:
    """An append-only JSON-lines journal: a header line, then one line per entry.

    :meth:`append` writes, flushes and ``fsync``-s each line; :meth:`read` drops
    (and truncates away) a last line that a crash cut short.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        if not self.path.exists():
            return None, []
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete, torn = lines[:-1], lines[-1]
        if torn:  # a crash cut the last line short: drop it from the file too
            log.warning("journal %s: dropping a torn last line", self.path)
            with open(self.path, "r+b") as fh:
                fh.truncate(len(data) - len(torn))
        entries = []
        for n, line in enumerate(complete, 1):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ToolkitError(f"journal {self.path} line {n} is corrupt ({exc}); "
                                   "move it away to start over") from None
        if not entries:
            return None, []
        header = entries[0]
        if header.get("schema") != JOURNAL_SCHEMA:
            raise ToolkitError(f"{self.path} is not a campaign journal of this toolkit")
        return header, entries[1:]

    def append(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


class Campaign:
    """Runs a :class:`CampaignSpec` on a testbed into a cube file, resumably.

    Args:
        testbed: a started (or startable) testbed.
        spec: what to measure.
        out: the cube file; its journal is ``out + ".journal"``.
        retries: retries of a failing run before it is recorded as failed.
        backoff_s: first retry delay, doubled each retry.
        attrs: extra cube attributes.
        progress: show a tqdm progress bar.
        save_every_s: also rewrite the cube during the campaign at most this often
            (the journal is what makes it crash-safe; the cube is for looking at).
    """

    def __init__(self, testbed: Testbed, spec: CampaignSpec, out: str | os.PathLike, *,
                 retries: int = 2, backoff_s: float = 0.5,
                 attrs: Mapping[str, Any] | None = None, progress: bool = True,
                 save_every_s: float = 30.0) -> None:
        self.testbed = testbed
        self.spec = spec
        self.out = Path(out)
        self.journal = Journal(Path(str(self.out) + ".journal"))
        self.retries = retries
        self.backoff_s = backoff_s
        self.attrs = dict(attrs or {})
        self.progress = progress
        self.save_every_s = save_every_s
        self.summary: CampaignSummary | None = None
        self.records: list[Any] = []

    def _load(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        header, entries = self.journal.read()
        if header is None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.journal.append({"schema": JOURNAL_SCHEMA, "spec": self.spec.as_json(),
                                 "settings": self.spec.settings(),
                                 "fingerprint": self.spec.fingerprint(),
                                 "testbed": self.testbed.name})
            return {}, []
        if header.get("fingerprint") != self.spec.fingerprint():
            theirs = header.get("settings", {})
            differ = ", ".join(f"{k} {theirs.get(k)} -> {v}"
                               for k, v in self.spec.settings().items() if theirs.get(k) != v)
            raise ToolkitError(
                f"{self.journal.path} belongs to a different campaign, measured with other "
                f"settings ({differ}); its runs cannot share a cube with these. Give another "
                "output file, or delete the journal to start over"
            )
        done = {e["key"]: e for e in entries if e.get("type") == "run"}
        failures = [e for e in entries if e.get("type") == "failure" and e["key"] not in done]
        return done, failures

    def _cube(self, done: Mapping[str, dict[str, Any]], label_source: str | None) -> xr.Dataset:
        codecs = sorted({e["row"]["codec"] for e in done.values()} or set(self.spec.codecs))
        with_codec = len(codecs) > 1
        rows = []
        for entry in sorted(done.values(), key=lambda e: e["repeat"]):
            row = dict(entry["row"])
            if not with_codec:
                row.pop("codec", None)
            rows.append(row)
        attrs = {
            "testbed": self.testbed.name,
            "energy_source": self.testbed.energy_source,
            "samples_per_run": self.spec.samples,
            "seed": self.spec.seed,
            "order": self.spec.order,
            "codecs": ",".join(codecs),
            "throttled": int(self.testbed.throttled),
            "device_profiles": {"edge": self.testbed.edge_profile.name,
                                "cloud": self.testbed.cloud_profile.name},
            **self.attrs,
        }
        if label_source:
            attrs["label_source"] = label_source
        if self.testbed.latency_source:
            attrs["latency_source"] = self.testbed.latency_source
        return cube_from_runs(rows, attrs)

    async def arun(self) -> xr.Dataset:
        """Run (or resume) the campaign; returns the cube, also saved to ``out``."""
        from tqdm.auto import tqdm

        done, old_failures = self._load()
        plan = self.spec.plan()
        todo = [p for p in plan if _run_key(*p) not in done]
        done_before = len(plan) - len(todo)
        failures = []
        label_source = next((e.get("label_source") for e in done.values()), None)
        t_start = last_save = time.perf_counter()
        inference_s = 0.0
        bar = tqdm(total=len(plan), initial=done_before, desc="campaign", unit="run",
                   disable=not self.progress)
        await self.testbed.astart()
        for config, codec, repeat in todo:
            key = _run_key(config, codec, repeat)
            bar.set_postfix_str(f"split={config.split} f={config.cpu_freq} "
                                f"{config.edge_accel}/{config.cloud_accel} {codec}")
            record, reason, spent = await self._attempt(config, codec, repeat)
            inference_s += spent
            if record is None:
                entry = {"type": "failure", "key": key, "config": config.as_dict(),
                         "codec": codec, "repeat": repeat, "reason": reason}
                failures.append(entry)
            else:
                row = record.cube_row(with_codec=True)
                entry = {"type": "run", "key": key, "repeat": repeat, "row": row,
                         "label_source": record.label_source, "throttled": record.throttled}
                done[key] = entry
                label_source = record.label_source
                self.records.append(record)
            self.journal.append(entry)
            if record is not None and time.perf_counter() - last_save > self.save_every_s:
                save_cube(self._cube(done, label_source), self.out)
                last_save = time.perf_counter()
            bar.update(1)
        bar.close()
        cube = self._cube(done, label_source)
        save_cube(cube, self.out)
        all_failures = failures + [f for f in old_failures if f["key"] not in done
                                   and f["key"] not in {x["key"] for x in failures}]
        self.summary = CampaignSummary(len(plan), done_before, len(todo) - len(failures),
                                       all_failures, time.perf_counter() - t_start,
                                       inference_s)
        return cube

    async def _attempt(self, config: Config, codec: str, repeat: int):
        """One run with retries: (record or None, failure reason, seconds of inference)."""

        async def restart() -> None:
            await self.testbed.aclose()
            await self.testbed.astart()

        record, reason = await retry_run(
            lambda: self.testbed.arun(config, samples=self.spec.samples, codec=codec,
                                      warmup=self.spec.warmup,
                                      offset=repeat * self.spec.samples),
            retries=self.retries, backoff_s=self.backoff_s,
            what=f"run {config.as_dict()} {codec} repeat {repeat}",
            recover=restart, recovering="restarting the testbed")
        return record, reason, record.execute_s if record is not None else 0.0

    def run(self) -> xr.Dataset:
        """Blocking :meth:`arun` (on the testbed's private event loop)."""
        return self.testbed._sync(self.arun())


async def retry_run(
    run: Callable[[], Awaitable[T]], *, retries: int, backoff_s: float, what: str,
    recover: Callable[[], Awaitable[None]] | None = None, recovering: str = "recovering",
) -> tuple[T | None, str]:
    """Await ``run()`` until it succeeds, at most ``retries + 1`` times.

    Between attempts it waits ``backoff_s``, doubled each retry, then awaits
    ``recover()`` where given (a recovery that fails uses up that attempt, with
    ``recovering`` naming it in the reason). A :class:`~toolkit.errors.ConfigError`
    is the user's mistake and is raised at once; other toolkit errors and OS errors
    (timeouts and lost connections included) are logged with ``what`` and retried.

    Returns:
        (the result, ``""``), or (None, the last failure's reason).
    """
    reason = ""
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
            if recover is not None:
                try:
                    await recover()
                except Exception as exc:  # recovery itself failed; count the attempt
                    reason = f"{recovering} failed: {exc}"
                    continue
        try:
            return await run(), ""
        except ConfigError:
            raise  # the user's mistake: retrying cannot help
        except (ToolkitError, OSError) as exc:  # OSError: timeouts, lost connections
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("%s failed (attempt %d/%d): %s", what, attempt + 1, retries + 1,
                        reason)
    return None, reason


def configs_from(items: Iterable[Mapping[str, Any] | Config]) -> list[Config]:
    """Configurations from mappings (e.g. read from JSON)."""
    return [c if isinstance(c, Config) else Config.from_mapping(c) for c in items]
