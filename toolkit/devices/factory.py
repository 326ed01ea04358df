"""Open a testbed from what a user types: ``local`` or an inventory file."""

from __future__ import annotations

import os
from typing import Any

from toolkit.devices.testbed import Testbed
from toolkit.errors import ConfigError

__all__ = ["open_testbed"]


def open_testbed(spec: str | os.PathLike = "local", **options: Any) -> Testbed:
    """A testbed (not yet started) for ``spec``.

    Args:
        spec: ``local`` (the embedded default) or a testbed inventory TOML
            (name under ``hardware/testbeds`` or a path).
        options: passed to the testbed's constructor (e.g. ``model``,
            ``input_size``; ``log_dir`` for the local testbed, ``startup_timeout_s``
            for the SSH testbed).

    Raises:
        ConfigError: an unreadable or invalid inventory.
    """
    from toolkit.devices.inventory import load_inventory
    from toolkit.devices.local import LocalTestbed
    from toolkit.devices.ssh_testbed import SshTestbed

    if str(spec) == "local":
        return LocalTestbed(**options)
    inventory = load_inventory(spec)
    if inventory.kind == "local":
        edge = inventory.with_role("edge")
        cloud = inventory.with_role("cloud")
        if len(edge) != 1 or len(cloud) != 1:
            raise ConfigError(f"{inventory.path}: a local testbed needs exactly one edge and one "
                              f"cloud host (found {len(edge)} and {len(cloud)})")
        return LocalTestbed(edge[0].profile, cloud[0].profile, **options)
    if options.get("data"):
        raise ConfigError("--data (an image folder) works on the local testbed only; the SSH "
                          "testbed's workers use the built-in evaluation data")
    options.pop("data", None)
    return SshTestbed(inventory, **options)
