"""The edge and cloud workers as real processes over real sockets."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import sys

import numpy as np
import pytest

from toolkit.aio import LOOP_ENV
from toolkit.errors import DeviceError, ToolkitError
from toolkit.models import load_digits_data
from toolkit.models.codecs import encode
from toolkit.runtime import EdgeClient, WorkerProcess, read_frame, worker_command, write_json
from toolkit.runtime.framing import write_tensor


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    cloud = WorkerProcess(worker_command("cloud", "digits-cnn"), logs / "cloud.log")
    edge = WorkerProcess(worker_command("edge", "digits-cnn"), logs / "edge.log")
    yield edge, cloud
    edge.stop()
    cloud.stop()


async def _run(edge, cloud, **kw):
    client = await EdgeClient.connect(edge.host, edge.port)
    try:
        return await client.run(cloud=(cloud.host, cloud.port), **kw)
    finally:
        await client.close()


@pytest.mark.parametrize(("split", "accel", "codec"),
                         [(0, "none", "fp32"), (3, "none", "int8"), (3, "int8", "fp16"),
                          (9, "int8", "fp32")])
def test_split_inference_across_processes(workers, split, accel, codec):
    edge, cloud = workers
    r = asyncio.run(_run(edge, cloud, split=split, edge_accel=accel, codec=codec, samples=60))
    labels = load_digits_data().y_test
    assert r.samples == 60
    assert r.accuracy(labels) >= 0.93
    t = r.timings
    np.testing.assert_allclose(t["latency_ms"], t["edge_ms"] + t["transfer_ms"] + t["cloud_ms"],
                               rtol=1e-9, atol=1e-9)
    if split == 9:  # edge only: nothing sent, no cloud time
        assert r.payload_bytes.sum() == 0 and t["cloud_ms"].sum() == 0
    else:
        assert (t["cloud_ms"] > 0).all()
        itemsize = {"fp32": 4, "fp16": 2, "int8": 1}[codec]
        expected = {0: 8 * 8 * 1, 3: 4 * 4 * 32}[split] * itemsize
        assert (r.payload_bytes == expected).all()
    if split == 0:
        assert (t["edge_ms"] < 0.05).all()  # no head runs on the edge


def test_workers_run_uvloop_where_installed_and_asyncio_when_asked(workers, tmp_path,
                                                                  monkeypatch):
    edge, cloud = workers
    assert edge.loop == cloud.loop == "uvloop"  # installed with the toolkit
    monkeypatch.setenv(LOOP_ENV, "asyncio")
    plain = [WorkerProcess(worker_command(role, "digits-cnn"), tmp_path / f"{role}.log")
             for role in ("edge", "cloud")]
    try:
        assert [w.loop for w in plain] == ["asyncio", "asyncio"]
        # the plain loop's edge talks to a plain cloud and to a uvloop cloud
        for other in (plain[1], cloud):
            r = asyncio.run(_run(plain[0], other, split=2, edge_accel="none", codec="fp32",
                                 samples=20))
            assert r.samples == 20 and (r.payload_bytes == 8 * 8 * 32 * 4).all()
            assert r.accuracy(load_digits_data().y_test) >= 0.9
    finally:
        for w in plain:
            w.stop()


def test_unknown_event_loop_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(LOOP_ENV, "tokio")
    with pytest.raises(ToolkitError, match=r"unknown event loop 'tokio'.*valid: auto, uvloop, "
                                           r"asyncio"):
        WorkerProcess(worker_command("cloud", "digits-cnn"), tmp_path / "cloud.log")


@pytest.mark.parametrize(("printed", "named"), [
    ("5", "failed to start: 5;"),                               # JSON, but no object
    ('{"event": "listening", "host": "x"}', "failed to start: {"),  # no port
    ('{"event": "listening", "port": 5}', "failed to start: {"),    # no host
    ("", "failed to start: no announcement;"),
])
def test_what_is_no_announcement_is_named_in_one_line(tmp_path, printed, named):
    # a process standing for a worker whose first line of output is not its announcement
    argv = [sys.executable, "-c", f"print({printed!r})", "worker"]
    with pytest.raises(DeviceError, match=re.escape(named)):
        WorkerProcess(argv, tmp_path / "worker.log", startup_timeout=60)


def test_link_emulation_adds_delay(workers):
    edge, cloud = workers
    r = asyncio.run(_run(edge, cloud, split=3, samples=20, link={"mbps": 1.0, "rtt_ms": 20.0}))
    # 20 ms round trip, plus 2 KiB out and the 10-class answer back at 1 Mbit/s
    request, answer = r.frame_bytes[0], 16 + 20 + 4 * 2 + 4 * 10
    floor_ms = 20.0 + (request + answer) * 8 / 1e6 * 1e3
    assert request > 2048
    # the link pads the whole transfer (encoding and decoding included) to its time
    assert (r.timings["transfer_ms"] >= floor_ms * 0.999).all()


@pytest.mark.parametrize("split", [0, 3, 9])
def test_infer_runs_the_callers_input_and_reports_top_k(workers, split):
    edge, cloud = workers
    digits = load_digits_data()
    named = asyncio.run(_run(edge, cloud, split=split, samples=4, warmup=0, top_k=3))
    assert [len(k) for k in named.extra["top_k"]] == [3] * 4
    assert [k[0][0] for k in named.extra["top_k"]] == named.predictions.tolist()
    for i in range(4):
        own = asyncio.run(_run(edge, cloud, split=split, inputs=digits.x_test[i][None],
                               top_k=10))
        assert own.samples == 1 and own.sample_index.tolist() == [-1]
        assert np.isnan(own.accuracy(digits.y_test))
        classes = [c for c, _ in own.extra["top_k"][0]]
        scores = [s for _, s in own.extra["top_k"][0]]
        assert sorted(classes) == list(range(10)) and scores == sorted(scores, reverse=True)
        assert classes[0] == own.predictions[0] == named.predictions[i]
        assert abs(sum(scores) - 1.0) < 1e-4          # the digits CNN ends in softmax
        assert (own.timings["latency_ms"] > 0).all()
    with pytest.raises(ToolkitError, match="does not fit the model's input"):
        asyncio.run(_run(edge, cloud, split=split, inputs=np.zeros((1, 9, 9, 1), np.float32)))


def test_bad_requests_get_error_replies_and_the_connection_survives(workers):
    edge, cloud = workers

    async def go():
        client = await EdgeClient.connect(edge.host, edge.port)
        try:
            with pytest.raises(ToolkitError, match=r"split 42 is out of range .*0=image"):
                await client.run(42, cloud=(cloud.host, cloud.port))
            with pytest.raises(ToolkitError, match=r"no Edge TPU head \S+-split3_edgetpu\.tflite "
                                                   r"in the worker \(no --edgetpu-dir\)"):
                await client.run(3, edge_accel="tpu-max", cloud=(cloud.host, cloud.port))
            with pytest.raises(ToolkitError, match="unknown codec"):
                await client.run(3, codec="zip", cloud=(cloud.host, cloud.port))
            return (await client.ping())["n_splits"]
        finally:
            await client.close()

    assert asyncio.run(go()) == 10


def _raw(host, port, data: bytes) -> bytes:
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


PREFIX = struct.Struct("!2sBBIQ")


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("truncated", PREFIX.pack(b"DS", 1, 2, 30, 1000)[:10], "truncated frame"),
    ("wrong version", PREFIX.pack(b"DS", 9, 1, 2, 0) + b"{}", "unsupported protocol version 9"),
    ("oversized header", PREFIX.pack(b"DS", 1, 1, 1 << 20, 0), "oversized header"),
    ("bad magic", b"GET / HTTP/1.1\r\n\r\n", "bad magic"),
])
def test_protocol_errors_close_only_that_connection(workers, name, data, reason):
    edge, cloud = workers
    for worker in (cloud, edge):
        assert _raw(worker.host, worker.port, data) == b""  # closed without an answer
        assert worker.alive()
        assert reason in worker.log_path.read_text()
    # both workers still serve a real request
    r = asyncio.run(_run(edge, cloud, split=2, samples=5))
    assert r.samples == 5


def test_cloud_refuses_tensors_before_configure(workers):
    _, cloud = workers

    async def go():
        reader, writer = await asyncio.open_connection(cloud.host, cloud.port)
        write_tensor(writer, encode(np.zeros((1, 8, 8, 1), np.float32)), 1)
        await writer.drain()
        closed = await read_frame(reader)
        writer.close()
        reader2, writer2 = await asyncio.open_connection(cloud.host, cloud.port)
        write_json(writer2, {"op": "configure", "split": 99})
        await writer2.drain()
        reply = await read_frame(reader2)
        writer2.close()
        return closed, reply.message

    closed, reply = asyncio.run(go())
    assert closed is None
    assert reply["op"] == "error" and "out of range" in reply["message"]
    assert "tensor received before 'configure'" in cloud.log_path.read_text()


def test_worker_failing_to_start_says_why(tmp_path):
    with pytest.raises(ToolkitError, match="unknown model 'nope'"):
        WorkerProcess(worker_command("cloud", "nope"), tmp_path / "bad.log")


def test_workers_the_memory_cannot_hold_are_refused_before_any_starts():
    import psutil

    from toolkit.errors import ConfigError
    from toolkit.runtime.session import WORKER_BYTES, check_worker_memory

    check_worker_memory(1, "one worker")  # always fits: the machine runs this test
    fits = psutil.virtual_memory().available // WORKER_BYTES
    with pytest.raises(ConfigError, match=rf"two studies need {fits + 100} worker processes, at "
                                          r"least .* GiB .*; this machine has .* available"):
        check_worker_memory(fits + 100, "two studies")
