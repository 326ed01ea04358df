"""The scheduler's fast paths give exactly what the general ones give (issue 18).

The common request line is matched without the JSON decoder, outcome lines are
written by :class:`AnswerEncoder` (with :class:`Prepared` outcomes in the dry
run, whose decisions are remembered): each is checked here against the general
code on the same input, including inputs near the edges of the fast forms.
"""

from __future__ import annotations

import asyncio
import json
import random
import re

import pytest

from toolkit.cube import pareto_configs
from toolkit.policy import Policy
from toolkit.scheduler.protocol import (
    AnswerEncoder,
    Prepared,
    RequestError,
    encode,
    load_document,
    parse_request,
    request_from_doc,
)
from toolkit.scheduler.script import Online

from .conftest import toy_cube


def general(line: bytes, number: int = 3):
    """The request (or error message) of the decoder path."""
    try:
        return request_from_doc(load_document(line), number)
    except RequestError as exc:
        return str(exc)


def fast(line: bytes, number: int = 3):
    try:
        return parse_request(line, number)
    except RequestError as exc:
        return str(exc)


@pytest.mark.parametrize("line", [
    b'{"id":1,"deadline_ms":120}', b'{"id": "r1.2", "deadline_ms": 120.5}',
    b' {"id":-0,"deadline_ms":86400000}\r', b'{"id":"x","deadline_ms":86400000.1}',
    b'{"id":"a","deadline_ms":0}', b'{"id":"a","deadline_ms":0.0}',
    b'{"id":"x","deadline_ms":5,"input":17}', b'{"id":"x","deadline_ms":5,"input":017}',
    b'{"id":"","deadline_ms":5}', b'{"id":"' + b"a" * 256 + b'","deadline_ms":5}',
    b'{"id":"' + b"a" * 257 + b'","deadline_ms":5}', b'{"id":999999999999999999,"deadline_ms":1}',
    b'{"id":"a","deadline_ms":1.000000001,"input":999999999}', b'{"id":"a b","deadline_ms":1}',
    b'{"id":"a","deadline_ms":1}x', b'{"id":"a","deadline_ms":1,"id":"b"}',
    b'{"id":"a","deadline_ms":1\x0b}', b'{"id":"a","deadline_ms":01}', b'{"id":1,"deadline_ms":1.}',
])
def test_common_request_form_parses_as_the_decoder_does(line):
    assert fast(line) == general(line)


def test_a_byte_order_mark_before_a_request_is_skipped():
    line = b'{"id":"w","deadline_ms":120,"input":4}'
    assert fast(b"\xef\xbb\xbf" + line) == fast(line)
    assert fast("\ufeff" + line.decode()) == fast(line)
    assert fast(b"\xef\xbb\xbf\xef\xbb\xbf" + line).startswith("not JSON")   # one mark only


def test_common_request_form_fuzzed():
    rng = random.Random(18)
    alphabet = b'0123456789.-+eE ,:"{}\\ta_idnputlms\r\x0b'
    base = [b'{"id":%d,"deadline_ms":%s}', b'{"id":"r%d","deadline_ms":%s,"input":3}']
    for _ in range(4000):
        line = bytearray(rng.choice(base) % (rng.randrange(-99, 10**6), str(
            rng.choice([rng.uniform(0, 1e8), rng.randrange(0, 10**9)])).encode()))
        for _ in range(rng.randrange(3)):   # a few random edits
            i = rng.randrange(len(line) + 1)
            if rng.random() < 0.5 and i < len(line):
                del line[i]
            else:
                line.insert(i, rng.choice(alphabet))
        assert fast(bytes(line)) == general(bytes(line)), bytes(line)


@pytest.mark.parametrize("outcome", [
    {"status": "ok", "x": float("nan"), "c": {"a": float("inf")}},
    {"status": "failed", "error": "é\n\"x"}, {"id": 3, "z": 1}, {"line": 9}, {"k": [1, 2]},
    {"b": True, "n": None, "i": -3, "f": 1e300, "g": -0.0, "h": float("-inf")},
    {1: 2}, {"c": {"a": 1}}, {"s": "\u2603" * 5},
])
@pytest.mark.parametrize("rid", ["a\u2603", 5, -9])
def test_answer_encoder_writes_what_encode_writes(outcome, rid):
    encoder = AnswerEncoder(max_cached=2)
    for _ in range(3):                                  # cached nested dicts too
        assert encoder(rid, 2, outcome) == encode({"id": rid, "line": 2, **outcome})


