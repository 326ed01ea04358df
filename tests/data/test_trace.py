"""QoS traces in DynaSplit's Index,Network,Latency format."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from refusals import assert_file_refused

from toolkit.errors import ToolkitError
from toolkit.trace import generate_trace, read_trace, write_trace


def test_generated_trace_spans_the_range_in_their_format():
    trace = generate_trace("vgg16", 90.6, 5026.8, 50, seed=7)
    assert list(trace.columns) == ["Index", "Network", "Latency"]
    assert trace["Index"].tolist() == list(range(50))
    assert set(trace["Network"]) == {"vgg16"}
    assert trace["Latency"].min() == 90.6 and trace["Latency"].max() == 5026.8
    assert trace["Latency"].between(90.6, 5026.8).all()


def test_same_seed_same_trace_other_seed_other_trace():
    a = generate_trace("resnet50", 66.8, 1669.3, 100, seed=1)
    assert a.equals(generate_trace("resnet50", 66.8, 1669.3, 100, seed=1))
    assert not a["Latency"].equals(generate_trace("resnet50", 66.8, 1669.3, 100, seed=2)["Latency"])


def test_it_is_a_linearly_rescaled_seeded_weibull():
    trace = generate_trace("m", 10.0, 20.0, 30, seed=5, shape=2.0)
    draws = np.random.default_rng(5).weibull(2.0, 30)
    expected = 10.0 + (draws - draws.min()) / (draws.max() - draws.min()) * 10.0
    np.testing.assert_allclose(trace["Latency"], expected, rtol=1e-12)


@pytest.mark.parametrize(("shape", "ratio"), [
    (1.0, 1 / math.log(2)),  # exponential: mean / median = 1 / ln 2
    (3.0, math.gamma(1 + 1 / 3) / math.log(2) ** (1 / 3)),
])
def test_shape_sets_the_distribution(shape, ratio):
    trace = generate_trace("m", 0.0, 1000.0, 20000, seed=11, shape=shape)
    lat = trace["Latency"]
    # the smallest of 20000 draws is ~0, so the rescaled values keep the Weibull's mean/median
    assert lat.mean() / lat.median() == pytest.approx(ratio, rel=0.03)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": 1}, "n >= 2"),
    ({"min_ms": 100.0, "max_ms": 100.0}, "must be greater than min"),
    ({"min_ms": -1.0}, "trace min must be a number of ms >= 0, got -1.0"),
    ({"shape": 0.0}, "Weibull shape must be a number > 0, got 0.0"),
    ({"shape": 1e-300}, r"Weibull draws with shape 1e-300 overflow \(they are not finite\); use "
                        "a larger shape"),
    ({"shape": 1e300}, r"all 10 Weibull draws are equal \(shape 1e\+300\); use a smaller shape"),
    ({"max_ms": float("inf")}, "trace max must be a number of ms >= 0, got inf"),
    ({"model": ""}, "invalid model name"),
    ({"seed": -1}, "seed must be None or an integer >= 0, got -1"),
])
def test_bad_arguments(kwargs, message):
    args = {"model": "vgg16", "min_ms": 1.0, "max_ms": 10.0, "n": 10, "seed": 0, **kwargs}
    with pytest.raises(ToolkitError, match=message):
        generate_trace(**args)


def test_write_then_read_is_exact(tmp_path):
    trace = generate_trace("mobilenetv2", 10.8, 391.0, 40, seed=3)
    path = write_trace(trace, tmp_path / "t.csv")
    assert path.read_text().splitlines()[0] == "Index,Network,Latency"
    back = read_trace(path)
    pd.testing.assert_frame_equal(back, trace, check_dtype=False)
    assert (back["Latency"].to_numpy() == trace["Latency"].to_numpy()).all()


def test_write_replaces_and_a_bad_table_does_not_destroy(tmp_path):
    path = tmp_path / "t.csv"
    write_trace(generate_trace("a", 1.0, 2.0, 5, seed=0), path)
    write_trace(generate_trace("b", 1.0, 2.0, 6, seed=0), path)
    assert read_trace(path, model="b").shape == (6, 3)
    before = path.read_bytes()
    with pytest.raises(ToolkitError, match="columns Latency"):
        write_trace(pd.DataFrame({"Index": [0], "Network": ["b"]}), path)
    assert path.read_bytes() == before
    for latency in (-5.0, float("nan"), "fast"):  # what read_trace would refuse
        with pytest.raises(ToolkitError, match=r"request 1 has the threshold .*; a threshold "
                                               r"is a number of ms >= 0"):
            write_trace(pd.DataFrame({"Index": [0, 1], "Network": ["b", "b"],
                                      "Latency": [3.0, latency]}), path)
        assert path.read_bytes() == before


def test_reads_their_multi_network_trace(splinter_dir):
    path = splinter_dir / "network_latency_50_samples.csv"
    everything = read_trace(path)
    assert len(everything) == 200
    vgg = read_trace(path, model="vgg16")
    assert len(vgg) == 50 and vgg["Index"].tolist() == list(range(50))
    assert vgg["Latency"].min() == pytest.approx(90.6)
    assert vgg["Latency"].max() == pytest.approx(5026.8)
    assert vgg["Latency"].iloc[1] == pytest.approx(4286.694420455027)
    with pytest.raises(ToolkitError, match=r"'vgg19'; it holds vgg16, resnet50, mobilenetv2, vit"):
        read_trace(path, model="vgg19")


HUGE = "9" * 400  # an integer too large for a float: named, not an OverflowError
NOT_FINITE = r"line 3: latency threshold '(inf|nan)' is missing, negative or not finite"
NO_INDEX = r"line 2: column 'Index' holds .*; expected an integer >= 0"


@pytest.mark.parametrize(("text", "message"), [
    ("request,threshold\n0,10\n", "missing columns Index, Network, Latency"),
    ("Index,Network,Latency\n0,vgg16,10\n1,vgg16,-3\n", "line 3: latency threshold"),
    *((f"Index,Network,Latency\n0,vgg16,10\n1,vgg16,{value}\n", NOT_FINITE)
      for value in ("inf", "1e309", "nan", "")),
    ("Index,Network,Latency\n0,vgg16,10\n1,,10\n", "line 3: the Network column is empty"),
    (f"Index,Network,Latency\n0,vgg16,{HUGE}\n", "line 2: latency threshold '9999"),
    *((f"Index,Network,Latency\n{index},vgg16,10\n", NO_INDEX)
      for index in (HUGE, "inf", "1.5", "-1")),
])
def test_read_refuses_what_is_not_a_trace(tmp_path, text, message):
    assert_file_refused(read_trace, tmp_path / "trace.csv", text, message)


def test_writing_something_that_is_no_table_is_named(tmp_path):
    for value in (None, [1.0, 2.0], "trace"):
        with pytest.raises(ToolkitError, match=r"^write_trace needs a table \(a DataFrame with "
                                               r"the columns Index, Network, Latency, e\.g\. from "
                                               rf"generate_trace\), got {type(value).__name__}$"):
            write_trace(value, tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()
