"""The reused remote shell and the one-command knob script, over real SSH and locally."""

from __future__ import annotations

import asyncio
import shlex
import subprocess

import psutil
import pytest
from fake_pi import make_fake_pi  # tests/ is on sys.path (conftest)

from toolkit.config import Config
from toolkit.devices import (
    CommandFailed,
    CommandTimeout,
    PiController,
    PiSettings,
    RemoteShell,
    SshTransport,
    load_profile,
)
from toolkit.devices.controllers.pi_script import KnobScript

NASTY = ["a b", "$HOME", "`id`", "x; rm -rf /tmp/nothing", "it's", 'say "hi"', "*", "new\nline"]


async def test_one_channel_runs_many_commands_verbatim(sshd, make_host):
    transport = SshTransport(make_host(sshd, name="box"))
    shell = RemoteShell(transport)
    res = await shell.run(["printf", "%s\\0", *NASTY])
    assert res.stdout.split("\0")[:-1] == NASTY and res.ok
    res = await shell.run(["sh", "-c", 'printf "no newline"; echo oops >&2; exit 3'],
                          check=False)
    assert (res.stdout, res.stderr, res.exit_status) == ("no newline", "oops\n", 3)
    with pytest.raises(CommandFailed, match=r"on box failed with exit status 3: .*oops"):
        await shell.run(["sh", "-c", "echo oops >&2; exit 3"])
    res = await shell.run(["sh", "-c", 'printf "%s" "$GREETING"'], env={"GREETING": "hé llo"})
    assert res.stdout == "hé llo"
    res = await shell.run(["cat"])  # standard input is /dev/null, not the shell's commands
    assert res.stdout == "" and res.ok
    assert shell.opened == 1 and transport.stats.commands == 5 and transport.stats.connects == 1
    await shell.close()
    await transport.close()


async def test_output_in_many_pieces_and_sentinel_lookalikes(sshd, make_host):
    """Output larger than one read, a line that looks like a sentinel with another
    token, and a command that ends without a newline: all arrive whole."""
    transport = SshTransport(make_host(sshd, name="box"))
    shell = RemoteShell(transport)
    fake = "\n" + "0" * 32 + " 7\n"
    script = ('i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i + 1)); done; '
              f'printf %s {shlex.quote(fake)}; printf tail; printf err >&2')
    res = await shell.run(["sh", "-c", script])
    lines = [f"line {i}" for i in range(20000)]
    assert res.stdout == "\n".join(lines) + "\n" + fake + "tail"
    assert res.stderr == "err" and res.exit_status == 0 and len(res.stdout) > 2 * 65536
    assert (await shell.run(["echo", "next"])).stdout == "next\n" and shell.opened == 1
    await shell.close()
    await transport.close()


async def test_timeout_abandons_the_channel_and_the_guard_ends_the_command(
        sshd, make_host, tmp_path):
    marker = tmp_path / "still-running"
    transport = SshTransport(make_host(sshd, name="pi", command_timeout_s=0.5))
    shell = RemoteShell(transport)
    with pytest.raises(CommandTimeout) as info:
        await shell.run(["sh", "-c", f"echo started; sleep 30; touch {marker}"])
    assert info.value.output == "started\n" and "sleep 30" in info.value.command
    assert transport.stats.timeouts == 1
    assert (await shell.run(["echo", "next"])).stdout == "next\n"
    assert shell.opened == 2  # a fresh channel after the timeout
    for _ in range(80):  # the host's `timeout` guard ends it (and its children) soon
        if not any(str(marker) in " ".join(p.info["cmdline"] or [])
                   for p in psutil.process_iter(["cmdline"])):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the abandoned command is still running")
    assert not marker.exists()
    await shell.close()
    await transport.close()


async def test_a_single_session_host_gets_no_reused_channel(sshd, make_host, fake_pi):
    pi = PiController(SshTransport(make_host(sshd, max_sessions=1,
                                             profile=load_profile(fake_pi.profile_path))))
    changes = await pi.apply(Config("digits-cnn", 1, 800, "none", "none"))
    assert [c.verified for c in changes] == [True, True] and fake_pi.cur_khz == 800_000
    assert await asyncio.wait_for(pi.cpu_state(), 10) == ("userspace", 800)  # not starved
    assert pi.shell.opened == 0
    await pi.close()


async def test_a_failing_knob_command_is_named(sshd, make_host, tmp_path):
    fake = make_fake_pi(tmp_path / "pi", use_sudo=True)
    (fake.sysfs / "scaling_cur_freq").unlink()
    (fake.sysfs / "scaling_cur_freq").write_text("1800000\n")
    (fake.sysfs / "scaling_setspeed").unlink()
    (fake.sysfs / "scaling_setspeed").mkdir()  # writing it fails like a refused value
    pi = PiController(SshTransport(make_host(sshd, profile=load_profile(fake.profile_path))))
    with pytest.raises(CommandFailed, match=r"exit status 1: .*sudo -n tee -- \S+/scaling_setspeed"
                                            r": tee: .*Is a directory"):
        await pi.set_cpu_freq(1000)
    assert fake.governor == "userspace"  # the step got that far
    await pi.close()


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_knob_script_runs_in_sh_and_bash(tmp_path, shell):
    """The script itself, without SSH: steps, changes, verification, timings."""
    fake = make_fake_pi(tmp_path / "pi")
    settings = PiSettings.from_profile(load_profile(fake.profile_path))

    def run(freq: int, power: bool, mode: str | None):
        script = KnobScript(settings)
        script.cpu_freq(freq)
        script.tpu_power(power)
        if mode:
            script.tpu_mode(mode)
        out = subprocess.run([shell, "-c", script.text], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        report = script.parse(out.stdout)
        assert report.remote_ms is not None and report.failure is None
        return [(c.knob, c.value, c.changed, c.verified)
                for c in script.changes(report, "pi")], report

    first, report = run(1400, True, "max")
    assert first == [("cpu_freq", "1400", True, True), ("tpu_power", "on", True, True),
                     ("tpu_mode", "max", True, True)]
    assert fake.cur_khz == 1_400_000 and fake.read("pkg") == "libedgetpu1-max"
    assert sum(s.duration_ms for s in report.steps) <= report.remote_ms + 1e-6
    again, _ = run(1400, True, "max")
    assert again == [("cpu_freq", "1400", False, True), ("tpu_power", "on", False, True),
                     ("tpu_mode", "max", False, True)]
    off, _ = run(600, False, None)
    assert off == [("cpu_freq", "600", True, True), ("tpu_power", "off", True, True)]
    assert fake.read("hub") == "off"


def test_knob_script_report_survives_noise_and_a_cut():
    settings = PiSettings(sysfs_cpufreq="/sys/cpu0/cpufreq", tpu_sudo=None)
    script = KnobScript(settings, token="tok")
    script.cpu_freq(600)
    script.tpu_power(False)
    noise = ("garbage without newline\ntok start 10.0\ntok begin cpu_freq 10.5\n"
             "tok run cpu.read\ntok value before userspace 600000\ntok end cpu_freq 0 10.502\n"
             "tok begin tpu_power 10,6\ntok run tpu.switch\n")
    report = script.parse(noise)
    assert [s.knob for s in report.steps] == ["cpu_freq"]
    assert report.steps[0].duration_ms == pytest.approx(2.0)
    assert report.running == "tpu.switch" and report.remote_ms is None
    assert script.command(report.running) == "uhubctl -l 1-1 -p 1 -a off"
    assert report.unfinished is not None and report.unfinished.knob == "tpu_power"
