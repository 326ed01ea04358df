"""Who may talk to the scheduler: a shared-secret bearer token and/or mutual TLS.

A scheduler that listens on anything but loopback drives real hardware knobs
(CPU frequency, TPU power), so it refuses to start there unless clients must
prove themselves, by either or both of:

- **a bearer token**: the connection's first line is ``Bearer TOKEN`` or
  ``Authorization: Bearer TOKEN``; it is compared with
  :func:`hmac.compare_digest`. The token is read from a file (``--token-file``)
  or from the environment variable :data:`TOKEN_ENV`, never from the command
  line or the policy file, so that it appears in no process list, shell history
  or repository. A wrong or missing token gets one line
  ``{"error": "authentication failed"}`` and the connection is closed.
- **TLS** (``--tls-cert``/``--tls-key``), mutual with ``--tls-ca``: the client
  must present a certificate signed by that CA (``ssl.CERT_REQUIRED``). The
  handshake runs as the connection is accepted (:class:`TlsListener`, through
  ``loop.connect_accepted_socket(ssl=...)``, on asyncio or uvloop), so that a
  failed one is counted; the token is checked after it.

``--insecure`` allows a non-loopback address without either, with a loud
warning. Every failed authentication is counted (:class:`AuthStats`) and logged
with the peer address and the reason, never with what the client sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import os
import socket
import ssl
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.scheduler.direct import HandoverReader
from toolkit.scheduler.limits import AUTH_TIMEOUT_S, MAX_AUTH_LINE, MIN_TOKEN_CHARS

__all__ = ["MIN_TOKEN_CHARS", "TOKEN_ENV", "AuthStats", "Guard", "TlsListener", "is_loopback",
           "load_token", "peer_name", "server_context", "start_server"]

#: environment variable holding the token when no ``--token-file`` is given
TOKEN_ENV = "DYNASPLIT_SCHEDULER_TOKEN"
_FAILED = b'{"error":"authentication failed"}\n'


def is_loopback(host: str) -> bool:
    """True for a loopback address or ``localhost`` (the only hosts safe without auth)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_token(path: str | os.PathLike | None = None,
               env: dict[str, str] | None = None) -> bytes | None:
    """The shared secret from ``path``, else from :data:`TOKEN_ENV`; None when neither.

    The file's content is stripped of surrounding whitespace.

    Raises:
        ToolkitError: the file cannot be read, is readable by other users, or
            the token is shorter than :data:`MIN_TOKEN_CHARS` characters.
    """
    env = os.environ if env is None else env
    if path is not None:
        path = Path(path)
        try:
            mode = path.stat().st_mode
            text = path.read_text()
        except OSError as exc:
            raise ToolkitError(f"cannot read the token file {path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ToolkitError(f"token file {path} is readable by other users; "
                               f"run: chmod 600 {path}")
        where = f"token file {path}"
    elif env.get(TOKEN_ENV):
        text, where = env[TOKEN_ENV], f"${TOKEN_ENV}"
    else:
        return None
    token = text.strip()
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ToolkitError(f"the token in {where} must be at least {MIN_TOKEN_CHARS} "
                           "characters without spaces (e.g. from `openssl rand -hex 32`)")
    return token.encode()


