"""Device controllers: SSH transport, Raspberry Pi / Coral and cloud hosts, inventories.

The public API of the ``toolkit.devices`` package; see ``docs/devices.md``.

Names load on first use (:mod:`toolkit.lazy`): ``import toolkit.devices`` is
light, and asyncssh is imported only by the SSH modules, when SSH is used.
"""

from __future__ import annotations

from toolkit.lazy import lazy_exports

#: module -> the public names it defines
_MODULES = {
    "toolkit.aio": ("Blocking", "device_loop", "run_blocking"),
    "toolkit.hardware": ("DeviceProfile", "EdgeTimingModel", "HeadCost", "available_profiles",
                         "head_cost", "load_profile"),
    "toolkit.runtime.link": ("DEFAULT_LINK", "Link"),
    "toolkit.devices.inventory": ("Host", "Inventory", "MeterSpec", "available_testbeds",
                                  "load_inventory"),
    "toolkit.devices.transport.commands": ("CommandResult",),
    "toolkit.devices.transport.connect": ("ReconnectPolicy",),
    "toolkit.devices.transport.deploy": ("DeployReport", "deploy"),
    "toolkit.devices.transport.errors": ("AuthError", "ChecksumMismatch", "CommandFailed",
                                         "CommandTimeout", "ConnectError", "ConnectionLost",
                                         "HostKeyError", "SshError"),
    "toolkit.devices.transport.remote": ("RemoteProcess", "StopResult"),
    "toolkit.devices.transport.shell": ("RemoteShell",),
    "toolkit.devices.transport.ssh": ("SshTransport", "TransportStats"),
    "toolkit.devices.controllers.base": ("EdgeController", "KnobChange"),
    "toolkit.devices.controllers.cloud": ("CloudController", "RemoteCloudWorker"),
    "toolkit.devices.controllers.fanout": ("HostResult", "apply_all", "failed", "fanout",
                                           "run_all"),
    "toolkit.devices.controllers.pi": ("PiController", "PiSettings", "parse_uhubctl"),
    "toolkit.devices.testbeds.calibration": ("CalibrationReport", "HostCalibration",
                                             "host_calibration"),
    "toolkit.devices.testbeds.cgroups": ("CpuQuota", "open_cpu_quota"),
    "toolkit.devices.testbeds.factory": ("open_pool", "open_testbed"),
    "toolkit.devices.testbeds.local": ("LocalTestbed",),
    "toolkit.devices.testbeds.pool": ("TestbedPool",),
    "toolkit.devices.testbeds.ssh_testbed": ("SshTestbed",),
    "toolkit.devices.testbeds.testbed": ("RunRecord", "Testbed"),
}
#: public name -> module that defines it
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
