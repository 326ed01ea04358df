"""The local emulated testbed: the embedded default when no hardware is at hand.

The edge worker and the cloud worker are real OS processes on this machine,
talking over real TCP sockets on loopback. The edge is slowed down to the
configured CPU frequency by a cgroup CPU quota (``emulated_cores × f / f_max``
host cores, see :mod:`toolkit.devices.cgroups`); a slower network than
loopback is emulated in user space by the edge worker (one-way delay plus
serialisation time at the link rate). Energy comes from the device profiles'
power models and is labelled ``model:<profile>``. Edge accelerators here are
``none`` (Keras fp32) and ``int8`` (the quantised head on the LiteRT
interpreter); the cloud runs on the CPU.

Example:
    >>> with LocalTestbed() as tb:
    ...     record = tb.run({"model": "digits-cnn", "split": 3, "cpu_freq": 1200,
    ...                      "edge_accel": "int8", "cloud_accel": "none"}, samples=200)
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.config import Config
from toolkit.devices.base import KnobChange
from toolkit.devices.cgroups import CpuQuota, open_cpu_quota
from toolkit.devices.profile import DeviceProfile, load_profile
from toolkit.devices.testbed import Testbed
from toolkit.energy.meter import Meter
from toolkit.errors import ToolkitError
from toolkit.runtime.session import EdgeClient, RunResult, WorkerProcess, worker_command

__all__ = ["DEFAULT_LINK", "Link", "LocalTestbed"]


@dataclass(frozen=True)
class Link:
    """The emulated edge-cloud link: rate in Mbit/s (None = loopback speed) and RTT."""

    mbps: float | None = 100.0
    rtt_ms: float = 2.0

    def as_message(self) -> dict[str, float | None]:
        """The ``link`` field of an edge run request."""
        return {"mbps": self.mbps, "rtt_ms": self.rtt_ms}


#: Wired Ethernet to a nearby cloud node: 100 Mbit/s, 2 ms round trip.
DEFAULT_LINK = Link()


class LocalTestbed(Testbed):
    """Edge and cloud workers as local processes, with cgroup CPU throttling.

    Args:
        edge_profile, cloud_profile: profile names or paths (or loaded profiles).
        model: the model the workers load first (others load on demand).
        input_size: input size for ``keras.applications`` models.
        link: the emulated edge-cloud link.
        throttle: emulate CPU frequency with a cgroup quota (when possible).
        log_dir: folder for the workers' logs (default: a new temp folder).
        edge_meter, cloud_meter: optional real meters (e.g. RAPL) instead of the model.
    """

    name = "local"
    runs_inputs = True

    def __init__(self, edge_profile: str | DeviceProfile = "raspberry-pi-4",
                 cloud_profile: str | DeviceProfile = "cloud-gpu-server", *,
                 model: str = "digits-cnn", input_size: int | None = None,
                 link: Link = DEFAULT_LINK, throttle: bool = True,
                 log_dir: str | os.PathLike | None = None,
                 edge_meter: Meter | None = None, cloud_meter: Meter | None = None) -> None:
        edge = edge_profile if isinstance(edge_profile, DeviceProfile) else load_profile(
            edge_profile)
        cloud = cloud_profile if isinstance(cloud_profile, DeviceProfile) else load_profile(
            cloud_profile)
        super().__init__(edge, cloud, edge_meter, cloud_meter)
        if not edge.frequencies_mhz:
            raise ToolkitError(f"edge profile {edge.name!r} lists no CPU frequencies")
        self.model_name = model
        self.input_size = input_size
        self.link = link
        self.throttle = throttle
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="dynasplit-"))
        self._edge: WorkerProcess | None = None
        self._cloud: WorkerProcess | None = None
        self._client: EdgeClient | None = None
        self._quota: CpuQuota | None = None
        self._freq: int | None = None

    @property
    def edge_accels(self) -> tuple[str, ...]:
        return ("none", "int8")

    @property
    def cloud_accels(self) -> tuple[str, ...]:
        return ("none",)

    @property
    def throttled(self) -> bool:
        """True when CPU frequency is emulated by a cgroup quota."""
        return self._quota is not None

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
                                  input_size=self.input_size)
        cloud_cmd = worker_command("cloud", self.model_name, threads=1,
                                   input_size=self.input_size)
        try:
            self._cloud, self._edge = await asyncio.gather(
                asyncio.to_thread(WorkerProcess, cloud_cmd, self.log_dir / "cloud.log"),
                asyncio.to_thread(WorkerProcess, edge_cmd, self.log_dir / "edge.log"),
            )
        except BaseException:
            await self.aclose()
            raise
        if self.throttle:
            self._quota = open_cpu_quota("edge")
            if self._quota is not None:
                self._quota.add(self._edge.pid)
        self._freq = None
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

    def quota_cores(self, freq: int) -> float:
        """Host cores given to the edge at ``freq``: emulated_cores × f / f_max."""
        return self.edge_profile.emulated_cores * freq / self.edge_profile.max_freq

    async def aapply(self, config: Config) -> list[KnobChange]:
        """Emulate the edge CPU frequency; accelerators need no hardware change here."""
        await self._ensure_model(config.model)
        t0 = time.perf_counter()
        changed = config.cpu_freq != self._freq
        if changed and self._quota is not None:
            self._quota.set_cores(self.quota_cores(config.cpu_freq))
        self._freq = config.cpu_freq
        return [KnobChange("local", "cpu_freq", str(config.cpu_freq),
                           (time.perf_counter() - t0) * 1e3, changed=changed,
                           verified=self._quota is not None)]

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
            cloud=self.cloud_address, link=self.link.as_message(),
        )
