"""A sweep of bad invocations over every sub-command, on real files made from DynaSplit's
VGG16 pool: each one is a single error line naming the problem, exit status 2, and no
traceback. It keeps the promise of the README's "Bad input" paragraph as commands and
options are added (each case's own test is beside its code; this is the regression net)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from toolkit.cli import main
from toolkit.cube import save_cube
from toolkit.optimize import ConfigSpace, CubeEvaluator, optimize, save_front
from toolkit.paths import SPLINTER_DIR
from toolkit.policy import Policy
from toolkit.splinter import read_pool
from toolkit.trace import generate_trace, write_trace

#: (arguments, a fragment of the error line); {cube} {front} {policy} {trace} {file} {tmp}
#: are real files (``file`` is a plain file standing where a folder is needed)
CASES = [
    ("cube info {tmp}/missing.nc", "does not exist"),
    ("cube info {trace}", "is not a NetCDF-4 file"),
    ("optimize {cube} --budget 0 -o {tmp}/f.json", "budget count must be >= 1"),
    ("optimize {cube} --budget nan -o {tmp}/f.json", "budget fraction must be in (0, 1]"),
    ("optimize {cube} --algorithm nsga9 -o {tmp}/f.json", "valid: nsga2, nsga3"),
    ("optimize {cube} --objectives latency_ms,power -o {tmp}/f.json", "unknown objective"),
    ("optimize {trace} -o {tmp}/f.json", "is not a NetCDF-4 file"),
    ("optimize {cube} -o {file}/f.json", "is a file, not a folder"),
    ("export {trace} -o {tmp}/p.json", "is not a readable JSON file"),
    ("export {policy} -o {tmp}/p.json", "this toolkit reads fronts"),
    ("export {front} -o {tmp}/p.json --rule tail --target 2", "tail target must be a number"),
    ("export {front} -o {tmp}/p.json --confidence 0", "confidence must be a number in"),
    ("export {front} -o {tmp}/p.json --edge-profile nope", "shipped profiles: "),
    ("export {front} -o {tmp}/p.json --cube {trace}", "is not a NetCDF-4 file"),
    ("export {front} -o {tmp}/p.json --script {file}/s.py", "is a file, not a folder"),
    ("trace generate --model vgg16 --min 100 --max 10 -n 10 --seed 0 -o {tmp}/t.csv",
     "must be greater than min"),
    ("trace generate --model vgg16 --min 1 --max 10 -n 10 --seed 0 --shape nan "
     "-o {tmp}/t.csv", "Weibull shape must be a number > 0, got nan"),
    ("trace generate --model vgg16 --min 1 --max 10 -n 1000000000000 --seed 0 "
     "-o {tmp}/t.csv", "a generated trace holds at most 10000000 requests"),
    ("trace generate --model a,b --min 1 --max 10 -n 10 --seed 0 -o {tmp}/t.csv",
     "invalid model name"),
    ("simulate {cube} --policy {policy} --trace {front}", "is not a QoS trace CSV"),
    ("simulate {cube} --policy {trace} --trace {trace}", "is not a readable JSON file"),
    ("simulate {cube} --policy {policy} --trace {trace} --drift a:b:c", "START:END:FACTOR"),
    ("simulate {cube} --policy {policy} --trace {trace} --drift 0:10:nan",
     "drift factor must be a number > 0, got nan"),
    ("simulate {cube} --policy {policy} --trace {trace} --plot {tmp}/s.xyz",
     "unknown image format .xyz"),
    ("schedule {policy} --dry-run --queue 0", "queue size must be an integer >= 1, got 0"),
    ("schedule {policy} --dry-run --timeout nan", "timeout must be a number of seconds"),
    ("schedule {policy} --dry-run --grace inf", "grace period must be a number of seconds"),
    ("schedule {policy} --dry-run --listen nothost", "is not HOST:PORT"),
    ("schedule {policy} --dry-run --listen 127.0.0.1:99999", "out of range"),
    ("schedule {front} --dry-run", "run `dynasplit export` on it"),
    ("schedule {policy} --dry-run --token-file {trace}", "stdin needs no authentication"),
    ("partition digits-cnn --devices 0", "expected an integer >= 1"),
    ("partition digits-cnn --devices 100000", "at most 1024 devices, got 100000"),
    ("partition digits-cnn --devices 2 --strategy nope", "invalid choice: 'nope'"),
    ("partition digits-cnn --devices 2 --link-mbps inf", "expected a positive number"),
    ("partition digits-cnn --devices 2 --fuse 0", "fuse must be 'all', 'none' or a number"),
    ("partition digits-cnn --devices 2 --interval-ms 1", "add --requests K"),
    ("partition digits-cnn --devices 2 --requests 1000000000000",
     "a stream has at most 1000000 requests"),
    ("partition vgg-stack --devices 2 --input-size 2000000",  # 384 TB: no machine maps it
     "out of memory ("),
    ("partition nope --devices 2", "unknown model 'nope'"),
    ("measure --testbeds 100000 --model digits-cnn -o {tmp}/c.nc",
     "100000 local testbeds (an edge and a cloud worker each) need 200000 worker processes"),
    ("partition digits-cnn --devices 2 --input-size 64",
     "vgg-stack, mobilenet-stack only; digits-cnn has a fixed input"),
    ("measure --model digits-cnn --runs 0 -o {tmp}/c.nc", "--runs '0' is not valid"),
    ("measure --model digits-cnn --rel-ci 0.1 -o {tmp}/c.nc", "go with --runs auto"),
    ("measure --model digits-cnn --samples 0 -o {tmp}/c.nc", "samples must be an integer >= 1"),
    ("measure --model digits-cnn -o {file}/c.nc", "is a file, not a folder"),
    ("split nope --list", "unknown model 'nope'"),
    ("split digits-cnn --list --input-size 64", "digits-cnn has a fixed input"),
    ("calibrate --rounds 0", "--rounds must be at least 3"),
    ("calibrate --profile nope", "shipped profiles: "),
    ("train-digits --model nope", "unknown --model 'nope'"),
    ("train-digits --epochs 0", "--epochs must be at least 1"),
    ("demo --samples 0", "samples must be an integer >= 1, got 0"),
    ("demo --samples 1000000000000", "samples must be at most 1000000"),
    ("measure --model digits-cnn --samples 1000000000000 -o {tmp}/c.nc",
     "samples must be at most 1000000"),
    ("measure --model digits-cnn --runs 1000000000000 -o {tmp}/c.nc",
     "runs must be at most 10000"),
    ("demo --out {file}", "is a file, not a folder"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A cube of DynaSplit's VGG16 pool, a front found in it, its policy and a trace."""
    root = tmp_path_factory.mktemp("hostile")
    cube = read_pool(SPLINTER_DIR / "simulation_pool_vgg16.csv", model="vgg16")
    cube_path = save_cube(cube, root / "vgg16.nc")
    result = optimize(ConfigSpace.from_cube(cube), CubeEvaluator(cube), 0.1, seed=0,
                      progress=False)
    result.cube = str(cube_path)
    front = save_front(result, root / "front.json")
    policy = Policy.from_front(front, cube).save(root / "policy.json")
    trace = write_trace(generate_trace("vgg16", 90.6, 5026.8, n=50, seed=0), root / "t.csv")
    (root / "file").write_text("a plain file where a folder is needed")
    return {"cube": cube_path, "front": front, "policy": policy, "trace": trace,
            "file": root / "file", "tmp": root}


@pytest.mark.parametrize(("argv", "fragment"), CASES, ids=[c[0].split(" {")[0] for c in CASES])
def test_bad_input_is_one_error_line_and_exit_status_2(files, capsys, argv, fragment):
    args = shlex.split(argv.format(**{k: str(v) for k, v in files.items()}))
    capsys.readouterr()
    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own refusals
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert fragment in errors[0], errors[0]
    produced = {p.name for p in files["tmp"].iterdir()}
    assert produced == {"vgg16.nc", "front.json", "policy.json", "t.csv", "file"}, produced


def test_running_out_of_memory_is_told_from_other_errors():
    import numpy as np

    from toolkit.cli import out_of_memory

    with pytest.raises(MemoryError) as raised:
        np.empty(10**15)  # 8 PB: refused by the allocator, nothing is touched
    assert out_of_memory(raised.value) and out_of_memory(MemoryError())
    assert not out_of_memory(ValueError("out of memory"))
