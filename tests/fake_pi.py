"""A fake Raspberry Pi environment in a temp folder, driven over real SSH.

The cpufreq sysfs folder is a plain folder whose ``scaling_cur_freq`` is a
symlink to ``scaling_setspeed`` (so a write reads back as the kernel would show
it), and ``uhubctl``, ``apt-get``, ``debconf-set-selections``, ``dpkg-query`` and
``sudo`` are small shell scripts that keep their state in files and print what
the real programs print. A device profile TOML points the controller at them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["FakePi", "make_fake_pi"]

FREQS_KHZ = [600000, 800000, 1000000, 1200000, 1400000, 1600000, 1800000]

UHUBCTL = r"""#!/bin/sh
# fake uhubctl: -l LOCATION -p PORT [-a on|off]; port power kept in $STATE/hub
STATE={state}
echo "uhubctl $*" >> "$STATE/calls.log"
[ -e "$STATE/hang" ] && exec sleep 3600
loc=; port=; action=
while [ $# -gt 0 ]; do
  case "$1" in
    -l) loc=$2; shift 2;; -p) port=$2; shift 2;; -a) action=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 1;;
  esac
done
if [ "$loc" != "1-1" ]; then
  echo "No compatible devices detected at location $loc!" >&2; exit 1
fi
line() {{
  if [ "$(cat "$STATE/hub")" = on ]; then
    echo "  Port $port: 0503 power highspeed enable connect [1a6e:089a]"
  else
    echo "  Port $port: 0000 off"
  fi
}}
echo "Current status for hub 1-1 [2109:3431 USB2.0 Hub, USB 2.10, 4 ports, ppps]"
line
if [ -n "$action" ]; then
  echo "Sent power $action request"
  echo "$action" > "$STATE/hub"
  echo "New status for hub 1-1 [2109:3431 USB2.0 Hub, USB 2.10, 4 ports, ppps]"
  line
fi
"""

APT_GET = r"""#!/bin/sh
# fake apt-get install -y --allow-downgrades PACKAGE; the installed runtime in $STATE/pkg
STATE={state}
echo "apt-get $*" >> "$STATE/calls.log"
[ "$1" = install ] || {{ echo "E: unsupported" >&2; exit 100; }}
for pkg; do :; done
if [ "$pkg" = libedgetpu1-max ] && \
   ! grep -q "libedgetpu1-max libedgetpu/accepted-eula boolean true" "$STATE/debconf"; then
  echo "E: libedgetpu1-max: EULA not accepted (debconf not preseeded)" >&2; exit 100
fi
echo "$pkg" > "$STATE/pkg"
echo "Setting up $pkg (16.0) ..."
"""

DEBCONF = r"""#!/bin/sh
STATE={state}
echo "debconf-set-selections $*" >> "$STATE/calls.log"
cat >> "$STATE/debconf"
"""

DPKG_QUERY = r"""#!/bin/sh
# fake dpkg-query -W -f FORMAT PKG...: "PKG ii " for the installed runtime, "PKG un " else
STATE={state}
[ "$1" = -W ] && [ "$2" = -f ] || {{ echo "dpkg-query: bad usage" >&2; exit 2; }}
shift 3
for pkg; do
  if [ "$(cat "$STATE/pkg")" = "$pkg" ]; then echo "$pkg ii "; else echo "$pkg un "; fi
done
"""

SUDO = r"""#!/bin/sh
# fake sudo: insists on -n (never prompt), records the call, runs the command
STATE={state}
[ "$1" = -n ] || {{ echo "sudo: a password is required" >&2; exit 1; }}
shift
echo "sudo $*" >> "$STATE/calls.log"
exec "$@"
"""

PROFILE = """\
[profile]
name = "fake-pi"
role = "edge"
description = "Raspberry Pi 4 profile pointing at a fake sysfs tree and fake tools"

[cpu]
frequencies_mhz = [600, 800, 1000, 1200, 1400, 1600, 1800]
cores = 4
governor = "userspace"
sysfs_cpufreq = "{sysfs}"
use_sudo = {use_sudo}
sudo = "{bin}/sudo"

[accelerators]
available = ["none", "int8", "tpu-std", "tpu-max"]

[tpu]
uhubctl = "{bin}/uhubctl"
hub_location = "1-1"
port = 1
use_sudo = {use_sudo}
sudo = "{bin}/sudo"
runtime_std = "libedgetpu1-std"
runtime_max = "libedgetpu1-max"
install_command = ["{bin}/apt-get", "install", "-y", "--allow-downgrades", "{{package}}"]
preseed_command = ["{bin}/debconf-set-selections"]
dpkg_query = "{bin}/dpkg-query"

[power]
busy_w = [2.95, 3.10, 3.30, 3.50, 3.80, 4.10, 4.50]
wait_w = [2.70, 2.80, 2.90, 3.00, 3.20, 3.40, 3.80]
network_j_per_byte = 5e-8

[reconfiguration]
cpu_freq_ms = 5.0
"""


@dataclass
class FakePi:
    """Paths of one fake Pi."""

    root: Path
    sysfs: Path
    state: Path
    profile_path: Path

    def read(self, name: str) -> str:
        """A state file's content (``hub``, ``pkg``, ``debconf``, ``calls.log``)."""
        return (self.state / name).read_text().strip()

    @property
    def governor(self) -> str:
        return (self.sysfs / "scaling_governor").read_text().strip()

    @property
    def cur_khz(self) -> int:
        return int((self.sysfs / "scaling_cur_freq").read_text())

    def hang_uhubctl(self, on: bool) -> None:
        """Make uhubctl hang (sleep for an hour) until called with False."""
        flag = self.state / "hang"
        if on:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)


def make_fake_pi(root: Path, use_sudo: bool = False, available: bool = True) -> FakePi:
    """Create the fake sysfs, tools and profile under ``root``.

    Args:
        root: an empty folder.
        use_sudo: whether the profile asks for ``sudo -n`` (the fake sudo).
        available: write ``scaling_available_frequencies`` (else only cpuinfo min/max).
    """
    sysfs, state, bin_dir = root / "sys/cpu0/cpufreq", root / "state", root / "bin"
    for d in (sysfs, state, bin_dir):
        d.mkdir(parents=True, exist_ok=True)
    if available:
        (sysfs / "scaling_available_frequencies").write_text(
            " ".join(map(str, FREQS_KHZ)) + " \n")
    (sysfs / "cpuinfo_min_freq").write_text("600000\n")
    (sysfs / "cpuinfo_max_freq").write_text("1800000\n")
    (sysfs / "scaling_governor").write_text("ondemand\n")
    (sysfs / "scaling_setspeed").write_text("1800000\n")
    (sysfs / "scaling_cur_freq").symlink_to("scaling_setspeed")
    (state / "hub").write_text("off\n")
    (state / "pkg").write_text("libedgetpu1-std\n")
    (state / "debconf").write_text("")
    (state / "calls.log").write_text("")
    for name, text in (("uhubctl", UHUBCTL), ("apt-get", APT_GET), ("sudo", SUDO),
                       ("debconf-set-selections", DEBCONF), ("dpkg-query", DPKG_QUERY)):
        script = bin_dir / name
        script.write_text(text.format(state=state))
        script.chmod(0o755)
    profile = root / "fake-pi.toml"
    profile.write_text(PROFILE.format(sysfs=sysfs, bin=bin_dir,
                                      use_sudo="true" if use_sudo else "false"))
    return FakePi(root, sysfs, state, profile)
