"""The SSH testbed end to end: real sshd servers, workers started over SSH, a fake Pi.

Two OpenSSH servers on loopback play the edge and the cloud host. The edge
profile points the Pi controller at a fake cpufreq tree and fake uhubctl,
dpkg-query, apt-get and sudo (``tests/fake_pi.py``); the workers are this
checkout's real edge and cloud workers, started over SSH with this venv's Python.
The Edge TPU tests compile with a stand-in ``edgetpu_compiler`` script (Coral's
compiler cannot be installed here) and end at the real refusal of the missing
``libedgetpu.so.1`` on the edge; the data test deploys PNG class folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
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


REPO = Path(__file__).resolve().parents[2]


def checkout_python(folder: Path) -> Path:
    """The hosts' ``python``: this venv's Python running *this checkout's* toolkit.

    The venv's own ``toolkit`` may be an editable install of another checkout; an
    SSH session does not inherit this process's ``PYTHONPATH``, so the workers
    would otherwise run that checkout's code.
    """
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" '
                       f'exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def host_table(name: str, role: str, server: SshServer, profile: str, workdir: Path,
               python: Path | str = sys.executable, **extra: object) -> str:
    lines = [
        "[[hosts]]", f'name = "{name}"', 'address = "127.0.0.1"', f"port = {server.port}",
        f'user = "{server.user}"', f'identity_file = "{server.client_key}"',
        f'known_hosts = "{server.known_hosts}"', f'roles = ["{role}"]',
        f'profile = "{profile}"', f'workdir = "{workdir}"', f'python = "{python}"',
        "connect_timeout_s = 5",
    ]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def write_inventory(path: Path, edge: SshServer, cloud: SshServer, fake: FakePi,
                    workdir: Path, meters: str = "", name: str = "loopback-pi") -> Path:
    python = checkout_python(path.parent)
    path.write_text(
        f'[testbed]\nname = "{name}"\nkind = "ssh"\n\n'
        + host_table("pi", "edge", edge, str(fake.profile_path), workdir / "pi", python,
                     command_timeout_s=3)
        + host_table("gpu", "cloud", cloud, "cloud-gpu-server", workdir / "gpu", python,
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


# what Coral's `edgetpu_compiler -s -o OUT IN.tflite` leaves behind, for the test double
COMPILER_DOUBLE = """#!/bin/sh
echo "$@" >> {calls}
if [ "$#" -ne 4 ] || [ "$1" != "-s" ] || [ "$2" != "-o" ]; then
    echo "unexpected arguments: $*" >&2; exit 2
