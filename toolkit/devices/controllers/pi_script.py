"""One remote command per configuration: the Pi's knob script and its report.

Applying a configuration knob by knob takes five or six SSH commands (read the
CPU state, write the governor and the frequency, read back, read the hub, switch
it...). :class:`KnobScript` composes all of it into one POSIX ``sh`` script that
the host runs as a single command, step by step, in the controller's order:

- ``cpu_freq``: read ``scaling_governor`` and ``scaling_cur_freq``; if they
  differ from the wanted governor and frequency, write them (``sudo -n tee --
  FILE`` where the profile asks for sudo, else a plain shell redirection) and
  read both back;
- ``tpu_power``: ``uhubctl -l LOC -p PORT -a on|off``: uhubctl prints the port's
  current state, powers the port on or off only if it differs and prints the new
  state, the read-back;
- ``tpu_mode``: ``dpkg-query -W`` for the installed runtime; if it differs,
  preseed debconf, install the runtime package and query again.

Every command is built from :func:`shlex.quote`-d parts; only the glue (``if``,
``read``, ``printf``) is fixed shell text. The script reports on standard
output in lines that start with a random token: when each step begins and ends
(the host's clock: bash's ``EPOCHREALTIME`` in microseconds where the script
runs in bash, else ``/proc/uptime``), which command it is running, the values
read and the tools' raw output. The lines are written out in one piece just
before each command runs and at the end (a few SSH packets per apply, not one
per line), so the last line received still names a command that hangs. A
failing command ends the script with the step's own exit code (``11`` + the
step's index) after a ``fail`` line naming the step, the command and its exit
status. :meth:`KnobScript.changes` turns the report into
:class:`~toolkit.devices.controllers.base.KnobChange` records and verifies each knob from
what was read back, with the same rules as before (:func:`parse_uhubctl`,
:func:`runtime_mode`).
"""

from __future__ import annotations

import logging
import posixpath
import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from toolkit.devices.controllers.base import KnobChange

if TYPE_CHECKING:
    from toolkit.devices.controllers.pi import PiSettings

__all__ = ["KnobScript", "ScriptReport", "StepReport", "parse_uhubctl", "runtime_mode"]

log = logging.getLogger(__name__)

_PORT_LINE = re.compile(r"^\s*Port\s+(\d+):\s+([0-9a-fA-F]{4})\b(.*)$")
_DPKG_FORMAT = "${Package} ${db:Status-Abbrev}\n"


def parse_uhubctl(output: str, port: int) -> bool | None:
    """Whether uhubctl's output shows ``port`` powered (the last status printed wins).

    ``Port 1: 0000 off`` → False; ``Port 1: 0503 power highspeed enable connect``
    (or a USB3 ``0203 power 5gbps U0``) → True; None when the port is not listed.
    """
    state = None
    for line in output.splitlines():
        m = _PORT_LINE.match(line)
        if m and int(m.group(1)) == port:
            words = m.group(3).split()
            if "off" in words:
                state = False
            elif "power" in words:
                state = True
            else:
                state = int(m.group(2), 16) != 0
    return state


def runtime_mode(output: str, packages: dict[str, str]) -> str | None:
    """``std`` or ``max`` from ``dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n'``
    output: the mode whose package alone is installed (``ii``); None otherwise."""
    installed = {line.split()[0] for line in output.splitlines()
                 if len(line.split()) > 1 and line.split()[1].startswith("ii")}
    modes = [mode for mode, pkg in packages.items() if pkg in installed]
    return modes[0] if len(modes) == 1 else None