def server_context(cert: str | os.PathLike, key: str | os.PathLike | None = None,
                   ca: str | os.PathLike | None = None) -> ssl.SSLContext:
    """A server-side TLS context; with ``ca``, client certificates are required.

    Raises:
        ToolkitError: a file is missing or not a valid certificate/key.
    """
    if sys.version_info < (3, 11):
        raise ToolkitError("TLS for the scheduler needs Python 3.11 or newer")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), None if key is None else str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ToolkitError(f"cannot load the TLS certificate {cert} (key {key}): {exc}") from None
    if ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            raise ToolkitError(f"cannot load the TLS client CA file {ca}: {exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class TlsListener:
    """A TCP listener that hands each connection over after its TLS handshake.

    It accepts on its own socket and runs the handshake with
    ``loop.connect_accepted_socket(ssl=...)``, so that a failed or slow one
    raises here and is counted (``guard.tls_failed``), on asyncio and on uvloop
    alike (uvloop's ``start_tls`` after accepting hangs: it reads the client's
    hello into the plain stream). ``client_connected(reader, writer)`` then runs
    in the same task. Its interface is the part of :class:`asyncio.Server` the
    scheduler uses: :attr:`sockets`, :meth:`start_serving`, :meth:`close`;
    closing it also cancels the handshakes in progress.
    """

    def __init__(self, sock: socket.socket, guard: Guard,
                 client_connected: Callable[..., Any], limit: int) -> None:
        self.sockets = [sock]
        self._guard = guard
        self._connected = client_connected
        self._limit = limit
        self._accepting: asyncio.Task | None = None
        self._handshaking: set[asyncio.Task] = set()

    async def start_serving(self) -> None:
        """Start accepting connections."""
        self._accepting = asyncio.create_task(self._accept())

    def close(self) -> None:
        """Stop accepting; cancel the handshakes in progress."""
        if self._accepting is not None:
            self._accepting.cancel()
        for task in list(self._handshaking):
            task.cancel()
        self.sockets[0].close()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        sock = self.sockets[0]
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as exc:          # out of descriptors, say: try again soon
                if self._guard._log is not None:
                    self._guard._log("error", "accept failed", error=str(exc))
                await asyncio.sleep(0.1)
                continue
            self._handshaking.add(asyncio.create_task(self._serve(conn, peer)))

    async def _serve(self, conn: socket.socket, peer: Any) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        reader = HandoverReader(limit=self._limit)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await asyncio.wait_for(loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self._guard.tls,
                ssl_handshake_timeout=self._guard.timeout_s + 1), self._guard.timeout_s)
        except (ssl.SSLError, ConnectionError, OSError, asyncio.TimeoutError) as exc:
            self._guard.tls_failed(peer, exc)
            conn.close()
            return
        except asyncio.CancelledError:      # the listener closed: shutdown
            conn.close()
            return
        finally:
            self._handshaking.discard(task)  # type: ignore[arg-type]
        await self._connected(reader, asyncio.StreamWriter(transport, protocol, reader, loop))


async def start_server(client_connected: Callable[..., Any], host: str, port: int, *,
                       limit: int, guard: Guard | None = None,
                       **kwargs: Any) -> asyncio.Server | TlsListener:
    """:func:`asyncio.start_server`; with a TLS ``guard``, a :class:`TlsListener`
    (its connections reach ``client_connected`` after their handshake). Either
    way each connection's reader is a :class:`~toolkit.scheduler.direct.HandoverReader`."""
    if guard is None or guard.tls is None:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: asyncio.StreamReaderProtocol(HandoverReader(limit=limit), client_connected),
            host, port, **kwargs)
    family = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]  # a name: its first
    sock = socket.create_server((host, port), family=family, backlog=1024)
    sock.setblocking(False)
    return TlsListener(sock, guard, client_connected, limit)


@dataclass
class AuthStats:
    """Failed authentications by reason (``token``, ``tls``, ``timeout``)."""

    failures: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """All failures together."""
        return sum(self.failures.values())


