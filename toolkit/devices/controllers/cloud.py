"""Cloud host controller, over SSH: the cloud worker with or without the GPU.

The cloud worker is any command (an argv list; the runtime's
``python -m toolkit.runtime.cloud ...``) started as a
:class:`~toolkit.devices.transport.remote.RemoteProcess`. With ``cloud_accel="gpu"`` it sees
the profile's GPU (``CUDA_VISIBLE_DEVICES=<index>``, index from the profile's
``[gpu] index``, default 0); with ``"none"`` it sees no GPU at all
(``CUDA_VISIBLE_DEVICES=`` empty). Switching the cloud accelerator restarts the
worker, timed into a :class:`~toolkit.devices.controllers.base.KnobChange`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from toolkit.config import ACCELERATORS
from toolkit.devices.controllers.base import HostController, KnobChange
from toolkit.devices.transport.remote import RemoteProcess, StopResult
from toolkit.devices.transport.ssh import SshTransport
from toolkit.hardware.profile import DeviceProfile

__all__ = ["CloudController", "RemoteCloudWorker"]


@dataclass(frozen=True)
class RemoteCloudWorker:
    """A running cloud worker.

    Attributes:
        process: its remote process.
        cloud_accel: ``none`` or ``gpu``.
        device: what it runs on: ``cpu`` or the ``nvidia-smi -L`` line of its GPU.
        argv: the command it runs.
    """

    process: RemoteProcess
    cloud_accel: str
    device: str
    argv: tuple[str, ...]


class CloudController(HostController):
    """Starts, watches and stops the cloud worker on a (GPU) host.

    Args:
        transport: the cloud host's SSH transport.
        profile: its device profile (default: the host's profile).
        nvidia_smi: the nvidia-smi program on the host.
    """

    role = "cloud"

    def __init__(self, transport: SshTransport, profile: DeviceProfile | None = None,
                 nvidia_smi: str = "nvidia-smi") -> None:
        super().__init__(transport, profile)
        self.nvidia_smi = nvidia_smi
        gpu = self.profile.settings.get("gpu", {})
        self.gpu_index = str(gpu.get("index", 0)) if isinstance(gpu, dict) else "0"
        self.workers: dict[str, RemoteCloudWorker] = {}

    async def gpus(self) -> list[str]:
        """The host's GPUs as ``nvidia-smi -L`` lists them (empty without nvidia-smi)."""
        res = await self.transport.run([self.nvidia_smi, "-L"], check=False, timeout=30)
        if not res.ok:
            return []
        return [line.strip() for line in res.stdout.splitlines() if line.startswith("GPU ")]

    async def device_for(self, cloud_accel: str) -> str:
        """What a worker with ``cloud_accel`` runs on: ``cpu`` or its GPU's line."""
        self.profile.check_accel(cloud_accel)
        if not _on_gpu(cloud_accel):
            return "cpu"
        for line in await self.gpus():
            if line.split(":")[0] == f"GPU {self.gpu_index}":
                return line
        return "cpu"

    def worker_env(self, cloud_accel: str) -> dict[str, str]:
        """The environment that gives a worker the GPU (``gpu``) or none (``none``)."""
        self.profile.check_accel(cloud_accel)
        return {"CUDA_VISIBLE_DEVICES": self.gpu_index if _on_gpu(cloud_accel) else ""}

    async def start_worker(
        self,
        argv: Sequence[str],
        *,
        cloud_accel: str = "none",
        name: str = "cloud-worker",
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> RemoteCloudWorker:
        """Start ``argv`` in the background with or without the GPU (replacing ``name``).

        Args:
            argv: the worker command.
            cloud_accel: ``gpu`` or ``none``.
            name: the process name on the host.
            env: further environment variables.
            cwd: remote working folder.
        """
        full_env = {**(env or {}), **self.worker_env(cloud_accel)}
        device = await self.device_for(cloud_accel)
        process = await RemoteProcess.start(self.transport, name, argv, env=full_env, cwd=cwd)
        worker = RemoteCloudWorker(process, cloud_accel, device, tuple(str(a) for a in argv))
        self.workers[name] = worker
        return worker

    async def stop_worker(self, name: str = "cloud-worker", grace_s: float = 5.0) -> StopResult:
        """Stop a worker: SIGTERM, then SIGKILL after ``grace_s``."""
        self.workers.pop(name, None)
        return await RemoteProcess(self.transport, name).stop(grace_s)

    async def set_cloud_accel(
        self, cloud_accel: str, argv: Sequence[str], *, name: str = "cloud-worker",
        env: Mapping[str, str] | None = None, cwd: str | None = None,
    ) -> KnobChange:
        """Make the worker ``name`` run with ``cloud_accel``, restarting it if needed."""
        self.profile.check_accel(cloud_accel)
        start = time.perf_counter()
        current = self.workers.get(name)
        if (current is not None and current.cloud_accel == cloud_accel
                and current.argv == tuple(argv) and await current.process.is_running()):
            return KnobChange(self.name, "cloud_accel", cloud_accel,
                              (time.perf_counter() - start) * 1000.0, changed=False)
        worker = await self.start_worker(argv, cloud_accel=cloud_accel, name=name, env=env,
                                         cwd=cwd)
        running = await worker.process.is_running()
        return KnobChange(self.name, "cloud_accel", cloud_accel,
                          (time.perf_counter() - start) * 1000.0, changed=True,
                          verified=running and _on_gpu(cloud_accel) == (worker.device != "cpu"))

    async def close(self) -> None:
        """Close the SSH connection (workers keep running on the host)."""
        await self.transport.close()


def _on_gpu(cloud_accel: str) -> bool:
    """Whether a tail with ``cloud_accel`` runs on the GPU (:data:`toolkit.config.ACCELERATORS`)."""
    return ACCELERATORS["cloud"][cloud_accel].device == "gpu"
