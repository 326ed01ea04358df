"""The wire framing over real loopback sockets: round trips and every protocol error.

Each test runs a real asyncio server on 127.0.0.1 whose handler reads frames with
:func:`read_frame`: with the toolkit's zero-copy streams
(:mod:`toolkit.runtime.streams`, what the workers use) on the standard asyncio
event loop and on uvloop (what the workers run where it is installed), and with
plain asyncio streams. Malformed frames are built byte by byte from the documented
wire format, independently of the framing module's own structs.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct

import numpy as np
import pytest

from toolkit import aio
from toolkit.errors import ProtocolError
from toolkit.models.codecs import decode, encode
from toolkit.runtime import streams
from toolkit.runtime.framing import (
    KIND_JSON,
    KIND_TENSOR,
    MAX_HEADER,
    MAX_PAYLOAD,
    read_frame,
    write_json,
    write_tensor,
)

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"
PREFIX = struct.Struct("!2sBBIQ")  # magic, version, kind, header_len, payload_len
TENSOR = struct.Struct("!QBBxxfi")  # id, codec, ndim, pad, scale, zero_point
CODEC_ID = {"fp32": 0, "fp16": 1, "int8": 2}
BIG = (1, 64, 64, 64)  # 1 MiB in fp32: received in place by a FrameReader
SMALL = (2, 5, 3)

READERS = ["frame-reader", "frame-reader-uvloop", "asyncio-reader"]
LOOPS = ["asyncio", "uvloop"]


def _start(kind: str):
    return streams.start_server if kind.startswith("frame-reader") else asyncio.start_server


def _run(kind: str, main):
    """Run ``main`` on the event loop of ``kind`` (a reader kind or a loop name)."""
    return aio.run(main, "uvloop" if kind.endswith("uvloop") else "asyncio")


def _prefix(kind: int, header_len: int, payload_len: int, magic: bytes = b"DS",
            version: int = 1) -> bytes:
    return PREFIX.pack(magic, version, kind, header_len, payload_len)


def _tensor_header(shape, codec="fp32", id_=7, scale=1.0, zero_point=0, meta: bytes = b""):
    return (TENSOR.pack(id_, CODEC_ID[codec], len(shape), scale, zero_point)
            + struct.pack(f"!{len(shape)}I", *shape) + meta)


async def _serve_and_collect(kind: str, client, *, read_delay: float = 0.0,
                             max_payload: int = MAX_PAYLOAD):
    """Run ``client(host, port)`` against a server that reads frames until end or error.

    Returns the frames read and the exception that stopped reading (or None).
    """
    frames, errors, done = [], [], asyncio.Event()

    async def handle(reader, writer):
        try:
            if read_delay:
                await asyncio.sleep(read_delay)  # let frames pile up in the buffers
            while (frame := await read_frame(reader, max_payload=max_payload)) is not None:
                frames.append(frame)
        except Exception as exc:  # recorded for the test to check
            errors.append(exc)
        finally:
            writer.close()
            done.set()

    server = await _start(kind)(handle, HOST, 0, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await client(HOST, port)
        await asyncio.wait_for(done.wait(), 20)
    return frames, (errors[0] if errors else None)


def _raw_client(data: bytes):
    """A client that sends ``data`` over a plain blocking socket, then closes (EOF)."""

    async def client(host, port):
        def send():
            with socket.create_connection((host, port)) as sock:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)

        await asyncio.to_thread(send)

    return client


def _protocol_error(kind: str, data: bytes, **kw) -> ProtocolError:
    frames, error = _run(kind, _serve_and_collect(kind, _raw_client(data), **kw))
    assert isinstance(error, ProtocolError), (frames, error)
    return error


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", READERS)
def test_json_and_tensor_frames_round_trip_in_every_codec(kind):
    rng = np.random.default_rng(1)
    tensors = {(codec, shape): rng.standard_normal(shape).astype(np.float32) * 3 + 0.5
               for codec in ("fp32", "fp16", "int8") for shape in (SMALL, BIG)}
    sent: list[tuple] = []

    async def client(host, port):
        assert aio.running_loop() == ("uvloop" if kind.endswith("uvloop") else "asyncio")
        _, writer = await asyncio.open_connection(host, port)
        write_json(writer, {"op": "configure", "split": 3, "nested": {"a": [1, 2.5, None]}})
        for i, ((codec, shape), x) in enumerate(tensors.items()):
            enc = encode(x, codec)
            meta = {"i": i, "codec": codec, "ü": "unicode"}
            n = write_tensor(writer, enc, id=1000 + i, meta=meta)
            assert n == 16 + TENSOR.size + 4 * len(shape) + len(
                json.dumps(meta, separators=(",", ":")).encode()) + enc.nbytes
            sent.append((enc, 1000 + i, meta, x))
            await writer.drain()
        write_tensor(writer, encode(np.array([2.5], dtype=np.float32)))  # default id, no meta
        write_json(writer, {"op": "bye"})
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    frames, error = _run(kind, _serve_and_collect(kind, client))
    assert error is None
    assert len(frames) == len(sent) + 3
    first, *tensor_frames, scalar, last = frames
    assert first.kind == KIND_JSON and first.tensor is None
    assert first.message == {"op": "configure", "split": 3, "nested": {"a": [1, 2.5, None]}}
    assert last.message == {"op": "bye"}
    for frame, (enc, id_, meta, x) in zip(tensor_frames, sent, strict=True):
        assert frame.kind == KIND_TENSOR
        assert frame.id == id_
        assert frame.message == meta
        got = frame.tensor
        assert got.codec == enc.codec
        assert got.shape == enc.shape == x.shape
        assert got.zero_point == enc.zero_point
        assert got.scale == pytest.approx(enc.scale, rel=1e-7)  # travels as f32
        assert frame.nbytes == 16 + TENSOR.size + 4 * len(x.shape) + len(
            json.dumps(meta, separators=(",", ":")).encode()) + enc.nbytes
        y = decode(got)
        assert y.dtype == np.float32 and y.shape == x.shape
        np.testing.assert_array_equal(y, decode(enc))  # bit-exact through the wire
        atol = {"fp32": 0.0, "fp16": 1e-3 * np.abs(x).max(), "int8": enc.scale}[enc.codec]
        np.testing.assert_allclose(y, x, rtol=0, atol=atol)
    assert scalar.kind == KIND_TENSOR and scalar.id == 0 and scalar.message == {}
    assert scalar.tensor.shape == (1,) and decode(scalar.tensor).tolist() == [2.5]


@pytest.mark.parametrize("kind", READERS)
def test_frames_piled_up_in_the_buffer_are_read_intact(kind):
    # The reader starts late, so headers and payloads of several frames arrive
    # together, part of a payload is already buffered when its read starts, and
    # the transport pauses and resumes on the way.
    xs = [np.full(BIG, i, dtype=np.float32) + np.arange(BIG[-1], dtype=np.float32)
          for i in range(4)]

    async def client(host, port):
        _, writer = await asyncio.open_connection(host, port)
        for i, x in enumerate(xs):
            write_json(writer, {"n": i})
            write_tensor(writer, encode(x), id=i)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    frames, error = _run(kind, _serve_and_collect(kind, client, read_delay=0.3))
    assert error is None
    assert [f.kind for f in frames] == [KIND_JSON, KIND_TENSOR] * 4
    tensors = [decode(f.tensor) for f in frames[1::2]]
    for i, (x, y) in enumerate(zip(xs, tensors, strict=True)):
        assert frames[2 * i].message == {"n": i} and frames[2 * i + 1].id == i
        np.testing.assert_array_equal(y, x)  # no frame's payload overwrote another's


@pytest.mark.parametrize("loop", LOOPS)
def test_frame_reader_is_still_a_stream_reader(loop):
    # readexactly / readline keep working around in-place reads on the same connection
    async def main():
        got = {}

        async def handle(reader, writer):
            got["line"] = await reader.readline()
            buf = bytearray(300_000)
            await reader.readinto_exactly(buf)
            got["buf"] = bytes(buf)
            got["tail"] = await reader.readexactly(3)
            got["eof"] = await reader.read()
            writer.close()

        server = await streams.start_server(handle, HOST, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await streams.open_connection(HOST, port)
            assert isinstance(reader, streams.FrameReader)
            body = bytes(range(256)) * 1172  # 300,032 bytes
            writer.write(b"hello\n" + body[:100])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(body[100:])
            writer.write_eof()
            await writer.drain()
            for _ in range(200):
                if "eof" in got:
                    break
                await asyncio.sleep(0.01)
            writer.close()
        return got, body

    got, body = _run(loop, main())
    assert got["line"] == b"hello\n"
    assert got["buf"] == body[:300_000]
    assert got["tail"] == body[300_000:300_003]
    assert got["eof"] == body[300_003:]


@pytest.mark.parametrize("loop", LOOPS)
def test_frame_reader_reports_a_stream_ending_inside_a_buffer(loop):
    async def main():
        result = {}

        async def handle(reader, writer):
            try:
                await reader.readinto_exactly(bytearray(200_000))
            except asyncio.IncompleteReadError as exc:
                result["partial"], result["expected"] = len(exc.partial), exc.expected
            writer.close()

        server = await streams.start_server(handle, HOST, 0)
        async with server:
            await _raw_client(b"x" * 150_000)(HOST, server.sockets[0].getsockname()[1])
            for _ in range(200):
                if result:
                    break
                await asyncio.sleep(0.01)
        return result

    assert _run(loop, main()) == {"partial": 150_000, "expected": 200_000}


# --------------------------------------------------------------------------- protocol errors


@pytest.mark.parametrize("kind", READERS)
def test_clean_end_of_stream_between_frames_is_not_an_error(kind):
    body = b'{"op":"ping"}'
    frames, error = _run(
        kind, _serve_and_collect(kind, _raw_client(_prefix(KIND_JSON, 0, len(body)) + body)))
    assert error is None
    assert [f.message for f in frames] == [{"op": "ping"}]


@pytest.mark.parametrize("kind", READERS)
def test_truncated_prefix(kind):
    err = _protocol_error(kind, _prefix(KIND_JSON, 2, 0)[:7])
    assert "truncated frame" in str(err) and "7 of 16 prefix bytes" in str(err)


@pytest.mark.parametrize("kind", READERS)
def test_truncated_header(kind):
    err = _protocol_error(kind, _prefix(KIND_JSON, 20, 0) + b'{"op":')
    assert "truncated frame" in str(err) and "6 of 20 bytes of the header" in str(err)


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize("shape", [SMALL, BIG], ids=["small", "in-place"])
def test_truncated_payload(kind, shape):
    header = _tensor_header(shape)
    n = 4 * int(np.prod(shape))
    err = _protocol_error(kind, _prefix(KIND_TENSOR, len(header), n) + header
                          + b"\0" * (n // 2))
    assert "truncated frame" in str(err)
    assert f"{n // 2} of {n} bytes of the payload" in str(err)


@pytest.mark.parametrize("kind", READERS)
def test_wrong_version(kind):
    err = _protocol_error(kind, _prefix(KIND_JSON, 2, 0, version=9) + b"{}")
    assert "unsupported protocol version 9" in str(err)


@pytest.mark.parametrize("kind", READERS)
def test_bad_magic(kind):
    err = _protocol_error(kind, _prefix(KIND_JSON, 2, 0, magic=b"GE") + b"{}")
    assert "bad magic" in str(err) and "not a DynaSplit frame" in str(err)


@pytest.mark.parametrize("kind", READERS)
def test_oversized_header(kind):
    err = _protocol_error(kind, _prefix(KIND_JSON, MAX_HEADER + 1, 0) + b"{}")
    assert f"oversized header: {MAX_HEADER + 1} bytes > {MAX_HEADER}" in str(err)


@pytest.mark.parametrize("kind", READERS)
def test_oversized_payload(kind):
    header = _tensor_header((1 << 30,))
    err = _protocol_error(kind, _prefix(KIND_TENSOR, len(header), MAX_PAYLOAD + 4) + header)
    assert f"oversized payload: {MAX_PAYLOAD + 4} bytes > {MAX_PAYLOAD}" in str(err)
    # the receiver's own limit applies too, before any payload is read
    header = _tensor_header((1000,))
    err = _protocol_error(kind, _prefix(KIND_TENSOR, len(header), 4000) + header,
                          max_payload=1000)
    assert "oversized payload: 4000 bytes > 1000" in str(err)


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize("shape", [SMALL, BIG], ids=["small", "in-place"])
def test_payload_size_not_matching_the_shape(kind, shape):
    header = _tensor_header(shape, codec="fp16")
    n = 4 * int(np.prod(shape))  # fp32-sized payload declared as fp16
    err = _protocol_error(kind, _prefix(KIND_TENSOR, len(header), n) + header + b"\0" * n)
    assert f"payload of {n} bytes does not match shape {shape} in fp16" in str(err)


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize(("body", "expected"), [
    (b'{"op": "ping"', "malformed JSON body"),
    (b"\xff\xfe{}", "malformed JSON body"),
    (b"[1, 2]", "JSON frame is not an object"),
])
def test_malformed_json(kind, body, expected):
    err = _protocol_error(kind, _prefix(KIND_JSON, 0, len(body)) + body)
    assert expected in str(err)


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize(("frame", "expected"), [
    (_prefix(KIND_JSON, 2, 3) + b"{}abc", "JSON frame with a header"),
    (_prefix(7, 2, 0) + b"{}", "unknown frame kind 7"),
    (_prefix(KIND_TENSOR, 5, 0) + b"12345", "tensor header too short"),
    (_prefix(KIND_TENSOR, TENSOR.size, 0) + TENSOR.pack(1, 9, 0, 1.0, 0),
     "unknown codec id 9"),
    (_prefix(KIND_TENSOR, TENSOR.size + 4, 0) + TENSOR.pack(1, 0, 3, 1.0, 0) + b"\0\0\0\1",
     "tensor header shorter than its dimensions"),
    (_prefix(KIND_TENSOR, TENSOR.size + 4 + 5, 4)
     + _tensor_header((1,), meta=b"{oops") + b"\0\0\0\0", "malformed tensor metadata"),
])
def test_malformed_headers(kind, frame, expected):
    assert expected in str(_protocol_error(kind, frame))


@pytest.mark.parametrize("kind", READERS)
def test_a_bad_frame_after_good_ones_still_delivers_the_good_ones(kind):
    body = b'{"op":"ping"}'
    good = _prefix(KIND_JSON, 0, len(body)) + body
    frames, error = _run(kind, _serve_and_collect(
        kind, _raw_client(good + good + _prefix(KIND_JSON, 2, 0, version=2) + b"{}")))
    assert [f.message for f in frames] == [{"op": "ping"}] * 2
    assert isinstance(error, ProtocolError) and "version 2" in str(error)
