"""The scheduler as a network service: real inputs, token and TLS, metrics, health, logs.

Servers are the exported script as real processes on loopback; certificates and
tokens are made in ``tmp_path`` at test time.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest

from toolkit.models.codecs import encode as encode_tensor
from toolkit.runtime.framing import FRAME_PREFIX, KIND_TENSOR, MAGIC, TENSOR_HEADER, VERSION
from toolkit.scheduler import export_script
from toolkit.scheduler.auth import TOKEN_ENV, Guard, load_token
from toolkit.scheduler.frames import BadFrame, RequestSplitter, TensorRequest, request_from_frame
from toolkit.scheduler.inputs import InputError, Preprocessor, decode_image, decode_npy
from toolkit.scheduler.lines import LineTooLong
from toolkit.scheduler.metrics import Metrics
from toolkit.scheduler.protocol import RequestError, parse_request

from .certs import make_pki
from .conftest import npy_b64, png_b64

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
TOKEN = "s3cret-token-" + "7f" * 16


# --------------------------------------------------------------------------- helpers


def tensor_frame(meta: dict, array: np.ndarray) -> bytes:
    """A request as a tensor frame of the runtime's framing."""
    enc = encode_tensor(np.ascontiguousarray(array, np.float32), "fp32")
    extra = json.dumps(meta).encode()
    header = (TENSOR_HEADER.pack(0, 0, len(enc.shape), enc.scale, enc.zero_point)
              + b"".join(d.to_bytes(4, "big") for d in enc.shape) + extra)
    payload = bytes(memoryview(enc.payload))
    prefix = FRAME_PREFIX.pack(MAGIC, VERSION, KIND_TENSOR, len(header), len(payload))
    return prefix + header + payload