fi
stem=$(basename "$4" .tflite)
{{ printf 'EDGETPU-DOUBLE\\n'; cat "$4"; }} > "$3/${{stem}}_edgetpu.tflite" || exit 1
echo "Edge TPU Compiler (test double): compiled $4" > "$3/${{stem}}_edgetpu.log"
"""


def install_compiler_double(folder: Path, calls: Path) -> Path:
    """A real executable named ``edgetpu_compiler`` in ``folder``: a test double.

    Coral's compiler is an external x86-64 tool that cannot be installed here
    (no network, no Coral apt repository), so this shell script stands in for it:
    it takes the real compiler's command line (``-s -o OUT IN.tflite``), writes
    ``OUT/<IN stem>_edgetpu.tflite`` (a marker line followed by the int8 input)
    and a ``.log`` beside it where the real one would, and appends its arguments
    to ``calls``. Everything around it (the int8 head it is given, the deploy,
    the edge worker's delegate) is the toolkit's real code.
    """
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "edgetpu_compiler"
    exe.write_text(COMPILER_DOUBLE.format(calls=calls))
    exe.chmod(0o755)
    return exe


def without_compiler(monkeypatch) -> None:
    """PATH without any ``edgetpu_compiler`` (this machine has none, but be sure)."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "edgetpu_compiler").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(keep))


def remote_head(bed: Bed, name: str) -> Path:
    """Where the edge host's worker looks for a compiled head (sshd is on loopback)."""
    return bed.root / "work" / "pi" / "models" / "edgetpu" / name


def one_line_delegate_refusal(info: pytest.ExceptionInfo) -> None:
    text = str(info.value)
    assert "\n" not in text, text
    assert "cannot load the Edge TPU delegate libedgetpu.so.1 (" in text
    assert "install the Coral runtime (apt-get install libedgetpu1-std or libedgetpu1-max)" \
        in text


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
def test_campaign_changes_the_pi_and_resumes_after_sshd_crash(bed, tmp_path, alongside):
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

    with alongside(crash_mid_campaign):
        cube = campaign.run()
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
    # a missing compiled head is the user's set-up, not the device's: no retry can
    # help, so the campaign stops with the one-line reason (nothing measured is lost)
    with pytest.raises(ToolkitError, match=r"no Edge TPU head .*-split2_edgetpu\.tflite"):
        campaign.run()
    assert bed.fake.read("pkg") == "libedgetpu1-max"  # the knobs were set before the refusal
    assert bed.testbed.edge_accels == ("none", "int8", "tpu-std", "tpu-max")
    assert bed.testbed.cloud_accels == ("none", "gpu")


@end_to_end
def test_tpu_head_without_compiler_or_artifact_is_refused_in_one_line(bed, tmp_path,
                                                                       monkeypatch):
    without_compiler(monkeypatch)
    monkeypatch.setattr(bed.testbed, "edgetpu_dir", str(tmp_path))  # an empty artifacts folder
    with pytest.raises(ToolkitError) as info:
        bed.testbed.run(Config("digits-cnn", 4, 600, "tpu-std", "none"), samples=1)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(
        "no Edge TPU head digits-cnn-8-split4_edgetpu.tflite: edgetpu_compiler is not on PATH "
        f"and {tmp_path / 'digits-cnn-8-split4_edgetpu.tflite'} does not exist; install Coral's "
        "compiler on an x86-64 Linux host (apt-get install edgetpu-compiler)")
    assert not remote_head(bed, "digits-cnn-8-split4_edgetpu.tflite").exists()


@end_to_end
def test_tpu_head_compiled_on_the_controller_is_deployed_to_the_edge(bed, tmp_path, monkeypatch):
    calls = tmp_path / "compiler-calls"
    install_compiler_double(tmp_path / "bin", calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ToolkitError) as info:
        bed.testbed.run(Config("digits-cnn", 1, 600, "tpu-std", "none"), samples=1)
    # the head was compiled and deployed; the worker found it and then needed the
    # delegate, which no machine here has
    one_line_delegate_refusal(info)
    (argv,) = calls.read_text().splitlines()
    flag_s, flag_o, out, source = argv.split()
    assert (flag_s, flag_o) == ("-s", "-o")
    assert Path(source) == Path(out) / "digits-cnn-8-split1.tflite"
    int8 = Path(source).read_bytes()
    assert int8[4:8] == b"TFL3"  # the int8 head's flatbuffer went in
    compiled = Path(out) / "digits-cnn-8-split1_edgetpu.tflite"
    assert compiled.read_bytes() == b"EDGETPU-DOUBLE\n" + int8
    deployed = remote_head(bed, compiled.name)
    assert deployed.read_bytes() == compiled.read_bytes()  # byte-identical on the edge
    # a second run neither compiles nor copies again
    mtime = deployed.stat().st_mtime_ns
    with pytest.raises(ToolkitError, match="cannot load the Edge TPU delegate"):
        bed.testbed.run(Config("digits-cnn", 1, 1200, "tpu-max", "none"), samples=1)
    assert len(calls.read_text().splitlines()) == 1 and deployed.stat().st_mtime_ns == mtime


@end_to_end
def test_a_precompiled_tpu_head_is_deployed_and_the_missing_delegate_refused(bed, tmp_path,
                                                                              monkeypatch):
    without_compiler(monkeypatch)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    head = artifacts / "digits-cnn-8-split3_edgetpu.tflite"
    head.write_bytes(os.urandom(3000))
    monkeypatch.setattr(bed.testbed, "edgetpu_dir", str(artifacts))
    campaign = Campaign(bed.testbed, CampaignSpec([Config("digits-cnn", 3, 600, "tpu-max",
                                                          "none")], samples=2),
                        tmp_path / "tpu.nc", retries=0, progress=False)
    campaign.run()
    (failure,) = campaign.summary.failures  # recorded as a failed run, with its reason
    assert "cannot load the Edge TPU delegate libedgetpu.so.1" in failure["reason"]
    assert remote_head(bed, head.name).read_bytes() == head.read_bytes()
    with pytest.raises(ToolkitError) as info:
        bed.testbed.run(Config("digits-cnn", 3, 600, "tpu-std", "none"), samples=1)
    one_line_delegate_refusal(info)


def _write_digit_folders(root: Path, n: int) -> list[int]:
    """The first ``n`` held-out digits as 8x8 PNGs in class folders; their labels in
    the folder's order (class by class)."""
    import tensorflow as tf

    from toolkit.models.digits import load_digits_data

    digits = load_digits_data()
    for i, (x, y) in enumerate(zip(digits.x_test[:n], digits.y_test[:n], strict=True)):
        folder = root / f"digit_{int(y)}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:03d}.png").write_bytes(
            tf.io.encode_png(np.rint(x * 255).astype(np.uint8)).numpy())
    return sorted(int(y) for y in digits.y_test[:n])


