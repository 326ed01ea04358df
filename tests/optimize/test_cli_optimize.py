"""``dynasplit optimize`` end to end, and the optimizer on the DynaSplit VGG16 pool."""

from __future__ import annotations

import json

import numpy as np

from toolkit.cli import main
from toolkit.cube import save_cube
from toolkit.optimize import ConfigSpace, CubeEvaluator, load_front, optimize
from toolkit.pareto import pareto_mask


def test_cli_writes_a_front(toy_cube, tmp_path, capsys):
    cube = save_cube(toy_cube, tmp_path / "toy.nc")
    out = tmp_path / "FRONT.json"
    argv = ["optimize", str(cube), "--budget", "0.3", "--algorithm", "nsga3", "--seed", "2",
            "-o", str(out), "--quiet"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "configurations on the front from 48 evaluations" in text
    assert "energy from model:synthetic" in text
    front = load_front(out)
    assert front.algorithm == "nsga3" and front.seed == 2 and front.evaluations == 48
    first = json.loads(out.read_text())
    assert main([*argv[:-1], "--objectives", "latency_ms,energy_j", "--budget", "20"]) == 0
    two = json.loads(out.read_text())
    assert two["objectives"] == {"latency_ms": "min", "energy_j": "min"}
    assert two["evaluations"] == 20
    assert main(argv) == 0  # same seed, same file except the timestamp
    again = json.loads(out.read_text())
    first.pop("created_at"), again.pop("created_at")
    assert again == first


def test_cli_errors_are_one_line(toy_cube, tmp_path, capsys):
    cube = save_cube(toy_cube, tmp_path / "toy.nc")
    out = tmp_path / "FRONT.json"
    cases = [
        (["--algorithm", "moead"], "unknown algorithm 'moead'; valid: nsga2, nsga3"),
        (["--initial", "sobol"], "unknown initial design 'sobol'; valid: guided, latin"),
        (["--budget", "1.5"], "budget fraction must be in (0, 1]"),
        (["--budget", "lots"], "neither a fraction"),
        (["--objectives", "speed"], "unknown objective(s) speed; valid: latency_ms"),
        (["--model", "resnet"], "model 'resnet' is not in the cube; valid: toy"),
    ]
    for extra, message in cases:
        assert main(["optimize", str(cube), "-o", str(out), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["optimize", str(tmp_path / "none.nc"), "-o", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_vgg16_pool_front_at_twenty_percent(splinter_dir):
    from toolkit.splinter import read_pool

    cube = read_pool(splinter_dir / "simulation_pool_vgg16.csv", model="vgg16")
    space = ConfigSpace.from_cube(cube)
    evaluator = CubeEvaluator(cube)
    assert len(space) == 747
    result = optimize(space, evaluator, 0.2, seed=0, progress=False)
    assert result.evaluations == 149
    values = np.array([[v[o] for o in result.objectives] for v in evaluator.table.values()])
    exhaustive = values[pareto_mask(values, list(result.objectives.values()))]
    ratio = result.hypervolume / result.normalization.hypervolume(exhaustive)
    assert ratio >= 0.99
