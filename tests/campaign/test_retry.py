"""toolkit.retry: the retry loop, backoff and run log shared by campaigns, partition studies
and SSH."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from toolkit.campaign import CampaignSummary
from toolkit.errors import ConfigError, DeviceError, ToolkitError, retryable
from toolkit.retry import Backoff, Journal, retry_run


def _failing(error: BaseException) -> tuple[Callable[[], Awaitable[None]], list[int]]:
    """A run that always raises ``error``, and the list that counts its attempts."""
    attempts: list[int] = []

    async def run() -> None:
        attempts.append(1)
        raise error

    return run, attempts


def test_retries_with_recovery_until_success_and_counts_a_failed_recovery():
    calls: list[str] = []
    outcomes = [DeviceError("worker died"), "ok"]
    recoveries = [OSError("port in use"), None]

    async def run() -> str:
        calls.append("run")
        out = outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    async def recover() -> None:
        calls.append("recover")
        exc = recoveries.pop(0)
        if exc is not None:
            raise exc

    result, reason = asyncio.run(retry_run(run, retries=2, backoff_s=0.001, what="t",
                                           recover=recover, recovering="restarting"))
    assert (result, reason) == ("ok", "")
    # attempt 2 is used up by the failed recovery; attempt 3 recovers and runs
    assert calls == ["run", "recover", "recover", "run"]


def test_gives_up_with_the_last_reason_and_never_retries_a_config_error():
    attempts = 0

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        raise TimeoutError(f"timed out {attempts}")

    result, reason = asyncio.run(retry_run(flaky, retries=1, backoff_s=0.001, what="t"))
    assert result is None and reason == "TimeoutError: timed out 2" and attempts == 2

    wrong, tries = _failing(ConfigError("cpu_freq 700 is not one of 600, 800"))
    with pytest.raises(ConfigError, match="cpu_freq 700"):
        asyncio.run(retry_run(wrong, retries=3, backoff_s=0.001, what="t"))
    assert len(tries) == 1


def test_a_failed_recovery_names_itself_when_it_is_the_last_attempt():
    run, _ = _failing(DeviceError("lost"))

    async def recover() -> None:
        raise OSError("no worker")

    result, reason = asyncio.run(retry_run(run, retries=1, backoff_s=0.001, what="t",
                                           recover=recover, recovering="restarting the testbed"))
    assert result is None and reason == "restarting the testbed failed: no worker"


def test_backoff_grows_to_its_longest_delay_and_gives_up_in_time():
    schedule = Backoff(initial_s=0.01, factor=3.0, max_delay_s=0.05)
    assert [schedule.delay(n) for n in (1, 2, 3, 4)] == pytest.approx([0.01, 0.03, 0.05, 0.05])

    async def slept(backoff: Backoff) -> list[float]:
        return [d async for d in backoff.delays()]

    # three delays sleep >= 70 ms, so a fourth (80 ms) can never fit in 140 ms; a loaded
    # machine may oversleep the three by up to 70 ms before the third is refused
    assert asyncio.run(slept(Backoff(0.01, give_up_s=0.14))) == pytest.approx([0.01, 0.02, 0.04])
    assert asyncio.run(slept(Backoff(0.5, give_up_s=0.1))) == []


def test_the_reconnect_policy_is_a_backoff_with_the_documented_defaults():
    from toolkit.devices.transport.connect import ReconnectPolicy

    policy = ReconnectPolicy()
    assert isinstance(policy, Backoff)
    assert (policy.initial_s, policy.factor, policy.max_delay_s, policy.give_up_s) == \
        (0.1, 2.0, 2.0, 30.0)


@pytest.mark.parametrize("error", [
    ConfigError("cpu_freq 700 is not one of 600, 800"),
    ToolkitError("unknown model 'vgg17'"),  # a plain toolkit error is the user's: not retried
    ValueError("a bug"),
], ids=["config", "plain", "bug"])
def test_an_error_a_retry_cannot_help_is_raised_after_one_attempt(error):
    run, attempts = _failing(error)
    recovered = []

    async def recover() -> None:
        recovered.append(1)

    assert not retryable(error)
    with pytest.raises(type(error)):
        asyncio.run(retry_run(run, retries=3, backoff_s=0.001, what="t", recover=recover))
    assert len(attempts) == 1 and recovered == []


@pytest.mark.parametrize("error", [
    DeviceError("the edge worker closed the connection"),
    ConnectionResetError("reset by peer"),
    TimeoutError("timed out"),
], ids=["device", "os", "timeout"])
def test_a_transient_error_is_retried_until_the_retries_are_used_up(error):
    run, attempts = _failing(error)
    assert retryable(error)
    result, reason = asyncio.run(retry_run(run, retries=2, backoff_s=0.001, what="t"))
    assert result is None and len(attempts) == 3 and reason.startswith(type(error).__name__)


def test_ssh_errors_say_whether_a_retry_can_help():
    from toolkit.devices.transport.errors import (
        AuthError,
        CommandTimeout,
        ConnectError,
        ConnectionLost,
        HostKeyError,
    )

    assert not retryable(HostKeyError("pi", "host key mismatch"))
    assert not retryable(AuthError("pi", "key refused"))
    for transient in (ConnectError("pi", "refused"), ConnectionLost("pi", "dropped"),
                      CommandTimeout("pi", "sleep 9", 1.0)):
        assert retryable(transient) and isinstance(transient, ToolkitError)


def _run(key: str, repeat: int, codec: str = "fp32") -> dict:
    return {"type": "run", "key": key, "repeat": repeat,
            "row": {"model": "m", "split": 1, "codec": codec, "latency_ms": float(repeat)}}


def test_a_journal_reopens_with_the_same_settings_and_keeps_its_runs(tmp_path):
    out = tmp_path / "sub" / "c.nc.journal"
    log = Journal(out, "campaign", {"samples": 5, "warmup": 1})
    header = log.open({"spec": {"configs": [1]}, "testbed": "a"})
    assert header["settings"] == {"samples": 5, "warmup": 1} and header["testbed"] == "a"
    log.record(_run("r1", 1))
    log.record(_run("r0", 0, "int8"))
    log.record({"type": "failure", "key": "f", "config": {"split": 2}, "codec": "fp32",
                "repeat": 0, "reason": "boom"})
    with pytest.raises(ToolkitError, match=r"another campaign is writing .*c.nc.journal \(the "
                                           r"same output\) right now; wait for it"):
        Journal(out, "campaign", {"samples": 5, "warmup": 1}).open({"testbed": "b"})
    log.close()

    again = Journal(out, "campaign", {"warmup": 1, "samples": 5})  # key order is irrelevant
    assert again.open({"spec": {"configs": [1, 2]}, "testbed": "b"})["testbed"] == "a"
    assert set(again.done) == {"r0", "r1"} and [f["key"] for f in again.failed_before] == ["f"]
    assert [r["latency_ms"] for r in again.rows(with_codec=False)] == [0.0, 1.0]
    assert "codec" not in again.rows(with_codec=False)[0]
    assert again.rows(with_codec=True)[0]["codec"] == "int8"
    again.record(_run("f", 0))  # measured since: no longer a failure
    assert again.all_failures() == []


def test_other_settings_or_another_kind_are_refused(tmp_path):
    out = tmp_path / "c.nc.journal"
    Journal(out, "campaign", {"samples": 5, "warmup": 1}).open({"testbed": "a"})
    with pytest.raises(ToolkitError, match=r"belongs to a different campaign, measured with "
                       r"other settings \(samples 5 -> 6\)"):
        Journal(out, "campaign", {"samples": 6, "warmup": 1}).open({"testbed": "a"})
    with pytest.raises(ToolkitError, match="belongs to a different study"):
        Journal(out, "study", {"samples": 5, "warmup": 1}).open({"study": "partition"})


def test_a_journal_held_by_another_process_is_refused_until_it_ends(tmp_path):
    """Two terminals running the same command: the second is told, not interleaved."""
    import subprocess
    import sys

    out = tmp_path / "c.nc.journal"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from toolkit.retry import Journal; "
         f"j = Journal(__import__('pathlib').Path({str(out)!r}), 'campaign'); j.open({{}}); "
         "print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ToolkitError, match="another campaign is writing"):
            Journal(out, "campaign").open({})
    finally:
        holder.communicate("", timeout=30)  # its end releases the lock
    reopened = Journal(out, "campaign")
    assert reopened.open({})["schema"] == "dynasplit.journal/1"
    reopened.close()


@pytest.mark.parametrize(("line", "why"), [
    (b"{not json", "line 2 is corrupt"),
    (b"\xff\xfe binary", "line 2 is corrupt"),
    (b"[1, 2]", r"line 2 is corrupt \(not a run, failure or refusal with its key\)"),
    (b'{"type": "run", "row": {}}', "line 2 is corrupt"),
    (b'{"type": "run", "key": "k", "row": 3}', "line 2 is corrupt"),
    (b'{"type": "party", "key": "k"}', "line 2 is corrupt"),
])
def test_a_damaged_journal_line_is_named_not_a_traceback(tmp_path, line, why):
    out = tmp_path / "c.nc.journal"
    Journal(out, "campaign").open({"testbed": "a"})
    with open(out, "ab") as fh:
        fh.write(line + b"\n")
    with pytest.raises(ToolkitError, match=rf"journal .*c.nc.journal {why}.*move it away"):
        Journal(out, "campaign").open({"testbed": "a"})


@pytest.mark.parametrize("first", [b"[]", b"7", b'{"schema": "other"}'])
def test_a_file_that_is_no_journal_is_refused(tmp_path, first):
    out = tmp_path / "c.nc.journal"
    out.write_bytes(first + b"\n")
    with pytest.raises(ToolkitError, match=r"c.nc.journal is not a campaign journal of this "
                                           r"toolkit"):
        Journal(out, "campaign").open({"testbed": "a"})


def test_a_journal_that_cannot_be_written_is_one_line_naming_it(tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(ToolkitError, match=r"cannot write the study journal .*file/c.nc."
                                           r"journal: "):
        Journal(tmp_path / "file" / "c.nc.journal", "study").open({"study": "partition"})
    out = tmp_path / "c.nc.journal"
    log = Journal(out, "campaign")
    log.open({"testbed": "a"})
    out.unlink()
    out.mkdir()  # appending fails from now on, for root too
    with pytest.raises(ToolkitError, match=r"cannot write the campaign journal .*c.nc.journal: "
                                           r"Is a directory"):
        log.record(_run("r1", 1))


def test_the_summary_lists_refusals_only_where_there_are_some():
    refused = {"config": {"strategy": "spatial", "devices": 2}, "codec": "fp32", "repeat": 0,
               "reason": "must start with spatial layers"}
    assert str(CampaignSummary(2, 1, 1, [], 1.0)).splitlines() == [
        "2/2 runs measured (1 now, 1 before), 0 failed"]
    text = str(CampaignSummary(2, 0, 1, [], 1.0, refused=[refused]))
    assert text.startswith("1/2 runs measured (1 now, 0 before), 1 refused, 0 failed")
    assert "refused: {'strategy': 'spatial', 'devices': 2} codec=fp32 repeat=0: must start" in text


@pytest.mark.parametrize(("runs", "samples", "message"), [
    (0, 10, "runs must be an integer >= 1, got 0"),
    (1, 0, "samples must be an integer >= 1, got 0"),
    (1, 2.5, "samples must be an integer >= 1, got 2.5"),
    (1, "10", "samples must be an integer >= 1, got '10'"),
    (True, 10, "runs must be an integer >= 1, got True"),
])
def test_a_campaign_refuses_counts_that_are_not_whole_numbers(runs, samples, message):
    """One rule (``toolkit.errors.check_count``) for campaigns, studies, testbeds and the
    workers; a float or a string of samples used to reach the workers or fail there."""
    from toolkit.campaign import CampaignSpec

    config = {"model": "m", "split": 1, "cpu_freq": 600, "edge_accel": "none",
              "cloud_accel": "none"}
    with pytest.raises(ConfigError, match=message):
        CampaignSpec([config], runs=runs, samples=samples)


#: one configuration, as a mapping (what a notebook or a JSON file gives)
CONFIG = [{"model": "m", "split": 1, "cpu_freq": 600, "edge_accel": "none",
           "cloud_accel": "none"}]


@pytest.mark.parametrize(("make", "message"), [
    (lambda s: s(CONFIG, warmup=-1), "warmup must be an integer >= 0, got -1"),
    (lambda s: s(CONFIG, seed=-1), "seed must be None or an integer >= 0, got -1"),
    (lambda s: s("configs.json"), r"configs must be a list of configurations \(e\.g\. grid"),
    (lambda s: s(CONFIG[0]), "configs must be a list of configurations"),
])
def test_a_campaign_spec_names_what_is_no_list_of_configurations(make, message):
    from toolkit.campaign import CampaignSpec

    with pytest.raises(ConfigError, match=message):
        make(CampaignSpec)



def test_grid_takes_one_name_as_a_list_of_one_and_refuses_fractions():
    """``grid("vgg16", ...)`` made the models 'v', 'g', 'g', '1', '6'; a frequency of
    600.5 was cut to 600 without a word."""
    from toolkit.campaign import grid
    from toolkit.config import Config

    configs, _ = grid("digits-cnn", 3, 600, "int8")
    assert configs == [Config("digits-cnn", 3, 600, "int8", "none")]
    for freq, message in ((600.5, "cpu_freq must be a whole number, got 600.5"),
                          (float("nan"), "cpu_freq must be a whole number, got nan"),
                          ("fast", "cpu_freq must be a whole number, got 'fast'")):
        with pytest.raises(ConfigError, match=message):
            grid(["digits-cnn"], [1], [freq])
    with pytest.raises(ConfigError, match="model must be a model's name, got None"):
        Config(None, 1, 600)


@pytest.mark.parametrize(("change", "message"), [
    ({"testbed": "local"}, r"a campaign runs on a testbed \(e\.g\. LocalTestbed\(\)"),
    ({"testbed": []}, "a campaign runs on a testbed"),
    ({"spec": {"configs": CONFIG}}, "a campaign needs a CampaignSpec"),
    ({"out": None}, "a campaign needs its output cube's path, got None"),
    ({"retries": -1}, "retries must be an integer >= 0, got -1"),
    ({"drop_after": 0}, "drop_after must be an integer >= 1, got 0"),
    ({"backoff_s": float("nan")}, "backoff_s must be a number of seconds >= 0, got nan"),
    ({"save_every_s": -1}, "save_every_s must be a number of seconds >= 0, got -1"),
])
def test_a_campaign_names_what_it_cannot_run_with_before_anything_starts(tmp_path, change,
                                                                         message):
    from toolkit.campaign import Campaign, CampaignSpec
    from toolkit.devices.testbeds.local import LocalTestbed

    args = {"testbed": LocalTestbed(), "spec": CampaignSpec(CONFIG, samples=5),
            "out": tmp_path / "c.nc", **change}
    with pytest.raises(ConfigError, match=message):
        Campaign(args.pop("testbed"), args.pop("spec"), args.pop("out"), **args)
    assert not (tmp_path / "c.nc.journal").exists()
