"""The SSH testbed: a real edge device and cloud host, driven over SSH.

:class:`SshTestbed` implements the :class:`~toolkit.devices.testbeds.testbed.Testbed`
interface (the one :class:`~toolkit.devices.testbeds.local.LocalTestbed` implements) on an
inventory of kind ``ssh`` with one edge host (a Raspberry Pi with a Coral USB
TPU, through :class:`~toolkit.devices.controllers.pi.PiController`) and one cloud host
(through :class:`~toolkit.devices.controllers.cloud.CloudController`). Campaigns, the
optimizer and the scheduler drive it exactly like the local one.

Starting it (connect, deploy the model and any data folder, start both workers
and read their announcements), the Edge TPU heads, applying a configuration and
where the energy figures come from: ``docs/devices.md`` ("The SSH testbed")
tells each step by step.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import ipaddress
import json
import logging
import os
import posixpath
import tempfile
import time
from pathlib import Path

import numpy as np

from toolkit.config import CLOUD_ACCELS, EDGE_ACCELS, TPU_ACCELS, Config
from toolkit.devices.controllers.base import KnobChange
from toolkit.devices.controllers.cloud import CloudController
from toolkit.devices.controllers.pi import PiController
from toolkit.devices.inventory import Host, Inventory, MeterSpec, load_inventory
from toolkit.devices.testbeds.testbed import Testbed, check_model_options
from toolkit.devices.transport.connect import ReconnectPolicy
from toolkit.devices.transport.deploy import deploy
from toolkit.devices.transport.files import file_sha256
from toolkit.devices.transport.remote import RemoteProcess
from toolkit.devices.transport.ssh import SshTransport
from toolkit.energy.meter import Meter, MeterUnavailableError
from toolkit.energy.model import PowerModel
from toolkit.errors import ConfigError, DeviceError, ToolkitError, choices
from toolkit.hardware.profile import load_profile
from toolkit.runtime.link import Link
from toolkit.runtime.session import EdgeClient, RunResult

__all__ = ["SshTestbed"]

log = logging.getLogger(__name__)

_EDGE, _CLOUD = "edge-worker", "cloud-worker"
_WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
#: image files per deploy of a data folder
_DATA_BATCH = 400
#: the edge worker's folder of compiled heads, relative to its models folder (its cwd)
_EDGETPU_SUBDIR = "edgetpu"


def _one_host(inventory: Inventory, role: str) -> Host:
    hosts = inventory.with_role(role)
    if len(hosts) != 1:
        raise ConfigError(
            f"{inventory.path}: an ssh testbed needs exactly one host with role {role!r} "
            f"(found {len(hosts)}: {choices([h.name for h in hosts]) or 'none'})"
        )
    return hosts[0]


def _is_this_machine(host: Host) -> bool:
    if host.address == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.address).is_loopback
    except ValueError:
        return False


class SshTestbed(Testbed):
    """An edge host and a cloud host of an ``ssh`` inventory (see the module docstring).

    Args:
        inventory: the inventory (loaded, or a shipped name or a path).
        model: the model the workers load first (others restart them on demand).
        input_size: input size of ``keras.applications`` models.
        link: optional user-space emulation of a slower link (None: the real network).
        startup_timeout_s: how long a worker may take to announce that it listens.
        run_timeout_s: limit for one run's inference (None: no limit).
        reconnect: SSH reconnect backoff for both hosts.
        progress: show progress bars (model deploys).
        data: image folder, one subfolder per class: the evaluation samples and
            real labels, deployed to the edge host (default: the built-in data).
        edgetpu_dir: folder of precompiled ``*_edgetpu.tflite`` heads, taken
            before compiling with ``edgetpu_compiler``.

    Raises:
        ConfigError: the inventory is not of kind ``ssh``, lacks exactly one edge
            or cloud host, or lists more than one meter for a host;
            ``edgetpu_dir`` is not a folder.
        ToolkitError: ``data`` is not a folder of class subfolders with images.
    """

    runs_inputs = True

    def __init__(self, inventory: Inventory | str | os.PathLike, *,
                 model: str = "digits-cnn", input_size: int | None = None,
                 link: Link | None = None, startup_timeout_s: float = 300.0,
                 run_timeout_s: float | None = None,
                 reconnect: ReconnectPolicy | None = None, progress: bool = True,
                 data: str | os.PathLike | None = None,
                 edgetpu_dir: str | os.PathLike | None = None) -> None:
        model = check_model_options(model, input_size, data)  # before any connection
        inv = inventory if isinstance(inventory, Inventory) else load_inventory(inventory)
        if inv.kind != "ssh":
            raise ConfigError(f"{inv.path}: testbed kind is {inv.kind!r}; SshTestbed needs "
                              "kind = \"ssh\"")
        self.inventory = inv
        self.edge_host, self.cloud_host = _one_host(inv, "edge"), _one_host(inv, "cloud")
        edge_meter, edge_profile = self._meter(self.edge_host)
        cloud_meter, cloud_profile = self._meter(self.cloud_host)
        super().__init__(self.edge_host.profile, self.cloud_host.profile,  # type: ignore[arg-type]
                         edge_meter, cloud_meter)
        # a meter of kind "model" may name another profile than the host's
        self.edge_power = PowerModel(edge_profile)
        self.cloud_power = PowerModel(cloud_profile)
        self.name = inv.name
        self.model_name = model
        self.input_size = input_size
        self.link = link
        self.startup_timeout_s = startup_timeout_s
        self.run_timeout_s = run_timeout_s
        self.progress = progress
        self.pi = PiController(SshTransport(self.edge_host, reconnect))
        self.cloud = CloudController(SshTransport(self.cloud_host, reconnect))
        self._client: EdgeClient | None = None
        self._started = False
        self._cloud_addr: tuple[str, int] | None = None
        self._cloud_accel = "none"
        self._model_files: dict[str, Path] = {}
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.data = str(Path(data).expanduser().resolve()) if data else None
        self._data_files: list[str] = []
        self._data_remote: str | None = None  # the folder's name under <workdir>/data
        if self.data:
            from toolkit.models.data import image_files

            self._data_files = image_files(self.data)  # refused here, before connecting
        self.edgetpu_dir = str(Path(edgetpu_dir).expanduser().resolve()) if edgetpu_dir \
            else None
        if self.edgetpu_dir and not Path(self.edgetpu_dir).is_dir():
            raise ConfigError(f"Edge TPU artifacts folder {self.edgetpu_dir} does not exist; "
                              "give the folder that holds the *_edgetpu.tflite heads")
        self._compiled: dict[tuple[str, int], Path] = {}  # (model, split) -> local file
        self._deployed_heads: set[tuple[str, int]] = set()

    # -- devices and energy -------------------------------------------------------

    @property
    def edge_accels(self) -> tuple[str, ...]:
        """The edge profile's accelerators (``tpu-*`` only where it lists them)."""
        return tuple(a for a in EDGE_ACCELS if a in self.edge_profile.accelerators)

    @property
    def cloud_accels(self) -> tuple[str, ...]:
        """The cloud profile's accelerators (``none``, and ``gpu`` where it lists it)."""
        return tuple(a for a in CLOUD_ACCELS if a in self.cloud_profile.accelerators)

    def _meter(self, host: Host):
        """(meter or None, profile of the power model) for a host, from the inventory."""
        specs: list[MeterSpec] = self.inventory.meters_for(host.name)
        if len(specs) > 1:
            raise ConfigError(
                f"{self.inventory.path}: meters {choices([m.name for m in specs])} all measure "
                f"host {host.name!r}; an ssh testbed uses one meter per host"
            )
        profile = host.profile
        if not specs:
            return None, profile
        spec = specs[0]
        if spec.kind == "model":  # the testbed's own per-sample model, labelled as such
            named = spec.options.get("profile")
            return None, profile if named in (None, profile.name) else load_profile(named)
        reader = self.inventory.host(spec.host) if spec.host else None
        if reader is not None and not _is_this_machine(reader):
            log.warning("meter %s is read on host %s (%s), which is not this machine; energy "
                        "of %s comes from the power model (model:%s)", spec.name, reader.name,
                        reader.address, host.name, profile.name)
            return None, profile
        from toolkit.energy import open_meter

        try:
            meter: Meter = open_meter(spec.open_spec())
        except MeterUnavailableError as exc:
            log.warning("%s; energy of %s comes from the power model (model:%s)", exc,
                        host.name, profile.name)
            return None, profile
        return meter, profile

    @property
    def cloud_address(self) -> tuple[str, int] | None:
        """(address, port) of the cloud worker, once started."""
        return self._cloud_addr

    # -- models -------------------------------------------------------------------

    async def model_file(self, model: str) -> Path:
        """The local ``.keras`` file the workers of ``model`` load (deployed to the hosts)."""
        if model not in self._model_files:
            from toolkit.models.digits import DIGITS_MODEL_PATH

            if model == "digits-cnn":
                path = DIGITS_MODEL_PATH
            elif Path(model).suffix == ".keras":
                path = Path(model).expanduser()
            else:  # keras.applications: ship this controller's weights, not a new draw
                sm = await self.split_model_for(model)
                if self._tmp is None:
                    self._tmp = tempfile.TemporaryDirectory(prefix="dynasplit-models-")
                size = self.input_size or "default"
                path = Path(self._tmp.name) / f"{model}-{size}.keras"
                await asyncio.to_thread(sm.model.save, path)
            if not path.is_file():
                raise ToolkitError(f"model file {path} for {model!r} does not exist")
            self._model_files[model] = path
        return self._model_files[model]

    @staticmethod
    def _models_dir(host: Host) -> str:
        return posixpath.join(host.workdir, "models")

    def _worker_argv(self, role: str, host: Host, file_name: str, threads: int) -> list[str]:
        # run from the models folder with a bare file name (no '/' in cache keys);
        # --name keeps the model's own name (its preprocessing, its Edge TPU heads)
        argv = [host.python, "-m", f"toolkit.runtime.{role}", "--model", file_name,
                "--name", self.model_name, "--host", host.address,
                "--port", str(host.worker_port), "--threads", str(max(1, threads))]
        if role == "edge":
            argv += ["--edgetpu-dir", _EDGETPU_SUBDIR]
            if self._data_remote:
                argv += ["--data", posixpath.join("..", "data", self._data_remote)]
        return argv

    # -- real data ----------------------------------------------------------------

    async def _deploy_data(self) -> None:
        """Copy the image folder to ``<workdir>/data/<name>-<digest>/`` on the edge host."""
        if not self.data:
            return
        root = Path(self.data)
        if self._data_remote is None:
            def digest() -> str:
                h = hashlib.sha256()
                for rel in self._data_files:
                    h.update(f"{rel}\0{file_sha256(root / rel)}\n".encode())
                return h.hexdigest()[:12]

            self._data_remote = f"{root.name}-{await asyncio.to_thread(digest)}"
        target = posixpath.join(self.edge_host.workdir, "data", self._data_remote)
        # in batches: one deploy asks for all its checksums in one command line,
        # which sshd hands to the shell as one argument (at most 128 KiB on Linux)
        for start in range(0, len(self._data_files), _DATA_BATCH):
            batch = self._data_files[start:start + _DATA_BATCH]
            await deploy(self.pi.transport,
                         {root / rel: posixpath.join(target, rel) for rel in batch},
                         progress=self.progress)

    # -- Edge TPU heads -----------------------------------------------------------

    async def _prepare(self, config: Config) -> None:
        """Compile (or find) and deploy the Edge TPU head a ``tpu-*`` run needs."""
        if config.edge_accel in TPU_ACCELS:
            await self.edgetpu_head(config.model, config.split)

    async def edgetpu_head(self, model: str, split: int) -> Path | None:
        """The compiled head of ``split``, deployed to the edge host's worker.

        Taken from ``edgetpu_dir`` where it is there, else compiled from the int8
        head with ``edgetpu_compiler``; copied to ``<workdir>/models/edgetpu/``
        (checked by sha256). None at split 0 (no head).

        Raises:
            ToolkitError: neither the artifact nor the compiler is there, or the
                compiler failed (one line).
        """
        from toolkit.models.edgetpu import compile_head, compiled_name, head_source, head_stem

        sm = await self.split_model_for(model)
        if sm.head(split) is None:
            return None
        key = (model, split)
        stem = head_stem(model, split, sm.model.inputs[0].shape[1])
        path = self._compiled.get(key)
        if path is None:
            path = head_source(stem, self.edgetpu_dir)  # refuses before any work
            if path is None:
                flat = await self._int8_head(model, split)
                if self._tmp is None:
                    self._tmp = tempfile.TemporaryDirectory(prefix="dynasplit-models-")
                path = await asyncio.to_thread(compile_head, flat, stem,
                                               Path(self._tmp.name) / "edgetpu",
                                               artifacts=self.edgetpu_dir)
            self._compiled[key] = path
        if key not in self._deployed_heads:
            remote = posixpath.join(self._models_dir(self.edge_host), _EDGETPU_SUBDIR,
                                    compiled_name(stem))
            await deploy(self.pi.transport, {path: remote}, progress=self.progress)
            self._deployed_heads.add(key)
        return path

    async def _int8_head(self, model: str, split: int) -> bytes:
        """The head's int8 flatbuffer, calibrated on the edge worker's inputs."""
        from toolkit.models.data import eval_inputs, folder_data
        from toolkit.models.quantize import quantize_int8

        sm = await self.split_model_for(model)

        def build() -> bytes:
            if self.data:
                x_calib = folder_data(self.data, sm.model, model).x_calib
            else:
                x_calib = eval_inputs(sm.model)[0]
            return quantize_int8(sm.head(split), x_calib)

        return await asyncio.to_thread(build)

    # -- lifecycle ----------------------------------------------------------------

    async def astart(self) -> None:
        """Connect, deploy the model, start both workers and wait until they listen."""
        if self._client is not None:
            return
        self._started = True
        try:
            await asyncio.gather(self.pi.transport.connect(), self.cloud.transport.connect())
            local = await self.model_file(self.model_name)
            self._deployed_heads.clear()  # checked again (by sha256) in this session
            await asyncio.gather(*(
                deploy(t, {local: posixpath.join(self._models_dir(t.host), local.name)},
                       progress=self.progress)
                for t in (self.pi.transport, self.cloud.transport)), self._deploy_data())
            edge_argv = self._worker_argv("edge", self.edge_host, local.name,
                                          self.edge_profile.cores)
            edge_proc, _ = await asyncio.gather(
                self.pi.start_worker(edge_argv, name=_EDGE, env=_WORKER_ENV,
                                     cwd=self._models_dir(self.edge_host)),
                self._start_cloud(self._cloud_accel))
            edge_port, _ = await asyncio.gather(
                self._await_listening(edge_proc, "edge"), self._cloud_listening())
            self._client = await EdgeClient.connect(self.edge_host.address, edge_port)
        except BaseException:
            await self.aclose()
            raise

    def _cloud_argv(self) -> list[str]:
        name = self._model_files[self.model_name].name
        return self._worker_argv("cloud", self.cloud_host, name, self.cloud_profile.cores)

    async def _start_cloud(self, accel: str) -> KnobChange:
        change = await self.cloud.set_cloud_accel(
            accel, self._cloud_argv(), name=_CLOUD, env=_WORKER_ENV,
            cwd=self._models_dir(self.cloud_host))
        self._cloud_accel = accel
        return change

    async def _cloud_listening(self) -> None:
        port = await self._await_listening(self.cloud.workers[_CLOUD].process, "cloud")
        self._cloud_addr = (self.cloud_host.address, port)

    async def _await_listening(self, process: RemoteProcess, role: str) -> int:
        """The port from the worker's announcement in its remote log."""
        host = process.transport.name

        async def scan() -> int:
            async with contextlib.aclosing(process.logs(follow=True)) as lines:
                async for line in lines:
                    if not line.startswith("{"):
                        continue
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if event.get("event") == "listening":
                        return int(event["port"])
                    if event.get("event") == "error":
                        raise DeviceError(f"the {role} worker on {host} failed to start: "
                                           f"{event.get('message')}")
            tail = (await process.read_log()).strip()[-800:]
            raise DeviceError(f"the {role} worker on {host} exited before listening; "
                               f"{process.log_file} on {host} ends with: {tail}")

        try:
            return await asyncio.wait_for(scan(), self.startup_timeout_s)
        except asyncio.TimeoutError:
            raise DeviceError(
                f"the {role} worker on {host} did not listen within "
                f"{self.startup_timeout_s:g} s; see {process.log_file} on {host}"
            ) from None

    async def aclose(self) -> None:
        """Stop both workers (SIGTERM, then SIGKILL) and close the connections.

        Best effort and idempotent: a host that cannot be reached is logged, the
        other host is still handled, and the connections are closed anyway.
        """
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        self._cloud_addr = None
        if not self._started:
            return
        self._started = False
        stops = await asyncio.gather(
            RemoteProcess(self.pi.transport, _EDGE).stop(),
            self.cloud.stop_worker(_CLOUD), return_exceptions=True)
        for name, result in zip((_EDGE, _CLOUD), stops, strict=True):
            if isinstance(result, Exception):
                log.warning("could not stop %s: %s", name, result)
        await asyncio.gather(self.pi.close(), self.cloud.close(), return_exceptions=True)

    async def _ensure_model(self, model: str) -> None:
        if model != self.model_name or self._client is None:
            await self.aclose()
            self.model_name = model
            await self.astart()

    # -- configurations and runs --------------------------------------------------

    async def aapply(self, config: Config) -> list[KnobChange]:
        """Edge knobs (one remote command) and the cloud accelerator, at the same time."""
        await self._ensure_model(config.model)
        edge, cloud = await asyncio.gather(self.pi.apply(config),
                                           self._set_cloud_accel(config.cloud_accel))
        return [*edge, cloud]

    async def _set_cloud_accel(self, accel: str) -> KnobChange:
        """Restart the cloud worker with or without the GPU when the accelerator changes
        (or when it is no longer running); the change lasts until it listens again."""
        start = time.perf_counter()
        change = await self._start_cloud(accel)
        if change.changed:
            await self._cloud_listening()
            change = dataclasses.replace(change,
                                         duration_ms=(time.perf_counter() - start) * 1000.0)
        return change

    async def _execute(self, config: Config, *, samples: int, codec: str, warmup: int,
                       offset: int, inputs: np.ndarray | None = None,
                       top_k: int = 0) -> RunResult:
        if self._client is None:
            raise ToolkitError(f"the ssh testbed {self.name!r} is not started; call start()")
        await self._client.prepare(config.split, config.edge_accel)
        return await self._client.run(
            config.split, edge_accel=config.edge_accel, cloud_accel=config.cloud_accel,
            codec=codec, samples=samples, warmup=warmup, offset=offset, inputs=inputs,
            top_k=top_k,
            cloud=self._cloud_addr, link=self.link.as_dict() if self.link else None,
            timeout=self.run_timeout_s,
        )