class Running:
    """A scheduler process; its stderr (JSON lines) collected on a thread."""

    def __init__(self, argv: list[str], env: dict | None = None, cwd: Path | None = None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env or ENV, cwd=cwd)
        self.log: list[str] = []
        self._ready = threading.Event()
        self.ports: dict[str, int] = {}
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line)
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "metrics listening":
                self.ports["metrics"] = event["port"]
            if event.get("event") == "listening":
                self.ports["tcp"] = event["port"]
                self._ready.set()
        self._ready.set()

    def wait_ready(self) -> int:
        assert self._ready.wait(120), "no 'listening' line"
        assert "tcp" in self.ports, "".join(self.log)
        return self.ports["tcp"]

    def events(self) -> list[dict]:
        out = []
        for line in self.log:
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def talk(port: int, payload: bytes, n_answers: int, context: ssl.SSLContext | None = None
         ) -> list[dict]:
    """Send ``payload``, read up to ``n_answers`` lines (or to EOF)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
    data = b""
    with sock:
        sock.sendall(payload)
        while data.count(b"\n") < n_answers:
            try:
                chunk = sock.recv(65536)
            except (ConnectionError, ssl.SSLError):
                break
            if not chunk:
                break
            data += chunk
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def requests(n: int, start: int = 0) -> bytes:
    return "".join(json.dumps({"id": f"r{i}", "deadline_ms": 100 + i, "input": i % 7}) + "\n"
                   for i in range(start, start + n)).encode()


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text -> {(sample name, sorted labels): value} (official parser)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture()
def script(toy, tmp_path) -> Path:
    """The exported scheduler beside the toy policy."""
    _, _, _, policy_path = toy
    return export_script(tmp_path / "scheduler.py", policy_path)


# --------------------------------------------------------------------------- inputs


def test_inline_inputs_decode_and_fit_the_model():
    x = np.random.default_rng(0).random((8, 8, 1)).astype(np.float32)
    assert np.array_equal(decode_npy(base64.b64decode(npy_b64(x))), x)
    prep = Preprocessor((8, 8, 1))
    assert prep(parse_request(json.dumps({"id": 1, "deadline_ms": 5, "input": {
        "npy": npy_b64(x)}})).inline).shape == (1, 8, 8, 1)
    pixels = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    image = decode_image(base64.b64decode(png_b64(pixels)))
    assert image.shape == (8, 8, 1)
    request = parse_request(json.dumps({"id": 2, "deadline_ms": 5, "top_k": 3,
                                        "input": {"image": png_b64(pixels)}}))
    assert request.top_k == 3 and request.inline.kind == "image"
    assert np.allclose(prep(request.inline)[0, ..., 0], pixels / 255.0, atol=1e-6)
    rgb = np.zeros((40, 30, 3), np.uint8)
    rgb[..., 0] = 255
    big = Preprocessor((32, 32, 3))(parse_request(json.dumps(
        {"id": 3, "deadline_ms": 5, "input": {"image": png_b64(rgb, "JPEG")}})).inline)
    assert big.shape == (1, 32, 32, 3) and big[..., 0].mean() > 0.9 > big[..., 1].mean()
    # grey model, colour image: made grey; colour model, grey image: repeated
    assert Preprocessor((8, 8, 1))(parse_request(json.dumps(
        {"id": 4, "deadline_ms": 5, "input": {"image": png_b64(rgb)}})).inline).shape \
        == (1, 8, 8, 1)


@pytest.mark.parametrize(("inline", "message"), [
    ({"npy": "not base64!"}, "not valid base64"),
    ({"npy": base64.b64encode(b"hello").decode()}, "not a .npy file"),
    ({"image": base64.b64encode(b"GIF89a....").decode()}, "not an image"),
    ({"png": "AAAA"}, "inline 'input' is"),
    ({"npy": "AAAA", "image": "AAAA"}, "inline 'input' is"),
    ({"npy": ""}, "non-empty base64"),
])
def test_bad_inline_inputs_are_refused_with_the_reason(inline, message):
    with pytest.raises(RequestError, match=message) as info:
        parse_request(json.dumps({"id": "bad", "deadline_ms": 5, "input": inline}))
    assert info.value.request_id == "bad"


def test_array_and_image_limits():
    objects = io.BytesIO()
    np.lib.format.write_array(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="dtype object"):
        decode_npy(objects.getvalue())
    truncated = io.BytesIO()
    np.save(truncated, np.zeros((100, 100), np.float32))
    with pytest.raises(InputError, match="declares shape"):
        decode_npy(truncated.getvalue()[:-10])
    # a PNG header claiming 100 000 x 100 000 pixels is refused before decoding
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = (100_000).to_bytes(4, "big") * 2        # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    with pytest.raises(InputError, match="pixels"):
        decode_image(bytes(data))
    prep = Preprocessor((8, 8, 1))
    with pytest.raises(InputError, match=r"does not fit the model's input \(8, 8, 1\)"):
        prep(parse_request(json.dumps({"id": 1, "deadline_ms": 5, "input": {
            "npy": npy_b64(np.zeros((9, 9, 1), np.float32))}})).inline)
    with pytest.raises(InputError, match="floating point"):
        prep(parse_request(json.dumps({"id": 1, "deadline_ms": 5, "input": {
            "npy": npy_b64(np.zeros((8, 8, 1), np.int32))}})).inline)
    with pytest.raises(InputError, match="NaN"):
        prep(parse_request(json.dumps({"id": 1, "deadline_ms": 5, "input": {
            "npy": npy_b64(np.full((8, 8, 1), np.nan, np.float32))}})).inline)
    with pytest.raises(RequestError, match="top_k"):
        parse_request(json.dumps({"id": 1, "deadline_ms": 5, "top_k": 1000}))


def test_splitter_tells_lines_from_tensor_frames_at_any_chunking():
    x = np.arange(64, dtype=np.float32).reshape(1, 8, 8, 1)
    frame = tensor_frame({"id": "t1", "deadline_ms": 50}, x)
    stream = (b'{"id": 1, "deadline_ms": 5}\n' + frame + b"Dear scheduler\n" + frame
              + b'{"id": 2, "deadline_ms": 5}\n')
    expected = None
    for size in (1, 3, 7, 16, 64, len(stream)):
        splitter = RequestSplitter(1024)
        items = []
        for i in range(0, len(stream), size):
            items += splitter.feed(stream[i:i + size])
        items += splitter.finish()
        kinds = [type(i).__name__ for i in items]
        assert kinds == ["bytes", "TensorRequest", "bytes", "TensorRequest", "bytes"], kinds
        assert items[2] == b"Dear scheduler"
        request = request_from_frame(items[1], 2)
        assert request.id == "t1" and request.inline.kind == "tensor"
        assert np.array_equal(request.inline.array, x)
        expected = expected or items
    # oversized and malformed frames are skipped to their end; what follows is read
    splitter = RequestSplitter(1024, max_tensor=100)
    items = splitter.feed(frame + b'{"id": 3, "deadline_ms": 5}\n')
    assert isinstance(items[0], BadFrame) and "at most 100" in items[0].reason
    assert items[1] == b'{"id": 3, "deadline_ms": 5}'
    bad_version = frame[:2] + bytes([9]) + frame[3:]
    items = RequestSplitter(1024).feed(bad_version + b"{}\n")
    assert isinstance(items[0], BadFrame) and "version 9" in items[0].reason
    assert items[1] == b"{}"
    cut = RequestSplitter(1024)
    assert cut.feed(frame[:40]) == []
    assert isinstance(cut.finish()[0], BadFrame)
    no_meta = TensorRequest(b"", RequestSplitter(1024).feed(frame)[0].tensor)
    with pytest.raises(RequestError, match="metadata"):
        request_from_frame(no_meta, 1)
    long_line = RequestSplitter(16).feed(b"x" * 40 + b"\n")
    assert isinstance(long_line[0], LineTooLong)


# --------------------------------------------------------------------------- auth units


def test_token_comes_from_a_private_file_or_the_environment(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o644)
    with pytest.raises(Exception, match="chmod 600"):
        load_token(path)
    path.chmod(0o600)
    assert load_token(path) == TOKEN.encode()
    assert load_token(None, {TOKEN_ENV: TOKEN}) == TOKEN.encode()
    assert load_token(None, {}) is None
    with pytest.raises(Exception, match="at least 16"):
        load_token(None, {TOKEN_ENV: "short"})
    guard = Guard()
    assert guard.check_bind("127.0.0.1", False) is None
    assert guard.check_bind("::1", False) is None
    with pytest.raises(Exception, match=r"refusing to listen on 0\.0\.0\.0"):
        guard.check_bind("0.0.0.0", False)
    assert "INSECURE" in guard.check_bind("192.0.2.1", True)
    assert Guard(token=b"x" * 16).check_bind("0.0.0.0", False) is None


# --------------------------------------------------------------------------- real servers


def test_mutual_tls_and_token(script, tmp_path):
    pki = make_pki(tmp_path / "pki")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    server = Running([sys.executable, str(script), "--dry-run", "--listen", "127.0.0.1:0",
                      "--token-file", str(token_file), "--tls-cert", str(pki.server_cert),
                      "--tls-key", str(pki.server_key), "--tls-ca", str(pki.ca),
                      "--metrics", "127.0.0.1:0", "--log-level", "debug"])
    try:
        port = server.wait_ready()

        def client(cert=None, key=None) -> ssl.SSLContext:
            ctx = ssl.create_default_context(cafile=str(pki.ca))
            if cert:
                ctx.load_cert_chain(str(cert), str(key))
            return ctx

        good = client(pki.client_cert, pki.client_key)
        answers = talk(port, f"Bearer {TOKEN}\n".encode() + requests(20), 20, good)
        assert sorted(a["id"] for a in answers) == sorted(f"r{i}" for i in range(20))
        assert all(a["status"] == "ok" for a in answers)
        header = talk(port, f"Authorization: Bearer {TOKEN}\n".encode() + requests(1), 1, good)
        assert header[0]["status"] == "ok"

        wrong = talk(port, b"Bearer " + b"x" * len(TOKEN) + b"\n" + requests(3), 3, good)
        assert wrong == [{"error": "authentication failed"}]
        missing = talk(port, requests(3), 3, good)           # no token line at all
        assert missing == [{"error": "authentication failed"}]

        for ctx in (client(), client(pki.stranger_cert, pki.stranger_key)):
            try:                      # TLS 1.3: the refusal may come at the first read
                refused = talk(port, f"Bearer {TOKEN}\n".encode() + requests(2), 2, ctx)
            except (ssl.SSLError, ConnectionError):
                refused = []
            assert refused == []
        with pytest.raises(ssl.SSLError):                   # the client checks the server too
            talk(port, b"", 1, ssl.create_default_context())
        plain = talk(port, f"Bearer {TOKEN}\n".encode() + requests(1), 1)   # no TLS at all
        assert plain == []

        status, text = scrape(server.ports["metrics"])
        assert status == 200
        values = samples(text)
        fails = {k[1][0][1]: v for k, v in values.items()
                 if k[0] == "dynasplit_scheduler_auth_failures_total"}
        assert fails["token"] == 2 and fails["tls"] >= 3, fails
        assert values[("dynasplit_scheduler_requests_total", (("outcome", "ok"),))] == 21
        status, body = scrape(server.ports["metrics"], "/healthz")
        assert status == 200 and json.loads(body)["status"] == "serving"
    finally:
        assert server.stop() == 0
    log = "".join(server.log)
    assert TOKEN not in log and "x" * len(TOKEN) not in log
    failures = [e for e in server.events() if e.get("event") == "auth_failed"]
    assert {e["reason"] for e in failures} == {"token", "tls"}
    stopped = next(e for e in server.events() if e.get("event") == "stopped")
    assert stopped["auth_failed"] == len(failures) and stopped["ok"] == 21
    assert all(e["peer"].startswith("127.0.0.1:") for e in failures)
    assert any("wrong bearer token" in e["detail"] for e in failures)
    assert all(set(e) >= {"ts", "level", "event"} for e in server.events())
    answered = [e for e in server.events() if e.get("event") == "answered"]   # --log-level debug
    assert len(answered) == 21 and all(e["request_id"].startswith("127.0.0.1:")
                                       for e in answered)


def test_token_from_environment_tensor_frames_and_metrics(script, tmp_path):
    server = Running([sys.executable, str(script), "--dry-run", "--listen", "127.0.0.1:0",
                      "--metrics", "127.0.0.1:0"], env={**ENV, TOKEN_ENV: TOKEN})
    try:
        port = server.wait_ready()
        x = np.zeros((1, 8, 8, 1), np.float32)
        payload = (f"Bearer {TOKEN}\n".encode() + requests(2)
                   + tensor_frame({"id": "frame", "deadline_ms": 70}, x)
                   + json.dumps({"id": "png", "deadline_ms": 90, "input": {
                       "image": png_b64(np.zeros((8, 8), np.uint8))}}).encode() + b"\n"
                   + tensor_frame({"id": "frame2", "deadline_ms": 70, "input": 3}, x)
                   + b"garbage\n")
        answers = talk(port, payload, 6)
        huge = np.zeros((1, 1200, 1200, 1), np.float32)        # 5.5 MiB > MAX_TENSOR_BYTES
        after = talk(port, f"Bearer {TOKEN}\n".encode()
                     + tensor_frame({"id": "huge", "deadline_ms": 70}, huge) + requests(1), 2)
        assert "at most 4194304" in after[0]["error"] and after[1]["id"] == "r0"
        by_id = {a.get("id"): a for a in answers}
        assert by_id["frame"]["status"] == "ok" and by_id["png"]["status"] == "ok"
        assert "no 'input' field" in by_id["frame2"]["error"]
        assert sum("error" in a and "status" not in a for a in answers) == 2
        assert talk(port, requests(1), 1) == [{"error": "authentication failed"}]
        status, text = scrape(server.ports["metrics"])
        assert status == 200
        values = samples(text)
        assert values[("dynasplit_scheduler_requests_total", (("outcome", "ok"),))] == 5
        assert values[("dynasplit_scheduler_requests_total", (("outcome", "malformed"),))] == 3
        assert values[("dynasplit_scheduler_decision_seconds_count", ())] == 5
        assert values[("dynasplit_scheduler_queue_depth_count", ())] == 5
        assert values[("dynasplit_scheduler_energy_joules_count", ())] == 5
        assert values[("dynasplit_scheduler_thresholds_met_total", ())] >= 0
        active = [k for k, v in values.items()
                  if k[0] == "dynasplit_scheduler_active_configuration" and v == 1]
        assert len(active) == 1 and dict(active[0][1])["model"] == "toy"
        assert scrape(server.ports["metrics"], "/nothing")[0] == 404
    finally:
        assert server.stop() == 0


def test_sigterm_does_not_wait_for_a_client_that_never_authenticates(script):
    server = Running([sys.executable, str(script), "--dry-run", "--listen", "127.0.0.1:0",
                      "--grace", "1"], env={**ENV, TOKEN_ENV: TOKEN})
    port = server.wait_ready()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as silent:
        assert talk(port, f"Bearer {TOKEN}\n".encode() + requests(1), 1)[0]["status"] == "ok"
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(5) == 0        # well before the 10 s authentication limit
        assert silent.recv(10) == b""          # the silent client was cut off


def test_non_loopback_bind_needs_authentication(script, tmp_path):
    proc = subprocess.run([sys.executable, str(script), "--dry-run", "--listen", "0.0.0.0:0"],
                          capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0" in proc.stderr and "--token-file" in proc.stderr
    world = tmp_path / "token"
    world.write_text(TOKEN)
    world.chmod(0o644)
    proc = subprocess.run([sys.executable, str(script), "--dry-run", "--listen", "0.0.0.0:0",
                           "--token-file", str(world)], capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 2 and "chmod 600" in proc.stderr
    server = Running([sys.executable, str(script), "--dry-run", "--listen", "0.0.0.0:0",
                      "--insecure"])
    try:
        server._ready.wait(120)
        warnings = [e for e in server.events() if e.get("level") == "warning"]
        assert warnings and "INSECURE" in warnings[0]["event"], server.log
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_live_inline_image_is_classified_with_top_k(live_run):
    assert live_run.returncode == 0, live_run.stderr[-2000:]
    by_id = live_run.answers
    for i in range(3):
        image, array, sample = by_id[f"img{i}"], by_id[f"npy{i}"], by_id[f"sample{i}"]
        for answer in (image, array, sample):
            assert answer["status"] == "ok" and answer["measured"] is True, answer
            assert answer["latency_ms"] > 0 and answer["energy_j"] > 0
        assert len(image["top_k"]) == 3 and len(array["top_k"]) == 5
        scores = [s for _, s in image["top_k"]]
        assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
        # the same digit three ways: the same class
        assert image["top_k"][0][0] == array["top_k"][0][0] == sample["top_k"][0][0]
    assert by_id["wrong-shape"]["status"] == "failed"
    assert "does not fit the model's input (8, 8, 1)" in by_id["wrong-shape"]["error"]


def test_metrics_render_in_prometheus_text_format():
    metrics = Metrics()
    metrics.queued(3)
    metrics.malformed()
    metrics.answered({"status": "ok", "met": True, "energy_j": 0.5, "decide_us": 4.0,
                      "config": {"model": "m", "split": 1, "cpu_freq": 600,
                                 "edge_accel": "none", "cloud_accel": "none", "codec": "int8"}},
                     0.002)
    metrics.answered({"status": "ok", "met": False, "energy_j": 0.7, "decide_us": 4.0,
                      "config": {"model": "m", "split": 2, "cpu_freq": 600,
                                 "edge_accel": "none", "cloud_accel": "none"}}, 0.003)
    metrics.answered({"status": "timeout"}, 1.0)
    values = samples(metrics.render().decode())
    assert values[("dynasplit_scheduler_requests_total", (("outcome", "ok"),))] == 2
    assert values[("dynasplit_scheduler_requests_total", (("outcome", "timeout"),))] == 1
    assert values[("dynasplit_scheduler_thresholds_met_total", ())] == 1
    assert values[("dynasplit_scheduler_energy_joules_sum", ())] == pytest.approx(1.2)
    active = {k[1]: v for k, v in values.items()
              if k[0] == "dynasplit_scheduler_active_configuration"}
    assert list(active.values()) == [1.0] and dict(next(iter(active)))["split"] == "2"


def test_dynasplit_schedule_shares_the_service_options(toy, tmp_path, capsys):
    from toolkit.cli import main

    _, _, _, policy_path = toy
    assert main(["schedule", str(policy_path), "--dry-run", "--listen", "0.0.0.0:0"]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err
    assert main(["schedule", str(policy_path), "--dry-run", "--tls-ca", "ca.pem",
                 "--listen", "127.0.0.1:0"]) == 2
    assert "need --tls-cert" in capsys.readouterr().err
    assert main(["schedule", str(policy_path), "--dry-run", "--listen", "127.0.0.1:0",
                 "--tls-cert", str(tmp_path / "missing.pem")]) == 2
    assert "cannot load the TLS certificate" in capsys.readouterr().err
    server = Running([sys.executable, "-m", "toolkit", "schedule", str(policy_path),
                      "--dry-run", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
    try:
        port = server.wait_ready()
        assert talk(port, requests(3), 3)[2]["status"] == "ok"      # loopback: no token
        status, body = scrape(server.ports["metrics"], "/healthz")
        assert status == 200 and json.loads(body)["ok"] == 3
        # hand-typed and hostile requests to the metrics port get an answer, not silence
        metrics_port = server.ports["metrics"]
        assert raw_http(metrics_port, b"GET /healthz\n\n").startswith(b"HTTP/1.0 200 OK\r\n")
        assert raw_http(metrics_port, b"\x16\x03\x01\x00\xa5\r\n\r\n").startswith(
            b"HTTP/1.0 400 Bad Request\r\n")
        assert raw_http(metrics_port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000
                        + b"\r\n\r\n").startswith(b"HTTP/1.0 431 Request Header Fields")
        assert raw_http(metrics_port, b"HEAD /metrics HTTP/1.1\r\n\r\n").endswith(b"\r\n\r\n")
    finally:
        assert server.stop() == 0


def raw_http(port: int, request: bytes) -> bytes:
    """What the server answers to ``request`` sent as it is (the writing side then closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply
