"""Outputs checked before the work that fills them, and figures written atomically."""

from __future__ import annotations

import re
import sys

import matplotlib.pyplot as plt
import pytest

from toolkit.errors import ToolkitError
from toolkit.fileio import check_writable, figure_format, read_table, save_figure


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_a_writable_output_passes_and_the_tree_stays_as_it_was(tmp_path):
    (tmp_path / "old.nc").write_text("kept")
    before = _tree(tmp_path)
    assert check_writable(tmp_path / "new.nc") == tmp_path / "new.nc"
    assert check_writable(tmp_path / "old.nc") == tmp_path / "old.nc"  # replaced later
    assert check_writable(tmp_path / "a" / "b" / "c.json").name == "c.json"  # folders to come
    assert check_writable(tmp_path / "out", folder=True) == tmp_path / "out"
    assert check_writable(tmp_path, folder=True) == tmp_path
    assert _tree(tmp_path) == before and (tmp_path / "old.nc").read_text() == "kept"


def test_what_cannot_be_written_is_one_line_naming_the_path_and_the_reason(tmp_path):
    (tmp_path / "file.csv").write_text("x")
    with pytest.raises(ToolkitError, match=r"cannot write .*file.csv/x.nc: .*file.csv is a "
                                           r"file, not a folder"):
        check_writable(tmp_path / "file.csv" / "x.nc")
    with pytest.raises(ToolkitError, match=r"file.csv is a file, not a folder"):
        check_writable(tmp_path / "file.csv" / "deeper" / "x.nc")
    with pytest.raises(ToolkitError, match="it is a folder; give a file name"):
        check_writable(tmp_path)
    with pytest.raises(ToolkitError, match="is a file, not a folder"):
        check_writable(tmp_path / "file.csv", folder=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_folder_that_refuses_files_is_named_with_the_systems_reason(tmp_path):
    with pytest.raises(ToolkitError, match=r"cannot write /proc/x.nc: No such file or "
                                           r"directory \(in /proc\)"):
        check_writable("/proc/x.nc")


def test_a_figure_is_saved_in_the_format_its_name_says_and_atomically(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert save_figure(fig, tmp_path / "f.png", dpi=50).read_bytes()[:4] == b"\x89PNG"
    assert save_figure(fig, tmp_path / "f.PDF").read_bytes()[:4] == b"%PDF"
    assert figure_format("a/b.svg") == "svg"
    for bad in ("f.xyz", "f"):
        with pytest.raises(ToolkitError, match=r"unknown image format .*; valid: .*pdf, .*png"):
            save_figure(fig, tmp_path / bad)
    target = tmp_path / "kept.png"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):  # a failing savefig leaves the old file and no temporary
        save_figure(fig, target, no_such_option=1)
    assert target.read_bytes() == b"old"
    assert _tree(tmp_path) == ["f.PDF", "f.png", "kept.png"]
    plt.close(fig)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_table_with_another_separator_is_named_as_such(tmp_path, sep):
    """A spreadsheet exported with semicolons (or tabs) read as one column: the message
    says why its columns are missing."""
    path = tmp_path / "trace.csv"
    path.write_text(sep.join(["Index", "Network", "Latency"]) + "\n"
                    + sep.join(["0", "a", "1"]) + "\n")
    with pytest.raises(ToolkitError, match=rf"missing columns Index, Network, Latency \(its "
                                           rf"first line is separated by {re.escape(repr(sep))}; "
                                           r"the toolkit "
                                           r"reads comma-separated files\)"):
        read_table(path, "trace", ["Index", "Network", "Latency"])


def _readers_and_writers():
    """Every public reader and writer of a file, called with ``value`` as its file."""
    from toolkit.cube import open_cube, save_cube
    from toolkit.devices import load_inventory
    from toolkit.fileio import check_writable, read_json, read_table, save_figure, write_table
    from toolkit.hardware import load_profile
    from toolkit.models.data import folder_data, image_files
    from toolkit.optimize import load_front
    from toolkit.policy import read_front
    from toolkit.retry import Journal
    from toolkit.scheduler import export_script
    from toolkit.splinter import experiment_model, read_experiment, read_pool
    from toolkit.trace import read_trace

    return {
        "open_cube": (open_cube, "a cube file"),
        "save_cube": (lambda v: save_cube(None, v), "a cube file"),
        "load_inventory": (load_inventory, "a testbed (a shipped testbed's name or an "
                                           "inventory file)"),
        "load_profile": (load_profile, "a device profile (a shipped profile's name or a TOML "
                                       "file)"),
        "load_front": (load_front, "the front file"),
        "read_front": (read_front, "the front file"),
        "read_pool": (read_pool, "a DynaSplit simulation-pool CSV"),
        "read_experiment": (read_experiment, "a DynaSplit experiment-progress CSV"),
        "experiment_model": (experiment_model, "a DynaSplit experiment file"),
        "read_trace": (read_trace, "a QoS trace CSV (Index,Network,Latency)"),
        "export_script": (lambda v: export_script(v, "policy.json"), "the scheduler script"),
        "folder_data": (lambda v: folder_data(v, None, "m"), "an image folder"),
        "image_files": (image_files, "an image folder"),
        "Journal": (lambda v: Journal(v, "campaign"), "a campaign journal"),
        "read_json": (lambda v: read_json(v, "policy file"), "the policy file"),
        "read_table": (lambda v: read_table(v, "trace CSV", []), "a trace CSV"),
        "write_table": (lambda v: write_table(None, v), "a table file"),
        "save_figure": (lambda v: save_figure(None, v), "a figure file"),
        "check_writable": (check_writable, "an output"),
    }


@pytest.mark.parametrize("name", sorted(_readers_and_writers()))
@pytest.mark.parametrize("value", [None, 3, ["a.csv"]])
def test_a_file_that_is_no_path_is_named_with_what_it_should_be(name, value):
    call, what = _readers_and_writers()[name]
    with pytest.raises(ToolkitError, match=rf"^{re.escape(what)} should be given as a str or "
                                           rf"pathlib.Path, got {type(value).__name__}$"):
        call(value)


@pytest.mark.parametrize("name", sorted(_readers_and_writers()))
def test_an_empty_path_is_named_as_such(name):
    # Path("") is the current folder, which no reader or writer was meant to get
    call, what = _readers_and_writers()[name]
    with pytest.raises(ToolkitError, match=rf"^{re.escape(what)} was given as an empty path$"):
        call("")


def test_a_file_that_is_a_folder_or_a_device_is_named_as_such(tmp_path):
    from toolkit.cube import open_cube
    from toolkit.fileio import read_json

    readers = [(open_cube, "cube file"), (lambda p: read_json(p, "policy file"), "policy file"),
               (lambda p: read_table(p, "trace CSV", []), "trace CSV")]
    for read, what in readers:
        for path, problem in [(tmp_path, "is a directory, not a file"),
                              ("/dev/null", "is not a regular file"),
                              (tmp_path / "none.nc", "does not exist")]:
            with pytest.raises(ToolkitError, match=rf"^{what} {re.escape(str(path))} {problem}$"):
                read(path)
