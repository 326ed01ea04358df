"""Copying files to and from a host over SFTP, verified by sha256.

Uploads are written beside the target under a temporary name, checked with the
host's ``sha256sum`` and then renamed, so the target is never half-written;
downloads are checked likewise before they replace the local file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.devices.transport.errors import ChecksumMismatch
from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    from toolkit.devices.transport.ssh import SshTransport

__all__ = ["download", "file_sha256", "remote_sha256", "upload"]


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a local file."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


async def remote_sha256(transport: SshTransport,
                        paths: Sequence[str]) -> dict[str, str | None]:
    """The host's sha256 of each path (None where the file is missing or unreadable)."""
    out: dict[str, str | None] = dict.fromkeys(paths)
    if not paths:
        return out
    result = await transport.run(["sha256sum", "--", *paths], check=False)
    for line in result.stdout.splitlines():
        digest, sep, name = line.partition("  ")
        if not sep:
            continue
        if digest.startswith("\\"):  # sha256sum escapes names with \\ or newline
            digest = digest[1:]
            name = name.replace("\\n", "\n").replace("\\\\", "\\")
        if name in out:
            out[name] = digest
    return out


async def upload(transport: SshTransport, local: str | Path, remote: str, *,
                 verify: bool = True) -> str:
    """Copy a local file to the host and return its sha256 (see the module docstring).

    Missing remote folders are created; remote relative paths start at the login folder.

    Raises:
        ChecksumMismatch: the remote copy's sha256 differs (it is removed).
    """
    local = Path(local)
    if not local.is_file():
        raise ToolkitError(f"cannot upload {local}: no such file")
    digest = await asyncio.to_thread(file_sha256, local)
    tmp = f"{remote}.part-{uuid.uuid4().hex[:8]}"
    parent = posixpath.dirname(remote)

    async def put(sftp) -> None:
        if parent:
            await sftp.makedirs(parent, exist_ok=True)
        await sftp.put(str(local), tmp)

    try:
        await transport.sftp("upload", remote, put)
        got = (await remote_sha256(transport, [tmp]))[tmp] if verify else digest
        if got != digest:
            raise ChecksumMismatch(
                transport.name,
                f"upload of {local} to {transport.name}:{remote} is corrupt: "
                f"sha256 {got} on the host, {digest} here",
            )
        await transport.run(["mv", "-f", "--", tmp, remote])
    except Exception:
        with contextlib.suppress(Exception):  # best effort: the connection may be gone
            await transport.run(["rm", "-f", "--", tmp], check=False, timeout=10)
        raise
    return digest


async def download(transport: SshTransport, remote: str, local: str | Path, *,
                   verify: bool = True) -> str:
    """Copy a file from the host, verify its sha256 and return it.

    Raises:
        ChecksumMismatch: the local copy's sha256 differs (it is removed).
    """
    local = Path(local)
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f"{local.name}.part-{uuid.uuid4().hex[:8]}")
    want = (await remote_sha256(transport, [remote]))[remote] if verify else None
    if verify and want is None:
        raise ToolkitError(f"cannot download {transport.name}:{remote}: no such readable file")
    try:
        await transport.sftp("download", remote, lambda sftp: sftp.get(remote, str(tmp)))
        digest = await asyncio.to_thread(file_sha256, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if verify and digest != want:
        tmp.unlink(missing_ok=True)
        raise ChecksumMismatch(
            transport.name,
            f"download of {transport.name}:{remote} to {local} is corrupt: "
            f"sha256 {digest} here, {want} on the host",
        )
    tmp.replace(local)
    return digest
