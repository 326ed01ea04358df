"""Open a testbed, or a pool of them, from what a user types: ``local`` or inventory files."""

from __future__ import annotations

import inspect
import os
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

from toolkit.devices.testbeds.pool import TestbedPool, check_local_pool_size, local_start_limit
from toolkit.devices.testbeds.testbed import Testbed
from toolkit.errors import ConfigError, choices

__all__ = ["open_pool", "open_testbed"]


def open_testbed(spec: str | os.PathLike = "local", *, emulate_switching: bool = False,
                 **options: Any) -> Testbed:
    """A testbed (not yet started) for ``spec``.

    Args:
        spec: ``local`` (the embedded default) or a testbed inventory TOML
            (name under ``hardware/testbeds`` or a path).
        emulate_switching: a local testbed waits the profiles' hardware-change
            times (``LocalTestbed(switching="profile")``; an online phase wants
            them, a campaign does not); an SSH testbed's changes take their own.
        options: passed to the testbed's constructor (e.g. ``model``,
            ``input_size``, ``data``; ``log_dir`` for the local testbed,
            ``startup_timeout_s`` and ``edgetpu_dir`` for the SSH testbed).

    Raises:
        ConfigError: an unreadable or invalid inventory; ``edgetpu_dir`` for a
            local testbed; an option the testbed does not take (the valid ones
            named).
    """
    from toolkit.devices.inventory import load_inventory
    from toolkit.devices.testbeds.local import LocalTestbed
    from toolkit.devices.testbeds.ssh_testbed import SshTestbed

    if not options.get("edgetpu_dir"):
        options.pop("edgetpu_dir", None)
    elif _is_local(spec):
        raise ConfigError("--edgetpu-dir (compiled Edge TPU heads) is for SSH testbeds; the "
                          "local testbed runs tpu-std/tpu-max as int8 heads on the CPU")
    local = {"switching": "profile"} if emulate_switching else {}
    if str(spec) == "local":
        _check_options(LocalTestbed, options, "the local testbed", local)
        return LocalTestbed(**options, **local)
    inventory = load_inventory(spec)
    if inventory.kind == "local":
        _check_options(LocalTestbed, options, f"the local testbed {inventory.path}",
                       {"edge_profile", "cloud_profile", *local})
        edge = inventory.with_role("edge")
        cloud = inventory.with_role("cloud")
        if len(edge) != 1 or len(cloud) != 1:
            raise ConfigError(f"{inventory.path}: a local testbed needs exactly one edge and one "
                              f"cloud host (found {len(edge)} and {len(cloud)})")
        return LocalTestbed(edge[0].profile, cloud[0].profile, **options, **local)
    _check_options(SshTestbed, options, f"the SSH testbed {inventory.path}", {"inventory"})
    return SshTestbed(inventory, **options)


def _check_options(cls: type, options: Mapping[str, Any], testbed: str,
                   given: Container[str]) -> None:
    """Refuse an option ``cls`` does not take, or one this factory sets itself (``given``)."""
    valid = [p for p in inspect.signature(cls).parameters if p not in given]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(map(repr, unknown))} for {testbed}; "
                          f"valid: {choices(valid)}")


def _is_local(spec: str | os.PathLike) -> bool:
    from toolkit.devices.inventory import load_inventory

    return str(spec) == "local" or load_inventory(spec).kind == "local"


def open_pool(specs: str | os.PathLike | Sequence[str | os.PathLike], copies: int = 1,
              **options: Any) -> TestbedPool:
    """A pool of testbeds (not yet started) that a campaign measures on at the same time.

    Args:
        specs: one testbed per entry (``local`` or an inventory), e.g. the
            inventories of identical Raspberry Pis.
        copies: with one local spec, this many local emulated testbeds, named
            ``local-1`` .. ``local-N``.
        options: passed to every testbed's constructor (see :func:`open_testbed`).

    Raises:
        ConfigError: ``copies`` below 1, or above 1 with several specs or an SSH
            inventory; testbeds that cannot share a pool (see
            :class:`~toolkit.devices.testbeds.pool.TestbedPool`).
    """
    from toolkit.devices.testbeds.local import LocalTestbed

    if isinstance(specs, str | os.PathLike):
        specs = [specs]
    elif not isinstance(specs, Iterable) or isinstance(specs, Mapping):
        raise ConfigError(f"a pool needs testbed specs ('local', an inventory's name or path, or "
                          f"a list of them), got {type(specs).__name__}")
    specs = list(specs)
    if copies < 1:
        raise ConfigError(f"a pool needs at least 1 testbed, got {copies}")
    if copies == 1:
        testbeds = [open_testbed(s, **options) for s in specs]
        local = all(isinstance(tb, LocalTestbed) for tb in testbeds)
        return TestbedPool(testbeds, start_limit=local_start_limit() if local else None)
    if len(specs) != 1 or not _is_local(specs[0]):
        raise ConfigError(
            f"{copies} copies of a testbed can only be local emulated testbeds (testbed "
            f"local or a local inventory), not {', '.join(map(str, specs))}; for SSH testbeds "
            "list one inventory per device: --testbed a.toml,b.toml")
    check_local_pool_size(copies)
    return TestbedPool([open_testbed(specs[0], name=f"local-{i}", **options)
                        for i in range(1, copies + 1)], start_limit=local_start_limit())
