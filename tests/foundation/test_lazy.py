"""Lazy package namespaces: names load on use and win over same-named submodules."""

from __future__ import annotations

import subprocess
import sys


def test_exported_function_wins_over_its_submodule_after_that_submodule_loads():
    code = """
import types
import toolkit.simulate                      # Python sets the package attribute here
import toolkit
assert isinstance(toolkit.simulate, types.FunctionType), toolkit.simulate
assert toolkit.simulate is toolkit.simulate.__globals__["simulate"]
from toolkit.simulate import simulate        # the submodule itself still imports
assert simulate.__module__ == "toolkit.simulate"
from toolkit.devices import fanout           # and a package's export from a nested module
assert fanout.__module__ == "toolkit.devices.controllers.fanout", fanout.__module__
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_unknown_name_is_an_attribute_error_naming_the_package():
    import toolkit.devices

    try:
        toolkit.devices.NoSuchThing  # noqa: B018
    except AttributeError as err:
        assert "toolkit.devices" in str(err) and "NoSuchThing" in str(err)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
