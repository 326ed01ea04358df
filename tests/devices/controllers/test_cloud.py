"""Cloud controller and remote processes over real SSH: GPU on/off, logs, clean stops."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import psutil
import pytest

from toolkit.devices import CloudController, RemoteProcess, SshTransport, load_profile
from toolkit.errors import ConfigError, ToolkitError

WORKER = """
import os, signal, sys, time
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("CUDA_VISIBLE_DEVICES=" + repr(os.environ.get("CUDA_VISIBLE_DEVICES")), flush=True)
for i in range(int(sys.argv[1])):
    print("tick", i, flush=True)
    time.sleep(0.05)
sys.exit(int(sys.argv[2]))
"""


def worker(ticks: int = 1000, status: int = 0, *extra: str) -> list[str]:
    return [sys.executable, "-c", WORKER, str(ticks), str(status), *extra]


@pytest.fixture
def fake_smi(tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\n[ "$1" = -L ] || exit 9\n'
                   'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-1111-2222)"\n')
    smi.chmod(0o755)
    return str(smi)


@pytest.fixture
def cloud_host(sshd, make_host, tmp_path):
    """A cloud host on the sshd; workers a failed test left running are killed after."""
    workdir = str(tmp_path / "work")
    yield make_host(sshd, name="gpu", roles=("cloud",), profile=load_profile("cloud-gpu-server"),
                    workdir=workdir)
    for p in psutil.process_iter(["cmdline"]):
        if any(workdir in part for part in p.info["cmdline"] or []):
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)  # the worker's process group


async def test_worker_without_gpu_streams_logs_and_stops(cloud_host, tmp_path):
    cloud = CloudController(SshTransport(cloud_host), nvidia_smi=str(tmp_path / "no-smi"))
    w = await cloud.start_worker(worker(), cloud_accel="none")
    assert w.device == "cpu" and w.process.pid is not None
    assert await w.process.is_running()
    lines = []
    async for line in w.process.logs():
        lines.append(line)
        if line == "tick 3":
            break
    assert lines[0] == "CUDA_VISIBLE_DEVICES=''" and lines[1:] == [f"tick {i}" for i in range(4)]
    stopped = await cloud.stop_worker()
    assert stopped.how == "terminated" and not await w.process.is_running()
    await cloud.close()


async def test_worker_with_gpu_sees_the_profiles_gpu(cloud_host, fake_smi):
    cloud = CloudController(SshTransport(cloud_host), nvidia_smi=fake_smi)
    assert await cloud.gpus() == ["GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-1111-2222)"]
    w = await cloud.start_worker(worker(), cloud_accel="gpu")
    assert w.device.startswith("GPU 0: NVIDIA H100")
    async for line in w.process.logs():
        assert line == "CUDA_VISIBLE_DEVICES='0'"
        break
    await cloud.stop_worker()
    with pytest.raises(ConfigError, match="accelerator 'tpu-max' is not in profile"):
        await cloud.start_worker(worker(), cloud_accel="tpu-max")
    await cloud.close()


async def test_switching_cloud_accel_restarts_the_worker(cloud_host, fake_smi):
    cloud = CloudController(SshTransport(cloud_host), nvidia_smi=fake_smi)
    first = await cloud.set_cloud_accel("none", worker())
    pid = cloud.workers["cloud-worker"].process.pid
    same = await cloud.set_cloud_accel("none", worker())
    assert first.changed and first.verified and not same.changed
    switched = await cloud.set_cloud_accel("gpu", worker())
    assert switched.changed and switched.verified and switched.knob == "cloud_accel"
    new = cloud.workers["cloud-worker"].process
    assert new.pid != pid and await new.is_running()
    assert not await RemoteProcess(cloud.transport, "other").is_running()
    async for line in new.logs():
        assert line == "CUDA_VISIBLE_DEVICES='0'"
        break
    assert (await new.read_log()).startswith("CUDA_VISIBLE_DEVICES='0'\n")
    await cloud.stop_worker()
    await cloud.close()


async def test_stubborn_worker_is_killed_after_grace(cloud_host):
    t = SshTransport(cloud_host)
    proc = await RemoteProcess.start(t, "stubborn", worker(1000, 0, "--ignore-term"))
    async for line in proc.logs():  # wait until the handler is installed
        if line.startswith("tick"):
            break
    stopped = await proc.stop(grace_s=0.5)
    assert stopped.how == "killed" and stopped.duration_ms >= 500
    assert not await proc.is_running()
    await t.close()


async def test_worker_exit_status_and_log_end(cloud_host):
    t = SshTransport(cloud_host)
    proc = await RemoteProcess.start(t, "short", worker(3, 7))
    lines = [line async for line in proc.logs()]  # follows until the process ends
    assert lines[-1] == "tick 2"
    assert await proc.wait(5.0)
    assert await proc.exit_status() == 7
    stopped = await proc.stop()
    assert (stopped.how, stopped.exit_status) == ("exited", 7)
    attached = RemoteProcess(t, "short")  # a later session finds it by name
    assert await attached.read_pid() == proc.pid
    with pytest.raises(ToolkitError, match="process name 'a b' is not valid"):
        RemoteProcess(t, "a b")
    await t.close()


async def test_start_refuses_duplicate_unless_replacing(cloud_host):
    t = SshTransport(cloud_host)
    first = await RemoteProcess.start(t, "w", worker())
    with pytest.raises(ToolkitError, match="w is already running on gpu"):
        await RemoteProcess.start(t, "w", worker(), replace=False)
    second = await RemoteProcess.start(t, "w", worker())
    assert second.pid != first.pid and not await first.is_running()
    await second.stop()
    await t.close()


async def test_cloud_deploy_verifies_and_skips(cloud_host, tmp_path):
    cloud = CloudController(SshTransport(cloud_host))
    tail = tmp_path / "tail.keras"
    tail.write_bytes(b"\x00tail" * 1000)
    target = str(tmp_path / "work" / "models" / "tail.keras")
    first = await cloud.deploy({tail: target}, progress=False)
    second = await cloud.deploy({tail: target}, progress=False)
    assert first.uploaded == [target] and second.skipped == [target]
    assert first.sha256[target] == second.sha256[target]
    await cloud.close()
