"""Load generator for the scheduler service (used by ``benchmarks/scheduler.py``).

Starts the scheduler script as its own process in ``--dry-run`` on loopback,
with TLS (a self-signed certificate made here) and a bearer token, or plain,
and drives it from this process with concurrent pipelining clients.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import psutil

from toolkit.aio import event_loop, run

ROOT = Path(__file__).resolve().parent.parent


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (the client trusts the certificate itself)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def start(policy: Path, extra: list[str], env: dict[str, str], profile: str | None = None
          ) -> tuple[subprocess.Popen, int]:
    """The scheduler in --dry-run on 127.0.0.1, and the port it announced."""
    prof = ["-m", "cProfile", "-o", profile] if profile else []
    proc = subprocess.Popen(
        [sys.executable, *prof, "-m", "toolkit.scheduler.script", "--policy", str(policy),
         "--dry-run", "--listen", "127.0.0.1:0", "--queue", "4096", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=env, cwd=ROOT)
    for line in proc.stderr:
        event = json.loads(line)
        if event.get("event") == "listening":
            return proc, int(event["port"])
    raise RuntimeError(f"the scheduler did not start (exit {proc.wait()})")


class Pipelining(asyncio.Protocol):
    """One client connection on callbacks (``--client protocol``): for each answer
    line read, the time since its request was written, and one more request sent.

    Leaner than the stream client (no task, no reader): the load generator shares
    the cores with the server, so what it spends is taken from the server.
    """

    def __init__(self, c: int, per_client: int, deadlines: list[str]) -> None:
        self.c, self.per_client, self.deadlines = c, per_client, deadlines
        self.done = asyncio.get_running_loop().create_future()
        self.latencies = np.empty(per_client)
        self.sent: deque[float] = deque()
        self.n_sent = self.n_done = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, k: int) -> None:
        """Write the next ``k`` requests (fewer at the end), stamped now."""
        k = min(k, self.per_client - self.n_sent)
        if k <= 0 or self.transport is None:
            return
        n, c, deadlines = self.n_sent, self.c, self.deadlines
        now = time.perf_counter()
        self.transport.write("".join(f'{{"id":{n + i},' + deadlines[(n + i + c) % 97]
                                     for i in range(k)).encode())
        self.sent.extend([now] * k)
        self.n_sent += k

    def data_received(self, data: bytes) -> None:
        k = data.count(b"\n")
        now = time.perf_counter()
        popleft, mine = self.sent.popleft, self.latencies
        for i in range(self.n_done, self.n_done + k):
            mine[i] = now - popleft()
        self.n_done += k
        if self.n_done >= self.per_client:
            if not self.done.done():
                self.done.set_result(mine)
            if self.transport is not None:
                self.transport.close()
        else:
            self.send(k)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError("the scheduler closed a connection"))


async def drive_protocol(port: int, clients: int, window: int, per_client: int,
                         context: ssl.SSLContext | None, token: str | None
                         ) -> tuple[float, np.ndarray]:
    """As :func:`drive`, with :class:`Pipelining` connections."""
    loop = asyncio.get_running_loop()
    deadlines = [f'"deadline_ms":{d}}}\n' for d in np.linspace(60, 2400, 97).round(1)]
    conns: list[Pipelining] = []
    for c in range(clients):
        transport, conn = await loop.create_connection(
            lambda c=c: Pipelining(c, per_client, deadlines), "127.0.0.1", port, ssl=context,
            server_hostname="127.0.0.1" if context else None)
        if token:
            transport.write(f"Bearer {token}\n".encode())
        conns.append(conn)
    t0 = time.perf_counter()
    for conn in conns:
        conn.send(window)
    latencies = await asyncio.gather(*(conn.done for conn in conns))
    return time.perf_counter() - t0, np.concatenate(latencies)


async def drive(port: int, clients: int, window: int, per_client: int,
                context: ssl.SSLContext | None, token: str | None) -> tuple[float, np.ndarray]:
    """(seconds, per-request latencies in s) of ``clients`` pipelining connections."""
    latencies: list[np.ndarray] = []
    deadlines = [f'"deadline_ms":{d}}}\n' for d in np.linspace(60, 2400, 97).round(1)]
    ready = asyncio.Event()
    connected = 0

    async def client(c: int) -> None:
        nonlocal connected
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1" if context else None,
            limit=1 << 20)
        if token:
            writer.write(f"Bearer {token}\n".encode())
        connected += 1
        if connected == clients:
            ready.set()
        await ready.wait()
        clock = time.perf_counter
        sent: deque[float] = deque()
        mine = np.empty(per_client)
        n_sent = n_done = 0

        def send(k: int) -> None:
            nonlocal n_sent
            k = min(k, per_client - n_sent)
            if k <= 0:
                return
            now = clock()
            writer.write("".join(f'{{"id":{n_sent + i},' + deadlines[(n_sent + i + c) % 97]
                                 for i in range(k)).encode())
            sent.extend([now] * k)
            n_sent += k

        send(window)
        while n_done < per_client:
            chunk = await reader.read(1 << 16)
            if not chunk:
                raise RuntimeError("the scheduler closed a connection")
            k = chunk.count(b"\n")
            now = clock()
            for i in range(n_done, n_done + k):
                mine[i] = now - sent.popleft()
            n_done += k
            send(k)
        latencies.append(mine)
        writer.close()

    tasks = [asyncio.create_task(client(c)) for c in range(clients)]
    await ready.wait()
    t0 = time.perf_counter()
    await asyncio.gather(*tasks)
    return time.perf_counter() - t0, np.concatenate(latencies)


def measure(policy: Path, folder: Path, *, tls: bool, clients: int, window: int,
            requests: int, profile: str | None = None,
            client_loop: str | None = None, client: str = "protocol") -> dict[str, float]:
    """One run against a fresh scheduler process; the clients run on ``client_loop``
    (``auto``: uvloop where installed, ``asyncio`` or ``uvloop``; None: the
    ``DYNASPLIT_LOOP`` environment variable, else ``auto``; see
    :func:`toolkit.aio.run`), as stream clients
    (:func:`drive`) or ``protocol`` ones (:func:`drive_protocol`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    extra, context, token = [], None, None
    if tls:
        cert, key = self_signed(folder)
        token = secrets.token_hex(32)
        env["DYNASPLIT_SCHEDULER_TOKEN"] = token
        extra = ["--tls-cert", str(cert), "--tls-key", str(key)]
        context = ssl.create_default_context(cafile=str(cert))
    proc, port = start(policy, extra, env, profile)
    server = psutil.Process(proc.pid)
    try:
        per_client = max(1, requests // clients)
        cpu0, own0 = server.cpu_times(), time.process_time()
        driver = drive_protocol if client == "protocol" else drive
        seconds, lat = run(driver(port, clients, window, per_client, context, token),
                           client_loop)
        cpu1, own1 = server.cpu_times(), time.process_time()
    finally:
        proc.terminate()
        proc.wait(30)
    server_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {"requests_per_s": round(len(lat) / seconds),
            "server_cpu_us_per_request": round(server_cpu / len(lat) * 1e6, 1),
            "client_cpu_us_per_request": round((own1 - own0) / len(lat) * 1e6, 1),
            "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 3),
            "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3),
            "requests": len(lat), "seconds": round(seconds, 3)}


def service_figures(policy: Path, folder: Path, *, clients: int = 50, window: int = 1,
                    requests: int = 100_000, repeats: int = 3, client_loop: str | None = None,
                    client: str = "protocol") -> dict:
    """TLS + token figures (the issue's keys) with the plain-TCP ones beside them.

    Each is measured ``repeats`` times on a fresh server, TLS and plain taking
    turns; every figure reported is the median over the repeats (the runs
    themselves under ``runs``), so that one run disturbed by another process on
    the shared cores does not make the result.
    """
    runs: dict[str, list[dict[str, float]]] = {"tls_token": [], "plain_tcp": []}
    for _ in range(repeats):
        for name, tls in (("tls_token", True), ("plain_tcp", False)):
            runs[name].append(measure(policy, folder, tls=tls, clients=clients, window=window,
                                      requests=requests, client_loop=client_loop,
                                      client=client))
    median = {name: {key: float(np.median([r[key] for r in rs])) for key in rs[0]}
              for name, rs in runs.items()}
    secure = median["tls_token"]
    return {"service_requests_per_s": round(secure["requests_per_s"]),
            "service_p99_ms": secure["p99_ms"], "service_p50_ms": secure["p50_ms"],
            "tls_token": {**median["tls_token"], "runs": runs["tls_token"]},
            "plain_tcp": {**median["plain_tcp"], "runs": runs["plain_tcp"]},
            "clients": clients, "window": window, "repeats": repeats,
            "client_loop": event_loop(client_loop), "client": client,
            "load_average": round(os.getloadavg()[0], 2)}
