"""The Edge TPU head path, as far as it runs without the hardware.

Naming and artifact lookup, the compiler's command line, compiling through a
real (failing) executable, the worker's lookup of deployed heads, and every
refusal: no compiler and no artifact, no deployed head, no delegate (this
machine has no ``libedgetpu.so.1``).
"""

from __future__ import annotations

import pytest

from toolkit.errors import ToolkitError
from toolkit.models import SplitModel, eval_inputs, load_model
from toolkit.models.edgetpu import (
    COMPILER,
    EdgeTpuRunner,
    compile_head,
    compiled_name,
    compiler_command,
    find_compiled,
    head_source,
    head_stem,
    load_edgetpu_delegate,
)
from toolkit.models.quantize import quantize_int8
from toolkit.runtime.stages import StageCache


@pytest.fixture(scope="module")
def digits():
    sm = SplitModel(load_model("digits-cnn"), name="digits-cnn")
    x_calib, _ = eval_inputs(sm.model, n_calib=20)
    return sm, x_calib, quantize_int8(sm.head(3), x_calib)


def test_names_and_lookup(tmp_path):
    assert head_stem("vit-b16:igelu", 6, 224) == "vit-b16_igelu-224-split6"
    assert head_stem("/models/digits-cnn.keras", 3, None) == "digits-cnn.keras-default-split3"
    assert compiled_name("vgg16-224-split5") == "vgg16-224-split5_edgetpu.tflite"
    assert compiler_command("out/h.tflite", "out") == [COMPILER, "-s", "-o", "out",
                                                        "out/h.tflite"]
    assert find_compiled(tmp_path, "m-8-split3") is None and find_compiled(None, "x") is None
    (tmp_path / "m-8-split3_edgetpu.tflite").write_bytes(b"tflite")
    assert find_compiled(tmp_path, "m-8-split3") == tmp_path / "m-8-split3_edgetpu.tflite"


def test_a_precompiled_artifact_needs_no_compiler(digits, tmp_path, monkeypatch):
    _, _, flat = digits
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "digits-cnn-8-split3_edgetpu.tflite").write_bytes(flat)
    got = compile_head(flat, "digits-cnn-8-split3", tmp_path / "out", artifacts=artifacts)
    assert got == artifacts / "digits-cnn-8-split3_edgetpu.tflite"
    assert not (tmp_path / "out").exists()  # nothing compiled


def test_no_compiler_and_no_artifact_is_one_line_naming_both(digits, tmp_path, monkeypatch):
    _, _, flat = digits
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolkitError) as info:
        compile_head(flat, "digits-cnn-8-split3", tmp_path / "out", artifacts=tmp_path)
    text = str(info.value)
    assert "\n" not in text
    assert "edgetpu_compiler is not on PATH" in text
    assert str(tmp_path / "digits-cnn-8-split3_edgetpu.tflite") in text
    assert "apt-get install edgetpu-compiler" in text


def test_head_source_is_checked_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolkitError, match=r"no Edge TPU head m-8-split3_edgetpu\.tflite: "
                                           r"edgetpu_compiler is not on PATH and an artifacts "
                                           r"folder \(m-8-split3_edgetpu\.tflite\) does not"):
        head_source("m-8-split3")
    (tmp_path / "m-8-split3_edgetpu.tflite").write_bytes(b"x")
    assert head_source("m-8-split3", tmp_path) == tmp_path / "m-8-split3_edgetpu.tflite"
    assert head_source("m-8-split4", tmp_path, compiler="/bin/true") is None  # can compile


def test_a_failing_compiler_is_reported_with_its_exit_status(digits, tmp_path):
    _, _, flat = digits
    with pytest.raises(ToolkitError, match=r"false failed on .*digits-cnn-8-split3\.tflite "
                                           r"\(exit 1\)"):
        compile_head(flat, "digits-cnn-8-split3", tmp_path / "out", compiler="false")
    # the int8 head it was given is written for the compiler to read
    assert (tmp_path / "out" / "digits-cnn-8-split3.tflite").read_bytes() == flat


def test_without_the_coral_runtime_the_delegate_is_refused(digits, tmp_path):
    with pytest.raises(ToolkitError, match=r"cannot load the Edge TPU delegate libedgetpu\.so\.1 "
                                           r"\(.*\); install the Coral runtime"):
        load_edgetpu_delegate()
    with pytest.raises(ToolkitError, match="does not exist; deploy the compiled heads"):
        EdgeTpuRunner(tmp_path / "missing_edgetpu.tflite")


def test_the_edge_worker_looks_up_deployed_heads(digits, tmp_path):
    sm, x_calib, flat = digits
    bare = StageCache(sm, x_calib)
    with pytest.raises(ToolkitError, match=r"no Edge TPU head digits-cnn-8-split3_edgetpu\.tflite "
                                           r"in the worker \(no --edgetpu-dir\)"):
        bare.head(3, "tpu-std")
    deployed = tmp_path / "deployed"
    deployed.mkdir()
    (deployed / "digits-cnn-8-split3_edgetpu.tflite").write_bytes(flat)
    cache = StageCache(sm, x_calib, edgetpu_dir=deployed)
    # found; it then needs the delegate, which this machine lacks
    with pytest.raises(ToolkitError, match="cannot load the Edge TPU delegate"):
        cache.head(3, "tpu-max")
    with pytest.raises(ToolkitError, match="no Edge TPU head digits-cnn-8-split4_edgetpu"):
        cache.head(4, "tpu-std")
    assert cache.head(3, "int8") is not None  # the CPU int8 head still runs
