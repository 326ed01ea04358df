"""Importing the toolkit, and commands that do not use SSH, print nothing on stderr.

Each check runs in a fresh interpreter with ``-W error``, so any warning raised
while importing (asyncssh's DSA deprecations under cryptography 51, a
TensorFlow notice, a pandas or xarray FutureWarning) fails it. asyncssh is
imported only by the SSH modules, and then without cryptography's DSA
deprecation warnings, which are filtered by category and module only.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

#: the public packages: their __init__ is what notebooks and scripts import
PACKAGES = ["toolkit", "toolkit.cli", "toolkit.devices", "toolkit.energy", "toolkit.models",
            "toolkit.optimize", "toolkit.partition", "toolkit.runtime", "toolkit.scheduler",
            "toolkit.widgets"]
#: packages whose import needs TensorFlow (their __init__ uses Keras layers)
NEEDS_TF = {"toolkit.partition"}


def run_strict(code: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter with every warning an error."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}   # no TF_CPP_MIN_LOG_LEVEL from the suite
    return subprocess.run([sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_import_is_silent_and_light(package):
    proc = run_strict(f"""
        import sys, {package}
        print("asyncssh" in sys.modules, "tensorflow" in sys.modules)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    ssh_loaded, tf_loaded = proc.stdout.split()
    assert ssh_loaded == "False", "asyncssh loads only when SSH is used"
    assert tf_loaded == str(package in NEEDS_TF), "TensorFlow loads on first use"


def test_the_first_tensorflow_import_is_silenced_wherever_it_comes_from(tmp_path):
    """TensorFlow 2.21 prints its oneDNN notice on fd 2 at import on AVX-512/AMX hosts,
    whatever TF_CPP_MIN_LOG_LEVEL says, so the check above passes on other hosts only.
    Here a package named ``tensorflow`` that writes to fd 2 when loaded, first on the
    path, stands in for TensorFlow's C++ core on any host: after ``import toolkit``
    its load is silent, its errors still raise, and the hook is gone afterwards."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os\nos.write(2, b'I0000 port.cc:153] oneDNN custom operations are on\\n')\n"
        "LOADED = True\n")
    script = f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        finders = list(sys.meta_path)
        import toolkit
        assert len(sys.meta_path) == len(finders) + 1     # the hook, until TensorFlow loads
        import tensorflow
        assert tensorflow.LOADED and type(tensorflow.__loader__).__name__ == "SourceFileLoader"
        assert sys.meta_path == finders                   # it removed itself
        import os
        os.write(2, b"after\\n")     # fd 2 is back
    """
    proc = run_strict(script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "after\n"
    (fake / "__init__.py").write_text("raise ImportError('no TensorFlow here')\n")
    proc = run_strict(script)
    assert proc.returncode == 1 and "ImportError: no TensorFlow here" in proc.stderr


@pytest.mark.slow
def test_every_module_and_public_name_imports_silently():
    proc = run_strict("""
        import importlib, pkgutil, sys
        import toolkit
        names = sorted(m.name for m in pkgutil.walk_packages(toolkit.__path__, "toolkit.")
                       if not m.name.endswith("__main__"))
        for name in names:
            module = importlib.import_module(name)
            for public in getattr(module, "__all__", ()):
                getattr(module, public)
        print(len(names), "asyncssh" in sys.modules, "tensorflow" in sys.modules)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    count, ssh_loaded, tf_loaded = proc.stdout.split()
    assert int(count) > 50 and ssh_loaded == "True" and tf_loaded == "True"


def test_commands_without_ssh_are_silent_and_never_load_asyncssh():
    proc = run_strict("""
        import contextlib, io, sys
        from toolkit.cli import main
        out = io.StringIO()
        for argv in (["split", "digits-cnn", "--list", "--json"], ["measure", "--help"],
                     ["--help"], ["trace", "generate", "--help"]):
            with contextlib.redirect_stdout(out):
                try:
                    status = main(argv)
                except SystemExit as stop:       # argparse's --help
                    status = stop.code
            assert status == 0, (argv, status)
        print("asyncssh" in sys.modules, file=sys.__stdout__)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == "False"


def test_asyncssh_imports_quietly_and_the_filter_is_narrow():
    proc = run_strict("""
        import warnings
        from cryptography.utils import CryptographyDeprecationWarning
        from toolkit.devices import SshTransport   # imports asyncssh
        import asyncssh
        try:      # the same category from any other module is still an error
            warnings.warn("DSA is deprecated", CryptographyDeprecationWarning)
        except CryptographyDeprecationWarning:
            print("still raised")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == "still raised"
