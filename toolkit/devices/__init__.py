"""Device controllers: SSH transport, Raspberry Pi / Coral and cloud hosts, inventories.

The public API of the ``toolkit.devices`` package; see ``docs/devices.md``.

Names load on first use (:mod:`toolkit.lazy`): ``import toolkit.devices`` is
light, and asyncssh is imported only by the SSH modules, when SSH is used.
"""

from __future__ import annotations

from toolkit.lazy import lazy_exports

#: public name -> module that defines it
_EXPORTS = {
    "EdgeController": "toolkit.devices.controllers.base",
    "KnobChange": "toolkit.devices.controllers.base",
    "Blocking": "toolkit.aio",
    "device_loop": "toolkit.aio",
    "run_blocking": "toolkit.aio",
    "CalibrationReport": "toolkit.devices.testbeds.calibration",
    "HostCalibration": "toolkit.devices.testbeds.calibration",
    "host_calibration": "toolkit.devices.testbeds.calibration",
    "EdgeTimingModel": "toolkit.hardware",
    "HeadCost": "toolkit.hardware",
    "head_cost": "toolkit.hardware",
    "CpuQuota": "toolkit.devices.testbeds.cgroups",
    "open_cpu_quota": "toolkit.devices.testbeds.cgroups",
    "CloudController": "toolkit.devices.controllers.cloud",
    "RemoteCloudWorker": "toolkit.devices.controllers.cloud",
    "DeployReport": "toolkit.devices.transport.deploy",
    "deploy": "toolkit.devices.transport.deploy",
    "open_pool": "toolkit.devices.testbeds.factory",
    "open_testbed": "toolkit.devices.testbeds.factory",
    "HostResult": "toolkit.devices.controllers.fanout",
    "apply_all": "toolkit.devices.controllers.fanout",
    "failed": "toolkit.devices.controllers.fanout",
    "fanout": "toolkit.devices.controllers.fanout",
    "run_all": "toolkit.devices.controllers.fanout",
    "Host": "toolkit.devices.inventory",
    "Inventory": "toolkit.devices.inventory",
    "MeterSpec": "toolkit.devices.inventory",
    "available_testbeds": "toolkit.devices.inventory",
    "load_inventory": "toolkit.devices.inventory",
    "DEFAULT_LINK": "toolkit.runtime.link",
    "Link": "toolkit.runtime.link",
    "LocalTestbed": "toolkit.devices.testbeds.local",
    "PiController": "toolkit.devices.controllers.pi",
    "PiSettings": "toolkit.devices.controllers.pi",
    "parse_uhubctl": "toolkit.devices.controllers.pi",
    "DeviceProfile": "toolkit.hardware",
    "available_profiles": "toolkit.hardware",
    "load_profile": "toolkit.hardware",
    "TestbedPool": "toolkit.devices.testbeds.pool",
    "RemoteProcess": "toolkit.devices.transport.remote",
    "StopResult": "toolkit.devices.transport.remote",
    "RemoteShell": "toolkit.devices.transport.shell",
    "AuthError": "toolkit.devices.transport.errors",
    "ChecksumMismatch": "toolkit.devices.transport.errors",
    "CommandFailed": "toolkit.devices.transport.errors",
    "CommandResult": "toolkit.devices.transport.commands",
    "CommandTimeout": "toolkit.devices.transport.errors",
    "ConnectError": "toolkit.devices.transport.errors",
    "ConnectionLost": "toolkit.devices.transport.errors",
    "HostKeyError": "toolkit.devices.transport.errors",
    "ReconnectPolicy": "toolkit.devices.transport.connect",
    "SshError": "toolkit.devices.transport.errors",
    "SshTransport": "toolkit.devices.transport.ssh",
    "TransportStats": "toolkit.devices.transport.ssh",
    "SshTestbed": "toolkit.devices.testbeds.ssh_testbed",
    "RunRecord": "toolkit.devices.testbeds.testbed",
    "Testbed": "toolkit.devices.testbeds.testbed",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
