"""environment.yml mirrors pyproject.toml: same packages, same lower bounds."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import yaml

ROOT = Path(__file__).resolve().parents[2]
#: pip name -> conda-forge name, where they differ
CONDA_NAMES = {"matplotlib": "matplotlib-base"}


def _split(requirement: str) -> tuple[str, str]:
    requirement = requirement.split(";")[0].strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", requirement)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"] if "python_version" not in r)
    for extra in project["optional-dependencies"].values():
        wanted.update(_split(r) for r in extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have.update(_split(r) for r in dep["pip"])
        else:
            name, bound = _split(dep)
            if name not in ("python", "pip"):
                have[name] = bound
    expected = {CONDA_NAMES.get(name, name): bound for name, bound in wanted.items()}
    missing = {k: v for k, v in expected.items() if k not in have}
    extra = {k: v for k, v in have.items() if k not in expected}
    different = {k: (v, have[k]) for k, v in expected.items() if k in have and have[k] != v}
    assert not missing and not extra and not different, (missing, extra, different)
