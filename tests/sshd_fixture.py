"""A real OpenSSH ``sshd`` on a free loopback port, for tests and benchmarks.

:class:`SshServer` writes a host key, a client key, ``authorized_keys``, a
``known_hosts`` file and an ``sshd_config`` into a folder, starts
``sshd -D -e -f CONFIG -p PORT`` and stops it by PID. :meth:`SshServer.kill`
kills the listener *and* its per-connection processes (as a crash or reboot
would); :meth:`SshServer.start` brings it back on the same port with the same
host key. Debian's ``openssh-server`` provides ``/usr/sbin/sshd``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from toolkit.devices.transport.sshlib import import_asyncssh

asyncssh = import_asyncssh()

__all__ = ["SSHD", "SshServer", "free_port", "sshd_available"]

SSHD = Path(shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:/sbin") or "/usr/sbin/sshd")


def sshd_available() -> str | None:
    """None when sshd can run here, else why not (for ``pytest.skip``)."""
    if not SSHD.is_file():
        return f"OpenSSH sshd not found at {SSHD} (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "sshd tests need root (sshd's privilege separation)"
    return None


def _can_unshare() -> bool:
    """Whether a private mount namespace with a bind mount works here (root, unshare)."""
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--mount", "--propagation", "private",
             "mount", "--bind", "/etc/passwd", "/etc/passwd"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_UNSHARE = _can_unshare()


def _write_key(key: asyncssh.SSHKey, path: Path) -> None:
    key.write_private_key(str(path))
    path.chmod(0o600)


@dataclass
class SshServer:
    """One sshd instance with its keys and files under ``root``.

    Attributes:
        root: folder holding every file of this server.
        port: the loopback port it listens on (kept across restarts).
        user: the login user (the current user; root in CI).
        client_key: private key file the client authenticates with.
        known_hosts: known_hosts file listing this server's host key.
        host_key: the server's private host key file.
    """

    root: Path
    port: int = field(default_factory=free_port)
    max_sessions: int = 10
    login_shell: str | None = "/bin/sh"
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.user = psutil.Process().username()
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.client_key = self.root / "id_ed25519"
        self.known_hosts = self.root / "known_hosts"
        self.config = self.root / "sshd_config"
        self.log = self.root / "sshd.log"
        if not self.host_key.exists():
            _write_key(asyncssh.generate_private_key("ssh-ed25519"), self.host_key)
        if not self.client_key.exists():
            key = asyncssh.generate_private_key("ssh-ed25519")
            _write_key(key, self.client_key)
            key.write_public_key(str(self.root / "authorized_keys"))
        self.write_known_hosts()
        self._passwd = self.root / "passwd"
        if self.login_shell:
            lines = []
            for line in Path("/etc/passwd").read_text().splitlines():
                parts = line.split(":")
                if parts[0] == self.user and len(parts) == 7:
                    parts[6] = self.login_shell
                lines.append(":".join(parts))
            self._passwd.write_text("\n".join(lines) + "\n")
        self.config.write_text(
            "\n".join([
                "ListenAddress 127.0.0.1",
                f"HostKey {self.host_key}",
                f"PidFile {self.root / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                f"MaxSessions {self.max_sessions}",
                "MaxStartups 100:30:200",
                "Subsystem sftp internal-sftp",
                "LogLevel ERROR",
                "",
            ])
        )

    def write_known_hosts(self, key_file: Path | None = None) -> None:
        """(Re)write known_hosts with ``key_file``'s public key (default: this server's)."""
        key = asyncssh.read_private_key(str(key_file or self.host_key))
        line = key.export_public_key("openssh").decode().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {' '.join(line)}\n")

    def start(self, timeout: float = 10.0) -> SshServer:
        """Start sshd and wait until it accepts connections."""
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation dir
        argv = [str(SSHD), "-D", "-e", "-f", str(self.config), "-p", str(self.port)]
        if self.login_shell and _UNSHARE:
            # sshd sees a passwd whose login shell for this user is login_shell, in
            # a private mount namespace: the machine's own /etc/passwd is untouched.
            argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                    'mount --bind "$0" /etc/passwd && exec "$@"', str(self._passwd), *argv]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sshd did not listen on port {self.port} within {timeout} s")

    def _tree(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """Kill sshd and every process it started (connections drop at once)."""
        for p in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        """Stop sshd by its PID (SIGTERM, then SIGKILL), and its sessions with it."""
        if self.proc is None:
            return
        children = self._tree()[1:]
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None
        for p in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()

    @property
    def running(self) -> bool:
        """Whether the listener process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> SshServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
