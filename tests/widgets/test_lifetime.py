"""close_at_exit: a notebook's testbed is closed once, now or when Python exits."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from toolkit.errors import ToolkitError
from toolkit.widgets import close_at_exit

SCRIPT = textwrap.dedent("""
    import sys
    from toolkit.widgets import close_at_exit

    class Closes:
        def close(self):
            with open(sys.argv[1], "a") as fh:
                fh.write("closed\\n")

    close = close_at_exit(Closes())
    if sys.argv[2] == "now":
        close()
        close()
""")


@pytest.mark.parametrize("when", ["now", "at-exit"])
def test_the_testbed_is_closed_once_now_or_at_exit(tmp_path, when):
    log = tmp_path / "log"
    subprocess.run([sys.executable, "-c", SCRIPT, str(log), when], check=True, timeout=120)
    assert log.read_text() == "closed\n"


@pytest.mark.parametrize("value", [None, "local", 3])
def test_what_cannot_be_closed_is_named_before_anything_is_registered(value):
    with pytest.raises(ToolkitError, match=r"^close_at_exit needs a testbed \(e\.g\. "
                                           r"LocalTestbed or open_testbed's\), got "
                                           rf"{type(value).__name__}$"):
        close_at_exit(value)
