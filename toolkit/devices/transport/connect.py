"""Opening one SSH connection to an inventory host, on asyncssh.

- the server's host key is verified against the host's known_hosts file (turning
  this off needs ``verify_host_keys = false`` in the inventory, and logs a
  warning on every connect);
- authentication is by a key file or the ssh-agent only: password and
  keyboard-interactive authentication are never offered;
- keepalives are sent, and connecting is limited in time;
- AES-GCM ciphers are offered first (:data:`CIPHERS`).

:func:`connect_once` makes one attempt and turns asyncssh's errors into the
toolkit's: a user's mistake (:class:`~toolkit.errors.ConfigError`, a wrong host
key, refused credentials) is never retried; :class:`ConnectError` is, by the
transport's :class:`ReconnectPolicy`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from toolkit.devices.inventory import Host
from toolkit.devices.transport.errors import AuthError, ConnectError, HostKeyError
from toolkit.devices.transport.sshlib import import_asyncssh
from toolkit.errors import ConfigError
from toolkit.retry import Backoff

asyncssh = import_asyncssh()

__all__ = ["CIPHERS", "TRANSIENT_ERRORS", "ReconnectPolicy", "client_options", "connect_once",
           "endpoint"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconnectPolicy(Backoff):
    """Backoff for (re)connecting: 0.1 s doubling to 2 s, giving up after 30 s."""

    max_delay_s: float = 2.0
    give_up_s: float = 30.0


#: errors of a connection or channel that a new attempt may cure
TRANSIENT_ERRORS = (OSError, asyncio.TimeoutError, asyncssh.DisconnectError,
                    asyncssh.ChannelOpenError)

#: Ciphers offered to the host, most wanted first: AES-GCM costs asyncssh one AEAD
#: call per packet where chacha20-poly1305 builds three cipher contexts, a quarter
#: of the controller's CPU per command at fan-out (``benchmarks/fanout.py``).
#: asyncssh's other defaults follow, for hosts that lack AES-GCM.
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
           "chacha20-poly1305@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr")


def endpoint(host: Host) -> str:
    """``address:port``, for messages."""
    return f"{host.address}:{host.port}"


def client_options(host: Host) -> dict:
    """asyncssh's connect options for ``host`` (the inventory is the whole truth).

    Raises:
        ConfigError: the key file or known_hosts file the inventory names is missing.
    """
    h = host
    opts: dict = dict(
        port=h.port,
        username=h.user,
        config=[],  # the inventory is the whole truth, not ~/.ssh/config
        connect_timeout=h.connect_timeout_s,
        keepalive_interval=h.keepalive_s,
        keepalive_count_max=3,
        password_auth=False,
        kbdint_auth=False,
        host_based_auth=False,
        gss_auth=False,
        gss_kex=False,
        public_key_auth=True,
        encryption_algs=list(CIPHERS),
    )
    if h.agent:
        # the agent's keys (SSH_AUTH_SOCK), then unencrypted ~/.ssh/id_* as OpenSSH does
        opts.update(client_keys=(), agent_path=())
    else:
        if h.identity_file is None or not h.identity_file.is_file():
            raise ConfigError(
                f"{h.where}: key 'identity_file' names {h.identity_file}, which is not "
                "a readable private key file"
            )
        opts.update(client_keys=[str(h.identity_file)], agent_path=None)
    if h.verify_host_keys:
        if h.known_hosts is None or not h.known_hosts.is_file():
            raise ConfigError(
                f"{h.where}: key 'known_hosts' names {h.known_hosts}, which does not "
                f"exist; add the host with `ssh-keyscan -p {h.port} {h.address}` (and "
                "check the fingerprint), or set verify_host_keys = false"
            )
        opts.update(known_hosts=str(h.known_hosts))
    else:
        log.warning(
            "host key verification is OFF for %s (%s): verify_host_keys = false in %s",
            h.name, endpoint(h), h.where,
        )
        opts.update(known_hosts=None)
    return opts


async def connect_once(host: Host) -> asyncssh.SSHClientConnection:
    """One attempt to connect to ``host``.

    Raises:
        ConnectError: the host could not be reached (worth retrying).
        HostKeyError, AuthError, ConfigError: a wrong host key, refused credentials
            or a wrong inventory entry (never worth retrying).
    """
    h = host
    opts = client_options(h)
    try:
        return await asyncssh.connect(h.address, **opts)
    except asyncssh.HostKeyNotVerifiable:
        raise host_key_error(h) from None
    except asyncssh.PermissionDenied:
        how = "the ssh-agent's keys" if h.agent else f"key {h.identity_file}"
        raise AuthError(
            h.name,
            f"authentication failed for user {h.user!r} on {h.name} ({endpoint(h)}) "
            f"with {how}: the server refused it (is the public key in the user's "
            "authorized_keys?)",
        ) from None
    except socket.gaierror as exc:
        raise ConfigError(
            f"{h.where}: key 'address' = {h.address!r} cannot be resolved: {exc}"
        ) from None
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        raise ConfigError(
            f"{h.where}: key 'identity_file' = {h.identity_file}: cannot use it ({exc}); "
            "encrypted keys need the ssh-agent (agent = true)"
        ) from None
    except TRANSIENT_ERRORS as exc:
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
        raise ConnectError(
            h.name, f"cannot connect to {h.name} ({endpoint(h)}): {reason}"
        ) from None


def host_key_error(host: Host) -> HostKeyError:
    """The error for a host key that known_hosts does not vouch for, saying which case."""
    h = host
    try:
        known = asyncssh.read_known_hosts(str(h.known_hosts))
        listed = any(known.match(h.address, h.address, h.port)[:2])
    except (OSError, ValueError):
        listed = False
    if listed:
        msg = (f"host key for {h.name} ({endpoint(h)}) does not match known_hosts "
               f"{h.known_hosts}: the host was reinstalled or someone is in the middle; "
               "check its fingerprint out of band before updating known_hosts")
    else:
        msg = (f"host key for {h.name} ({endpoint(h)}) is not in known_hosts "
               f"{h.known_hosts}; add it with `ssh-keyscan -p {h.port} {h.address}` "
               "after checking the fingerprint")
    return HostKeyError(h.name, msg)
