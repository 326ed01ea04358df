"""The scheduler: protocol, the exported script as a subprocess (dry run, live on the
local testbed, 50 000 requests, TCP), malformed lines, timeouts, backpressure and
graceful shutdown."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit.cli import main
from toolkit.errors import ToolkitError
from toolkit.policy import Policy
from toolkit.scheduler import Server, parse_listen, parse_request
from toolkit.scheduler.protocol import Request, RequestError

from .conftest import requests

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


MALFORMED = [
    "not json",
    "[1, 2]",
    json.dumps({"deadline_ms": 100}),
    json.dumps({"id": "x1", "deadline_ms": -5}),
    json.dumps({"id": "x2", "deadline_ms": "fast"}),
    json.dumps({"id": "x3", "deadline_ms": 100, "input": "cat.png"}),
    json.dumps({"id": "x4", "deadline_ms": 100, "priority": 1}),
    json.dumps({"id": True, "deadline_ms": 100}),
]


def listening_port(proc: subprocess.Popen) -> int:
    """The port a scheduler announced in its JSON log ("listening")."""
    while line := proc.stderr.readline():
        event = json.loads(line)
        if event.get("event") == "listening":
            assert event["host"] == "127.0.0.1", event
            return int(event["port"])
    raise AssertionError(f"no 'listening' log line; exit {proc.wait()}")


def outcomes(text: str) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [x for x in lines if "status" in x], [x for x in lines if "error" in x
                                                 and "status" not in x]


@pytest.fixture()
def exported(toy, tmp_path):
    """An exported scheduler script beside its policy (via the CLI)."""
    _, cube_path, front_path, _ = toy
    out = tmp_path / "export"
    assert main(["export", str(front_path), "--cube", str(cube_path),
                 "-o", str(out / "policy.json"), "--script", str(out / "scheduler.py")]) == 0
    return out / "scheduler.py"


# --------------------------------------------------------------------------- protocol


def test_parse_request():
    r = parse_request('{"id": "a", "deadline_ms": 12.5, "input": 3}', line=4)
    assert r == Request("a", 12.5, 3, None, 4)
    r = parse_request(b'{"id": 7, "deadline_ms": 100, "input": "x/in.npy"}')
    assert r.sample is None and r.path == Path("x/in.npy")
    assert parse_request('{"id": 1, "deadline_ms": 1}').sample == 0
    for line in MALFORMED:
        with pytest.raises(RequestError):
            parse_request(line)
    with pytest.raises(RequestError) as info:
        parse_request('{"id": "k", "deadline_ms": 0}')
    assert info.value.request_id == "k"
    assert parse_listen("8700") == ("127.0.0.1", 8700)
    assert parse_listen("0.0.0.0:1") == ("0.0.0.0", 1)
    with pytest.raises(ToolkitError, match="HOST:PORT"):
        parse_listen("localhost")


# --------------------------------------------------------------------------- the exported script


def test_exported_script_is_standalone_and_uses_its_policy(exported):
    text = exported.read_text()
    assert 'POLICY_FILE = "policy.json"' in text
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert all(line.split()[1].split(".")[0] in {"__future__", "argparse", "asyncio", "sys",
                                                "pathlib", "typing", "time",
                                                "toolkit"}
               for line in imports), imports
    assert len(text.splitlines()) < 200
    assert os.access(exported, os.X_OK)


def test_dry_run_answers_every_request_once(exported):
    lines = requests(300)
    lines[50:50] = MALFORMED
    proc = subprocess.run([sys.executable, str(exported), "--dry-run"], input="\n".join(lines),
                          capture_output=True, text=True, timeout=120, env=ENV,
                          cwd=exported.parent.parent)
    assert proc.returncode == 0, proc.stderr
    done, errors = outcomes(proc.stdout)
    assert sorted(o["id"] for o in done) == sorted(f"r{i}" for i in range(300))
    assert len(errors) == len(MALFORMED)
    assert {e.get("id") for e in errors} >= {"x1", "x2", "x3", "x4"}
    policy = Policy.load(exported.with_name("policy.json"))
    for o in done:
        assert o["status"] == "ok" and o["measured"] is False
        assert o["config"] in policy.configs
        assert o["energy_source"] == "model:test"
        assert o["met"] == (o["predicted_ms"] <= o["deadline_ms"])
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    assert stats["accepted"] == 300 and stats["malformed"] == len(MALFORMED)


def test_dry_run_load_50000_requests_none_lost(exported):
    text = "\n".join(requests(50_000)) + "\n"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(exported), "--dry-run", "--queue", "256"],
                          input=text, capture_output=True, text=True, timeout=300, env=ENV)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    done, errors = outcomes(proc.stdout)
    assert not errors
    ids = [o["id"] for o in done]
    assert len(ids) == 50_000 and len(set(ids)) == 50_000
    print(f"50 000 dry-run requests in {elapsed:.1f} s")


def test_tcp_serves_and_stops_on_sigterm(exported):
    proc = subprocess.Popen([sys.executable, str(exported), "--dry-run", "--listen",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    try:
        port = listening_port(proc)
        answers = []
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            payload = "\n".join([*requests(100), "garbage"]) + "\n"
            sock.sendall(payload.encode())
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            answers = data.decode().splitlines()
        done, errors = outcomes("\n".join(answers))
        assert len(done) == 100 and len(errors) == 1
        assert sorted(o["id"] for o in done) == sorted(f"r{i}" for i in range(100))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        stats = json.loads(proc.stderr.read().strip().splitlines()[-1])
        assert stats["signalled"] and stats["accepted"] == 100
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_live_batch_on_the_local_testbed(live_run):
    assert live_run.returncode == 0, live_run.stderr[-2000:]
    done, errors = outcomes(live_run.stdout)
    assert not errors
    # every request answered once (the inline inputs of test_service.py were sent too)
    assert sorted(o["id"] for o in done) == sorted(json.loads(x)["id"] for x in live_run.sent)
    by_id = live_run.answers
    assert by_id["file"]["status"] == "failed" and "does not exist" in by_id["file"]["error"]
    policy = Policy.load(live_run.policy)
    freqs = []
    for i in range(20):
        o = by_id[f"r{i}"]
        assert o["status"] == "ok", o
        assert o["measured"] is True and o["config"] in policy.configs
        assert o["energy_source"].startswith("model:raspberry-pi-4")
        assert o["latency_ms"] > 0 and o["energy_j"] > 0
        assert o["met"] == (o["latency_ms"] <= o["deadline_ms"])
        # the emulated testbed takes the profile's time to change the frequency, and the
        # request pays it (served in order, one at a time)
        assert o["latency_ms"] == pytest.approx(o["inference_ms"] + o["switch_ms"], abs=0.01)
        freqs.append(o["config"]["cpu_freq"])
        if i and freqs[-1] != freqs[-2]:   # (a timer may fire a clock tick early)
            assert o["switch_ms"] > policy.costs["cpu_freq_ms"] - 0.5, o
        elif i:
            assert o["switch_ms"] == 0.0, o
    assert len(set(freqs)) > 1, "the batch should make the policy change frequency"


# --------------------------------------------------------------------------- server machinery


def _pipe_with(lines: list[str]):
    read_fd, write_fd = os.pipe()
    writer = os.fdopen(write_fd, "wb")
    return os.fdopen(read_fd, "rb"), writer


class Sink:
    """Collects what the server writes to 'stdout'."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def flush(self) -> None:
        pass

    def lines(self) -> list[dict]:
        return [json.loads(x) for x in self.data.decode().splitlines()]


