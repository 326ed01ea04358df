"""The SSH transport against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import replace

import psutil
import pytest

from toolkit.devices import (
    AuthError,
    CommandFailed,
    CommandTimeout,
    ConnectError,
    ConnectionLost,
    HostKeyError,
    ReconnectPolicy,
    SshError,
    SshTransport,
    deploy,
)
from toolkit.devices.transport.commands import remote_command
from toolkit.devices.transport.connect import CIPHERS
from toolkit.devices.transport.sshlib import import_asyncssh
from toolkit.errors import ConfigError, ToolkitError

asyncssh = import_asyncssh()

NASTY = ["a b", "$HOME", "`id`", "x; rm -rf /tmp/nothing", "it's", 'say "hi"', "*", "new\nline"]


def test_remote_command_quotes_every_part():
    assert remote_command(["echo", "a b", "$X"]) == "echo 'a b' '$X'"
    assert remote_command(["run"], env={"CUDA_VISIBLE_DEVICES": ""}) == (
        "env CUDA_VISIBLE_DEVICES= run")
    with pytest.raises(TypeError, match="not a shell string"):
        remote_command("echo hi; reboot")
    with pytest.raises(ValueError, match="invalid environment variable"):
        remote_command(["x"], env={"A B": "1"})


async def test_arguments_arrive_verbatim_and_connection_is_reused(sshd, make_host):
    async with SshTransport(make_host(sshd)) as t:
        res = await t.run(["printf", "%s\\0", *NASTY])
        assert res.stdout.split("\0")[:-1] == NASTY
        res = await t.run(["cat"], input="piped\n")
        assert res.stdout == "piped\n" and res.ok and res.duration_ms > 0
        res = await t.run(["sh", "-c", 'printf "%s" "$GREETING"'], env={"GREETING": "hé llo"})
        assert res.stdout == "hé llo"
        assert t.stats.connects == 1 and t.stats.commands == 3


async def test_aes_gcm_is_negotiated_with_openssh(sshd, make_host):
    """The cheapest cipher for asyncssh per packet (see CIPHERS) is the one in use."""
    async with SshTransport(make_host(sshd)) as t:
        conn = await t._connection()
        assert conn.get_extra_info("send_cipher") == CIPHERS[0] == "aes128-gcm@openssh.com"
        assert conn.get_extra_info("recv_cipher") == CIPHERS[0]


async def test_nonzero_exit(sshd, make_host):
    async with SshTransport(make_host(sshd, name="box")) as t:
        res = await t.run(["sh", "-c", "echo oops >&2; exit 3"], check=False)
        assert (res.exit_status, res.stderr) == (3, "oops\n")
        with pytest.raises(CommandFailed, match=r"on box failed with exit status 3: .*oops"):
            await t.run(["sh", "-c", "echo oops >&2; exit 3"])


async def test_hanging_command_times_out_and_next_command_works(sshd, make_host, tmp_path):
    marker = tmp_path / "still-running"
    async with SshTransport(make_host(sshd, name="pi", command_timeout_s=0.5)) as t:
        with pytest.raises(CommandTimeout) as info:
            await t.run(["sh", "-c", f"sleep 30; touch {marker}"])
        assert info.value.host == "pi" and "sleep 30" in info.value.command
        assert _running_with(str(marker))  # abandoned, still running for now
        assert "command on pi timed out after 0.5 s" in str(info.value)
        assert t.stats.timeouts == 1 and "timeout after 0.5 s" in t.stats.events[-1]
        assert (await t.run(["echo", "next"])).stdout == "next\n"
        assert t.stats.connects == 1
        # the host's `timeout` guard ends the abandoned command (and its children) soon
        # after: the marker is in the command line of the abandoned shell only
        await _until(lambda: not _running_with(str(marker)), within=8.0)


def _running_with(text: str) -> bool:
    for p in psutil.process_iter(["cmdline"]):
        if any(text in part for part in (p.info["cmdline"] or [])):
            return True
    return False


async def _until(predicate, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_sessions_are_bounded_below_max_sessions(sshd_factory, make_host):
    server = sshd_factory(max_sessions=4)
    async with SshTransport(make_host(server, max_sessions=4)) as t:
        results = await asyncio.gather(*(t.run(["sleep", "0.2"]) for _ in range(12)))
        assert all(r.ok for r in results)
    # without the bound, sshd refuses channels beyond its MaxSessions (for longer
    # than the transport retries a refused channel)
    async with SshTransport(make_host(server, max_sessions=40)) as t:
        results = await asyncio.gather(*(t.run(["sleep", "1"]) for _ in range(8)),
                                       return_exceptions=True)
        refused = [r for r in results if isinstance(r, SshError)]
        assert len(refused) == 4 and "refused a new session" in str(refused[0])


async def test_sftp_upload_download_verified(sshd, make_host, tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(bytes(range(256)) * 4096)
    remote = str(tmp_path / "remote dir" / "blob.bin")
    async with SshTransport(make_host(sshd)) as t:
        digest = await t.upload(src, remote)
        assert (tmp_path / "remote dir" / "blob.bin").read_bytes() == src.read_bytes()
        assert not list((tmp_path / "remote dir").glob("*.part-*"))
        assert (await t.sha256([remote, str(tmp_path / "missing")])) == {
            remote: digest, str(tmp_path / "missing"): None}
        back = tmp_path / "back" / "blob.bin"
        assert await t.download(remote, back) == digest
        assert back.read_bytes() == src.read_bytes()
        with pytest.raises(ToolkitError, match="no such readable file"):
            await t.download(str(tmp_path / "missing"), tmp_path / "x")


async def test_deploy_skips_identical_files(sshd, make_host, tmp_path):
    a, b = tmp_path / "head.tflite", tmp_path / "tail.keras"
    a.write_bytes(b"head-v1")
    b.write_bytes(b"tail-v1")
    dest = tmp_path / "deployed"
    files = {a: str(dest / "head.tflite"), b: str(dest / "tail.keras")}
    async with SshTransport(make_host(sshd)) as t:
        first = await deploy(t, files, progress=False)
        assert sorted(first.uploaded) == sorted(files.values()) and not first.skipped
        b.write_bytes(b"tail-v2")
        second = await deploy(t, files, progress=False)
        assert second.uploaded == [str(dest / "tail.keras")]
        assert second.skipped == [str(dest / "head.tflite")]
        assert (dest / "tail.keras").read_bytes() == b"tail-v2"
        with pytest.raises(ToolkitError, match="missing local files"):
            await deploy(t, {tmp_path / "nope": "x"}, progress=False)


async def test_changed_host_key_is_refused(sshd, make_host, tmp_path):
    other = tmp_path / "other_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    sshd.write_known_hosts(other)  # known_hosts now lists a different key for this host
    t = SshTransport(make_host(sshd, name="pi"))
    with pytest.raises(HostKeyError) as info:
        await t.run(["true"])
    assert str(info.value).startswith(
        f"host key for pi (127.0.0.1:{sshd.port}) does not match known_hosts {sshd.known_hosts}")
    assert t.stats.failed_attempts == 0  # refused at once, no retrying


async def test_unknown_host_is_refused(sshd, make_host, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError, match=r"host key for pi .* is not in known_hosts"):
        await SshTransport(make_host(sshd, known_hosts=empty)).run(["true"])


async def test_verification_off_warns_on_connect(sshd, make_host, tmp_path, caplog):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    host = make_host(sshd, known_hosts=None, verify_host_keys=False)
    with caplog.at_level(logging.WARNING, logger="toolkit.devices.transport.ssh"):
        async with SshTransport(host) as t:
            assert (await t.run(["echo", "ok"])).stdout == "ok\n"
    assert "host key verification is OFF for pi" in caplog.text


async def test_wrong_client_key_names_host_and_user(sshd, make_host, tmp_path):
    stranger = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    t = SshTransport(make_host(sshd, name="pi", identity_file=stranger))
    with pytest.raises(AuthError) as info:
        await t.run(["true"])
    assert info.value.host == "pi"
    assert f"authentication failed for user '{sshd.user}' on pi" in str(info.value)


async def test_missing_key_file_is_a_config_error(sshd, make_host, tmp_path):
    t = SshTransport(make_host(sshd, identity_file=tmp_path / "nope"))
    with pytest.raises(ConfigError, match="identity_file"):
        await t.connect()


async def test_unreachable_host_gives_up_after_backoff(make_host, sshd):
    sshd.stop()
    policy = ReconnectPolicy(initial_s=0.05, max_delay_s=0.1, give_up_s=0.4)
    t = SshTransport(make_host(sshd, name="pi"), reconnect=policy)
    with pytest.raises(ConnectError, match=r"cannot connect to pi \(127.0.0.1:\d+\) after \d+ "):
        await t.run(["true"])
    assert t.stats.failed_attempts >= 3
    # operations waiting on the same failed connect share its error: no backoff each
    attempts = t.stats.failed_attempts
    results = await asyncio.gather(*(t.run(["true"]) for _ in range(4)), return_exceptions=True)
    assert all(isinstance(r, ConnectError) for r in results)
    assert t.stats.failed_attempts - attempts <= attempts + 1


async def test_sshd_killed_then_back_reconnects_with_backoff(sshd, make_host, fast_backoff):
    t = SshTransport(make_host(sshd), reconnect=fast_backoff)
    running = asyncio.create_task(t.run(["sleep", "10"]))
    await asyncio.sleep(0.3)
    sshd.kill()  # a crash: the listener and every session die
    with pytest.raises(ConnectionLost, match=r"connection to pi .* lost during sleep 10"):
        await running
    restarter = threading.Timer(0.5, sshd.start)
    restarter.start()
    try:
        res = await t.run(["echo", "back"])  # retries until sshd listens again
    finally:
        restarter.join()
    assert res.stdout == "back\n"
    assert t.stats.reconnects == 1 and t.stats.failed_attempts >= 1
    assert t.stats.connection_losses == 1
    await t.close()


async def test_host_keeps_its_identity_across_restart(sshd, make_host):
    """Restarted with the same host key on the same port, the host is still trusted."""
    async with SshTransport(make_host(sshd)) as t:
        await t.run(["true"])
        sshd.stop()
        sshd.start()
        assert (await t.run(["echo", "same"])).stdout == "same\n"
        assert t.stats.reconnects == 1


def test_transport_needs_a_user(sshd, make_host):
    with pytest.raises(ConfigError, match="missing key 'user'"):
        SshTransport(replace(make_host(sshd), user=None))
