"""The local emulated testbed: the embedded default when no hardware is at hand.

The edge worker and the cloud worker are real OS processes on this machine,
talking over real TCP sockets on loopback. Every head runs for real on the
host (outputs and accuracy are real); the edge's *time* is made the device's:

* ``edge_timing="pad"`` (the default where the edge profile has ``[timing]``
  tables): the edge worker pads each head's time to the device's, from the
  profile's timing model fitted to DynaSplit's Raspberry Pi measurements
  (:mod:`toolkit.hardware.edge_timing`); fp32 heads take the int8 time × the
  device's fp32/int8 ratio, the profile's ``timing.fp32_per_int8``
  (:mod:`toolkit.devices.testbeds.calibration`).
* ``edge_timing="quota"``: a cgroup CPU quota of ``device / host throughput``
  host cores per frequency (calibrated; see :mod:`toolkit.devices.testbeds.cgroups` for
  its limits); without ``[timing]`` tables, ``emulated_cores × f / f_max``.

Edge accelerators: ``none`` (Keras fp32), ``int8`` (the quantised head on the
LiteRT interpreter) and, where the profile times them, ``tpu-std``/``tpu-max``:
the int8 head runs on the CPU (real outputs) and its reported time is always
the TPU model's, also where the host took longer. The link
is emulated in user space by the edge worker (one-way delay plus serialisation
time at the link rate), by default the profile's ``[link]`` (DynaSplit's
fitted link). Energy comes from the device profiles' power models and is
labelled ``model:<profile>``; modelled timing is labelled in ``latency_source``.

Hardware changes (CPU frequency, the TPU's power and runtime mode) take no
time here by default (``switching="instant"``): a campaign measures each
configuration in steady state. With
``switching="profile"`` (what ``dynasplit schedule --testbed local`` uses), each
change waits the edge profile's ``[reconfiguration]`` time (the steps of
:mod:`toolkit.switching`, one after another) and reports it in the run's
``knob_changes``, so that an online phase on the emulated testbed
pays for switching as one on the real testbed does.

The cloud's tail runs for real on the host's CPU (real outputs). Its *time*
is, by default where the cloud profile has ``[tail_timing]`` tables
(``cloud_timing="model"``), the modelled time of that tail on DynaSplit's
server (:mod:`toolkit.hardware.cloud_timing`, fitted to their measured cloud
latencies), not the host's: a 2-core host that also plays the edge is neither
as fast nor as steady as a cloud node. ``cloud_timing="host"`` reports the
host's own tail time instead.

Example:
    >>> with LocalTestbed() as tb:
    ...     record = tb.run({"model": "digits-cnn", "split": 3, "cpu_freq": 1200,
    ...                      "edge_accel": "int8", "cloud_accel": "none"}, samples=200)
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from toolkit.config import TPU_ACCELS, Config
from toolkit.devices.controllers.base import KnobChange
from toolkit.devices.testbeds.calibration import quota_cores
from toolkit.devices.testbeds.cgroups import CpuQuota, open_cpu_quota
from toolkit.devices.testbeds.testbed import Testbed, check_model_options
from toolkit.energy.meter import Meter
from toolkit.errors import ConfigError, ToolkitError, choices
from toolkit.hardware.cloud_timing import tail_cost
from toolkit.hardware.edge_timing import head_cost
from toolkit.hardware.profile import DeviceProfile, load_profile
from toolkit.runtime.link import Link
from toolkit.runtime.session import EdgeClient, RunResult, WorkerProcess, worker_command
from toolkit.switching import (
    HardwareState,
    SwitchStep,
    hardware_state,
    next_state,
    switch_steps,
)

__all__ = ["CLOUD_TIMINGS", "EDGE_TIMINGS", "SWITCHINGS", "LocalTestbed"]

#: how the local testbed makes the edge as slow as the device
EDGE_TIMINGS: tuple[str, ...] = ("pad", "quota")
#: what the local testbed reports as the cloud's time: the profile's model or the host's
CLOUD_TIMINGS: tuple[str, ...] = ("model", "host")
#: how long the local testbed's hardware changes take: no time, or the profiles' time
SWITCHINGS: tuple[str, ...] = ("instant", "profile")


#: numbers local testbeds of this process, so their cgroups never collide
_INSTANCES = itertools.count(1)


def _timing(side: str, choice: str | None, valid: tuple[str, str], profile: DeviceProfile,
            modelled: bool, table: str) -> str:
    """The edge or cloud timing: ``choice``, else the profile's model (``valid[0]``)
    where the profile has its ``table``, else ``valid[1]``; the model needs the table."""
    model, other = valid
    if choice is None:
        choice = model if modelled else other
    if choice not in valid:
        raise ConfigError(f"unknown {side} timing {choice!r}; valid: {choices(valid)}")
    if choice == model and not modelled:
        raise ConfigError(f"{side} timing {model!r} needs a {table} table in profile "
                          f"{profile.name!r}; use {side}_timing={other!r}")
    return choice


class LocalTestbed(Testbed):
    """Edge and cloud workers as local processes, with cgroup CPU throttling.

    Args:
        edge_profile, cloud_profile: profile names or paths (or loaded profiles).
        model: the model the workers load first (others load on demand).
        input_size: input size for ``keras.applications`` models.
        data: image folder, one subfolder per class: the evaluation samples and
            real labels (default: the built-in data).
        link: the emulated edge-cloud link (default: the edge profile's ``[link]``).
        edge_timing: ``pad`` or ``quota`` (see the module doc; default ``pad``
            where the edge profile has ``[timing]`` tables, else ``quota``).
        throttle: emulate CPU frequency with a cgroup quota (when possible) in
            ``quota`` timing.
        cloud_timing: ``model`` (the cloud profile's ``[tail_timing]``; the default
            where it has one) or ``host`` (the host's own tail time).
        log_dir: folder for the workers' logs (default: a new temp folder).
        edge_meter, cloud_meter: optional real meters (e.g. RAPL) instead of the model.
        name: the testbed's name in results (distinct names for the testbeds of a
            pool, e.g. ``local-1``, ``local-2``).
        switching: ``instant`` (default: hardware changes take no time) or
            ``profile`` (each change waits the profile's ``[reconfiguration]``
            time; see the module doc).

    Several local testbeds may live in one process: each has its own worker
    processes (ports chosen by the OS), its own cgroup and its own log folder.
    """

    name = "local"
    runs_inputs = True

    def __init__(self, edge_profile: str | DeviceProfile = "raspberry-pi-4",
                 cloud_profile: str | DeviceProfile = "cloud-gpu-server", *,
                 model: str = "digits-cnn", input_size: int | None = None,
                 data: str | os.PathLike | None = None,
                 link: Link | None = None, edge_timing: str | None = None,
                 throttle: bool = True, cloud_timing: str | None = None,
                 log_dir: str | os.PathLike | None = None,
                 edge_meter: Meter | None = None, cloud_meter: Meter | None = None,
                 name: str = "local", switching: str = "instant") -> None:
        if switching not in SWITCHINGS:
            raise ConfigError(f"unknown switching {switching!r}; valid: {choices(SWITCHINGS)}")
        self.name = name
        self.switching = switching
        self._hardware: HardwareState | None = None
        edge = edge_profile if isinstance(edge_profile, DeviceProfile) else load_profile(
            edge_profile)
        cloud = cloud_profile if isinstance(cloud_profile, DeviceProfile) else load_profile(
            cloud_profile)
        super().__init__(edge, cloud, edge_meter, cloud_meter)
        if not edge.frequencies_mhz:
            raise ToolkitError(f"edge profile {edge.name!r} lists no CPU frequencies")
        self.model_name = check_model_options(model, input_size, data)
        self.input_size = input_size
        self.data = str(Path(data).resolve()) if data else None
        self.link = link if link is not None else Link.of_profile(edge)
        self.edge_timing = _timing("edge", edge_timing, EDGE_TIMINGS, edge,
                                   edge.timing is not None and edge.timing.has("int8"),
                                   "[timing.int8]")
        self.cloud_timing = _timing("cloud", cloud_timing, CLOUD_TIMINGS, cloud,
                                    cloud.tail_timing is not None, "[tail_timing]")
        self._tail_costs: dict[tuple[str, int], object] = {}
        self.throttle = throttle
        self._calibration = None
        self._costs: dict[tuple[str, int], object] = {}
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="dynasplit-"))
        self._edge: WorkerProcess | None = None
        self._cloud: WorkerProcess | None = None
        self._client: EdgeClient | None = None
        self._quota: CpuQuota | None = None
        self._freq: tuple[int, str] | None = None
        self._cgroup = f"{name}-edge-{next(_INSTANCES)}"

    @property
    def edge_accels(self) -> tuple[str, ...]:
        timing = self.edge_profile.timing
        tpus = tuple(a for a in TPU_ACCELS if timing is not None and timing.has(a))
        return ("none", "int8", *tpus)

    @property
    def latency_source(self) -> str | None:
        """How times are made: the edge's and the cloud's timing models, or None."""
        name = self.edge_profile.name
        cloud = ""
        if self.cloud_timing == "model":
            cloud = (f"+model:{self.cloud_profile.name} (cloud: tails run on the host, their "
                     "time is the profile's [tail_timing] fit to DynaSplit's server)")
        if self.edge_timing == "pad":
            return (f"model:{name} (edge: heads run on the host, padded to the profile's "
                    f"[timing]: {self.edge_profile.timing.source}; link emulated){cloud}")
        if any(a in TPU_ACCELS for a in self.edge_accels):
            return (f"model:{name} (Edge TPU timing only; CPU edge throttled by a cgroup "
                    f"quota){cloud}")
        return cloud[1:] or None

    def calibration(self):
        """The host calibration against the edge profile (measured once per machine)."""
        if self._calibration is None:
            from toolkit.devices.testbeds.calibration import host_calibration, report

            self._calibration = report(self.edge_profile, host_calibration())
        return self._calibration

    @property
    def cloud_accels(self) -> tuple[str, ...]:
        return ("none",)

    @property
    def throttled(self) -> bool:
        """True when CPU frequency takes effect (padded timing, or a cgroup quota)."""
        return self.edge_timing == "pad" or self._quota is not None

    @property
    def cloud_threads(self) -> int:
        """Compute threads of the cloud worker: the cloud profile's cores, at most the host's."""
        return max(1, min(self.cloud_profile.cores, os.cpu_count() or 1))

    @property
    def edge_pid(self) -> int | None:
        """PID of the edge worker process (None before start)."""
        return self._edge.pid if self._edge else None

    @property
    def cloud_address(self) -> tuple[str, int] | None:
        """(host, port) of the cloud worker."""
        return (self._cloud.host, self._cloud.port) if self._cloud else None

    async def astart(self) -> None:
        """Start both workers for the current model and throttle the edge."""
        if self._edge is not None:
            return
        threads = self.edge_profile.emulated_cores
        edge_cmd = worker_command("edge", self.model_name, threads=threads,
                                  input_size=self.input_size, data=self.data,
                                  emulate_tpu=len(self.edge_accels) > 2)
        cloud_cmd = worker_command("cloud", self.model_name, threads=self.cloud_threads,
                                   input_size=self.input_size)
        try:
            self._cloud, self._edge = await asyncio.gather(
                asyncio.to_thread(WorkerProcess, cloud_cmd, self.log_dir / "cloud.log"),
                asyncio.to_thread(WorkerProcess, edge_cmd, self.log_dir / "edge.log"),
            )
        except BaseException:
            await self.aclose()
            raise
        if self.throttle and self.edge_timing == "quota":
            self._quota = open_cpu_quota(self._cgroup)
            if self._quota is not None:
                self._quota.add(self._edge.pid)
        self._freq = self._hardware = None     # a fresh start: the first apply sets both
        self._client = await EdgeClient.connect(self._edge.host, self._edge.port)

    async def aclose(self) -> None:
        """Stop the workers and remove the cgroup."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        for worker in (self._edge, self._cloud):
            if worker is not None:
                worker.stop()  # not in a thread: close() must also work at interpreter exit
        self._edge = self._cloud = None
        if self._quota is not None:
            self._quota.close()
            self._quota = None

    async def _ensure_model(self, model: str) -> None:
        if model != self.model_name or self._edge is None:
            await self.aclose()
            self.model_name = model
            await self.astart()

    def quota_cores(self, freq: int, accel: str = "int8") -> float | None:
        """Host cores given to the edge at ``freq`` in ``quota`` timing.

        Calibrated (device / host throughput for ``accel``'s ops) where the profile
        has a timing model, otherwise ``emulated_cores × f / f_max``; None
        (unlimited) for an emulated Edge TPU, whose time is always padded.
        """
        if accel in TPU_ACCELS:
            return None
        timing = self.edge_profile.timing
        host = self.calibration().host if timing is not None and timing.has("int8") else None
        return quota_cores(self.edge_profile, freq, accel, host)

    async def edge_target_ms(self, config: Config) -> float | None:
        """The device's time for the configuration's head (None: not padded)."""
        timing = self.edge_profile.timing
        padded = self.edge_timing == "pad" or config.edge_accel in TPU_ACCELS
        if timing is None or not padded or config.split == 0:
            return None
        key = (config.model, config.split)
        if key not in self._costs:
            self._costs[key] = head_cost(await self.split_model_for(config.model), config.split)
        cost = self._costs[key]
        if config.edge_accel == "none":
            fp32 = self.calibration().fp32_per_int8
            return timing.time_ms(cost, config.cpu_freq, "int8") * fp32
        return timing.time_ms(cost, config.cpu_freq, config.edge_accel)

    async def cloud_target_ms(self, config: Config) -> float | None:
        """The modelled cloud's time for the configuration's tail (None: the host's)."""
        timing = self.cloud_profile.tail_timing
        if self.cloud_timing != "model" or timing is None:
            return None
        key = (config.model, config.split)
        if key not in self._tail_costs:
            self._tail_costs[key] = tail_cost(await self.split_model_for(config.model),
                                              config.split)
        cost = self._tail_costs[key]
        return None if cost is None else timing.time_ms(cost, config.cloud_accel)

    async def aapply(self, config: Config) -> list[KnobChange]:
        """Emulate the edge CPU frequency (the quota); with ``switching="profile"`` also
        wait each hardware change's time from the profiles."""
        await self._ensure_model(config.model)
        t0 = time.perf_counter()
        state = (config.cpu_freq, config.edge_accel)
        changed = config.cpu_freq != (self._freq[0] if self._freq else None)
        if state != self._freq and self._quota is not None:
            self._quota.set_cores(self.quota_cores(config.cpu_freq, config.edge_accel))
        self._freq = state
        quota = KnobChange("local", "cpu_freq", str(config.cpu_freq),
                           (time.perf_counter() - t0) * 1e3, changed=changed,
                           verified=self._quota is not None)
        last_split = (await self.split_model_for(config.model)).n_splits - 1
        needed = hardware_state(config.as_dict(), last_split)
        before, self._hardware = self._hardware, next_state(self._hardware, needed)
        if self.switching == "instant":   # the state is kept anyway: switching may change
            return [quota]
        return await self._switch(switch_steps(self.edge_profile.reconfiguration, before,
                                               needed), quota)

    async def _switch(self, steps: list[SwitchStep], quota: KnobChange) -> list[KnobChange]:
        """Wait the switch ``steps`` one after another (edge steps: this testbed's cloud
        has no accelerator to switch); the frequency's time joins the quota's change."""
        changes = []
        for step in steps:
            t0 = time.perf_counter()
            await asyncio.sleep(step.ms / 1e3)
            changes.append(KnobChange("local", step.knob, step.value,
                                      (time.perf_counter() - t0) * 1e3))
        waited = sum(c.duration_ms for c in changes if c.knob == "cpu_freq")
        quota = dataclasses.replace(quota, duration_ms=quota.duration_ms + waited)
        return [quota, *(c for c in changes if c.knob != "cpu_freq")]

    async def _execute(self, config: Config, *, samples: int, codec: str, warmup: int,
                       offset: int, inputs: np.ndarray | None = None,
                       top_k: int = 0) -> RunResult:
        if self._client is None:
            raise ToolkitError("the local testbed is not started; call start() first")
        await self._client.prepare(config.split, config.edge_accel)
        return await self._client.run(
            config.split, edge_accel=config.edge_accel, cloud_accel=config.cloud_accel,
            codec=codec, samples=samples, warmup=warmup, offset=offset, inputs=inputs,
            top_k=top_k,
            cloud=self.cloud_address, link=self.link.as_dict(),
            edge_target_ms=await self.edge_target_ms(config),
            edge_time_modelled=config.edge_accel in TPU_ACCELS,
            cloud_target_ms=await self.cloud_target_ms(config),
        )
