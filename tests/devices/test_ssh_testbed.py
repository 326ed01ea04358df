"""The SSH testbed end to end: real sshd servers, workers started over SSH, a fake Pi.

Two OpenSSH servers on loopback play the edge and the cloud host. The edge
profile points the Pi controller at a fake cpufreq tree and fake uhubctl,
dpkg-query, apt-get and sudo (``tests/fake_pi.py``); the workers are this
checkout's real edge and cloud workers, started over SSH with this venv's Python.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest
from fake_pi import FakePi, make_fake_pi  # tests/ is on sys.path (conftest)
from sshd_fixture import SshServer, free_port, sshd_available

from toolkit.campaign import Campaign, CampaignSpec
from toolkit.cli import main as cli_main
from toolkit.config import Config
from toolkit.cube import open_cube
from toolkit.devices import ReconnectPolicy, SshTestbed, load_inventory, open_testbed
from toolkit.errors import ConfigError, ToolkitError


def end_to_end(test):
    """Starts real workers over SSH: slow, and a hang fails the test, not the whole run."""
    return pytest.mark.slow(pytest.mark.timeout(240)(test))


FAST = ReconnectPolicy(initial_s=0.05, factor=2.0, max_delay_s=0.4, give_up_s=8.0)

# the fake Pi's profile lists all four accelerators; the power model needs their figures
ACCEL_POWER = """
[power.accelerators]
none = { extra_w = 0.0 }
int8 = { extra_w = 0.0 }
tpu-std = { extra_w = 1.7 }
tpu-max = { extra_w = 1.9 }
"""

# uhubctl that hangs exactly once (the first call after `hang-once` appears)
HANG_ONCE = """#!/bin/sh
if [ -e {state}/hang-once ] && rm {state}/hang-once 2>/dev/null; then exec sleep 3600; fi
exec {real} "$@"
"""


def host_table(name: str, role: str, server: SshServer, profile: str, workdir: Path,
               **extra: object) -> str:
    lines = [
        "[[hosts]]", f'name = "{name}"', 'address = "127.0.0.1"', f"port = {server.port}",
        f'user = "{server.user}"', f'identity_file = "{server.client_key}"',
        f'known_hosts = "{server.known_hosts}"', f'roles = ["{role}"]',
        f'profile = "{profile}"', f'workdir = "{workdir}"', f'python = "{sys.executable}"',
        "connect_timeout_s = 5",
    ]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def write_inventory(path: Path, edge: SshServer, cloud: SshServer, fake: FakePi,
                    workdir: Path, meters: str = "", name: str = "loopback-pi") -> Path:
    path.write_text(
        f'[testbed]\nname = "{name}"\nkind = "ssh"\n\n'
        + host_table("pi", "edge", edge, str(fake.profile_path), workdir / "pi",
                     command_timeout_s=3)
        + host_table("gpu", "cloud", cloud, "cloud-gpu-server", workdir / "gpu",
                     worker_port=free_port())
        + meters
    )
    return path


def fake_pi_for_testbed(root: Path) -> FakePi:
    fake = make_fake_pi(root, use_sudo=True)
    with fake.profile_path.open("a") as f:
        f.write(ACCEL_POWER)
    real = root / "bin" / "uhubctl.real"
    (root / "bin" / "uhubctl").rename(real)
    wrapper = root / "bin" / "uhubctl"
    wrapper.write_text(HANG_ONCE.format(state=fake.state, real=real))
    wrapper.chmod(0o755)
    return fake


def kill_workers_under(folder: Path) -> None:
    """Kill worker process groups a failed test left running (their argv names the
    workdir only through the cwd, so match on it)."""
    for p in psutil.process_iter(["cwd"]):
        with contextlib.suppress(OSError, psutil.Error):
            if p.info["cwd"] and p.info["cwd"].startswith(str(folder)):
                os.killpg(p.pid, signal.SIGKILL)


@dataclass
class Bed:
    testbed: SshTestbed
    edge_sshd: SshServer
    cloud_sshd: SshServer
    fake: FakePi
    root: Path


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    reason = sshd_available()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("sshbed")
    edge_sshd = SshServer(root / "edge-sshd").start()
    cloud_sshd = SshServer(root / "cloud-sshd").start()
    fake = fake_pi_for_testbed(root / "pi")
    inventory = write_inventory(root / "testbed.toml", edge_sshd, cloud_sshd, fake,
                                root / "work")
    testbed = SshTestbed(inventory, reconnect=FAST, progress=False, startup_timeout_s=180)
    try:
        testbed.start()
        yield Bed(testbed, edge_sshd, cloud_sshd, fake, root)
    finally:
        testbed.close()
        for server in (edge_sshd, cloud_sshd):
            server.stop()
        kill_workers_under(root / "work")


@end_to_end
def test_campaign_changes_the_pi_and_resumes_after_sshd_crash(bed, tmp_path):
    configs = [Config("digits-cnn", split, freq, "none", "none")
               for split in (1, 2, 3) for freq in (600, 1800)]
    campaign = Campaign(bed.testbed, CampaignSpec(configs, samples=4, warmup=1),
                        tmp_path / "cube.nc", retries=2, backoff_s=0.1, progress=False)
    stats = bed.testbed.pi.transport.stats
    failed_before = stats.failed_attempts

    def crash_mid_campaign() -> None:
        deadline = time.monotonic() + 120
        while len(campaign.records) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        bed.edge_sshd.kill()  # sshd and its sessions die, the workers live on
        time.sleep(0.6)
        bed.edge_sshd.start()  # same port, same host key

    crasher = threading.Thread(target=crash_mid_campaign)
    crasher.start()
    try:
        cube = campaign.run()
    finally:
        crasher.join()
    summary = campaign.summary
    assert summary.failures == [] and summary.done_now == 6
    assert int(np.isfinite(cube["latency_ms"].values).sum()) == 6
    assert cube.attrs["testbed"] == "loopback-pi"
    assert cube.attrs["energy_source"] == "model:fake-pi+model:cloud-gpu-server"
    assert stats.failed_attempts > failed_before  # it backed off while sshd was down
    changed = 0
    for record in campaign.records:
        knobs = {c.knob: c for c in record.knob_changes}
        assert set(knobs) == {"cpu_freq", "tpu_power", "cloud_accel"}
        assert knobs["cpu_freq"].value == str(record.config.cpu_freq)
        assert knobs["cpu_freq"].verified and knobs["cpu_freq"].duration_ms > 0
        changed += knobs["cpu_freq"].changed
        assert knobs["tpu_power"].value == "off" and knobs["tpu_power"].verified
        assert not knobs["cloud_accel"].changed and knobs["cloud_accel"].host == "gpu"
        assert record.accuracy > 0.8 and record.energy_source.startswith("model:fake-pi")
    # every run changes the frequency; an apply cut short by the crash and run again
    # may find its frequency already set (the retry reports what it did itself)
    assert changed >= 5
    # the fake sysfs really changed: governor, frequency, one sudo write per change
    assert bed.fake.governor == "userspace" and bed.fake.cur_khz == 1_800_000
    calls = bed.fake.read("calls.log")
    assert calls.count(f"sudo tee -- {bed.fake.sysfs}/scaling_setspeed") >= 6
    assert calls.count(f"sudo tee -- {bed.fake.sysfs}/scaling_governor") == 1


@end_to_end
def test_hanging_command_fails_the_run_and_the_campaign_goes_on(bed, tmp_path):
    configs = [Config("digits-cnn", 2, 1000, "none", "none"),
               Config("digits-cnn", 2, 1200, "none", "none")]
    (bed.fake.state / "hang-once").touch()
    campaign = Campaign(bed.testbed, CampaignSpec(configs, samples=3, warmup=1),
                        tmp_path / "hang.nc", retries=0, progress=False)
    timeouts = bed.testbed.pi.transport.stats.timeouts
    campaign.run()
    (failure,) = campaign.summary.failures
    assert failure["config"]["cpu_freq"] == 1000
    assert failure["reason"].startswith("CommandTimeout: command on pi timed out after 3 s")
    assert "uhubctl -l 1-1 -p 1 -a off" in failure["reason"]
    assert bed.testbed.pi.transport.stats.timeouts == timeouts + 1
    assert campaign.summary.done_now == 1 and bed.fake.cur_khz == 1_200_000
    journal = (tmp_path / "hang.nc.journal").read_text()
    assert '"type":"failure"' in journal and "CommandTimeout" in journal


@end_to_end
def test_tpu_knobs_switch_and_a_worker_without_coral_refuses(bed, tmp_path):
    changes = bed.testbed.apply(Config("digits-cnn", 2, 600, "tpu-std", "none"))
    assert [(c.knob, c.value) for c in changes] == [
        ("cpu_freq", "600"), ("tpu_power", "on"), ("tpu_mode", "std"), ("cloud_accel", "none")]
    assert all(c.verified for c in changes) and changes[1].changed
    assert bed.fake.read("hub") == "on"
    campaign = Campaign(bed.testbed, CampaignSpec([Config("digits-cnn", 2, 600, "tpu-max",
                                                          "none")], samples=2),
                        tmp_path / "tpu.nc", retries=0, progress=False)
    campaign.run()
    (failure,) = campaign.summary.failures
    assert "no Edge TPU head" in failure["reason"]
    assert "-split2_edgetpu.tflite" in failure["reason"]
    assert bed.fake.read("pkg") == "libedgetpu1-max"  # the knobs were set before the refusal
    assert bed.testbed.edge_accels == ("none", "int8", "tpu-std", "tpu-max")
    assert bed.testbed.cloud_accels == ("none", "gpu")


@end_to_end
def test_cloud_accelerator_restarts_the_cloud_worker_only_when_it_changes(bed):
    worker = bed.testbed.cloud.workers["cloud-worker"].process
    gpu = Config("digits-cnn", 2, 600, "none", "gpu")
    *_, to_gpu = bed.testbed.apply(gpu)
    assert (to_gpu.knob, to_gpu.value, to_gpu.changed) == ("cloud_accel", "gpu", True)
    assert not to_gpu.verified  # no nvidia-smi here: the worker runs on the CPU
    restarted = bed.testbed.cloud.workers["cloud-worker"].process
    assert restarted.pid != worker.pid
    with pytest.raises(ToolkitError, match="cloud_accel 'gpu' requested but this cloud "
                                           "worker sees no GPU"):
        bed.testbed.run(gpu, samples=1)
    *_, to_cpu = bed.testbed.apply({**gpu.as_dict(), "cloud_accel": "none"})
    assert to_cpu.changed and to_cpu.verified
    *_, same = bed.testbed.apply({**gpu.as_dict(), "cloud_accel": "none"})
    assert not same.changed
    record = bed.testbed.run({**gpu.as_dict(), "cloud_accel": "none"}, samples=2)
    assert record.samples == 2 and record.cloud_ms > 0


@end_to_end
def test_dynasplit_measure_with_an_inventory_file(bed, tmp_path, capsys):
    inventory = write_inventory(tmp_path / "bed.toml", bed.edge_sshd, bed.cloud_sshd, bed.fake,
                                tmp_path / "work")  # its own workdir: its own workers
    out = tmp_path / "cli.nc"
    try:
        status = cli_main(["measure", "--testbed", str(inventory), "--model", "digits-cnn",
                           "--splits", "3", "--cpu-freqs", "800", "--edge-accels", "int8",
                           "--cloud-accels", "none", "--samples", "3", "-o", str(out)])
    finally:
        kill_workers_under(tmp_path / "work")
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "1/1 runs measured" in printed
    cube = open_cube(out)
    assert cube.attrs["testbed"] == "loopback-pi"
    assert float(cube["latency_ms"].sel(split=3, cpu_freq=800, edge_accel="int8").max()) > 0
    assert bed.fake.cur_khz == 800_000 and bed.fake.read("hub") == "off"


@end_to_end
def test_dynasplit_measure_over_a_pool_of_two_inventories(bed, tmp_path, capsys):
    """Two Pis (two fake Pis behind the edge sshd, each its own workdir) share the cloud
    sshd: one campaign measures on both, each record naming its testbed."""
    inventories, fakes = [], []
    for name in ("pi-a", "pi-b"):
        fake = fake_pi_for_testbed(tmp_path / name)
        fakes.append(fake)
        inventories.append(write_inventory(tmp_path / f"{name}.toml", bed.edge_sshd,
                                           bed.cloud_sshd, fake, tmp_path / "work" / name,
                                           name=name))
    out = tmp_path / "pool.nc"
    try:
        status = cli_main(["measure", "--testbed", ",".join(map(str, inventories)),
                           "--model", "digits-cnn", "--splits", "2,3", "--cpu-freqs",
                           "600,1800", "--edge-accels", "none", "--cloud-accels", "none",
                           "--samples", "3", "-o", str(out)])
    finally:
        kill_workers_under(tmp_path / "work")
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "4/4 runs measured" in printed and "runs per testbed: pi-a " in printed
    runs = [json.loads(x) for x in (tmp_path / "pool.nc.journal").read_text().splitlines()
            if '"type":"run"' in x]
    assert len(runs) == 4 and {r["testbed"] for r in runs} <= {"pi-a", "pi-b"}
    cube = open_cube(out)
    assert cube.attrs["testbed"] == "pi-a,pi-b"
    assert sum(json.loads(cube.attrs["testbed_runs"]).values()) == 4
    # each Pi's own fake sysfs was set by the runs its testbed measured
    for fake, name in zip(fakes, ("pi-a", "pi-b"), strict=True):
        mine = [r["row"]["cpu_freq"] for r in runs if r["testbed"] == name]
        if mine:
            assert fake.cur_khz == mine[-1] * 1000


def test_inventory_and_testbed_validation(tmp_path):
    fake = make_fake_pi(tmp_path / "pi")
    base = (f'[testbed]\nname = "x"\nkind = "ssh"\n[[hosts]]\nname = "pi"\n'
            f'address = "127.0.0.1"\nuser = "u"\nagent = true\nroles = ["edge"]\n'
            f'profile = "{fake.profile_path}"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text(base + "worker_port = 70000\n")
    with pytest.raises(ConfigError, match=r"bad.toml: key 'hosts\[0\].worker_port' should "
                                          r"be an integer in 0..65535"):
        load_inventory(bad)
    bad.write_text(base + 'python = " "\n')
    with pytest.raises(ConfigError, match=r"key 'hosts\[0\].python' should be the remote"):
        load_inventory(bad)
    alone = tmp_path / "alone.toml"
    alone.write_text(base)
    assert load_inventory(alone).host("pi").python == "python3"
    with pytest.raises(ConfigError, match=r"alone.toml: an ssh testbed needs exactly one host "
                                          r"with role 'cloud' \(found 0: none\)"):
        open_testbed(alone)


def test_meters_measured_where_readable_else_modelled(tmp_path, caplog):
    fake = make_fake_pi(tmp_path / "pi")
    zone = tmp_path / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("1000\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")

    def bed_with(meter_host_address: str) -> SshTestbed:
        text = (f'[testbed]\nname = "m"\nkind = "ssh"\n'
                f'[[hosts]]\nname = "pi"\naddress = "127.0.0.1"\nuser = "u"\nagent = true\n'
                f'roles = ["edge"]\nprofile = "{fake.profile_path}"\n'
                f'[[hosts]]\nname = "gpu"\naddress = "{meter_host_address}"\nuser = "u"\n'
                f'agent = true\nroles = ["cloud"]\nprofile = "cloud-gpu-server"\n'
                f'[[meters]]\nname = "pkg"\nkind = "rapl"\nhost = "gpu"\nmeasures = "gpu"\n'
                f'root = "{tmp_path / "powercap"}"\n')
        path = tmp_path / f"m-{meter_host_address}.toml"
        path.write_text(text)
        return SshTestbed(path)

    local = bed_with("127.0.0.1")
    assert local.cloud_meter is not None and local.energy_source == "model:fake-pi+rapl"
    remote = bed_with("192.0.2.20")
    assert remote.cloud_meter is None
    assert remote.energy_source == "model:fake-pi+model:cloud-gpu-server"
    assert "meter pkg is read on host gpu (192.0.2.20), which is not this machine" in caplog.text
