"""The online scheduler: serve requests with a policy, live or as a dry run.

- :mod:`toolkit.scheduler.limits` — every bound on input and clients, named;
- :mod:`toolkit.scheduler.protocol` — request and outcome JSON lines (parsing
  raises :class:`RequestError` only, whatever the line holds);
- :mod:`toolkit.scheduler.lines` — splitting a byte stream into bounded lines;
- :mod:`toolkit.scheduler.channel` — one client: its input, its output with
  flow control, its in-flight ids and bounded outstanding answers;
- :mod:`toolkit.scheduler.inputs` and :mod:`toolkit.scheduler.frames` — inputs a
  request carries (base64 ``.npy`` or image, or a raw tensor frame), their
  limits and the model's preprocessing;
- :mod:`toolkit.scheduler.auth` — bearer token and (mutual) TLS, the
  non-loopback bind check;
- :mod:`toolkit.scheduler.metrics` — Prometheus metrics, ``/healthz``, JSON logs;
- :mod:`toolkit.scheduler.service` — the options and set-up the script and
  ``dynasplit schedule`` share;
- :mod:`toolkit.scheduler.server` — stdin/TCP serving, bounded queue with
  backpressure, per-request timeout, graceful shutdown;
- :mod:`toolkit.scheduler.dryrun` — dry-run outcomes, decided and encoded once
  per deadline and hardware state;
- :mod:`toolkit.scheduler.script` — the online phase itself (decide, apply,
  run) and the command line; ``dynasplit export --script`` writes a copy of it
  beside the policy, ``dynasplit schedule`` runs it.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.scheduler.protocol import Request, RequestError, parse_request
from toolkit.scheduler.server import Server, ServerStats, parse_listen

__all__ = [
    "SCRIPT_SOURCE",
    "Request",
    "RequestError",
    "Server",
    "ServerStats",
    "export_script",
    "parse_listen",
    "parse_request",
]

#: the exported script's source (this package's ``script.py``)
SCRIPT_SOURCE = Path(__file__).with_name("script.py")

_POLICY_LINE = 'POLICY_FILE = "policy.json"'


def export_script(path: str | Path, policy_path: str | Path) -> Path:
    """Write the standalone scheduler script, defaulting to ``policy_path``.

    The policy is referred to relative to the script's folder, so the two can
    be moved together.
    """
    import json
    import os

    from toolkit.fileio import as_path, atomic_output

    path, policy_path = as_path(path, "the scheduler script"), as_path(policy_path, "the policy")
    relative = os.path.relpath(policy_path.resolve(), path.resolve().parent)
    text = SCRIPT_SOURCE.read_text()
    if _POLICY_LINE not in text:  # pragma: no cover - guards edits of script.py
        raise RuntimeError(f"{SCRIPT_SOURCE} lost its line {_POLICY_LINE!r}")
    text = text.replace(_POLICY_LINE, f"POLICY_FILE = {json.dumps(relative)}")
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    path.chmod(0o755)                   # atomic_output gives it the old file's mode
    return path
