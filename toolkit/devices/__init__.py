"""Device controllers: SSH transport, Raspberry Pi / Coral and cloud hosts, inventories.

The public API of the ``toolkit.devices`` package; see ``docs/devices.md``.
"""

from toolkit.devices.base import EdgeController, KnobChange
from toolkit.devices.blocking import Blocking, device_loop, run_blocking
from toolkit.devices.calibration import CalibrationReport, HostCalibration, host_calibration
from toolkit.devices.cgroups import CpuQuota, open_cpu_quota
from toolkit.devices.cloud import CloudController, CloudWorker
from toolkit.devices.deploy import DeployReport, deploy
from toolkit.devices.edge_timing import EdgeTimingModel, HeadCost, head_cost
from toolkit.devices.factory import open_testbed
from toolkit.devices.fanout import HostResult, apply_all, failed, fanout, run_all
from toolkit.devices.inventory import (
    Host,
    Inventory,
    MeterSpec,
    available_testbeds,
    load_inventory,
)
from toolkit.devices.local import DEFAULT_LINK, Link, LocalTestbed
from toolkit.devices.pi import PiController, PiSettings, parse_uhubctl
from toolkit.devices.profile import DeviceProfile, available_profiles, load_profile
from toolkit.devices.remote import RemoteProcess, StopResult
from toolkit.devices.shell import RemoteShell
from toolkit.devices.ssh import (
    AuthError,
    ChecksumMismatch,
    CommandFailed,
    CommandResult,
    CommandTimeout,
    ConnectError,
    ConnectionLost,
    HostKeyError,
    ReconnectPolicy,
    SshError,
    SshTransport,
    TransportStats,
)
from toolkit.devices.ssh_testbed import SshTestbed
from toolkit.devices.testbed import RunRecord, Testbed

__all__ = [
    "DEFAULT_LINK",
    "AuthError",
    "Blocking",
    "CalibrationReport",
    "ChecksumMismatch",
    "CloudController",
    "CloudWorker",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "ConnectError",
    "ConnectionLost",
    "CpuQuota",
    "DeployReport",
    "DeviceProfile",
    "EdgeController",
    "EdgeTimingModel",
    "HeadCost",
    "Host",
    "HostCalibration",
    "HostKeyError",
    "HostResult",
    "Inventory",
    "KnobChange",
    "Link",
    "LocalTestbed",
    "MeterSpec",
    "PiController",
    "PiSettings",
    "ReconnectPolicy",
    "RemoteProcess",
    "RemoteShell",
    "RunRecord",
    "SshError",
    "SshTestbed",
    "SshTransport",
    "StopResult",
    "Testbed",
    "TransportStats",
    "apply_all",
    "available_profiles",
    "available_testbeds",
    "deploy",
    "device_loop",
    "failed",
    "fanout",
    "head_cost",
    "host_calibration",
    "load_inventory",
    "load_profile",
    "open_cpu_quota",
    "open_testbed",
    "parse_uhubctl",
    "run_all",
    "run_blocking",
]
