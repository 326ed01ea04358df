"""DynaSplit toolkit: energy-aware split inference between edge devices and the cloud.

The public API; see the README for a tour and ``docs/architecture.md`` for the layout.
Heavy modules (TensorFlow, xarray) load on first use of a name that needs them,
so ``import toolkit`` and ``dynasplit --help`` stay fast.
"""

from __future__ import annotations

from toolkit.lazy import lazy_exports
from toolkit.quiet import silence_tensorflow_import

# TensorFlow's C++ core logs notices to file descriptor 2 at import, before
# Python can configure anything (the oneDNN notice on AVX-512/AMX hosts even
# ignores TF_CPP_MIN_LOG_LEVEL): the first TensorFlow import, from whichever
# module, runs with fd 2 silenced, and TF_CPP_MIN_LOG_LEVEL defaults to 1
# (INFO lines dropped; warnings and errors show; a level the user set is kept).
silence_tensorflow_import()

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "Config": "toolkit.config",
    "CONFIG_KEYS": "toolkit.config",
    "EDGE_ACCELS": "toolkit.config",
    "CLOUD_ACCELS": "toolkit.config",
    "CODECS": "toolkit.config",
    "ToolkitError": "toolkit.errors",
    "ConfigError": "toolkit.errors",
    "SplitModel": "toolkit.models",
    "CutPoint": "toolkit.models",
    "load_model": "toolkit.models",
    "MODEL_NAMES": "toolkit.models",
    "eval_data": "toolkit.models",
    "accuracy_table": "toolkit.models",
    "train_digits": "toolkit.models",
    "LocalTestbed": "toolkit.devices.testbeds.local",
    "Link": "toolkit.runtime.link",
    "Testbed": "toolkit.devices.testbeds.testbed",
    "TestbedPool": "toolkit.devices.testbeds.pool",
    "RunRecord": "toolkit.devices.testbeds.testbed",
    "open_testbed": "toolkit.devices.testbeds.factory",
    "open_pool": "toolkit.devices.testbeds.factory",
    "load_profile": "toolkit.hardware",
    "PowerModel": "toolkit.energy.model",
    "Campaign": "toolkit.campaign",
    "CampaignSpec": "toolkit.campaign",
    "grid": "toolkit.campaign",
    "AdaptiveRepeats": "toolkit.repeats",
    "open_cube": "toolkit.cube",
    "save_cube": "toolkit.cube",
    "cube_from_runs": "toolkit.cube",
    "to_dataframe": "toolkit.cube",
    "summary": "toolkit.cube",
    "pareto_configs": "toolkit.cube",
    "run_demo": "toolkit.demo",
    "demo_cube": "toolkit.demo",
    "Policy": "toolkit.policy",
    "make_policy": "toolkit.policy",
    "simulate": "toolkit.simulate",
    "generate_trace": "toolkit.trace",
    "read_trace": "toolkit.trace",
    "read_pool": "toolkit.splinter",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
