"""Fixtures for device tests: real OpenSSH sshd servers on loopback and fake Pis."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fake_pi import FakePi, make_fake_pi
from sshd_fixture import SshServer, sshd_available

from toolkit.devices.inventory import Host
from toolkit.devices.transport.connect import ReconnectPolicy
from toolkit.hardware.profile import load_profile


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests of this folder with ``asyncio.run`` (a fresh loop each)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
    return True


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator[Callable[..., SshServer]]:
    """Start sshd servers (``factory(name, **kwargs)``); all stop at teardown."""
    reason = sshd_available()
    if reason:
        pytest.skip(reason)
    servers: list[SshServer] = []

    def factory(name: str = "sshd", **kwargs) -> SshServer:
        server = SshServer(tmp_path / name, **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def sshd(sshd_factory) -> SshServer:
    """One running sshd."""
    return sshd_factory()


def host_for(server: SshServer, name: str = "pi", **overrides) -> Host:
    """An inventory host that reaches ``server`` with its client key and known_hosts."""
    host = Host(name=name, address="127.0.0.1", port=server.port, user=server.user,
                identity_file=server.client_key, known_hosts=server.known_hosts,
                roles=("edge",), connect_timeout_s=5.0, command_timeout_s=10.0,
                where=f"test inventory hosts[{name}]")
    return replace(host, **overrides)


@pytest.fixture
def make_host() -> Callable[..., Host]:
    """``make_host(server, name="pi", **overrides)``: a Host reaching that server."""
    return host_for


@pytest.fixture
def fake_pi(tmp_path: Path) -> FakePi:
    """A fake Pi (sysfs, uhubctl, apt-get, dpkg-query) without sudo."""
    return make_fake_pi(tmp_path / "fakepi")


@pytest.fixture
def pi_host(sshd: SshServer, fake_pi: FakePi) -> Host:
    """An edge host on the sshd whose profile points at the fake Pi."""
    return host_for(sshd, profile=load_profile(fake_pi.profile_path))


@pytest.fixture
def fast_backoff() -> ReconnectPolicy:
    """Backoff that gives up after 5 s (tests restart sshd well within it)."""
    return ReconnectPolicy(initial_s=0.05, factor=2.0, max_delay_s=0.4, give_up_s=5.0)
