"""Every notebook runs top to bottom in a real kernel (nbclient) without a cell error
(nor a write to stderr).

Notebooks 03, 04 and 05 read DynaSplit's VGG16 pool (shipped under
``datasets/splinter/``), or the embedded default with
``DYNASPLIT_NOTEBOOK_DATA=demo`` (the demo cube; 05: a cube it measures); both
paths run here. The campaigns 02 and 05 measure on the local emulated testbed
must show the trade-off (issue 14): edge-only, cloud-only and an interior split
all on the Pareto front; they run one at a time (under ``make test`` another
test file may run in the second test process: the emulated times are padded
to the profiles', which absorbs that). The others measure nothing that is
checked, so they run two at a time (:data:`SIDE_BY_SIDE`, the CI machine's
cores), each kernel with a TMPDIR of its own. Executed copies are written to
``test-artifacts/notebooks/`` for inspection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from kernels import KERNEL_NAME, processes_with_tmpdir, write_kernel_spec

from toolkit import open_cube, pareto_configs

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO_ROOT / "notebooks"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "notebooks"

#: (notebook, DYNASPLIT_NOTEBOOK_DATA) pairs that run
CASES = [
    ("01-split-inference", "auto"),
    ("02-measurement-campaign", "auto"),
    ("03-offline-optimization", "auto"),
    ("03-offline-optimization", "demo"),
    ("04-tradeoffs", "auto"),
    ("04-tradeoffs", "demo"),
    ("05-policy-and-scheduler", "auto"),
    ("05-policy-and-scheduler", "demo"),
    ("06-partitioning", "auto"),
]
#: notebooks that measure a campaign: where its cube lands in the kernel's TMPDIR
MEASURED = {"02-measurement-campaign": "dynasplit-nb02-*/cube.nc",
            "05-policy-and-scheduler": "dynasplit-nb05/cube.nc"}
#: notebooks that read the demo cube (in both modes)
READS_DEMO = ("03-", "04-")
#: how many of the notebooks that measure no campaign run at once (the CI machine's cores)
SIDE_BY_SIDE = 2
#: the slowest of those, started first so that none of them runs alone at the end
#: (06 takes about 3 minutes on 2 cores, as long as the others together)
SLOWEST_FIRST = ("06-partitioning", "01-split-inference")


def _stored() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_is_executed_here() -> None:
    assert {p.stem for p in _stored()} == {name for name, _ in CASES}


@pytest.mark.parametrize("path", _stored(), ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs_and_says_what_and_how_long(path: Path) -> None:
    raw = json.loads(path.read_text())
    ids = [cell.get("id") for cell in raw["cells"]]
    # nbformat would silently renumber these (with a warning) on every read
    assert None not in ids, f"{path.name}: a cell has no id"
    assert len(set(ids)) == len(ids), f"{path.name}: cell ids repeat: {sorted(ids)}"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    first = nb.cells[0]
    assert first.cell_type == "markdown", "the first cell must say what the notebook shows"
    assert "What it shows" in first.source and "How long" in first.source, first.source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell has stored outputs"
            assert cell.execution_count is None, f"{path.name}: stored execution count"


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kernel_spec(tmp_path_factory.mktemp("jupyter"))


@pytest.fixture(scope="module")
def kernel_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TMPDIR of the measuring kernels: 05's demo mode resumes the campaign its auto mode
    measured (``$TMPDIR/dynasplit-nb05``)."""
    return tmp_path_factory.mktemp("kernel-tmp")


@dataclass
class Executed:
    """One notebook run: the executed notebook, processes that outlived its kernel, and
    the error ``execute`` raised (a cell's, or the kernel's), if any."""

    nb: nbformat.NotebookNode
    left: list[str]
    error: BaseException | None
    tmpdir: Path


def _case_id(name: str, data: str) -> str:
    return f"{name}-{data}"


def _kernel_tmpdir(name: str, tmpdir: Path, request: pytest.FixtureRequest) -> Path:
    """``tmpdir``, holding a copy of the session's demo where notebook ``name`` reads it."""
    path = NOTEBOOKS / f"{name}.ipynb"
    if not path.exists():
        pytest.fail(f"{path} is missing")
    resumed = tmpdir / "dynasplit-demo"
    if name.startswith(READS_DEMO) and not resumed.exists():
        # the notebooks resume the session's demo (where a user's `make demo`
        # would have left it) rather than measure the same campaign again
        demo_out, _ = request.getfixturevalue("demo_run")
        shutil.copytree(demo_out, resumed, ignore=shutil.ignore_patterns("logs"))
    return tmpdir


