"""A pool of identical testbeds that a campaign measures on at the same time.

Researchers with several identical edge devices (or several local emulated
testbeds on a many-core host) give a :class:`~toolkit.campaign.Campaign` a
:class:`TestbedPool`; it runs different configurations on different testbeds
concurrently, keeps one journal and notes in every record which testbed
measured it.

The testbeds of a pool must be interchangeable: the same edge and cloud
profiles and the same ``energy_source`` (one cube holds their runs, and a cube
says once where its energy figures come from). Their names must differ, since
records name them. All of them are driven from one event loop, the pool's:
give the pool testbeds that are not started yet.

Example:
    >>> with TestbedPool.local(4) as pool:          # local-1 .. local-4
    ...     cube = Campaign(pool, spec, "cube.nc").run()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from toolkit.aio import BackgroundLoop, BlockingLifecycle
from toolkit.devices.testbeds.testbed import Testbed
from toolkit.errors import ConfigError, choices
from toolkit.hardware.profile import DeviceProfile

__all__ = ["TestbedPool", "check_local_pool_size", "local_start_limit"]

log = logging.getLogger("toolkit.devices")


def local_start_limit() -> int:
    """Local testbeds that start at the same time: one per two host cores, at least
    two (each starts two worker processes that load TensorFlow)."""
    return max(2, (os.cpu_count() or 1) // 2)


def check_local_pool_size(n: int) -> None:
    """Refuse a pool of ``n`` local testbeds: fewer than one, or more than this
    machine's memory holds (two worker processes each, see
    :func:`~toolkit.runtime.session.check_worker_memory`; a mistyped ``--testbeds 40``
    would start 80 TensorFlow processes and swap)."""
    from toolkit.runtime.session import check_worker_memory

    if n < 1:
        raise ConfigError(f"a pool needs at least 1 testbed, got {n}")
    check_worker_memory(2 * n, f"{n} local testbeds (an edge and a cloud worker each)")


class TestbedPool(BlockingLifecycle):
    """Several interchangeable testbeds, started, driven and closed together.

    Args:
        testbeds: the testbeds (not started yet), with distinct names.
        start_limit: how many testbeds start at the same time (None: all). Local
            testbeds start two TensorFlow processes each on this machine, and too
            many at once on a small host can exceed their start-up timeout.

    Raises:
        ConfigError: no testbed, a name used twice, or testbeds that differ in
            their device profiles or energy source.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, testbeds: Sequence[Testbed], *, start_limit: int | None = None) -> None:
        if isinstance(testbeds, Testbed | str) or not isinstance(testbeds, Iterable):
            raise ConfigError(f"a testbed pool needs a list of testbeds, got "
                              f"{type(testbeds).__name__}")
        self.testbeds = list(testbeds)
        for i, testbed in enumerate(self.testbeds):
            if not isinstance(testbed, Testbed):
                raise ConfigError(f"testbed {i} of the pool is no testbed (LocalTestbed, "
                                  f"SshTestbed, open_testbed's), got {type(testbed).__name__}")
        self.start_limit = start_limit
        self._start_gate: asyncio.Semaphore | None = None
        if not self.testbeds:
            raise ConfigError("a testbed pool needs at least one testbed")
        names = [tb.name for tb in self.testbeds]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"testbeds of a pool need distinct names; {choices(twice)} "
                              f"appears more than once (names: {choices(names)}); name each "
                              "inventory's [testbed], or use --testbeds N for N local ones")
        first = self.testbeds[0]
        for tb in self.testbeds[1:]:
            for what, mine, theirs in (
                ("edge profile", first.edge_profile.name, tb.edge_profile.name),
                ("cloud profile", first.cloud_profile.name, tb.cloud_profile.name),
                ("energy source", first.energy_source, tb.energy_source),
            ):
                if mine != theirs:
                    raise ConfigError(
                        f"testbeds of a pool must be interchangeable: {first.name!r} has "
                        f"{what} {mine!r} but {tb.name!r} has {theirs!r}")
        self._loop_name = "dynasplit-pool"
        self._loop = BackgroundLoop(self._loop_name)
        for tb in self.testbeds:
            if tb.background_loop is not None:
                self._loop.close()
                raise ConfigError(f"testbed {tb.name!r} already runs on its own event loop "
                                  "(it was started or used on its own); give the pool "
                                  "testbeds that are not started yet")
        for tb in self.testbeds:
            tb.use_loop(self._loop)
            tb.share_models(first)

    @classmethod
    def local(cls, n: int, *, log_dir: str | os.PathLike | None = None,
              **options: Any) -> TestbedPool:
        """``n`` local emulated testbeds named ``local-1`` .. ``local-n``.

        Args:
            n: how many (at least 1, and no more than the memory holds:
                :func:`check_local_pool_size`).
            log_dir: folder for the workers' logs; each testbed logs into its own
                sub-folder named after it (default: a new temp folder each).
            options: passed to every :class:`~toolkit.devices.testbeds.local.LocalTestbed`
                (profiles, ``model``, ``input_size``, ``link``, ``throttle``).
        """
        from toolkit.devices.testbeds.local import LocalTestbed

        check_local_pool_size(n)
        return cls([LocalTestbed(name=f"local-{i}",
                                 log_dir=Path(log_dir) / f"local-{i}" if log_dir else None,
                                 **options) for i in range(1, n + 1)],
                   start_limit=local_start_limit())

    # -- what the pool's testbeds share -------------------------------------------
    def __len__(self) -> int:
        return len(self.testbeds)

    def __iter__(self) -> Iterator[Testbed]:
        return iter(self.testbeds)

    @property
    def name(self) -> str:
        """The testbeds' names, comma-joined (a cube's ``testbed`` attribute)."""
        return ",".join(tb.name for tb in self.testbeds)

    @property
    def names(self) -> list[str]:
        """The testbeds' names."""
        return [tb.name for tb in self.testbeds]

    @property
    def edge_profile(self) -> DeviceProfile:
        """The (common) edge profile."""
        return self.testbeds[0].edge_profile

    @property
    def cloud_profile(self) -> DeviceProfile:
        """The (common) cloud profile."""
        return self.testbeds[0].cloud_profile

    @property
    def energy_source(self) -> str:
        """The (common) ``energy_source``."""
        return self.testbeds[0].energy_source

    @property
    def edge_accels(self) -> tuple[str, ...]:
        """Edge accelerators every testbed of the pool runs."""
        return tuple(a for a in self.testbeds[0].edge_accels
                     if all(a in tb.edge_accels for tb in self.testbeds))

    @property
    def cloud_accels(self) -> tuple[str, ...]:
        """Cloud accelerators every testbed of the pool runs."""
        return tuple(a for a in self.testbeds[0].cloud_accels
                     if all(a in tb.cloud_accels for tb in self.testbeds))

    @property
    def throttled(self) -> bool:
        """Whether the edge CPU frequency takes effect on every testbed."""
        return all(tb.throttled for tb in self.testbeds)

    def split_model(self, model: str):
        """The controller-side split model of ``model`` (shared by the testbeds)."""
        return self.run_blocking(self.testbeds[0].split_model_for(model))

    def warm(self, model: str) -> None:
        """Build the controller-side split model and reference labels of ``model`` now
        (shared by the testbeds), e.g. so that a timed campaign does not include it."""
        self.run_blocking(self.testbeds[0].labels(model))

    # -- lifecycle --------------------------------------------------------------------
    async def astart_one(self, testbed: Testbed) -> None:
        """Start one testbed of the pool (at most ``start_limit`` start at a time)."""
        if self._start_gate is None and self.start_limit is not None:
            self._start_gate = asyncio.Semaphore(self.start_limit)
        async with self._start_gate or contextlib.nullcontext():
            await testbed.astart()

    async def astart(self) -> None:
        """Start every testbed (a failure closes them all)."""
        try:
            await asyncio.gather(*(self.astart_one(tb) for tb in self.testbeds))
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close every testbed (best effort: one that fails to close is logged)."""
        results = await asyncio.gather(*(tb.aclose() for tb in self.testbeds),
                                       return_exceptions=True)
        for tb, result in zip(self.testbeds, results, strict=True):
            if isinstance(result, Exception):
                log.warning("could not close testbed %s: %s", tb.name, result)
