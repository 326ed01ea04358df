"""Real execution of partition plans on N local device-worker processes.

A :class:`PartitionCluster` starts ``workers`` device workers
(:mod:`toolkit.partition.execution.worker`, one OS process each) and, for hybrid plans,
a cloud worker (:mod:`toolkit.partition.execution.cloud`) per model. For each run it
builds the plan, tells every device which plan to build (they rebuild it from
the same model and check its fingerprint), connects the devices over TCP with
the runtime's framing, sends the inputs to device 0 and collects, per device,
its compute time, the time it spent sending and waiting for data, the bytes it
sent and received and when it finished each sample; device 0 returns the
outputs, which are compared with the unpartitioned model.

Each device worker is throttled to its own device by its own cgroup CPU quota
(:meth:`PartitionCluster.quota_cores`), lifted while the workers build and
trace a plan and run the warm-up samples (set-up, not the device's work: at a
quota of a few percent of a core, building MobileNetV2 alone took minutes) and
set before the measured samples; the links are emulated in user space
(:mod:`toolkit.runtime.link`). The energies are modelled from the measured times
or metered (:mod:`toolkit.partition.execution.measurement`). The whole account
of the emulation and the energy is ``docs/partitioning.md``, "Real execution".

Example:
    >>> with PartitionCluster(workers=4) as cluster:
    ...     run = cluster.run("vgg-stack", "spatial", 4, samples=20)
    ...     print(run.latency_ms.mean(), [d.energy_j for d in run.devices])
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from toolkit.aio import BlockingLifecycle
from toolkit.config import MAX_SAMPLES, listed
from toolkit.devices.testbeds.calibration import HostCalibration, host_calibration, quota_cores
from toolkit.devices.testbeds.cgroups import CpuQuota, open_cpu_quota
from toolkit.energy.meter import Meter
from toolkit.energy.model import PowerModel
from toolkit.errors import (
    DeviceError,
    ProtocolError,
    ToolkitError,
    check_count,
    check_seconds,
    choices,
)
from toolkit.hardware.profile import DeviceProfile, load_profile
from toolkit.models.codecs import decode, encode
from toolkit.partition.cost.hybrid import (
    DEFAULT_CLOUD_MACS_PER_S,
    CloudModel,
    HybridCost,
    estimate_hybrid_cost,
)
from toolkit.partition.cost.per_device import DEFAULT_MACS_PER_S, CostModel, PlanCost, estimate_cost
from toolkit.partition.cost.stream import check_stream, estimate_stream, estimate_turns, pipelines
from toolkit.partition.execution.measurement import PartitionRun, assemble_run
from toolkit.partition.execution.spec import PlanSpec, plan_fingerprint
from toolkit.partition.execution.stream import measure_stream
from toolkit.partition.model.plan import PartitionPlan
from toolkit.partition.model.stacks import load_partition_model
from toolkit.partition.strategies.hybrid import HybridPlan
from toolkit.runtime.framing import KIND_JSON, KIND_TENSOR, read_frame, write_json, write_tensor
from toolkit.runtime.link import DEFAULT_LINK, Link
from toolkit.runtime.session import WorkerProcess, check_worker_memory

__all__ = [
    "INPUT_KINDS",
    "LOOPBACK_MBPS",
    "PartitionCluster",
    "device_worker_command",
]

#: where run inputs come from: the digits images (resized to the model's input)
#: or seeded random normal inputs of the model's input shape
INPUT_KINDS = ("digits", "random")
#: link rate the predictions assume for an unemulated (loopback) link, Mbit/s
LOOPBACK_MBPS = 10_000.0

log = logging.getLogger("toolkit.partition")
_uids = itertools.count()


def device_worker_command(index: int, *, threads: int = 1, host: str = "127.0.0.1",
                          python: str = sys.executable) -> list[str]:
    """The argv that starts device worker ``index``."""
    return [python, "-m", "toolkit.partition.execution.worker", "--index", str(index),
            "--threads", str(threads), "--host", host]


def _profile_ref(profile: DeviceProfile) -> str:
    """How a cost model names ``profile``: by name where that finds the same file."""
    with contextlib.suppress(ToolkitError):
        if profile.path is None or load_profile(profile.name).path == profile.path:
            return profile.name
    return str(profile.path)


def _reap(worker: WorkerProcess, timeout: float = 1.0) -> None:
    """Give a process that was just killed a moment to be reaped."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.proc.wait(timeout)