# Shell glue shared by every script. Records are gathered in $R and written out in
# one piece just before each command runs (`announce`), when the script fails and
# when it ends: the report reaches the controller in a few SSH packets rather than one
# per line, and the last record received still names the command that hung.
# Every record starts with a newline so that it is always at the start of a line,
# whatever a tool printed before it.
# `rd FILE` reads FILE's first line into $v. A last line without a newline still
# counts, and so does an empty file that can be read (v is then empty): a plain
# file left empty by a write cut short (the connection died between the shell's
# truncation and printf) then reads as "unknown", so the step writes the wanted
# value again instead of failing every later try. A file that cannot be opened
# fails.
_PRELUDE = r"""now() { t=$EPOCHREALTIME; [ -n "$t" ] || read -r t _ < /proc/uptime || t=0; }
R=
NL='
'
rec() { R="$R$NL$T $*$NL"; }
blob() { R="$R$NL$T blob $1$NL$2$NL$T endblob$NL"; }
flush() { printf '%s' "$R"; R=; }
announce() { rec run "$1"; flush; }
fail() { rec fail "$STEP" "$1" "$2"; flush; exit "$CODE"; }
rd() { v=; read -r v < "$1" && return 0; [ -n "$v" ] && return 0; [ -r "$1" ] && [ ! -s "$1" ]; }
"""

def _mode_of(std: str, max_: str) -> str:
    """Shell function: md=std|max|none from dpkg-query output (runtime_mode's rules)."""
    q = shlex.quote
    return (
        "mode_of() {\n"
        "  md=; n=0\n"
        "  while read -r p s _; do\n"
        "    case $s in ii*) ;; *) continue;; esac\n"
        f"    case $p in {q(std)}) md=std; n=$((n + 1));; {q(max_)}) md=max; n=$((n + 1));; "
        "esac\n"
        "  done <<EOF\n$1\nEOF\n"
        '  [ "$n" -eq 1 ] || md=none\n'
        "}\n"
    )


@dataclass
class StepReport:
    """What one step of the script reported.

    Attributes:
        knob: ``cpu_freq``, ``tpu_power`` or ``tpu_mode``.
        changed: whether it changed the knob (False: it already had the value).
        duration_ms: the step's time on the host (read, change, read-back).
        values: values read (``before``, ``after``: lists of words).
        blobs: raw tool output (``before``, ``after``; ``out`` for uhubctl's one call).
    """

    knob: str
    changed: bool
    duration_ms: float
    values: dict[str, list[str]] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)


@dataclass
class ScriptReport:
    """The parsed report of a knob script (complete or cut short).

    Attributes:
        steps: finished steps, in order.
        failure: ``(knob, exit status, command label)`` of the command that failed.
        running: label of the last command the script started.
        unfinished: the step that began but did not end (a failure), if any.
        remote_ms: the script's time on the host, first record to last (None if
            it did not finish).
    """

    steps: list[StepReport]
    failure: tuple[str, int, str] | None = None
    running: str | None = None
    unfinished: StepReport | None = None
    remote_ms: float | None = None


def _seconds(text: str) -> float:
    return float(text.replace(",", "."))  # bash prints EPOCHREALTIME in the locale