def test_timeout_reports_and_the_next_request_waits_for_the_testbed():
    spans: dict = {}

    async def handle(request):
        start = time.perf_counter()
        await asyncio.sleep(0.4 if request.id == "slow" else 0.01)
        spans[request.id] = (start, time.perf_counter())
        return {"met": True}

    async def run():
        stdin, writer = _pipe_with([])
        writer.write(b'{"id": "slow", "deadline_ms": 5}\n{"id": "next", "deadline_ms": 5}\n')
        writer.close()
        sink = Sink()
        server = Server(handle, timeout_s=0.1, log=io.StringIO())
        await server.run_stdin(stdin, sink)
        return sink.lines(), server.stats

    lines, stats = asyncio.run(run())
    status = {x["id"]: x["status"] for x in lines}
    assert status == {"slow": "timeout", "next": "ok"}
    assert spans["next"][0] >= spans["slow"][1]      # never two runs on the testbed at once
    assert stats.timeout == 1 and stats.ok == 1


def test_backpressure_bounds_what_is_read_ahead():
    gate_holder: dict = {}

    async def handle(request):
        await gate_holder["gate"].wait()
        return {"met": False}

    async def run():
        gate_holder["gate"] = asyncio.Event()
        stdin, writer = _pipe_with([])
        writer.write(("\n".join(requests(50)) + "\n").encode())
        writer.close()
        sink = Sink()
        server = Server(handle, queue_size=2, log=io.StringIO())
        task = asyncio.create_task(server.run_stdin(stdin, sink))
        await asyncio.sleep(0.3)
        held = server.stats.accepted
        gate_holder["gate"].set()
        await task
        return held, sink.lines()

    held, lines = asyncio.run(run())
    assert held <= 3                                   # one running + a full queue of 2
    assert sorted(x["id"] for x in lines) == sorted(f"r{i}" for i in range(50))


