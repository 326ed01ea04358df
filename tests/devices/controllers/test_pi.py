"""The Raspberry Pi controller over real SSH, against a fake sysfs tree and fake tools."""

from __future__ import annotations

import asyncio
import threading

import pytest
from fake_pi import make_fake_pi  # tests/ is on sys.path (conftest)

from toolkit.config import Config
from toolkit.devices import CommandFailed, CommandTimeout, PiController, SshTransport, load_profile
from toolkit.devices.controllers.pi import PiSettings, parse_uhubctl
from toolkit.errors import ConfigError


def test_parse_uhubctl_port_status():
    off = ("Current status for hub 1-1 [2109:3431 USB2.0 Hub, USB 2.10, 4 ports, ppps]\n"
           "  Port 1: 0503 power highspeed enable connect [1a6e:089a]\n"
           "  Port 2: 0100 power\n"
           "Sent power off request\n"
           "New status for hub 1-1 [2109:3431 USB2.0 Hub, USB 2.10, 4 ports, ppps]\n"
           "  Port 1: 0000 off\n")
    assert parse_uhubctl(off, 1) is False  # the new status wins
    assert parse_uhubctl(off, 2) is True
    assert parse_uhubctl(off, 3) is None
    assert parse_uhubctl("  Port 4: 02a0 power 5gbps Rx.Detect\n", 4) is True


def test_shipped_pi_profile_has_controller_settings():
    s = PiSettings.from_profile(load_profile("raspberry-pi-4"))
    assert s.sysfs_cpufreq == "/sys/devices/system/cpu/cpu0/cpufreq"
    assert s.cpu_sudo == "sudo" and s.tpu_sudo == "sudo"
    assert (s.hub_location, s.hub_port) == ("1-1", 1)
    assert s.package("max") == "libedgetpu1-max" and "{package}" in s.install_command


async def test_cpu_frequency_set_verified_and_skipped(pi_host, fake_pi):
    pi = PiController(SshTransport(pi_host))
    assert await pi.available_frequencies() == [600, 800, 1000, 1200, 1400, 1600, 1800]
    change = await pi.set_cpu_freq(1200)
    assert (change.host, change.knob, change.value) == ("pi", "cpu_freq", "1200")
    assert change.changed and change.verified and change.duration_ms > 0
    assert fake_pi.governor == "userspace" and fake_pi.cur_khz == 1_200_000
    again = await pi.set_cpu_freq(1200)
    assert not again.changed and again.verified
    with pytest.raises(ConfigError, match="frequency 1300 MHz is not available on pi; valid: 600"):
        await pi.set_cpu_freq(1300)
    await pi.close()


async def test_frequencies_from_cpuinfo_range(sshd, make_host, tmp_path):
    fake = make_fake_pi(tmp_path / "minmax", available=False)
    (fake.sysfs / "cpuinfo_min_freq").write_text("800000\n")
    (fake.sysfs / "cpuinfo_max_freq").write_text("1500000\n")
    pi = PiController(SshTransport(make_host(sshd, profile=load_profile(fake.profile_path))))
    assert await pi.available_frequencies() == [800, 1000, 1200, 1400]
    await pi.close()


async def test_frequency_not_reading_back_is_unverified(pi_host, fake_pi, caplog):
    (fake_pi.sysfs / "scaling_cur_freq").unlink()  # a kernel that keeps another frequency
    (fake_pi.sysfs / "scaling_cur_freq").write_text("600000\n")
    pi = PiController(SshTransport(pi_host))
    change = await pi.set_cpu_freq(1400)
    assert change.changed and not change.verified
    assert "cpu_freq on pi: set to 1400 but reading it back disagrees" in caplog.text
    await pi.close()


async def test_a_frequency_write_cut_short_is_repaired_by_the_next_apply(pi_host, fake_pi):
    # sshd killed between the shell's truncation and printf leaves the plain file empty
    (fake_pi.sysfs / "scaling_setspeed").write_text("")
    (fake_pi.sysfs / "scaling_governor").write_text("userspace")  # and no newline
    pi = PiController(SshTransport(pi_host))
    change = await pi.set_cpu_freq(800)
    assert change.changed and change.verified and fake_pi.cur_khz == 800_000
    (fake_pi.sysfs / "scaling_setspeed").unlink()  # a file that cannot be read still fails
    with pytest.raises(CommandFailed, match="scaling_cur_freq: No such file"):
        await pi.set_cpu_freq(1000)
    await pi.close()


