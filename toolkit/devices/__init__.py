"""Device controllers: SSH transport, Raspberry Pi / Coral and cloud hosts, inventories.

The public API of the ``toolkit.devices`` package; see ``docs/devices.md``.

Names load on first use (:mod:`toolkit.lazy`): ``import toolkit.devices`` is
light, and asyncssh is imported only by the SSH modules, when SSH is used.
"""

from __future__ import annotations

from toolkit.lazy import lazy_exports

#: public name -> module that defines it
_EXPORTS = {
    "EdgeController": "toolkit.devices.base",
    "KnobChange": "toolkit.devices.base",
    "Blocking": "toolkit.aio",
    "device_loop": "toolkit.aio",
    "run_blocking": "toolkit.aio",
    "CalibrationReport": "toolkit.devices.calibration",
    "HostCalibration": "toolkit.devices.calibration",
    "host_calibration": "toolkit.devices.calibration",
    "EdgeTimingModel": "toolkit.hardware",
    "HeadCost": "toolkit.hardware",
    "head_cost": "toolkit.hardware",
    "CpuQuota": "toolkit.devices.cgroups",
    "open_cpu_quota": "toolkit.devices.cgroups",
    "CloudController": "toolkit.devices.cloud",
    "RemoteCloudWorker": "toolkit.devices.cloud",
    "DeployReport": "toolkit.devices.deploy",
    "deploy": "toolkit.devices.deploy",
    "open_pool": "toolkit.devices.factory",
    "open_testbed": "toolkit.devices.factory",
    "HostResult": "toolkit.devices.fanout",
    "apply_all": "toolkit.devices.fanout",
    "failed": "toolkit.devices.fanout",
    "fanout": "toolkit.devices.fanout",
    "run_all": "toolkit.devices.fanout",
    "Host": "toolkit.devices.inventory",
    "Inventory": "toolkit.devices.inventory",
    "MeterSpec": "toolkit.devices.inventory",
    "available_testbeds": "toolkit.devices.inventory",
    "load_inventory": "toolkit.devices.inventory",
    "DEFAULT_LINK": "toolkit.devices.local",
    "Link": "toolkit.devices.local",
    "LocalTestbed": "toolkit.devices.local",
    "PiController": "toolkit.devices.pi",
    "PiSettings": "toolkit.devices.pi",
    "parse_uhubctl": "toolkit.devices.pi",
    "DeviceProfile": "toolkit.hardware",
    "available_profiles": "toolkit.hardware",
    "load_profile": "toolkit.hardware",
    "TestbedPool": "toolkit.devices.pool",
    "RemoteProcess": "toolkit.devices.remote",
    "StopResult": "toolkit.devices.remote",
    "RemoteShell": "toolkit.devices.shell",
    "AuthError": "toolkit.devices.ssh",
    "ChecksumMismatch": "toolkit.devices.ssh",
    "CommandFailed": "toolkit.devices.ssh",
    "CommandResult": "toolkit.devices.ssh",
    "CommandTimeout": "toolkit.devices.ssh",
    "ConnectError": "toolkit.devices.ssh",
    "ConnectionLost": "toolkit.devices.ssh",
    "HostKeyError": "toolkit.devices.ssh",
    "ReconnectPolicy": "toolkit.devices.ssh",
    "SshError": "toolkit.devices.ssh",
    "SshTransport": "toolkit.devices.ssh",
    "TransportStats": "toolkit.devices.ssh",
    "SshTestbed": "toolkit.devices.ssh_testbed",
    "RunRecord": "toolkit.devices.testbed",
    "Testbed": "toolkit.devices.testbed",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