async def _execute(name: str, data: str, kernel_path: Path, tmpdir: Path) -> Executed:
    """Run notebook ``name`` top to bottom in a fresh kernel whose TMPDIR is ``tmpdir``."""
    path = NOTEBOOKS / f"{name}.ipynb"
    env = dict(os.environ, DYNASPLIT_NOTEBOOK_DATA=data, TMPDIR=str(tmpdir),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, shutdown_wait_time=60,
                            kernel_spec_manager=KernelSpecManager(
                                kernel_dirs=[str(kernel_path / "kernels")]))
    client = NotebookClient(nb, km=km, timeout=600, startup_timeout=120,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    error = None
    try:
        await client.async_execute(env=env)  # raises CellExecutionError naming the cell
    except Exception as exc:  # re-raised by the notebook's own test
        error = exc
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, ARTIFACTS / f"{_case_id(name, data)}.ipynb")
        if km.has_kernel:  # nbclient leaves a kernel it did not create running
            await km.shutdown_kernel()
    left = []
    for p in await asyncio.to_thread(processes_with_tmpdir, tmpdir):
        with contextlib.suppress(psutil.Error):
            left.append(" ".join(p.cmdline()[:3]))
            p.kill()
    return Executed(nb, left, error, tmpdir)


@pytest.fixture(scope="module")
def side_by_side(kernel_path: Path, tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> dict[str, Executed]:
    """The selected notebooks that measure no campaign, run :data:`SIDE_BY_SIDE` at a
    time, each in a kernel with a TMPDIR of its own; case id -> :class:`Executed`.

    Their figures are not checked against timings, so they may share the cores;
    the measuring notebooks (:data:`MEASURED`) run alone in their own tests. The
    slowest start first (:data:`SLOWEST_FIRST`).
    """
    selected = {item.callspec.id for item in request.session.items
                if getattr(item, "originalname", "") == "test_notebook_runs_top_to_bottom"}
    cases = [(n, d) for n, d in CASES if n not in MEASURED and _case_id(n, d) in selected]
    cases.sort(key=lambda case: SLOWEST_FIRST.index(case[0]) if case[0] in SLOWEST_FIRST
               else len(SLOWEST_FIRST))

    tmpdirs = [_kernel_tmpdir(n, tmp_path_factory.mktemp(f"kernel-tmp-{_case_id(n, d)}"),
                              request) for n, d in cases]

    async def run_all() -> list[Executed]:
        slots = asyncio.Semaphore(SIDE_BY_SIDE)

        async def one(name: str, data: str, tmpdir: Path) -> Executed:
            async with slots:
                return await _execute(name, data, kernel_path, tmpdir)

        return await asyncio.gather(*(one(n, d, t) for (n, d), t in zip(cases, tmpdirs,
                                                                         strict=True)))

    return {_case_id(n, d): e for (n, d), e in zip(cases, asyncio.run(run_all()), strict=True)}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "data"), CASES, ids=[_case_id(n, d) for n, d in CASES])
def test_notebook_runs_top_to_bottom(name: str, data: str, kernel_path: Path, kernel_tmp: Path,
                                     request: pytest.FixtureRequest) -> None:
    if name in MEASURED:
        run = asyncio.run(_execute(name, data, kernel_path,
                                   _kernel_tmpdir(name, kernel_tmp, request)))
    else:
        run = request.getfixturevalue("side_by_side")[_case_id(name, data)]
    if run.error is not None:
        raise run.error
    assert not run.left, f"processes outlived the notebook's kernel: {run.left}"
    nb = run.nb
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    stderr = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "stream" and o.get("name") == "stderr"]
    assert not stderr, f"a cell wrote to stderr: {stderr[0][:2000]}"
    shown = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in shown), "no figure was shown"
    if name in MEASURED:
        cubes = sorted(run.tmpdir.glob(MEASURED[name]), key=lambda p: p.stat().st_mtime)
        assert cubes, f"{name} wrote no {MEASURED[name]}"
        _assert_front_shows_the_trade_off(cubes[-1])


def _assert_front_shows_the_trade_off(path: Path) -> None:
    """Cloud-only, edge-only and an interior split all reach the measured front."""
    cube = open_cube(path)
    front = pareto_configs(cube)
    splits = {int(c["split"]) for c in front}
    last = int(cube.split.max())
    assert {0, last} <= splits and any(0 < s < last for s in splits), (
        f"{path}: the front's splits are {sorted(splits)} of {cube.split.values.tolist()}")