class KnobScript:
    """Builds the one-command script for some knobs of a Pi and reads its report.

    Call :meth:`cpu_freq`, :meth:`tpu_power` and :meth:`tpu_mode` in the order the
    knobs should change, then run :attr:`text` with ``sh -c`` (or ``bash -c``).

    Args:
        settings: the Pi's profile settings (paths, programs, sudo).
        token: the report lines' prefix (default: a random one).
    """

    def __init__(self, settings: PiSettings, token: str | None = None) -> None:
        self.settings = settings
        self.token = token or uuid.uuid4().hex
        self.wanted: dict[str, str] = {}
        self._steps: list[str] = []
        self._functions: dict[str, str] = {}
        self._commands: dict[str, list[str]] = {}

    # -- building -------------------------------------------------------------------

    @staticmethod
    def _priv(sudo: str | None, argv: list[str]) -> list[str]:
        return [sudo, "-n", *argv] if sudo else argv

    def _label(self, label: str, argv: list[str]) -> str:
        """Keep ``argv`` under ``label`` (for messages); its command line, quoted."""
        self._commands[label] = [str(a) for a in argv]
        return shlex.join(self._commands[label])

    def _write(self, label: str, sudo: str | None, value: str, path: str) -> str:
        """Shell text writing ``value`` and a newline to ``path`` (as root via sudo)."""
        q = shlex.quote
        if sudo:
            tee = self._label(label, self._priv(sudo, ["tee", "--", path]))
            return f"printf '%s\\n' {q(value)} | {tee} >/dev/null"
        text = f"printf '%s\\n' {q(value)} > {q(path)}"
        self._label(label, ["sh", "-c", text])
        return text

    def _step(self, knob: str, value: str, body: list[str]) -> None:
        if knob in self.wanted:
            raise ValueError(f"knob {knob} is already in the script")
        self.wanted[knob] = value
        code = 11 + len(self._steps)
        self._steps.append("\n".join([
            f'STEP={knob} CODE={code}; now; rec begin {knob} "$t"',
            *body,
            f'now; rec end {knob} "$ch" "$t"',
        ]))

    def cpu_freq(self, mhz: int) -> None:
        """Add the CPU frequency step (``mhz`` must be one the device offers)."""
        s, q = self.settings, shlex.quote
        gov_f, cur_f, set_f = (posixpath.join(s.sysfs_cpufreq, leaf) for leaf in
                               ("scaling_governor", "scaling_cur_freq", "scaling_setspeed"))
        reads = f"rd {q(gov_f)} && gov=$v && rd {q(cur_f)} && khz=$v"
        self._label("cpu.read", ["sh", "-c", f"read -r v < {q(gov_f)}; read -r v < {q(cur_f)}"])
        read = f"announce cpu.read; {reads} || fail $? cpu.read"
        gov = q(s.governor)
        w_gov = self._write("cpu.governor", s.cpu_sudo, s.governor, gov_f)
        w_set = self._write("cpu.setspeed", s.cpu_sudo, str(int(mhz) * 1000), set_f)
        self._step("cpu_freq", str(int(mhz)), [
            read,
            'rec value before "$gov" "$khz"',
            'cur=-1; case $khz in ""|*[!0-9]*) ;; *) cur=$((khz / 1000));; esac',
            f'if [ "$gov" != {gov} ] || [ "$cur" -ne {int(mhz)} ]; then',
            "  ch=1",
            f'  if [ "$gov" != {gov} ]; then announce cpu.governor; {w_gov} '
            "|| fail $? cpu.governor; fi",
            f"  announce cpu.setspeed; {w_set} || fail $? cpu.setspeed",
            f"  {read}",
            '  rec value after "$gov" "$khz"',
            "else ch=0; fi",
        ])

    def tpu_power(self, on: bool) -> None:
        """Add the TPU power step: ``uhubctl -l LOC -p PORT -a on|off``.

        One call does it all: uhubctl prints the port's current status, sends the
        power request only to a port whose power differs (one already in that
        state is left alone) and prints the new status, the read-back.
        """
        s = self.settings
        want = "on" if on else "off"
        hub = self._priv(s.tpu_sudo, [s.uhubctl, "-l", s.hub_location, "-p", str(s.hub_port),
                                      "-a", want])
        switch = self._label("tpu.switch", hub)
        self._step("tpu_power", want, [
            f'announce tpu.switch; out=$({switch}) || fail $? tpu.switch; blob out "$out"',
            "ch=-",  # changed or not: uhubctl's "Current status" tells (see changes())
        ])

    def tpu_mode(self, mode: str) -> None:
        """Add the TPU runtime step (``std`` or ``max``: install its package if needed)."""
        s, q = self.settings, shlex.quote
        packages = dict(s.runtime_packages)
        query = self._label("mode.query",
                            [s.dpkg_query, "-W", "-f", _DPKG_FORMAT, *packages.values()])
        install = self._label("mode.install", self._priv(
            s.tpu_sudo, [a.replace("{package}", packages[mode]) for a in s.install_command]))
        switch = []
        if s.preseed:
            preseed = self._label("mode.preseed",
                                  self._priv(s.tpu_sudo, list(s.preseed_command)))
            lines = " ".join(q(line) for line in s.preseed)
            switch.append(f"  announce mode.preseed; printf '%s\\n' {lines} | {preseed} "
                          "|| fail $? mode.preseed")
        self._functions["mode_of"] = _mode_of(packages["std"], packages["max"])
        self._step("tpu_mode", mode, [
            f'announce mode.query; out=$({query}); blob before "$out"; mode_of "$out"',
            f'if [ "$md" != {q(mode)} ]; then',
            "  ch=1",
            *switch,
            f"  announce mode.install; {install} </dev/null >&2 || fail $? mode.install",
            f'  announce mode.query; out=$({query}); blob after "$out"',
            "else ch=0; fi",
        ])

    @property
    def text(self) -> str:
        """The script."""
        return "".join([
            f"T={self.token}\n", _PRELUDE, *self._functions.values(),
            'now; rec start "$t"\n', *(f"{step}\n" for step in self._steps),
            'now; rec done "$t"; flush\n',
        ])

    def command(self, label: str | None) -> str:
        """The command line behind a label (for messages); the knobs if unknown."""
        if label in self._commands:
            return shlex.join(self._commands[label])
        return f"knob script ({', '.join(self.wanted)})"

    def argv(self, label: str) -> list[str]:
        """The argv behind a label (``cpu.setspeed``, ``tpu.switch``...)."""
        return list(self._commands[label])

    # -- reading the report ---------------------------------------------------------

    def parse(self, stdout: str) -> ScriptReport:
        """Read the report lines out of the script's standard output."""
        prefix = f"{self.token} "
        end_blob = f"{self.token} endblob"
        lines = stdout.split("\n")
        report = ScriptReport([])
        step: StepReport | None = None
        begun = start = 0.0
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not line.startswith(prefix):
                continue
            kind, _, rest = line[len(prefix):].partition(" ")
            args = rest.split(" ")
            if kind == "blob":
                body = []
                while i < len(lines) and lines[i] != end_blob:
                    body.append(lines[i])
                    i += 1
                i += 1
                if step is not None:
                    step.blobs[rest] = "\n".join(body)
            elif kind == "begin":
                step, begun = StepReport(args[0], False, 0.0), _seconds(args[1])
            elif kind == "value" and step is not None:
                step.values[args[0]] = args[1:]
            elif kind == "end" and step is not None:
                step.changed = args[1] == "1"
                step.duration_ms = max(_seconds(args[2]) - begun, 0.0) * 1000.0
                report.steps.append(step)
                step = None
            elif kind == "run":
                report.running = rest
            elif kind == "fail":
                report.failure = (args[0], int(args[1]), args[2])
            elif kind == "start":
                start = _seconds(rest)
            elif kind == "done":
                report.remote_ms = max(_seconds(rest) - start, 0.0) * 1000.0
        report.unfinished = step
        return report

    def changes(self, report: ScriptReport, host: str) -> list[KnobChange]:
        """One verified :class:`KnobChange` per finished step.

        ``duration_ms`` is the step's time on the host. Verification: the CPU
        governor and frequency read back; uhubctl's last printed port state; the
        runtime package dpkg-query shows installed. A knob that does not read back
        as wanted gets ``verified=False`` and a warning.
        """
        out = []
        for step in report.steps:
            value = self.wanted[step.knob]
            if step.knob == "tpu_power":
                step.changed = self.hub_states(step)[0] != (value == "on")
            verified = self._verified(step, value)
            if not verified:
                log.warning("%s on %s: set to %s but reading it back disagrees",
                            step.knob, host, value)
            out.append(KnobChange(host, step.knob, value, step.duration_ms,
                                  changed=step.changed, verified=verified))
        return out

    def _verified(self, step: StepReport, value: str) -> bool:
        s = self.settings
        last = "after" if step.changed else "before"
        if step.knob == "cpu_freq":
            words = step.values.get(last, [])
            if len(words) < 2 or not words[1].isdigit():
                return False
            return words[0] == s.governor and int(words[1]) // 1000 == int(value)
        if step.knob == "tpu_power":
            return parse_uhubctl(step.blobs.get("out", ""), s.hub_port) == (value == "on")
        return runtime_mode(step.blobs.get(last, ""), dict(s.runtime_packages)) == value

    def hub_states(self, step: StepReport) -> tuple[bool | None, bool | None]:
        """The TPU port's power (before, after) in a ``tpu_power`` step's uhubctl output:
        the "Current status" lines, and the last status printed."""
        out = step.blobs.get("out", "")
        lines = out.splitlines()
        cut = next((i for i, line in enumerate(lines)
                    if line.startswith(("Sent power", "New status"))), len(lines))
        port = self.settings.hub_port
        return parse_uhubctl("\n".join(lines[:cut]), port), parse_uhubctl(out, port)