async def test_edge_accelerators_switch_tpu_power_and_runtime(pi_host, fake_pi):
    pi = PiController(SshTransport(pi_host))
    on_max = await pi.set_edge_accel("tpu-max")
    assert [(c.knob, c.value, c.changed, c.verified) for c in on_max] == [
        ("tpu_power", "on", True, True), ("tpu_mode", "max", True, True)]
    assert fake_pi.read("hub") == "on" and fake_pi.read("pkg") == "libedgetpu1-max"
    assert "libedgetpu1-max libedgetpu/accepted-eula boolean true" in fake_pi.read("debconf")
    assert "apt-get install -y --allow-downgrades libedgetpu1-max" in fake_pi.read("calls.log")
    on_std = await pi.set_edge_accel("tpu-std")
    assert [(c.knob, c.changed) for c in on_std] == [("tpu_power", False), ("tpu_mode", True)]
    assert fake_pi.read("pkg") == "libedgetpu1-std"
    for accel in ("int8", "none"):
        (change,) = await pi.set_edge_accel(accel)
        assert (change.knob, change.value) == ("tpu_power", "off")
    assert fake_pi.read("hub") == "off" and await pi.tpu_mode() == "std"
    with pytest.raises(ConfigError, match="accelerator 'gpu' is not in profile 'fake-pi'"):
        await pi.set_edge_accel("gpu")
    await pi.close()


async def test_apply_configuration_with_sudo(sshd, make_host, tmp_path):
    fake = make_fake_pi(tmp_path / "sudo", use_sudo=True)
    pi = PiController(SshTransport(make_host(sshd, profile=load_profile(fake.profile_path))))
    changes = await pi.apply(Config("digits-cnn", 2, 1000, "tpu-std", "none"))
    assert [c.knob for c in changes] == ["cpu_freq", "tpu_power", "tpu_mode"]
    assert all(c.verified for c in changes)
    calls = fake.read("calls.log")
    assert f"sudo tee -- {fake.sysfs}/scaling_setspeed" in calls
    assert f"sudo {fake.root}/bin/uhubctl -l 1-1 -p 1 -a on" in calls
    assert fake.cur_khz == 1_000_000 and fake.read("hub") == "on"
    await pi.close()


async def test_hanging_uhubctl_times_out_then_next_configuration_works(
        sshd, make_host, fake_pi):
    host = make_host(sshd, command_timeout_s=1.0, profile=load_profile(fake_pi.profile_path))
    pi = PiController(SshTransport(host))
    fake_pi.hang_uhubctl(True)
    with pytest.raises(CommandTimeout) as info:
        await pi.apply(Config("digits-cnn", 2, 800, "tpu-max", "none"))
    assert info.value.host == "pi" and "uhubctl -l 1-1 -p 1" in info.value.command
    assert pi.transport.stats.timeouts == 1
    fake_pi.hang_uhubctl(False)
    changes = await pi.apply(Config("digits-cnn", 2, 1600, "tpu-max", "none"))
    assert fake_pi.cur_khz == 1_600_000 and fake_pi.read("pkg") == "libedgetpu1-max"
    assert all(c.verified for c in changes)
    await pi.close()


async def test_campaign_resumes_after_sshd_crash(sshd, make_host, fake_pi, fast_backoff):
    pi = PiController(SshTransport(make_host(sshd, profile=load_profile(fake_pi.profile_path)),
                                   reconnect=fast_backoff))
    await pi.apply(Config("digits-cnn", 2, 600, "tpu-std", "none"))
    sshd.kill()
    restart = threading.Timer(0.6, sshd.start)  # sshd comes back on the same port and key
    restart.start()
    try:
        changes = await pi.apply(Config("digits-cnn", 2, 1800, "none", "none"))
    finally:
        restart.join()
    assert [c.value for c in changes] == ["1800", "off"] and all(c.verified for c in changes)
    stats = pi.transport.stats
    assert stats.reconnects == 1 and stats.failed_attempts >= 1
    assert fake_pi.cur_khz == 1_800_000 and fake_pi.read("hub") == "off"
    await pi.close()


def test_bad_profile_settings_name_the_key(tmp_path):
    fake = make_fake_pi(tmp_path / "bad")
    text = fake.profile_path.read_text().replace("port = 1\n", 'port = "one"\n')
    fake.profile_path.write_text(text)
    with pytest.raises(ConfigError, match=r"fake-pi.toml: key 'tpu.port' should be an integer"):
        PiSettings.from_profile(load_profile(fake.profile_path))


async def test_concurrent_knobs_on_one_pi(pi_host, fake_pi):
    """Reads of different knobs may overlap on one connection."""
    pi = PiController(SshTransport(pi_host))
    (gov, _), powered, mode = await asyncio.gather(pi.cpu_state(), pi.tpu_powered(),
                                                   pi.tpu_mode())
    assert (gov, powered, mode) == ("ondemand", False, "std")
    await pi.close()
