"""Deploying files to a host: SFTP copies verified by sha256, unchanged files skipped.

:func:`deploy` takes ``{local_path: remote_path}``, asks the host for the sha256
of every target in one ``sha256sum`` call, and uploads only the files whose
remote checksum differs (each upload is itself verified, see
:meth:`~toolkit.devices.transport.ssh.SshTransport.upload`). Used to push split-model
head/tail artifacts and worker code to edge and cloud hosts.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from toolkit.devices.transport.files import file_sha256
from toolkit.devices.transport.ssh import SshTransport
from toolkit.errors import ToolkitError

__all__ = ["DeployReport", "deploy"]


@dataclass
class DeployReport:
    """What a deploy did on one host.

    Attributes:
        host: host name.
        uploaded: remote paths copied (their checksum differed or they were missing).
        skipped: remote paths already holding identical content.
        sha256: remote path → sha256 of its content now.
        duration_ms: wall time of the whole deploy.
    """

    host: str
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    sha256: dict[str, str] = field(default_factory=dict)
    duration_ms: float = 0.0


async def deploy(
    transport: SshTransport,
    files: Mapping[str | os.PathLike, str],
    *,
    progress: bool = True,
) -> DeployReport:
    """Copy ``files`` (local path → remote path) to the host, skipping identical ones.

    Args:
        transport: the host's transport.
        files: local file → remote path (absolute, or relative to the login folder).
        progress: show a progress bar over the files to upload.

    Raises:
        ToolkitError: a local file is missing.
        ChecksumMismatch: an upload arrived corrupted.
    """
    start = time.perf_counter()
    pairs = [(Path(local), str(remote)) for local, remote in files.items()]
    missing = [str(p) for p, _ in pairs if not p.is_file()]
    if missing:
        raise ToolkitError(f"cannot deploy to {transport.name}: missing local files {missing}")
    local_sums = await asyncio.gather(*(asyncio.to_thread(file_sha256, p) for p, _ in pairs))
    remote_sums = await transport.sha256([r for _, r in pairs])
    sums = list(zip(pairs, local_sums, strict=True))
    same = [(remote, digest) for (_, remote), digest in sums if remote_sums.get(remote) == digest]
    report = DeployReport(transport.name, skipped=[r for r, _ in same], sha256=dict(same))
    todo = [pair for pair, digest in sums if remote_sums.get(pair[1]) != digest]
    bar = tqdm(total=len(todo), desc=f"deploy {transport.name}", unit="file",
               disable=not progress or not todo, leave=False)
    try:
        for local, remote in todo:
            report.sha256[remote] = await transport.upload(local, remote)
            report.uploaded.append(remote)
            bar.update()
    finally:
        bar.close()
    report.duration_ms = (time.perf_counter() - start) * 1000.0
    return report
