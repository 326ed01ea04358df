"""``dynasplit export`` finds the cube through FRONT.json, or says why it needs ``--cube``.

The fronts are written by the real ``dynasplit optimize`` command line.
"""

from __future__ import annotations

import json
import shutil

from toolkit.cli import main
from toolkit.cube import save_cube
from toolkit.optimize import front_cube

from .conftest import toy_cube


def _optimize(cube, front, capsys) -> dict:
    assert main(["optimize", str(cube), "--budget", "0.5", "--seed", "1", "-o", str(front),
                 "--quiet"]) == 0
    capsys.readouterr()
    return json.loads(front.read_text())


def _policy(path) -> dict:
    doc = json.loads(path.read_text())
    doc.pop("created_at", None)
    return doc


def test_export_uses_the_cube_the_front_records(tmp_path, capsys):
    study = tmp_path / "study"
    study.mkdir()
    cube = save_cube(toy_cube(), study / "toy.nc")
    front = study / "FRONT.json"
    assert _optimize(cube, front, capsys)["cube"] == "toy.nc"  # beside it: relative

    assert main(["export", str(front), "--cube", str(cube), "-o",
                 str(tmp_path / "given.json")]) == 0
    assert main(["export", str(front), "-o", str(tmp_path / "found.json")]) == 0
    assert "candidates" in capsys.readouterr().out
    assert _policy(tmp_path / "found.json") == _policy(tmp_path / "given.json")

    moved = shutil.move(study, tmp_path / "moved")  # front and cube move together
    assert front_cube(f"{moved}/FRONT.json") == tmp_path / "moved" / "toy.nc"
    assert main(["export", f"{moved}/FRONT.json", "-o", str(tmp_path / "moved.json")]) == 0
    assert _policy(tmp_path / "moved.json")["candidates"] == _policy(
        tmp_path / "given.json")["candidates"]


def test_a_cube_outside_the_front_folder_is_recorded_absolute(tmp_path, capsys):
    cube = save_cube(toy_cube(), tmp_path / "toy.nc")
    (tmp_path / "fronts").mkdir()
    front = tmp_path / "fronts" / "FRONT.json"
    assert _optimize(cube, front, capsys)["cube"] == str(cube.resolve())
    assert main(["export", str(front), "-o", str(tmp_path / "p.json")]) == 0


def test_export_asks_for_cube_in_one_line_when_the_front_cannot_name_it(tmp_path, capsys):
    cube = save_cube(toy_cube(), tmp_path / "toy.nc")
    front = tmp_path / "FRONT.json"
    doc = _optimize(cube, front, capsys)
    out = str(tmp_path / "p.json")

    cube.unlink()
    assert main(["export", str(front), "-o", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "--cube CUBE.nc is needed" in err and f"came from the cube {cube}" in err
    assert "no longer exists" in err

    doc.pop("cube")  # a front written before fronts recorded their cube
    front.write_text(json.dumps(doc))
    assert main(["export", str(front), "-o", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "--cube CUBE.nc is needed" in err and "does not record the cube" in err
    assert not (tmp_path / "p.json").exists()
