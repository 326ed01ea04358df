"""The scheduler as a network service: options, authentication, metrics, logs.

``dynasplit schedule`` and the exported ``scheduler.py`` share this module:
:func:`add_options` defines their command line, :meth:`Service.from_args`
checks it before anything starts (token file, certificates, a non-loopback
bind without authentication, the metrics address) and :meth:`Service.serve`
runs a :class:`~toolkit.scheduler.server.Server` on stdin or TCP with the
``/metrics`` and ``/healthz`` endpoint beside it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.scheduler.auth import TOKEN_ENV, Guard, load_token, server_context
from toolkit.scheduler.metrics import LOG_LEVELS, Metrics, log_event, setup_logging, start_http
from toolkit.scheduler.server import Server, parse_listen

__all__ = ["Service", "add_options", "loop_for"]


def add_options(parser: argparse.ArgumentParser) -> None:
    """Every option but the policy file (shared by the script and ``dynasplit schedule``)."""
    parser.add_argument("--dry-run", action="store_true",
                        help="decide only: no testbed, predicted latency and energy")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="serve TCP (loopback unless a host is named) instead of stdin")
    parser.add_argument("--testbed", default="local", metavar="local|FILE.toml",
                        help="where to run (default: the local emulated testbed)")
    parser.add_argument("--queue", type=int, default=1024, metavar="N",
                        help="bounded request queue size (default 1024)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="per-request time limit in seconds (default 60)")
    parser.add_argument("--grace", type=float, default=30.0, metavar="S",
                        help="on SIGINT/SIGTERM, seconds to finish queued requests (default 30)")
    parser.add_argument("--adapt", action="store_true",
                        help="correct predicted latency online from observed transfer times")
    auth = parser.add_argument_group(
        "authentication (required to --listen on a non-loopback address)")
    auth.add_argument("--token-file", type=Path, metavar="FILE",
                      help=f"shared secret clients send as 'Bearer TOKEN' on their first line "
                           f"(mode 600; default: ${TOKEN_ENV} when set)")
    auth.add_argument("--tls-cert", type=Path, metavar="PEM", help="server certificate (TLS)")
    auth.add_argument("--tls-key", type=Path, metavar="PEM",
                      help="server private key (default: in --tls-cert)")
    auth.add_argument("--tls-ca", type=Path, metavar="PEM",
                      help="CA of the client certificates: mutual TLS, clients must present one")
    auth.add_argument("--insecure", action="store_true",
                      help="allow a non-loopback --listen without token or client certificates")
    watch = parser.add_argument_group("monitoring")
    watch.add_argument("--metrics", metavar="HOST:PORT",
                       help="serve /metrics (Prometheus) and /healthz there (default: off)")
    watch.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                       help="JSON-lines log level on stderr (default info)")


def loop_for(args: argparse.Namespace) -> str | None:
    """The event loop to serve ``args`` on (for :func:`toolkit.aio.run`): TCP on uvloop
    where it is installed (compiled transports and TLS) unless ``DYNASPLIT_LOOP``
    names another; stdin on asyncio."""
    return None if args.listen else "asyncio"


@dataclass
class Service:
    """What the command line asked of the service, checked.

    Attributes:
        listen: (host, port) for TCP, or None for stdin.
        guard: the authentication of TCP clients, or None (loopback, open).
        metrics: the Prometheus metrics, or None when ``--metrics`` is off.
        metrics_at: (host, port) of the metrics endpoint, or None.
    """

    listen: tuple[str, int] | None = None
    guard: Guard | None = None
    metrics: Metrics | None = None
    metrics_at: tuple[str, int] | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Service:
        """Set up logging and check the service options.

        Raises:
            ToolkitError: an unreadable token or certificate, TLS options
                without ``--tls-cert``, authentication without ``--listen``, or
                a non-loopback ``--listen`` without authentication nor ``--insecure``.
        """
        setup_logging(args.log_level)
        listen = parse_listen(args.listen) if args.listen else None
        if (args.tls_key or args.tls_ca) and not args.tls_cert:
            raise ToolkitError("--tls-key and --tls-ca need --tls-cert (the server certificate)")
        if listen is None and (args.token_file or args.tls_cert):
            raise ToolkitError("--token-file and --tls-* apply to --listen HOST:PORT; stdin "
                               "needs no authentication")
        metrics = Metrics() if args.metrics else None
        guard = None
        if listen is not None:
            token = load_token(args.token_file)
            tls = server_context(args.tls_cert, args.tls_key, args.tls_ca) \
                if args.tls_cert else None
            guard = Guard(token, tls, log=log_event,
                          on_failure=metrics.auth_failed if metrics else None)
            warning = guard.check_bind(listen[0], args.insecure)
            if warning:
                log_event("warning", warning, insecure=True)
            if token is None and tls is None:
                guard = None
        metrics_at = parse_listen(args.metrics) if args.metrics else None
        return cls(listen, guard, metrics, metrics_at)

    def server_options(self) -> dict[str, Any]:
        """The :class:`~toolkit.scheduler.server.Server` keyword arguments for this service."""
        return {"guard": self.guard, "observer": self.metrics}

    async def serve(self, server: Server) -> None:
        """Serve stdin or TCP until done, with the metrics endpoint when asked for."""
        http = None
        if self.metrics is not None and self.metrics_at is not None:
            try:
                http = await start_http(*self.metrics_at, self.metrics, server.health)
            except OSError as exc:
                raise ToolkitError(f"cannot serve metrics on {self.metrics_at[0]}:"
                                   f"{self.metrics_at[1]}: {exc.strerror or exc}") from None
            host, port = http.sockets[0].getsockname()[:2]
            log_event("info", "metrics listening", host=host, port=port,
                      paths=["/metrics", "/healthz"])
        try:
            if self.listen is None:
                await server.run_stdin()
            else:
                auth = self.guard.describe() if self.guard else "none"
                await server.run_tcp(*self.listen, on_listen=lambda h, p: log_event(
                    "info", "listening", host=h, port=p, auth=auth))
        finally:
            if http is not None:
                http.close()