@end_to_end
def test_data_folder_is_deployed_to_the_edge_and_scored_against_its_labels(bed, tmp_path,
                                                                           monkeypatch):
    """The folder's order (class by class) differs from the built-in digits' order, so
    a high accuracy needs the edge worker to read the deployed images and the
    controller to score them against the folder's labels."""
    import toolkit.devices.testbeds.ssh_testbed as ssh_testbed

    monkeypatch.setattr(ssh_testbed, "_DATA_BATCH", 25)  # 60 images: three deploys
    data = tmp_path / "digits"
    labels = _write_digit_folders(data, 60)
    inventory = write_inventory(tmp_path / "bed.toml", bed.edge_sshd, bed.cloud_sshd, bed.fake,
                                tmp_path / "work")  # its own workdir: its own workers
    testbed = open_testbed(inventory, model="digits-cnn", data=str(data), progress=False,
                           reconnect=FAST, startup_timeout_s=180)
    try:
        testbed.start()
        record = testbed.run(Config("digits-cnn", 3, 800, "none", "none"), samples=60)
        int8 = testbed.run(Config("digits-cnn", 3, 800, "int8", "none"), samples=60)
        folder_labels, source = testbed.run_blocking(testbed.labels("digits-cnn"))
    finally:
        testbed.close()
        kill_workers_under(tmp_path / "work")
    assert source == "labels" and folder_labels.tolist() == labels
    assert record.label_source == "labels" and record.samples == 60
    assert record.accuracy > 0.9 and int8.accuracy > 0.85
    (copy,) = (tmp_path / "work" / "pi" / "data").iterdir()
    assert copy.name.startswith("digits-")
    sent = sorted(p.relative_to(data) for p in data.rglob("*.png"))
    assert sorted(p.relative_to(copy) for p in copy.rglob("*.png")) == sent
    assert all((copy / p).read_bytes() == (data / p).read_bytes() for p in sent)
    assert not (tmp_path / "work" / "gpu" / "data").exists()  # the cloud needs no images


def test_malformed_data_and_artifacts_are_refused_before_connecting(tmp_path):
    fake = make_fake_pi(tmp_path / "pi")
    inventory = tmp_path / "x.toml"
    inventory.write_text(
        f'[testbed]\nname = "x"\nkind = "ssh"\n'
        f'[[hosts]]\nname = "pi"\naddress = "192.0.2.10"\nuser = "u"\nagent = true\n'
        f'roles = ["edge"]\nprofile = "{fake.profile_path}"\n'
        f'[[hosts]]\nname = "gpu"\naddress = "192.0.2.20"\nuser = "u"\nagent = true\n'
        f'roles = ["cloud"]\nprofile = "cloud-gpu-server"\n')
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "0001.png").write_bytes(b"not read")
    with pytest.raises(ToolkitError, match=r"data folder .*flat has no subfolders; it needs "
                                           r"one subfolder of images"):
        open_testbed(inventory, data=flat)
    (flat / "cats").mkdir()
    (flat / "cats" / "notes.txt").write_text("no image")
    with pytest.raises(ToolkitError, match=r"data folder .*flat holds no images in its class "
                                           r"subfolders \(cats\); allowed: .bmp"):
        open_testbed(inventory, data=flat)
    with pytest.raises(ToolkitError, match="missing does not exist; give a folder with one"):
        open_testbed(inventory, data=tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"Edge TPU artifacts folder .*nowhere does not exist"):
        open_testbed(inventory, edgetpu_dir=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"--edgetpu-dir .* is for SSH testbeds"):
        open_testbed("local", edgetpu_dir=tmp_path)
    assert open_testbed(inventory, edgetpu_dir=tmp_path).edgetpu_dir == str(tmp_path)


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


def test_what_a_device_would_fail_on_is_named_before_any_connection(tmp_path):
    """An SSH testbed checks the model, its input size and the data folder when it is
    made, as the local one does: before, a Pi found them after the deployment."""
    from toolkit.devices.testbeds.ssh_testbed import SshTestbed
    from toolkit.errors import ToolkitError

    for options, message in (({"model": "vgg-16"}, "unknown model 'vgg-16'"),
                             ({"input_size": 64}, "digits-cnn has a fixed input"),
                             ({"data": tmp_path / "none"}, "data folder .* does not exist")):
        with pytest.raises(ToolkitError, match=message):
            SshTestbed(tmp_path / "no-inventory.toml", **options)  # never read