class _Control:
    """The controller's connection to one device worker."""

    def __init__(self, index: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.index, self.reader, self.writer = index, reader, writer

    @classmethod
    async def connect(cls, index: int, host: str, port: int) -> _Control:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 24), 10)
        except (OSError, asyncio.TimeoutError) as exc:
            raise DeviceError(f"cannot reach device {index} at {host}:{port}: {exc}") from None
        return cls(index, reader, writer)

    async def request(self, message: dict[str, Any], tensor: np.ndarray | None = None
                      ) -> dict[str, Any]:
        write_json(self.writer, message)
        if tensor is not None:
            write_tensor(self.writer, encode(tensor, "fp32"), 0)
        await self.writer.drain()
        frame = await read_frame(self.reader)
        if frame is None:
            raise DeviceError(f"device {self.index} closed the control connection")
        if frame.kind != KIND_JSON:
            raise ProtocolError(f"device {self.index} answered with a tensor frame")
        if frame.message.get("op") == "error":
            raise DeviceError(f"device {self.index}: {frame.message.get('message')}")
        return frame.message

    async def tensor(self) -> np.ndarray:
        frame = await read_frame(self.reader)
        if frame is None or frame.kind != KIND_TENSOR:
            raise DeviceError(f"device {self.index} sent no outputs")
        return np.array(decode(frame.tensor), dtype=np.float32)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


@dataclass
class _Model:
    """A model as the controller holds it and as the workers load it."""

    name: str
    ref: str
    input_size: int | None
    model: keras.Model
    split_model: Any = None

    def splits(self):
        if self.split_model is None:
            from toolkit.models.split import SplitModel

            self.split_model = SplitModel(self.model, name=self.model.name)
        return self.split_model


