"""Fan-out benchmark: apply a configuration to 16 hosts at once vs to 1 host.

Starts 17 real OpenSSH sshd servers on loopback (16 for the fan-out, 1 for the
baseline), each with its own fake Raspberry Pi (a cpufreq sysfs folder and a fake
``uhubctl``/``dpkg-query``, see ``tests/fake_pi.py``), connects a
:class:`~toolkit.devices.PiController` to each, and times applying a
configuration (CPU frequency + TPU power, alternating between two settings so
every apply really changes both knobs). Connections are opened before timing, as
a campaign keeps them open. Prints one JSON object; the figure is
``ratio_16_hosts_vs_1`` (goal: <= 2).

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


async def timed_applies(controllers: dict[str, PiController],
                        repeats: int) -> tuple[list[float], float]:
    """Wall seconds of each of ``repeats`` concurrent applies (after one warm-up), and
    this process's CPU seconds per apply (the controller's own share of the work)."""
    walls, cpu = [], 0.0
    for i in range(repeats + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        results = await apply_all(controllers, CONFIGS[i % 2], progress=False)
        wall = time.perf_counter() - start
        errors = failed(results)
        if errors:
            raise SystemExit(f"apply failed: {errors}")
        if i:
            walls.append(wall)
            cpu += time.process_time() - cpu_start
    return walls, cpu / repeats


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
    walls_1, cpu_1 = await timed_applies(one, repeats)
    walls_n, cpu_n = await timed_applies(many, repeats)
    commands = one["base"].transport.stats.commands / (repeats + 1)
    for c in [*one.values(), *many.values()]:
        await c.close()
    median_1, median_n = statistics.median(walls_1), statistics.median(walls_n)
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
        "remote_commands_per_apply": round(commands, 2),
        # every sshd, shell and command of the emulated hosts shares these cores with
        # the controller; real hosts bring their own
        "cpu_count": os.cpu_count(),
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
