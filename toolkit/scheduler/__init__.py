"""The online scheduler: serve requests with a policy, live or as a dry run.

Its modules, one concern each (limits, protocol, line splitting, clients,
inputs, authentication, metrics, serving, the dry run, the exported script), are
listed in docs/architecture.md (the ``toolkit/scheduler/`` row); each module's
docstring says more. ``dynasplit export --script`` writes a copy of
:mod:`toolkit.scheduler.script` beside the policy, ``dynasplit schedule`` runs it.
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
