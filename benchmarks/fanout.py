"""Fan-out benchmark: apply a configuration to 16 hosts at once vs to 1 host.

Starts 17 real OpenSSH sshd servers on loopback (16 for the fan-out, 1 for the
baseline), each with its own fake Raspberry Pi (a cpufreq sysfs folder and a fake
``uhubctl``/``dpkg-query``, see ``tests/fake_pi.py``), connects a
:class:`~toolkit.devices.PiController` to each, and times applying a
configuration (CPU frequency + TPU power, alternating between two settings so
every apply really changes both knobs). Connections are opened before timing, as
a campaign keeps them open. Prints one JSON object; the figure is
``ratio_16_hosts_vs_1`` (goal: <= 2).

On loopback the emulated hosts' work (sshd, shells, the fake tools) runs on this
machine's cores next to the controller; real hosts bring their own. The JSON
therefore also reports the CPU time the emulated hosts used per apply
(``host_cpu_s_per_apply_per_host``, summed over each sshd's process tree) and
``cpu_bound_ratio``: the ratio that this CPU work alone forces on ``cpu_count``
cores (16 hosts' host and controller CPU spread perfectly over the cores, over
the 1-host wall time).

Where every host has its own CPU, as on a real testbed, only the controller's
share is serial (one event loop). ``own_cores_ratio_range`` estimates the ratio
there from the figures measured here: from full overlap of the controller's CPU
for 16 hosts with one host's own work (``max(controller CPU, 1-host wall)``) to
none at all (controller CPU for 16 hosts plus one host's own part of the 1-host
wall), over the 1-host wall. It is an estimate, labelled as one; the measured
figure is ``ratio_16_hosts_vs_1``.

Run (as root, with openssh-server installed)::

    .venv/bin/python benchmarks/fanout.py [--hosts 16] [--repeats 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import psutil  # noqa: E402
from fake_pi import make_fake_pi  # noqa: E402
from sshd_fixture import _UNSHARE, SshServer, sshd_available  # noqa: E402

from toolkit.config import Config  # noqa: E402
from toolkit.devices import (  # noqa: E402
    Host,
    PiController,
    SshTransport,
    apply_all,
    failed,
    load_profile,
)

CONFIGS = (Config("digits-cnn", 1, 1200, "tpu-std", "none"),
           Config("digits-cnn", 1, 1600, "none", "none"))


def controller(server: SshServer, name: str, root: Path) -> PiController:
    fake = make_fake_pi(root)
    host = Host(name=name, address="127.0.0.1", port=server.port, user=server.user,
                identity_file=server.client_key, known_hosts=server.known_hosts,
                roles=("edge",), profile=load_profile(fake.profile_path))
    return PiController(SshTransport(host))


def host_cpu_s(servers: list[SshServer]) -> float:
    """CPU seconds used so far by the emulated hosts: every process of each sshd's tree,
    plus the children they have reaped (a process's time moves to its parent's
    children times when it ends, so nothing is counted twice)."""
    total = 0.0
    for server in servers:
        if server.proc is None:
            continue
        try:
            root = psutil.Process(server.proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in tree:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


async def timed_applies(controllers: dict[str, PiController], servers: list[SshServer],
                        repeats: int) -> tuple[list[float], float, float]:
    """Wall seconds of each of ``repeats`` concurrent applies (after one warm-up), this
    process's CPU seconds per apply (the controller's own share of the work) and the
    emulated hosts' CPU seconds per apply."""
    walls, cpu, host_cpu = [], 0.0, 0.0
    for i in range(repeats + 1):
        host_start = host_cpu_s(servers)
        start, cpu_start = time.perf_counter(), time.process_time()
        results = await apply_all(controllers, CONFIGS[i % 2], progress=False)
        wall = time.perf_counter() - start
        cpu_end = time.process_time()
        errors = failed(results)
        if errors:
            raise SystemExit(f"apply failed: {errors}")
        if i:
            walls.append(wall)
            cpu += cpu_end - cpu_start
            host_cpu += host_cpu_s(servers) - host_start
    return walls, cpu / repeats, host_cpu / repeats


async def main_async(servers: list[SshServer], root: Path, repeats: int) -> dict:
    one = {"base": controller(servers[0], "base", root / "base")}
    many = {f"pi{i}": controller(s, f"pi{i}", root / f"pi{i}")
            for i, s in enumerate(servers[1:])}
    start = time.perf_counter()
    await asyncio.gather(*(c.transport.connect() for c in one.values()))
    connect_1 = time.perf_counter() - start
    start = time.perf_counter()
    await asyncio.gather(*(c.transport.connect() for c in many.values()))
    connect_n = time.perf_counter() - start
    walls_1, cpu_1, host_1 = await timed_applies(one, servers[:1], repeats)
    walls_n, cpu_n, host_n = await timed_applies(many, servers[1:], repeats)
    commands = one["base"].transport.stats.commands / (repeats + 1)
    for c in [*one.values(), *many.values()]:
        await c.close()
    median_1, median_n = statistics.median(walls_1), statistics.median(walls_n)
    cores = os.cpu_count() or 1
    return {
        "benchmark": "fanout",
        "hosts": len(many),
        "repeats": repeats,
        "wall_s_1_host": round(median_1, 4),
        f"wall_s_{len(many)}_hosts": round(median_n, 4),
        f"ratio_{len(many)}_hosts_vs_1": round(median_n / median_1, 3),
        "walls_s_1_host": [round(w, 4) for w in walls_1],
        f"walls_s_{len(many)}_hosts": [round(w, 4) for w in walls_n],
        "connect_s_1_host": round(connect_1, 4),
        f"connect_s_{len(many)}_hosts": round(connect_n, 4),
        "client_cpu_s_per_apply_1_host": round(cpu_1, 4),
        f"client_cpu_s_per_apply_{len(many)}_hosts": round(cpu_n, 4),
        "host_cpu_s_per_apply_1_host": round(host_1, 4),
        f"host_cpu_s_per_apply_{len(many)}_hosts": round(host_n, 4),
        "host_cpu_s_per_apply_per_host": round(host_n / len(many), 4),
        "cpu_bound_ratio": round((host_n + cpu_n) / cores / median_1, 3),
        "controller_cpu_s_per_host_per_apply": round(cpu_n / len(many), 5),
        # an estimate, not a measurement: see the module's docstring
        "own_cores_ratio_range": [round(max(cpu_n, median_1) / median_1, 3),
                                  round((cpu_n + median_1 - min(cpu_1, median_1)) / median_1, 3)],
        "remote_commands_per_apply": round(commands, 2),
        # every sshd, shell and command of the emulated hosts shares these cores with
        # the controller; real hosts bring their own
        "cpu_count": cores,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "login_shell": "/bin/sh" if _UNSHARE else "the user's own (rc files included)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    reason = sshd_available()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        root = Path(tmp)
        servers = []
        try:
            for i in range(args.hosts + 1):
                servers.append(SshServer(root / f"sshd{i}").start())
            result = asyncio.run(main_async(servers, root, args.repeats))
        finally:
            for s in servers:
                s.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
