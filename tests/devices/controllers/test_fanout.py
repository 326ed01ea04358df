"""Fan-out over several real sshd hosts, and the blocking (notebook) API."""

from __future__ import annotations

import pytest
from fake_pi import make_fake_pi  # tests/ is on sys.path (conftest)

from toolkit.config import Config
from toolkit.devices import (
    Blocking,
    CommandFailed,
    ConnectError,
    PiController,
    ReconnectPolicy,
    RemoteProcess,
    SshTransport,
    apply_all,
    failed,
    fanout,
    load_profile,
    run_all,
    run_blocking,
)

GIVE_UP_FAST = ReconnectPolicy(initial_s=0.05, max_delay_s=0.1, give_up_s=0.3)


@pytest.fixture
def three_pis(sshd_factory, make_host, tmp_path):
    pis = {}
    for i in range(3):
        server = sshd_factory(f"sshd{i}")
        fake = make_fake_pi(tmp_path / f"pi{i}")
        host = make_host(server, name=f"pi{i}", profile=load_profile(fake.profile_path))
        pis[host.name] = (server, fake, PiController(SshTransport(host, GIVE_UP_FAST)))
    return pis


async def test_apply_all_reports_each_host_and_one_failure_hides_nothing(three_pis):
    servers = {name: s for name, (s, _, _) in three_pis.items()}
    controllers = {name: c for name, (_, _, c) in three_pis.items()}
    servers["pi1"].stop()  # one host is down
    results = await apply_all(controllers, Config("digits-cnn", 1, 1400, "tpu-std", "none"),
                              progress=False)
    assert list(results) == ["pi0", "pi1", "pi2"]
    assert results["pi0"].ok and results["pi2"].ok
    assert [c.knob for c in results["pi0"].unwrap()] == ["cpu_freq", "tpu_power", "tpu_mode"]
    assert isinstance(results["pi1"].error, ConnectError) and "pi1" in str(results["pi1"].error)
    assert set(failed(results)) == {"pi1"}
    with pytest.raises(ConnectError):
        results["pi1"].unwrap()
    for name in ("pi0", "pi2"):
        assert three_pis[name][1].cur_khz == 1_400_000
    for c in controllers.values():
        await c.close()


async def test_run_all_collects_failures_per_host(three_pis):
    transports = [c.transport for _, _, c in three_pis.values()]
    port0 = three_pis["pi0"][0].port
    # the same command everywhere; it succeeds only on pi0 (SSH_CONNECTION ends in its port)
    only_pi0 = ["sh", "-c", f'case "$SSH_CONNECTION" in *" {port0}") exit 0;; esac; exit 1']
    results = await run_all(transports, only_pi0, progress=False)
    assert results["pi0"].ok and results["pi0"].value.exit_status == 0
    assert all(isinstance(results[n].error, CommandFailed) for n in ("pi1", "pi2"))
    plain = await run_all(transports, ["echo", "hi"], check=False, progress=False)
    assert [r.value.stdout for r in plain.values()] == ["hi\n"] * 3
    for t in transports:
        await t.close()


async def test_fanout_of_any_operation():
    async def op(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x * 10

    results = await fanout({"a": 1, "b": 2, "c": 3}, op, progress=False)
    assert results["a"].value == 10 and results["c"].value == 30
    assert str(results["b"].error) == "two" and results["b"].value is None


def test_blocking_api_from_synchronous_code(pi_host, fake_pi, tmp_path):
    pi = Blocking(PiController(SshTransport(pi_host)))
    change = pi.set_cpu_freq(800)  # no await: runs on the shared device loop
    assert change.verified and fake_pi.cur_khz == 800_000
    assert pi.name == "pi" and pi.available_frequencies()[0] == 600
    proc = Blocking(run_blocking(RemoteProcess.start(
        pi.transport, "echoer", ["sh", "-c", "echo one; echo two"],
        run_dir=str(tmp_path / "run"))))
    assert proc.wait(5.0)
    assert list(proc.logs(follow=False)) == ["one", "two"]
    results = run_blocking(apply_all({"pi": pi.target}, Config("m", 1, 600), progress=False))
    assert results["pi"].ok
    pi.close()