class Guard:
    """Admits a new connection: TLS handshake, then the bearer token, or refuses it.

    Args:
        token: the shared secret, or None for no token.
        tls: a server context (see :func:`server_context`), or None for plain TCP.
        log: ``log(level, event, **fields)`` for failures (never given the secret).
        on_failure: called with the reason of each failed authentication.
        timeout_s: how long a connection may take to authenticate.
    """

    def __init__(self, token: bytes | None = None, tls: ssl.SSLContext | None = None, *,
                 log: Callable[..., None] | None = None,
                 on_failure: Callable[[str], None] | None = None,
                 timeout_s: float = AUTH_TIMEOUT_S) -> None:
        self.token = token
        self.tls = tls
        self.timeout_s = timeout_s
        self.stats = AuthStats()
        self._log = log
        self._on_failure = on_failure

    @property
    def mutual_tls(self) -> bool:
        """True when clients must present a certificate."""
        return self.tls is not None and self.tls.verify_mode == ssl.CERT_REQUIRED

    @property
    def authenticates(self) -> bool:
        """True when a client must prove itself (token or client certificate)."""
        return self.token is not None or self.mutual_tls

    def describe(self) -> str:
        """What this guard requires, for the start-up log."""
        parts = []
        if self.tls is not None:
            parts.append("mutual TLS" if self.mutual_tls else "TLS")
        if self.token is not None:
            parts.append("bearer token")
        return " + ".join(parts) or "none"

    def check_bind(self, host: str, insecure: bool) -> str | None:
        """Refuse a non-loopback ``host`` without authentication; a warning if allowed.

        Returns:
            A warning to log loudly when ``insecure`` lets an open bind through,
            else None.

        Raises:
            ToolkitError: ``host`` is not loopback, nothing authenticates and
                ``insecure`` is not set.
        """
        if is_loopback(host) or self.authenticates:
            return None
        if not insecure:
            raise ToolkitError(
                f"refusing to listen on {host} without authentication: anyone who can reach "
                f"it could drive the testbed; give --token-file FILE (or ${TOKEN_ENV}), or "
                "--tls-cert/--tls-key with --tls-ca for mutual TLS, or --insecure to accept "
                "the risk")
        return (f"INSECURE: listening on {host} with no authentication and no client "
                "certificates; anyone who can reach this port can drive the testbed")

    def tls_failed(self, peer: Any, exc: BaseException) -> None:
        """Count and log a failed (or too slow) TLS handshake."""
        if isinstance(exc, asyncio.TimeoutError):
            self._fail("timeout", peer, f"no TLS handshake within {self.timeout_s:g} s")
            return
        reason = getattr(exc, "reason", None) or type(exc).__name__
        self._fail("tls", peer, f"TLS handshake failed: {reason}")

    def _fail(self, reason: str, peer: Any, detail: str) -> None:
        self.stats.failures[reason] = self.stats.failures.get(reason, 0) + 1
        if self._on_failure is not None:
            self._on_failure(reason)
        if self._log is not None:
            self._log("warning", "auth_failed", reason=reason, peer=peer_name(peer), detail=detail)

    async def admit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Check the bearer token of a new connection (its TLS handshake is done:
        :class:`TlsListener`); False (and the connection closed) if it fails."""
        peer = writer.get_extra_info("peername")
        try:
            return self.token is None or await asyncio.wait_for(
                self._check_token(reader, writer, peer), self.timeout_s)
        except asyncio.TimeoutError:
            self._fail("timeout", peer, f"no authentication within {self.timeout_s:g} s")
            writer.transport.abort()
            return False

    async def _check_token(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           peer: Any) -> bool:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            line = b""
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            self._fail("token", peer, "connection closed before a token was sent")
            writer.close()
            return False
        sent = _bearer(line[:MAX_AUTH_LINE])
        assert self.token is not None
        if sent is None or not hmac.compare_digest(sent, self.token):
            self._fail("token", peer, "no bearer token on the first line" if sent is None
                       else "wrong bearer token")
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.write(_FAILED)
            writer.close()
            return False
        return True


def _bearer(line: bytes) -> bytes | None:
    """The token of a ``Bearer T`` / ``Authorization: Bearer T`` line, else None."""
    words = line.split()
    if len(words) == 3 and words[0].lower() == b"authorization:":
        words = words[1:]
    if len(words) == 2 and words[0].lower() == b"bearer":
        return words[1]
    return None


def peer_name(peer: Any) -> str:
    """``HOST:PORT`` of a socket's peer address (as logged), else the address as text."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
