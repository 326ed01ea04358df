"""What the hardware is: device profiles and the edge timing model.

Device profiles (:mod:`toolkit.hardware.profile`, the TOML files under
``hardware/profiles/``) say what a device can be set to and what it costs; the
timing model (:mod:`toolkit.hardware.edge_timing`) says how long a device runs a
model's head. Testbeds, meters, the power model, partitioning and the optimiser
all read them, so they live here, apart from ``devices/`` and ``energy/``:
this package imports no other toolkit package.
"""

from __future__ import annotations

from toolkit.hardware.edge_timing import EdgeTimingModel, HeadCost, head_cost
from toolkit.hardware.profile import DeviceProfile, available_profiles, load_profile

__all__ = ["DeviceProfile", "EdgeTimingModel", "HeadCost", "available_profiles", "head_cost",
           "load_profile"]