class PartitionCluster(BlockingLifecycle):
    """N local device-worker processes that run partition plans for real.

    Args:
        workers: device worker processes to start (runs use the first N).
        profile: the edge devices' profile (frequencies, power model, cores), and
            the device the prediction's ``macs_per_s`` describes.
        device_profiles: one profile per worker, for unequal devices (empty: every
            worker is a ``profile``). Each worker is throttled to its own
            device and its energy comes from its own power model; a run over N
            devices uses the first N.
        cloud_profile: the cloud's profile (power model of hybrid runs).
        throttle: emulate CPU frequency with a cgroup quota per device.
        log_dir: folder for the workers' logs and saved models (default: a new
            temporary folder).
        startup_timeout: seconds a worker may take to start.
        run_timeout: seconds a run request may take before it is abandoned.
    """

    def __init__(self, workers: int = 4, *, profile: str | DeviceProfile = "raspberry-pi-4",
                 device_profiles: Sequence[str | DeviceProfile] = (),
                 cloud_profile: str | DeviceProfile = "cloud-gpu-server", throttle: bool = True,
                 log_dir: str | os.PathLike | None = None, startup_timeout: float = 120.0,
                 run_timeout: float = 600.0) -> None:
        check_count(workers, "workers")
        self.size = workers
        self.profile = profile if isinstance(profile, DeviceProfile) else load_profile(profile)
        self.cloud_profile = (cloud_profile if isinstance(cloud_profile, DeviceProfile)
                              else load_profile(cloud_profile)).check_role("cloud")
        device_profiles = listed(device_profiles) if device_profiles else []
        self.unequal = bool(device_profiles)
        if self.unequal and len(device_profiles) != workers:
            raise ToolkitError(f"device_profiles names {len(device_profiles)} profiles for "
                               f"{workers} workers; give one per worker")
        self.device_profiles = [(p if isinstance(p, DeviceProfile) else load_profile(p))
                                .check_role("edge") for p in device_profiles
                                ] or [self.profile.check_role("edge")] * workers
        for p in {id(p): p for p in (self.profile, *self.device_profiles)}.values():
            if not p.frequencies_mhz:
                raise ToolkitError(f"edge profile {p.name!r} lists no CPU frequencies")
        self.throttle = throttle
        self.log_dir = Path(log_dir) if log_dir else Path(
            tempfile.mkdtemp(prefix="dynasplit-partition-"))
        check_seconds(startup_timeout, "startup_timeout", positive=True, finite=False)
        check_seconds(run_timeout, "run_timeout", positive=True, finite=False)
        self.startup_timeout = startup_timeout
        self.run_timeout = run_timeout
        self._uid = next(_uids)
        self._workers: list[WorkerProcess | None] = [None] * workers
        self._controls: list[_Control | None] = [None] * workers
        self._quotas: list[CpuQuota | None] = [None] * workers
        self._host: HostCalibration | None = None
        self._clouds: dict[tuple, WorkerProcess] = {}
        self._models: dict[Any, _Model] = {}
        self._runs = itertools.count(1)
        self._loop_name = "dynasplit-partition"
        self._started = False

    # -- lifecycle ------------------------------------------------------------------

    @property
    def pids(self) -> list[int | None]:
        """The device workers' process ids (None where not running)."""
        return [w.pid if w is not None and w.alive() else None for w in self._workers]

    @property
    def addresses(self) -> list[tuple[str, int] | None]:
        """The device workers' (host, port) (None where not running)."""
        return [(w.host, w.port) if w is not None and w.alive() else None
                for w in self._workers]

    @property
    def throttled(self) -> bool:
        """Whether every started device runs under a cgroup CPU quota."""
        started = [q for w, q in zip(self._workers, self._quotas, strict=True) if w is not None]
        return bool(started) and all(q is not None for q in started)

    async def astart(self) -> None:
        """Start every device worker (in parallel) and connect to them.

        Raises:
            ToolkitError: a worker did not start (the others are stopped again).
        """
        check_worker_memory(self.size + 1, f"{self.size} device workers and a cloud worker")
        self._started = True
        try:
            await self._ensure(self.size)
        except BaseException:
            await self.aclose()
            raise

    async def _start_worker(self, i: int) -> None:
        old = self._workers[i]
        if old is not None:
            await asyncio.to_thread(old.stop)
        argv = device_worker_command(i, threads=self.device_profiles[i].emulated_cores)
        worker = await asyncio.to_thread(WorkerProcess, argv, self.log_dir / f"device{i}.log",
                                         self.startup_timeout)
        self._workers[i] = worker
        if self.throttle:
            if self._quotas[i] is None:
                self._quotas[i] = open_cpu_quota(f"partition{self._uid}-{i}")
            if self._quotas[i] is not None:
                self._quotas[i].add(worker.pid)

    async def _ensure(self, n: int) -> None:
        """Devices 0..n-1 running and connected (n checked by :meth:`cost_model`); dead
        workers are restarted."""
        dead = [i for i in range(n) if self._workers[i] is None or not self._workers[i].alive()]
        if dead:
            for i in dead:
                if self._controls[i] is not None:
                    await self._controls[i].close()
                    self._controls[i] = None
            started = await asyncio.gather(*(self._start_worker(i) for i in dead),
                                           return_exceptions=True)  # all settle first
            errors = [e for e in started if isinstance(e, BaseException)]
            if errors:
                raise errors[0]
        for i in range(n):
            if self._controls[i] is None:
                w = self._workers[i]
                self._controls[i] = await _Control.connect(i, w.host, w.port)

    async def aclose(self) -> None:
        """Stop every worker and remove the cgroups."""
        await self._close_controls()
        workers = [w for w in (*self._workers, *self._clouds.values()) if w is not None]
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers))
        self._workers = [None] * self.size
        self._clouds = {}
        for quota in self._quotas:
            if quota is not None:
                quota.close()
        self._quotas = [None] * self.size
        self._started = False

    async def _close_controls(self) -> None:
        """Close every control connection (the next run connects again)."""
        for control in self._controls:
            if control is not None:
                await control.close()
        self._controls = [None] * self.size


    def run(self, model: str | os.PathLike | keras.Model, strategy: str, devices: int,
            **options: Any) -> PartitionRun:
        """BlockingLifecycle :meth:`arun`."""
        return self.run_blocking(self.arun(model, strategy, devices, **options))

    # -- models ---------------------------------------------------------------------

    def _resolve(self, model: str | os.PathLike | keras.Model, input_size: int | None) -> _Model:
        if isinstance(model, keras.Model):
            key: Any = ("object", id(model))
        else:
            key = ("name", str(model), input_size)
        if key in self._models:
            return self._models[key]
        if isinstance(model, keras.Model):  # the workers load it from a file
            folder = self.log_dir / "models"
            folder.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model.name)
            path = folder / f"{safe}-{len(self._models)}.keras"
            model.save(path)
            entry = _Model(model.name, str(path), None, model)
        else:
            name = str(model)
            entry = _Model(name, name, input_size, load_partition_model(name, input_size))
        self._models[key] = entry
        return entry

    def plan(self, model: str | os.PathLike | keras.Model, strategy: str, devices: int, *,
             input_size: int | None = None, fuse: int | str = "all", split: int | None = None,
             codec: str = "fp32", equal_shares: bool = False) -> PartitionPlan | HybridPlan:
        """The plan :meth:`arun` would execute with these arguments (no process involved).

        Raises:
            ToolkitError: the strategy refuses the model, or a bad argument.
        """
        spec = self._spec(strategy, devices, fuse, split, codec, equal_shares)
        entry = self._resolve(model, input_size)
        return spec.build(entry.model, entry.splits() if spec.hybrid else None,
                          model_name=entry.name)

    def cost_model(self, devices: int, *, macs_per_s: float = DEFAULT_MACS_PER_S,
                   link: Link | None = None, cpu_freq: int | None = None,
                   idle: str = "request") -> CostModel:
        """The cost model :meth:`arun` predicts with: devices 0..devices-1 with their
        profiles, ``macs_per_s`` for a ``profile`` device, ``link`` between them,
        ``idle`` the idle accounting."""
        if devices > self.size:
            raise ToolkitError(f"the plan needs {devices} devices; this cluster has "
                               f"{self.size} workers (PartitionCluster(workers=...))")
        link = Link() if link is None else link
        names = tuple(_profile_ref(p) for p in self.device_profiles[:devices])
        return CostModel(macs_per_s=macs_per_s, link_mbps=link.mbps or LOOPBACK_MBPS,
                         rtt_ms=link.rtt_ms, profile=str(self.profile.path or self.profile.name),
                         freq_mhz=cpu_freq if self.unequal else self._freq(cpu_freq),
                         device_profiles=names if self.unequal else (), idle=idle)

    def _spec(self, strategy: str, devices: int, fuse: int | str, split: int | None,
              codec: str, equal_shares: bool) -> PlanSpec:
        """The plan by name; on unequal devices, shares by speed unless ``equal_shares``."""
        speeds = None
        if self.unequal and not equal_shares:
            speeds = self.cost_model(devices).speeds(devices)
            speeds = None if len(set(speeds)) == 1 else tuple(speeds)
        return PlanSpec(strategy, devices, fuse, split, codec, speeds)

    async def _cloud(self, entry: _Model) -> WorkerProcess:
        worker = self._clouds.get((entry.ref, entry.input_size))
        if worker is None or not worker.alive():
            argv = [sys.executable, "-m", "toolkit.partition.execution.cloud", "--model", entry.ref,
                    "--threads", "1"]
            if entry.input_size:
                argv += ["--input-size", str(entry.input_size)]
            log = self.log_dir / f"cloud-{len(self._clouds)}.log"
            worker = await asyncio.to_thread(WorkerProcess, argv, log, self.startup_timeout)
            self._clouds[(entry.ref, entry.input_size)] = worker
        return worker

    # -- running --------------------------------------------------------------------

    def _freq(self, cpu_freq: int | None, device: int | None = None) -> int:
        """``cpu_freq`` checked against ``device``'s profile (None: the cluster's
        ``profile``); its highest where None."""
        profile = self.profile if device is None else self.device_profiles[device]
        return profile.max_freq if cpu_freq is None else profile.check_freq(cpu_freq)

    def quota_cores(self, device: int, freq: int) -> tuple[float, bool]:
        """Host cores that emulate ``device`` at ``freq``, and whether they were capped.

        The local testbed's rule for fp32 ops
        (:func:`~toolkit.devices.testbeds.calibration.quota_cores`; the host's
        calibration is measured once per machine), capped at one core: a device
        faster than one host core runs at one core's speed.
        """
        profile = self.device_profiles[device]
        timing = profile.timing
        if timing is not None and timing.has("int8") and self._host is None:
            self._host = host_calibration()
        cores = quota_cores(profile, freq, "none", self._host)
        return min(cores, 1.0), cores > 1.0

    def _set_quotas(self, n: int, cpu_freq: int | None) -> dict[int, tuple[float, bool]]:
        """Throttle devices 0..n-1 to their own devices; their (cores, capped)."""
        set_to = {}
        for i, quota in enumerate(self._quotas[:n]):
            if quota is None:
                continue
            cores, capped = self.quota_cores(i, self._freq(cpu_freq, i))
            if capped:
                log.warning("device %d (%s) is faster than one host core: its quota is "
                            "capped at one core", i, self.device_profiles[i].name)
            quota.set_cores(cores)
            set_to[i] = cores, capped
        return set_to

    async def _gather(self, calls: Mapping[int, Awaitable[Any]], what: str) -> dict[int, Any]:
        """Await one call per device; on any failure, say which device failed and why."""
        tasks = {i: asyncio.ensure_future(c) for i, c in calls.items()}
        done, pending = await asyncio.wait(tasks.values(), timeout=self.run_timeout,
                                           return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in done if t.exception() is not None]
        if not failed and not pending:
            return {i: t.result() for i, t in tasks.items()}
        if failed and pending:  # the others fail soon after: their peers closed
            _, pending = await asyncio.wait(pending, timeout=5.0)
        for t in pending:
            t.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)  # retrieves every error
        await self._close_controls()  # streams may be mid-frame: reconnect
        raise DeviceError(await self._failure(tasks, what))

    async def _failure(self, tasks: Mapping[int, asyncio.Future], what: str) -> str:
        reasons = []
        workers = [w for i in tasks if (w := self._workers[i]) is not None]
        await asyncio.gather(*(asyncio.to_thread(_reap, w) for w in workers))
        for i in tasks:
            w = self._workers[i]
            if w is not None and not w.alive():
                reasons.append(f"device {i} (pid {w.pid}) exited with status "
                               f"{w.proc.returncode} during {what}; its log: {w.log_path}")
        if reasons:
            reasons.append("the other devices stopped because their peers closed")
        else:
            for i, t in tasks.items():
                if t.cancelled() or not t.done():
                    reasons.append(f"device {i} did not finish {what} within "
                                   f"{self.run_timeout:g} s")
                elif t.exception() is not None:
                    reasons.append(str(t.exception()))
        return "; ".join(reasons) or f"{what} failed"

    def _inputs(self, entry: _Model, inputs: str | np.ndarray, samples: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray, str]:
        shape = tuple(int(d) for d in entry.model.inputs[0].shape[1:])
        if isinstance(inputs, str):
            if inputs not in INPUT_KINDS:
                raise ToolkitError(f"unknown inputs {inputs!r}; valid: {choices(INPUT_KINDS)} "
                                   "or an array of inputs")
            if inputs == "digits":
                from toolkit.models.data import eval_inputs, reference_labels

                x_eval = eval_inputs(entry.model)[1]
                index = np.arange(samples) % len(x_eval)
                x = x_eval[index].astype(np.float32)
                labels, source = reference_labels(entry.model, x)
                labels = np.asarray(labels)
                if len(labels) != samples:  # the true labels of the whole evaluation set
                    labels = labels[index]
                return x, labels, source
            x = np.random.default_rng(seed).standard_normal((samples, *shape)).astype(np.float32)
        else:
            x = np.asarray(inputs, dtype=np.float32)
            if x.shape[1:] != shape or len(x) < 1:
                raise ToolkitError(f"inputs of shape {x.shape} do not match the model's "
                                   f"(samples, {', '.join(map(str, shape))})")
        labels = np.argmax(np.asarray(entry.model(x, training=False)), axis=-1)
        return x, labels, "fp32-model"

    async def arun(
        self,
        model: str | os.PathLike | keras.Model,
        strategy: str,
        devices: int,
        *,
        samples: int = 20,
        inputs: str | np.ndarray = "digits",
        input_size: int | None = None,
        fuse: int | str = "all",
        split: int | None = None,
        codec: str = "fp32",
        cpu_freq: int | None = None,
        link: Link | None = None,
        cloud_link: Link | None = None,
        cloud_accel: str = "none",
        warmup: int = 2,
        seed: int = 0,
        macs_per_s: float = DEFAULT_MACS_PER_S,
        cloud_macs_per_s: float = DEFAULT_CLOUD_MACS_PER_S,
        meters: Callable[[int, int], Meter] | None = None,
        idle: str = "request",
        equal_shares: bool = False,
        interval_ms: float | None = None,
    ) -> PartitionRun:
        """Run ``model`` partitioned by ``strategy`` over ``devices`` worker processes.

        Args:
            model: a partitioning model name (``vgg-stack``, ``digits-cnn``...),
                a ``.keras`` path or a Keras model (saved once for the workers:
                later changes to its weights are not seen by this cluster).
            strategy: a strategy, or ``hybrid-<strategy>`` (needs ``split``).
            devices: number of devices (at most the cluster's workers).
            samples: measured samples (one request each, batch 1).
            inputs: ``digits`` (the digits images, resized for other input
                sizes), ``random`` (seeded normal inputs), or an input array
                (whose length then sets the samples).
            input_size: square input size of the built-in stacks and zoo models.
            fuse: the spatial strategy's fusion.
            split: the hybrid plan's edge/cloud cut.
            codec: the hybrid plan's activation codec.
            cpu_freq: emulated CPU frequency of every device (default: each
                device profile's highest; a given one must be offered by every
                device's profile).
            link: the emulated link between devices (default 100 Mbit/s, 0 ms RTT).
            cloud_link: the emulated link from device 0 to the cloud (default
                100 Mbit/s, 2 ms RTT).
            cloud_accel: the cloud power model's accelerator.
            warmup: unmeasured samples run first.
            seed: seed of random inputs.
            macs_per_s: the prediction's throughput of a ``profile`` device
                (devices of other profiles scale it by their speed, see
                :class:`~toolkit.partition.CostModel`).
            cloud_macs_per_s: the prediction's cloud throughput.
            meters: ``meters(device, pid)`` -> a :class:`~toolkit.energy.meter.Meter`
                for that device's energy, instead of the power model.
            idle: the idle accounting of the modelled energies, measured and
                predicted: ``request`` (default) or ``busy``
                (:mod:`toolkit.partition.cost.energy`).
            equal_shares: on a cluster of unequal devices, give every device an
                equal share (default: shares in proportion to each device's
                speed, :meth:`~toolkit.partition.CostModel.speeds`).
            interval_ms: run the measured samples as a stream of requests, one
                arriving every ``interval_ms`` on device 0: layer-wise plans
                pipeline them, the others serve them in turn. The run's
                ``stream`` holds the measured figures
                (:func:`~toolkit.partition.execution.stream.measure_stream`),
                its ``predicted_stream`` the prediction.

        Raises:
            ToolkitError: a bad argument, a plan the strategy refuses, or a device
                that failed, died or timed out (the message names it).
        """
        link = Link() if link is None else link
        cloud_link = DEFAULT_LINK if cloud_link is None else cloud_link
        if not isinstance(inputs, str):
            samples = len(inputs)
        check_count(samples, "samples", maximum=MAX_SAMPLES)
        freq = self._freq(cpu_freq)
        freqs = [self._freq(cpu_freq, i) for i in range(min(devices, self.size))]
        cost_model = self.cost_model(devices, macs_per_s=macs_per_s, link=link,
                                     cpu_freq=cpu_freq, idle=idle)
        spec = self._spec(strategy, devices, fuse, split, codec, equal_shares)
        entry = self._resolve(model, input_size)
        built = spec.build(entry.model, entry.splits() if spec.hybrid else None,
                           model_name=entry.name)
        hybrid = built if isinstance(built, HybridPlan) else None
        plan: PartitionPlan = hybrid.head if hybrid is not None else built
        if hybrid is not None:
            cloud_model = CloudModel(cloud_macs_per_s, cloud_link.mbps or LOOPBACK_MBPS,
                                     cloud_link.rtt_ms, str(self.cloud_profile.path or
                                                            self.cloud_profile.name),
                                     cloud_accel)
            predicted: PlanCost | HybridCost = estimate_hybrid_cost(hybrid, cost_model,
                                                                    cloud_model)
        else:
            predicted = estimate_cost(plan, cost_model)
        stream, predicted_stream = None, None
        if interval_ms is not None:
            samples, interval_ms = check_stream(samples, interval_ms)
            stream = {"interval_ms": interval_ms,
                      "pipelined": hybrid is None and pipelines(plan.strategy)}
            predicted_stream = (estimate_turns(predicted, samples, interval_ms, cost_model)
                                if hybrid is not None else
                                estimate_stream(plan, samples, interval_ms, cost_model))
        x, labels, label_source = self._inputs(entry, inputs, samples, seed)
        reference = np.asarray(entry.model(x, training=False), dtype=np.float32)

        if not self._started:
            await self.astart()
        await self._ensure(devices)
        cloud = await self._cloud(entry) if hybrid is not None else None
        # unthrottled while they build and trace the plan: set-up, not the device's work
        for quota in self._quotas[:devices]:
            if quota is not None:
                quota.set_cores(None)
        session = uuid.uuid4().hex
        peers = [[self._workers[i].host, self._workers[i].port] for i in range(devices)]
        configure = {"op": "configure", "session": session, "model": entry.ref,
                     "input_size": entry.input_size, "plan": spec.as_dict(),
                     "fingerprint": plan_fingerprint(built), "peers": peers,
                     "link": link.as_dict(), "cloud_link": cloud_link.as_dict(),
                     "cloud": [cloud.host, cloud.port] if cloud else None,
                     "cloud_accel": cloud_accel}
        await self._gather({i: self._controls[i].request(configure) for i in range(devices)},
                           "configuration")
        if warmup > 0:
            await self._run_once(session, devices, x[np.arange(warmup) % len(x)])
        quotas = self._set_quotas(devices, cpu_freq if self.unequal else freq)
        windows = ({i: meters(i, self._workers[i].pid) for i in range(devices)}
                   if meters is not None else {})
        for m in windows.values():
            m.begin_window()
        results, outputs = await self._run_once(session, devices, x, stream)
        measured = {i: m.end_window() for i, m in windows.items()}
        for m in windows.values():
            m.close()
        split = built.split if hybrid is not None else entry.splits().last_split
        power = [PowerModel(p) for p in self.device_profiles[:devices]]
        cloud_power = PowerModel(self.cloud_profile) if hybrid is not None else None
        run = assemble_run(
            results, outputs, plan=plan, pids=[self._workers[i].pid for i in range(devices)],
            power=power, freq=freqs, cloud_power=cloud_power, cloud_accel=cloud_accel,
            measured=measured, reference=reference, labels=labels, label_source=label_source,
            idle=idle,
            run={"model": entry.name, "strategy": spec.strategy, "n_devices": devices,
                 "split": split, "codec": spec.codec, "cpu_freq": freq, "link": link,
                 "predicted": predicted, "throttled": self.throttled},
        )
        for d in run.devices:
            d.quota_cores, d.capped = quotas.get(d.device, (None, False))
        if stream is not None:
            run.stream = measure_stream(
                results, interval_ms=interval_ms, pipelined=stream["pipelined"], power=power,
                freq=freqs, cloud_power=cloud_power, cloud_accel=cloud_accel, measured=measured)
            run.predicted_stream = predicted_stream
        return run

    async def _run_once(self, session: str, n: int, x: np.ndarray,
                        stream: dict[str, Any] | None = None
                        ) -> tuple[dict[int, dict[str, Any]], np.ndarray]:
        message = {"op": "run", "session": session, "run": next(self._runs), "samples": len(x)}
        if stream is not None:
            message["stream"] = stream

        async def device(i: int):
            reply = await self._controls[i].request(message, x if i == 0 else None)
            return reply, (await self._controls[i].tensor() if i == 0 else None)

        got = await self._gather({i: device(i) for i in range(n)}, "the run")
        return {i: r for i, (r, _) in got.items()}, got[0][1]