def test_handler_failure_is_reported_and_serving_goes_on():
    async def handle(request):
        if request.id == "r3":
            raise ToolkitError("edge worker went away")
        return {"met": True}

    async def run():
        stdin, writer = _pipe_with([])
        writer.write(("\n".join(requests(6)) + "\n").encode())
        writer.close()
        sink = Sink()
        await Server(handle, log=io.StringIO()).run_stdin(stdin, sink)
        return sink.lines()

    lines = {x["id"]: x for x in asyncio.run(run())}
    assert lines["r3"]["status"] == "failed" and "went away" in lines["r3"]["error"]
    assert all(lines[f"r{i}"]["status"] == "ok" for i in (0, 1, 2, 4, 5))


@pytest.mark.parametrize("grace_s", [30.0, 0.3])
def test_sigterm_finishes_or_reports_every_accepted_request(grace_s):
    async def handle(request):
        await asyncio.sleep(0.02)
        return {"met": True}

    async def run():
        stdin, writer = _pipe_with([])
        writer.write(("\n".join(requests(200)) + "\n").encode())   # stdin stays open
        writer.flush()
        sink = Sink()
        server = Server(handle, queue_size=64, grace_s=grace_s, log=io.StringIO())
        task = asyncio.create_task(server.run_stdin(stdin, sink))
        await asyncio.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)
        stats = await asyncio.wait_for(task, 30)
        writer.close()
        return stats, sink.lines()

    stats, lines = asyncio.run(run())
    ids = [int(x["id"][1:]) for x in lines]
    assert sorted(ids) == list(range(len(ids)))          # one answer per line read, no gaps
    unqueued = [x for x in lines if x.get("error") == "shutdown before it was queued"]
    accepted = [x for x in lines if x not in unqueued]
    assert len(unqueued) <= 1                            # the line waiting for queue room
    assert len(accepted) == stats.accepted and 0 < stats.accepted < 200
    statuses = {x["status"] for x in accepted}
    if grace_s >= 30:
        assert statuses == {"ok"}                        # finished every accepted request
    else:
        assert statuses == {"ok", "cancelled"}           # grace ran out: the rest reported


def test_dynasplit_schedule_runs_the_same_code(toy, capsys):
    _, _, _, policy_path = toy
    lines = [*requests(10), requests(1, start=9)[0],     # r9 again while still in flight
             "x" * (2 << 20), '{"id": 1, "deadline_ms": ' + "9" * 400 + "}", "[" * 50_000,
             *requests(1, start=10)]
    proc = subprocess.run([sys.executable, "-m", "toolkit", "schedule", str(policy_path),
                           "--dry-run"], input="\n".join(lines), capture_output=True,
                          text=True, timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    done, errors = outcomes(proc.stdout)
    assert sorted(o["id"] for o in done) == sorted(f"r{i}" for i in range(11))
    errors = {e["line"]: e["error"] for e in errors}
    assert sorted(errors) == [11, 12, 13, 14]
    assert 'duplicate id "r9"' in errors[11] and "longer than" in errors[12]
    assert "400 digits" in errors[13] and "nested" in errors[14]
    assert main(["schedule", "missing.json", "--dry-run"]) == 2
    assert "policy file missing.json does not exist" in capsys.readouterr().err
