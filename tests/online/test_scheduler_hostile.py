"""The exported scheduler under hostile input (issue 17, section 3).

Each case runs against the real exported ``scheduler.py`` as a subprocess: stdin
and stdout pipes, a stdout nobody reads, ``| head -c 100``, and loopback TCP
clients that send garbage, never read, or vanish. Every wait is bounded; nothing
asserts how fast something happens, only that it ends and what it answered.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import json
import os
import random
import signal
import socket
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from toolkit.cube import pareto_configs
from toolkit.policy import Policy
from toolkit.scheduler import Server, export_script
from toolkit.scheduler.limits import MAX_DEPTH, MAX_INT_DIGITS, MAX_LINE_BYTES
from toolkit.scheduler.lines import LineSplitter, LineTooLong

from .conftest import toy_cube

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
#: a generous bound on any single wait (the machine is shared and loaded)
WAIT_S = 60


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    """The exported scheduler script beside a toy policy."""
    out = tmp_path_factory.mktemp("hostile")
    cube = toy_cube()
    policy = Policy.from_front(pareto_configs(cube, {"latency_ms": "min", "energy_j": "min"}),
                               cube).save(out / "policy.json")
    return export_script(out / "scheduler.py", policy)


def req(rid: str | int, deadline: float = 120) -> bytes:
    return json.dumps({"id": rid, "deadline_ms": deadline}).encode()


def many(k: int, n: int = 1000) -> bytes:
    """Requests ``r{k}.0`` .. ``r{k}.{n-1}``, one a line (cheap: a client sending fast)."""
    return b"".join(b'{"id":"r%d.%d","deadline_ms":120}\n' % (k, i) for i in range(n))


def parse(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def final_stats(stderr: bytes | str) -> dict:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    return json.loads([x for x in text.splitlines() if x.startswith("{")][-1])


def run_stdin(script: Path, data: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), "--dry-run", *args], input=data,
                          capture_output=True, timeout=WAIT_S, env=ENV, cwd=script.parent)


def drain_in_thread(stream) -> list[bytes]:
    """Read ``stream`` to its end on a thread (so a chatty process never blocks on it)."""
    chunks: list[bytes] = []
    threading.Thread(target=lambda: chunks.extend(iter(lambda: stream.read1(65536), b"")),
                     daemon=True).start()
    return chunks


class Listening:
    """The exported script serving TCP on a loopback port (stderr read on a thread)."""

    def __init__(self, script: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--dry-run", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=script.parent)
        event: dict = {}
        for _ in range(100):      # the JSON log line {"event": "listening", "host", "port"}
            line = self.proc.stderr.readline().decode()
            event = json.loads(line) if line.startswith("{") else {}
            if event.get("event") == "listening" or not line:
                break
        assert event.get("event") == "listening" and event["host"] == "127.0.0.1", line
        self.port = int(event["port"])
        self.stderr = drain_in_thread(self.proc.stderr)

    def connect(self, **opts: int) -> socket.socket:
        sock = socket.socket()
        for name, value in opts.items():
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, name), value)
        sock.settimeout(WAIT_S)
        sock.connect(("127.0.0.1", self.port))
        return sock

    def exchange(self, payload: bytes) -> list[dict]:
        """Send everything, half-close, read every answer until the server closes."""
        with self.connect() as sock:
            threading.Thread(target=lambda: (sock.sendall(payload),
                                             sock.shutdown(socket.SHUT_WR)), daemon=True).start()
            data = b"".join(iter(lambda: sock.recv(65536), b""))
        return parse(data)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=WAIT_S)
        time.sleep(0.1)
        return rc, b"".join(self.stderr).decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def unread(fd: int) -> int:
    """Bytes written to a pipe or socket ``fd`` that the other end has not read yet."""
    request = termios.FIONREAD if stat.S_ISFIFO(os.fstat(fd).st_mode) else termios.TIOCOUTQ
    return struct.unpack("i", fcntl.ioctl(fd, request, b"\0" * 4))[0]


def blocked(pid: int, progress, fd: int) -> bool:
    """Wait until process ``pid`` stops reading ``fd`` although data is waiting there.

    Blocked means: over half a second, bytes wait unread in ``fd``, ``progress()``
    stands still, the process uses no CPU time and is asleep (a process starved
    of CPU on a loaded machine is runnable, not asleep), so a slow machine is not
    mistaken for backpressure. False when that does not happen within WAIT_S.
    """
    def sample() -> tuple[int, str, int, bool]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return progress(), fields[0], int(fields[11]) + int(fields[12]), unread(fd) > 0

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        first = sample()
        time.sleep(0.5)
        last = sample()
        if last == first and last[1] == "S" and last[3]:
            return True
    return False


def idle(pid: int) -> bool:
    """Wait until process ``pid`` sleeps and uses no CPU for half a second (WAIT_S at most)."""
    def sample() -> tuple[str, int]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[11]) + int(fields[12])

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        first = sample()
        time.sleep(0.5)
        if sample() == first and first[0] == "S":
            return True
    return False


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --------------------------------------------------------------------------- line splitting


def test_line_splitter_keeps_what_follows_an_overlong_line_at_any_chunking():
    lines = [b"a" * 5, b"b" * 11, b"", b"c" * 10, b"d" * 40, b"e"]
    stream = b"\n".join(lines)                      # the last line has no newline
    expected = [b"a" * 5, LineTooLong(11), b"", b"c" * 10, LineTooLong(40), b"e"]
    rng = random.Random(0)
    for _ in range(200):
        splitter, got, pos = LineSplitter(10), [], 0
        while pos < len(stream):
            step = rng.randint(1, 15)
            got += splitter.feed(stream[pos:pos + step])
            pos += step
        got += splitter.finish()
        assert got == expected
    splitter = LineSplitter(4)
    assert splitter.feed(b"x" * 100) == [] and splitter.finish() == [LineTooLong(100)]
    assert splitter.finish() == []
    whole = LineSplitter(10)             # whole short lines in one read, then a partial one
    assert whole.feed(b"ab\n\ncd\n") == [b"ab", b"", b"cd"]
    assert whole.feed(b"ab") == [] and whole.feed(b"c\n") == [b"abc"]
    for size, want in ((9, b"x" * 9), (10, b"x" * 10), (11, LineTooLong(11))):  # the limit
        assert whole.feed(b"x" * size + b"\n") == [want]


# --------------------------------------------------------------------------- malformed lines

#: (line, what its error must say), each followed by a valid request in the payload
HOSTILE: list[tuple[bytes, str]] = [
    (b"x" * (2 << 20), f"longer than {MAX_LINE_BYTES} bytes"),
    (b" " * MAX_LINE_BYTES + b"{}", f"longer than {MAX_LINE_BYTES} bytes"),
    (b'{"id": 1, "deadline_ms": ' + b"9" * 400 + b"}", "integer with 400 digits"),
    (b'{"id": ' + b"1" * 5000 + b', "deadline_ms": 5}', "integer with 5000 digits"),
    (b"[" * 50_000, f"nested more than {MAX_DEPTH} levels"),
    (b'{"a": ' * 30 + b"1" + b"}" * 30, f"nested more than {MAX_DEPTH} levels"),
    (b'{"id": "f", "deadline_ms": 1e999}', "not finite"),
    (b'{"id": "f", "deadline_ms": NaN}', "NaN is not a valid JSON number"),
    (b'{"id": "f", "deadline_ms": -Infinity}', "-Infinity is not a valid JSON number"),
    (b'{"id": "f", "deadline_ms": 0.' + b"0" * 100 + b'1}', "at most 64 allowed"),
    (b'{"id": "f", "deadline_ms": 5, "deadline_ms": 6}', 'duplicate field "deadline_ms"'),
    (b'{"id": "\xff", "deadline_ms": 5}', "not UTF-8"),
    ('{"id": "u", "deadline_ms": 5}'.encode("utf-16"), "not UTF-8"),
    (b"\x00\x01\x02\x03", "not JSON"),
    (b"{", "not JSON"),
    (b"null", "a request is a JSON object"),
    (b'"[[[[[[[[[[[[[[["', "a request is a JSON object"),
    (json.dumps({"id": "s" * 10_000, "deadline_ms": 5}).encode(), "'id' is required"),
    (b'{"id": true, "deadline_ms": 5}', "'id' is required"),
    (b'{"id": "k1", "deadline_ms": 0}', "'deadline_ms' must be"),
    (b'{"id": "k2", "deadline_ms": 1e300}', "'deadline_ms' must be"),
    (b'{"id": "k3", "deadline_ms": true}', "'deadline_ms' must be"),
    (b'{"id": "k4", "deadline_ms": 5, "input": 1099511627776}', "'input' must be"),
    (b'{"id": "k5", "deadline_ms": 5, "input": "x\\u0000.npy"}', "'input' must be"),
    (b'{"id": "k6", "deadline_ms": 5, "input": [[1]]}', "'input' must be"),
    (json.dumps({"id": "k7", "deadline_ms": 5, **{f"f{i}": i for i in range(2000)}}).encode(),
     "unknown request field(s)"),
]

#: valid edge cases among the payload: each must be answered ``ok``
VALID_EDGES: list[bytes] = [
    b'{"id": "pad", "deadline_ms": 120}'.ljust(MAX_LINE_BYTES),   # exactly at the limit
    b'{"id": "crlf", "deadline_ms": 120}\r',
    b'{"id": "\\ud800", "deadline_ms": 120}',                     # a lone surrogate: still JSON
    b'{"id": -9223372036854775808, "deadline_ms": 1e-300}',
]


def hostile_payload() -> tuple[bytes, dict[int, str], list]:
    """Hostile lines between valid requests (and blank lines); the last one unterminated.

    Returns:
        the payload, {line number: expected error text}, the valid ids.
    """
    lines: list[bytes] = []
    errors: dict[int, str] = {}
    valid: list = []
    for k, (bad, why) in enumerate(HOSTILE):
        lines.append(req(f"v{k}"))
        valid.append(f"v{k}")
        lines.append(b"   ")
        lines.append(bad)
        errors[len(lines)] = why
    lines += VALID_EDGES
    valid += ["pad", "crlf", "\ud800", -2**63, "last"]
    lines.append(req("last"))
    return b"\n".join(lines), errors, valid


def check_answers(answers: list[dict], errors: dict[int, str], valid: list) -> None:
    ok = [a for a in answers if "status" in a]
    bad = [a for a in answers if "status" not in a]
    assert sorted(map(str, (a["id"] for a in ok))) == sorted(map(str, valid))
    assert all(a["status"] == "ok" for a in ok)
    assert sorted(a["line"] for a in bad) == sorted(errors)          # one error per bad line
    for a in bad:
        assert errors[a["line"]] in a["error"], (a, errors[a["line"]])
        assert len(json.dumps(a)) < 600                 # the bad value is not echoed whole
    by_line = {a["line"]: a for a in bad}
    assert by_line[max(errors)]["id"] == "k7"          # the id is named where it could be read


def test_every_hostile_line_gets_one_error_and_reading_goes_on(script):
    payload, errors, valid = hostile_payload()
    proc = run_stdin(script, payload)
    assert proc.returncode == 0, proc.stderr[-2000:]
    check_answers(parse(proc.stdout), errors, valid)
    stats = final_stats(proc.stderr)
    assert stats["malformed"] == len(errors) and stats["ok"] == len(valid)
    assert b"Traceback" not in proc.stderr


def test_hostile_lines_over_tcp_are_answered_the_same(script):
    server = Listening(script)
    try:
        payload, errors, valid = hostile_payload()
        check_answers(server.exchange(payload), errors, valid)
        assert len(server.exchange(req("after") + b"\n")) == 1      # the server still serves
        rc, stderr = server.stop()
        assert rc == 0 and "Traceback" not in stderr
        assert final_stats(stderr)["malformed"] == len(errors)
    finally:
        server.kill()


def test_ten_megabytes_without_newline_then_eof_ends(script):
    proc = run_stdin(script, b"7" * (10 << 20))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (answer,) = parse(proc.stdout)
    assert answer["line"] == 1 and f"longer than {MAX_LINE_BYTES}" in answer["error"]
    assert f"({10 << 20} bytes)" in answer["error"]


def test_endless_line_does_not_spin_and_sigterm_ends_it(script):
    proc = subprocess.Popen([sys.executable, str(script), "--dry-run", "--grace", "2"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV, cwd=script.parent)
    out, err = drain_in_thread(proc.stdout), drain_in_thread(proc.stderr)

    def feed() -> None:                    # stdin stays open after it
        try:
            proc.stdin.write(req("first") + b"\n" + b"z" * (10 << 20))
            proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        writer.join(WAIT_S)
        assert not writer.is_alive()        # the scheduler read the 10 MB, skipping them
        assert idle(proc.pid)                           # waits for more: no spinning,
        assert unread(proc.stdin.fileno()) == 0         # having read all 10 MB
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT_S) == 0
        time.sleep(0.1)
        assert [a["id"] for a in parse(b"".join(out))] == ["first"]   # the line never ended
        assert final_stats(b"".join(err))["signalled"] is True
    finally:
        if proc.poll() is None:
            proc.kill()


def test_number_limits_are_the_named_constants(script):
    ok_id = int("9" * 18)
    lines = [json.dumps({"id": ok_id, "deadline_ms": 100}).encode(),
             b'{"id": ' + b"1" * (MAX_INT_DIGITS + 1) + b', "deadline_ms": 100}']
    answers = sorted(parse(run_stdin(script, b"\n".join(lines)).stdout), key=lambda a: a["line"])
    assert [a.get("status") for a in answers] == ["ok", None]
    assert answers[0]["id"] == ok_id and f"{MAX_INT_DIGITS + 1} digits" in answers[1]["error"]


# --------------------------------------------------------------------------- duplicate ids


def test_duplicate_ids_in_flight_are_refused_then_reusable(script):
    server = Listening(script)
    try:
        with server.connect() as sock:
            sock.sendall(req("d") + b"\n" + req("d") + b"\n" + req(7) + b"\n"
                         + json.dumps({"id": "7", "deadline_ms": 50}).encode() + b"\n")
            got: list[dict] = []
            buf = b""
            while len(got) < 4:
                chunk = sock.recv(65536)
                assert chunk, got
                buf += chunk
                *done, buf = buf.split(b"\n")
                got += [json.loads(x) for x in done if x]
            sock.sendall(req("d") + b"\n")             # answered: the id may be used again
            again = json.loads(sock.makefile("rb").readline())
        by_line = {a["line"]: a for a in got}
        assert by_line[1]["id"] == "d" and by_line[1]["status"] == "ok"
        assert by_line[2]["id"] == "d" and "status" not in by_line[2]
        assert 'duplicate id "d"' in by_line[2]["error"] and "line 1" in by_line[2]["error"]
        assert by_line[3]["status"] == "ok" and by_line[4]["status"] == "ok"   # 7 and "7"
        assert again["id"] == "d" and again["line"] == 5 and again["status"] == "ok"
        assert server.stop()[0] == 0
    finally:
        server.kill()


# ------------------------------------------------------------------ dead and blocked outputs


def test_head_closing_stdout_ends_the_scheduler_with_an_error(script):
    proc = subprocess.Popen([sys.executable, str(script), "--dry-run"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                            cwd=script.parent)
    head = subprocess.Popen(["head", "-c", "100"], stdin=proc.stdout, stdout=subprocess.PIPE)
    proc.stdout.close()                    # only head reads the scheduler's output
    err_chunks = drain_in_thread(proc.stderr)

    def feed() -> None:                    # requests keep coming; stdin never closes
        try:
            for k in range(200):
                proc.stdin.write(many(k, 500))
                proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    try:
        out, _ = head.communicate(timeout=WAIT_S)
        assert len(out) == 100
        rc = proc.wait(timeout=WAIT_S)
        time.sleep(0.1)
        err = b"".join(err_chunks)
        assert rc == 1, err[-2000:]
        assert b"output closed" in err and b"not delivered" in err
        assert b"Traceback" not in err
    finally:
        for p in (proc, head):
            if p.poll() is None:
                p.kill()


def test_stdout_nobody_reads_slows_the_input_and_sigterm_ends_it(script):
    read_end, write_end = os.pipe()        # a sink that blocks: never read, never closed
    proc = subprocess.Popen([sys.executable, str(script), "--dry-run", "--grace", "2"],
                            stdin=subprocess.PIPE, stdout=write_end, stderr=subprocess.PIPE,
                            env=ENV, cwd=script.parent)
    os.close(write_end)
    err = drain_in_thread(proc.stderr)
    total = 40 << 20
    written = [0]

    def feed() -> None:
        k = 0
        try:
            while written[0] < total:
                chunk = many(k)
                proc.stdin.write(chunk)
                proc.stdin.flush()
                written[0] += len(chunk)
                k += 1
        except (BrokenPipeError, ValueError, OSError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    try:
        assert blocked(proc.pid, lambda: written[0], proc.stdin.fileno())
        assert written[0] < total           # the scheduler stopped reading: backpressure
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT_S) == 1          # answers could not be delivered
        time.sleep(0.1)
        text = b"".join(err).decode()
        stats = final_stats(text)
        assert stats["signalled"] is True and stats["undelivered"] > 0
        assert "Traceback" not in text
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(read_end)


# --------------------------------------------------------------------------- TCP clients


def test_client_that_never_reads_is_slowed_not_buffered_and_sigterm_ends(script):
    server = Listening(script, "--grace", "1")
    try:
        before = rss_kib(server.proc.pid)
        lazy = server.connect(SO_RCVBUF=4096, SO_SNDBUF=4096)
        cap, sent = 40 << 20, [0]

        def send() -> None:                 # requests as fast as the server takes them
            k = 0
            try:
                while sent[0] < cap:
                    chunk = many(k)
                    lazy.sendall(chunk)
                    sent[0] += len(chunk)
                    k += 1
            except OSError:
                pass

        threading.Thread(target=send, daemon=True).start()
        assert blocked(server.proc.pid, lambda: sent[0], lazy.fileno())
        assert sent[0] < cap                # the server stopped reading from this client
        grown_mib = (rss_kib(server.proc.pid) - before) / 1024
        assert grown_mib < 64, f"server memory grew {grown_mib:.0f} MiB"
        answers = server.exchange(b"\n".join(req(f"b{i}") for i in range(10)))
        assert [a["id"] for a in answers] == [f"b{i}" for i in range(10)]   # others served
        rc, stderr = server.stop()          # the lazy client is still connected
        assert rc == 0, stderr[-2000:]
        assert "Traceback" not in stderr and "CancelledError" not in stderr
        stats = final_stats(stderr)
        assert stats["signalled"] is True and stats["undelivered"] > 0
        lazy.close()
    finally:
        server.kill()


def test_client_that_vanishes_does_not_disturb_the_others(script):
    server = Listening(script)
    try:
        gone = server.connect()
        gone.sendall(many(0, 3000))
        gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        gone.close()                        # reset, with answers outstanding
        answers = server.exchange(b"\n".join(req(f"b{i}") for i in range(10)))
        assert [a["id"] for a in answers] == [f"b{i}" for i in range(10)]
        rc, stderr = server.stop()
        assert rc == 0 and "Traceback" not in stderr
    finally:
        server.kill()


def test_port_in_use_is_a_clear_start_error(script):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, str(script), "--dry-run", "--listen",
                               f"127.0.0.1:{port}"], capture_output=True, text=True,
                              timeout=WAIT_S, env=ENV, cwd=script.parent)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr


def test_closed_stdout_is_a_clear_start_error(script):
    proc = subprocess.run(["sh", "-c", f'exec "{sys.executable}" "{script}" --dry-run >&-'],
                          input=req("x"), capture_output=True, timeout=WAIT_S, env=ENV,
                          cwd=script.parent)
    assert proc.returncode == 2
    assert b"stdout is closed" in proc.stderr and b"Traceback" not in proc.stderr


# --------------------------------------------------------------------------- the server in-process


def test_connections_beyond_the_limit_get_an_error_line():
    async def handle(request):
        return {"met": True}

    async def run() -> tuple[bytes, bytes]:
        server = Server(handle, max_clients=1, log=io.StringIO())
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        serving = asyncio.create_task(server.run_tcp(
            "127.0.0.1", 0, on_listen=lambda h, p: ready.set_result(p)))
        port = await asyncio.wait_for(ready, WAIT_S)
        r1, w1 = await asyncio.open_connection("127.0.0.1", port)
        w1.write(req("one") + b"\n")
        first = await asyncio.wait_for(r1.readline(), WAIT_S)     # connection 1 is served
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        refused = await asyncio.wait_for(r2.read(), WAIT_S)      # read to EOF: closed
        w1.close()
        w2.close()
        server.shutdown()
        await asyncio.wait_for(serving, WAIT_S)
        return first, refused

    first, refused = asyncio.run(run())
    assert json.loads(first)["status"] == "ok"
    assert "too many connections (at most 1)" in json.loads(refused)["error"]


def test_second_signal_ends_at_once_even_with_a_stuck_request():
    async def handle(request):
        await asyncio.Event().wait()        # never finishes by itself
        return {}

    async def run():
        read_fd, write_fd = os.pipe()
        stdin, feeder = os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")
        feeder.write(req("stuck") + b"\n" + req("queued") + b"\n")
        feeder.flush()
        out = io.BytesIO()
        server = Server(handle, grace_s=600, log=io.StringIO())
        task = asyncio.create_task(server.run_stdin(stdin, out))
        while server.stats.accepted < 2:
            await asyncio.sleep(0.01)
        server.shutdown()
        server.shutdown()                   # the second signal
        stats = await asyncio.wait_for(task, WAIT_S)
        feeder.close()
        return stats, parse(out.getvalue())

    stats, answers = asyncio.run(run())
    assert {a["id"]: a["status"] for a in answers} == {"stuck": "cancelled",
                                                       "queued": "cancelled"}
    assert stats.cancelled == 2


@pytest.mark.parametrize(("second", "outcome"), [(b"garbage", "malformed"),
                                                 (req("late"), "cancelled")],
                         ids=["malformed", "cancelled"])
def test_a_line_refused_at_shutdown_is_counted_by_the_metrics_too(second, outcome):
    """A line waiting for its client's slot when shutdown begins is answered (an error
    line, or ``cancelled``) and counted in the Prometheus metrics as in the stats."""
    from toolkit.scheduler.metrics import Metrics

    async def handle(request):
        await asyncio.Event().wait()        # holds the client's one slot
        return {}

    async def run():
        read_fd, write_fd = os.pipe()
        stdin, feeder = os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")
        feeder.write(req("stuck") + b"\n" + second + b"\n")
        feeder.flush()
        out, metrics = io.BytesIO(), Metrics()
        server = Server(handle, grace_s=0.5, max_pending=1, observer=metrics,
                        log=io.StringIO())
        task = asyncio.create_task(server.run_stdin(stdin, out))
        while server.stats.accepted < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)            # the second line waits for the slot
        server.shutdown()
        stats = await asyncio.wait_for(task, WAIT_S)
        feeder.close()
        return stats, metrics, parse(out.getvalue())

    stats, metrics, answers = asyncio.run(run())
    assert len(answers) == 2                # every line read is answered once
    assert {a.get("id"): a.get("status") for a in answers}["stuck"] == "cancelled"
    assert getattr(stats, outcome) == (2 if outcome == "cancelled" else 1)
    counted = {o: metrics.registry.get_sample_value("dynasplit_scheduler_requests_total",
                                                    {"outcome": o})
               for o in ("malformed", "cancelled")}
    assert counted == {"malformed": stats.malformed, "cancelled": stats.cancelled}