def test_prepared_outcome_encodes_its_fixed_and_added_fields():
    fields = {"status": "ok", "config": {"split": 3}, "met": True, "e": float("nan")}
    prepared = Prepared.make(fields)
    answer = prepared.copy()
    answer["decide_us"] = 1.5
    answer["queue_ms"] = 0.25
    assert type(answer) is Prepared and prepared == fields
    assert AnswerEncoder()("r", 4, answer) == encode({"id": "r", "line": 4, **answer})


def test_dry_run_decisions_remembered_are_the_policys():
    cube = toy_cube()
    policy = Policy.from_front(pareto_configs(cube, {"latency_ms": "min", "energy_j": "min"}),
                               cube)
    online, fresh = Online(policy), Online(policy)
    encoder = AnswerEncoder()
    for i, deadline in enumerate([50, 120, 50, 400, 120, 120, 3, 50] * 3):
        request = parse_request(b'{"id":%d,"deadline_ms":%d}' % (i, deadline), i + 1)
        got = online.decide_only(request)
        fresh.dry._known.clear()                          # decided afresh every time
        want = fresh.decide_only(request)
        assert online.state == fresh.state
        got.pop("decide_us"), want.pop("decide_us")
        assert got == want
        line = json.loads(encoder(request.id, request.line, got))
        assert line == {"id": i, "line": i + 1, **want}


def test_dry_run_memory_is_bounded(monkeypatch):
    from toolkit.scheduler import dryrun

    cube = toy_cube()
    policy = Policy.from_front(pareto_configs(cube, {"latency_ms": "min", "energy_j": "min"}),
                               cube)
    monkeypatch.setattr(dryrun, "KEPT", 5)
    memo = dryrun.DryRun(policy)
    state = None
    for deadline in range(1, 40):                       # a new deadline every time
        outcome, state = memo.outcome(float(deadline), state)
        assert outcome["deadline_ms"] == float(deadline) and len(memo._known) <= 5


class _Transport:
    """Enough of a transport for a DirectClient: records writes; ``full_after``
    writes, it reports a full buffer (``pause_writing``)."""

    def __init__(self, full_after: int | None = None) -> None:
        self.written: list[bytes] = []
        self.reading, self.closed, self.protocol = True, False, None
        self.full_after = full_after

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.written.append(data)
        if self.full_after is not None and len(self.written) >= self.full_after:
            self.full_after = None
            self.protocol.pause_writing()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


def test_direct_client_answers_in_order_and_waits_for_a_full_buffer():
    from toolkit.scheduler.direct import DirectClient, WriteRound

    stopping = []

    def take(client, item) -> None:                     # echo each line, refuse it once stopping
        client.line += 1
        client.send(item + (b" cancelled" if stopping else b"") + b"\n")

    async def run() -> None:
        client = DirectClient("t", take, lambda c, e: None, WriteRound())
        transport = _Transport(full_after=1)
        client.attach(transport, b"a\nb", False)        # bytes read with the token line
        client.data_received(b"\n" + b"".join(b"%d\n" % i for i in range(100)))
        # the first 64 answers are written at once (a batch), the buffer is then
        # full: the rest of the chunk waits and the client is not read
        assert transport.written == [b"a\nb\n" + b"".join(b"%d\n" % i for i in range(62))]
        assert not transport.reading and client.line == 64
        client.data_received(b"late\n")                  # (a loop would not call it now)
        client.resume_writing()
        assert transport.reading and client.line == 103
        await asyncio.sleep(0)                           # the round's writes
        assert b"".join(transport.written).split(b"\n")[:-1] == (
            [b"a", b"b"] + [b"%d" % i for i in range(100)] + [b"late"])
        stopping.append(True)
        client.data_received(b"x\ny")                    # shutdown: x refused, y incomplete
        client.stop()
        assert transport.closed and transport.written[-1] == b"x cancelled\n"

    asyncio.run(run())


@pytest.mark.parametrize(("option", "value", "message"), [
    ("timeout_s", float("nan"), "timeout must be a number of seconds > 0, got nan"),
    ("timeout_s", float("inf"), "timeout must be a number of seconds > 0, got inf"),
    ("timeout_s", 0.0, "timeout must be a number of seconds > 0, got 0.0"),
    ("grace_s", float("nan"), "grace period must be a number of seconds >= 0, got nan"),
    ("grace_s", float("inf"), "grace period must be a number of seconds >= 0, got inf"),
    ("grace_s", -1.0, "grace period must be a number of seconds >= 0, got -1.0"),
])
def test_time_limits_must_be_finite_numbers(option, value, message):
    """A NaN limit compared false with every bound and was taken (``--timeout nan``)."""
    from toolkit.errors import ToolkitError
    from toolkit.scheduler.server import Server

    async def handle(request):
        return {"met": True}

    with pytest.raises(ToolkitError, match=re.escape(message)):
        Server(handle, **{option: value})
