"""End to end in a real browser: JupyterLab 4 + headless Chromium + the split-inference panel.

Starts JupyterLab on a free loopback port with a token (its own config, data
and runtime folders, a kernel spec for this interpreter), opens notebook 01's
panel section (``notebooks/01-split-inference.ipynb``'s cells that start the
testbed and show the panel: :data:`PANEL_CELLS`) in Debian's Chromium driven by
Playwright, runs all cells from the Run menu, moves the panel's split slider
with the keyboard, clicks the panel's Run button and checks that the result now
shows the new split; then the TradeoffExplorer on the demo cube. The whole of
notebook 01 runs once, in ``tests/notebooks/`` (which also checks that no cell
writes to stderr); its other cells (tables, figures, the accuracy table) need no
browser. One server and
one browser serve both tests (a page each; a test's kernels are shut down after
it). Screenshots go to ``test-artifacts/browser/``. The server, its kernels and
their worker processes are always stopped.

Needs ``chromium`` (``apt-get install chromium``) and ``playwright`` (pip; no
``playwright install``: the system browser is used).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from kernels import KERNEL_NAME, write_kernel_spec

from toolkit.cube import config_means, open_cube

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO_ROOT / "notebooks" / "01-split-inference.ipynb"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SERVER_START_S = 120
RUN_ALL_S = 420          # the panel section takes under a minute alone; the machine may be busy
RUN_CLICK_S = 180
RUN_ALL_ATTEMPTS = 4
#: notebook 01's cells (by id) that the panel needs: imports and settings, the testbed
#: started and one run, the panel, and the panel driven by code (with their markdown)
PANEL_CELLS = ("cell-00", "cell-01", "cell-04", "cell-05", "cell-10", "cell-11", "cell-12",
               "cell-13", "cell-14")

@dataclass
class Lab:
    url: str
    token: str
    process: subprocess.Popen
    log: Path
    root: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jupyter() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyter"]


def _wait_until_up(lab: Lab) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {lab.process.returncode}; log:\n"
                        f"{lab.log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}",
                                        timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s; log:\n"
                f"{lab.log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen) -> None:
    """Stop the server (it shuts its kernels down), then anything of ours still running."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    _, alive = psutil.wait_procs(family, timeout=20)
    for p in alive:  # kernels or workers that outlived the server
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


@contextlib.contextmanager
def _lab(tmp_path: Path, files: dict[str, str | bytes]) -> Iterator[Lab]:
    """JupyterLab on a free loopback port, serving a root folder that holds ``files``."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    root = tmp_path / "root"
    root.mkdir()
    for name, content in files.items():
        if isinstance(content, bytes):
            (root / name).write_bytes(content)
        else:
            (root / name).write_text(content)
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ,
               JUPYTER_PATH=str(write_kernel_spec(tmp_path / "jupyter")),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               IPYTHONDIR=str(tmp_path / "ipython"),
               TMPDIR=str(tmp_path),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    command = [*_jupyter(), "lab", "--no-browser", f"--port={port}", "--port-retries=0",
               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=root)
    server = Lab(f"http://127.0.0.1:{port}", token, process, log, root)
    try:
        _wait_until_up(server)
        yield server
    finally:
        _stop(process)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / f"jupyterlab-{tmp_path.name}.log")


def _panel_section(nb: dict) -> dict:
    """Notebook 01 reduced to its :data:`PANEL_CELLS`, in the notebook's order."""
    cells = [c for c in nb["cells"] if c.get("id") in PANEL_CELLS]
    missing = set(PANEL_CELLS) - {c["id"] for c in cells}
    assert not missing, f"{NOTEBOOK.name} has no cells {sorted(missing)}: update PANEL_CELLS"
    return {**nb, "cells": cells}


def _with_test_kernel(nb: dict) -> str:
    nb["metadata"]["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_NAME,
                                    "language": "python"}
    return json.dumps(nb)


def _api(lab: Lab, path: str, method: str = "GET", body: dict | None = None):
    """JupyterLab's REST API (token-authenticated), the answer decoded."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{lab.url}/api/{path}", method=method, data=data,
                                     headers={"Authorization": f"token {lab.token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One JupyterLab for the module's tests, serving notebook 01's panel section (a test
    may add files to its root)."""
    section = _panel_section(json.loads(NOTEBOOK.read_text()))
    with _lab(tmp_path_factory.mktemp("lab"),
              {NOTEBOOK.name: _with_test_kernel(section)}) as server:
        yield server


@pytest.fixture
def lab(lab_server: Lab) -> Iterator[Lab]:
    """The module's JupyterLab; the kernels a test started (and with them notebook 01's
    testbed workers) are shut down after it, so the next test starts on a quiet server."""
    yield lab_server
    for session in _api(lab_server, "sessions"):
        _api(lab_server, f"sessions/{session['id']}", "DELETE")
    for kernel in _api(lab_server, "kernels"):
        _api(lab_server, f"kernels/{kernel['id']}", "DELETE")


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium, driven by Playwright, for the module's tests (a page each)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _run_all_cells(page) -> None:
    """Run > Run All Cells until every code cell has run. A busy machine can swallow a
    click (the command is disabled until the notebook is the current widget), and a
    kernel change while the cells are queued (JupyterLab replacing the session's kernel)
    clears the queue after the first cell: both are retried; a cell that fails is not."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    started = page.locator(".jp-Notebook .jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(RUN_ALL_ATTEMPTS):
        page.locator(".jp-Notebook .jp-Cell").first.click()      # make the notebook current
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        item = page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text="Run All Cells")
        try:
            item.first.click(timeout=15_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        try:
            expect(started.first).to_be_visible(timeout=60_000)
        except AssertionError:
            continue
        if _ran_to_the_end(page):
            return
    pytest.fail(f"Run > Run All Cells did not run the notebook in {RUN_ALL_ATTEMPTS} attempts")


def _ran_to_the_end(page) -> bool:
    """Wait until every code cell has run (True), or until the run stopped short: the
    kernel idle, no cell queued and some cell never run (False). A cell that wrote an
    error fails the test at once, with the error."""
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    deadline = time.monotonic() + RUN_ALL_S
    while time.monotonic() < deadline:
        texts = [t.strip() for t in prompts.all_inner_texts()]
        if texts and all(re.fullmatch(r"\[\d+\]:", t) for t in texts):
            return True
        if errors.count():
            pytest.fail(f"a cell wrote to stderr: {errors.first.inner_text()}")
        if idle.count() == 1 and not any("*" in t for t in texts):
            return False
        page.wait_for_timeout(500)
    pytest.fail(f"the notebook did not finish in {RUN_ALL_S} s")


def _expect_idle_without_stderr(page) -> None:
    """The kernel is idle again and no cell wrote to stderr."""
    from playwright.sync_api import expect

    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
           ).to_have_count(1, timeout=RUN_ALL_S * 1000)
    errors = page.locator(".jp-OutputArea-output[data-mime-type="
                          "'application/vnd.jupyter.stderr']")
    assert errors.count() == 0, f"a cell wrote to stderr: {errors.first.inner_text()}"


def _result_text(page) -> str:
    return page.locator(".dynasplit-result").inner_text()


def _new_page(chromium, height: int):
    """A page that answers JupyterLab's "Select Kernel" dialog as a user would, with the
    notebook's own kernel (preselected), should it still come (see :func:`_open_notebook`):
    the dialog blocks every click. The handler does not wait for the dialog to go, so a
    dialog that stays or comes back is answered again at the next click."""
    page = chromium.new_page(viewport={"width": 1400, "height": height})
    dialog = page.locator(".jp-Dialog").filter(has_text="Select Kernel")
    # the dialog's accept button ("Select"; its accessible name is not always the label)
    page.add_locator_handler(dialog, lambda d: d.locator(".jp-Dialog-button.jp-mod-accept").click(),
                             no_wait_after=True)
    return page


def _open_notebook(page, lab: Lab, name: str, workspace: str) -> None:
    """Open notebook ``name`` in a workspace of its own (no tabs restored), its kernel
    already running and idle. The kernel is started through the REST API first, as a
    session for the notebook's path, so JupyterLab connects to it: left to start it,
    JupyterLab asks "Select Kernel" whenever that start fails or is slow (the CI run of
    stop 32 timed out behind such a dialog on a loaded machine)."""
    from playwright.sync_api import expect

    _api(lab, "sessions", "POST", {"path": name, "name": name, "type": "notebook",
                                   "kernel": {"name": KERNEL_NAME}})
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{name}?token={lab.token}")
    expect(page.locator(".jp-NotebookPanel"), "the notebook did not open"
           ).to_be_visible(timeout=120_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']"),
           "the kernel did not become idle").to_have_count(1, timeout=120_000)


@pytest.mark.slow
def test_split_inference_panel_in_jupyterlab(lab: Lab, chromium) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "jupyterlab-split-inference.png"
    (ARTIFACTS / "jupyterlab-failure.png").unlink(missing_ok=True)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    page = _new_page(chromium, height=1000)
    try:
        _open_notebook(page, lab, NOTEBOOK.name, "split-inference")
        timings["open_s"] = time.monotonic() - t0

        _run_all_cells(page)
        panel = page.locator(".dynasplit-split-inference")
        expect(panel, "the panel did not render (is jupyterlab_widgets installed?)"
               ).to_be_visible(timeout=RUN_ALL_S * 1000)
        # the notebook's last code cell runs the panel by code at split 2
        result = page.locator(".dynasplit-result")
        expect(result).to_contain_text("split 2", timeout=RUN_ALL_S * 1000)
        _expect_idle_without_stderr(page)
        timings["run_all_s"] = time.monotonic() - t0 - timings["open_s"]
        before = _result_text(page)

        handle = panel.locator(".dynasplit-split .noUi-handle")
        handle.scroll_into_view_if_needed()
        handle.focus()
        handle.press("ArrowRight")
        handle.press("ArrowRight")
        readout = panel.locator(".dynasplit-split .widget-readout")
        expect(readout, "the keyboard did not move the split slider").to_contain_text(
            "4 · conv3", timeout=30_000)
        # the kernel's own description of the cut: the kernel has split 4. ipywidgets holds
        # back a model's next update until the kernel has taken the previous one, so a
        # click right after the readout moved can reach the kernel before the split does
        expect(panel.locator(".dynasplit-cut"), "the kernel did not get split 4"
               ).to_contain_text("split 4 of", timeout=30_000)

        t1 = time.monotonic()
        panel.locator("button.dynasplit-run").click()
        expect(result, "the run button did not update the result").to_contain_text(
            "split 4", timeout=RUN_CLICK_S * 1000)
        expect(panel.locator("button.dynasplit-run")).to_be_enabled(timeout=60_000)
        timings["click_run_s"] = time.monotonic() - t1
        after = _result_text(page)
        assert after != before and "split 4" in after and "split 2" in before
        assert "energy" in after and "model:" in after and "accuracy" in after
        panel.scroll_into_view_if_needed()
        page.screenshot(path=str(shot), full_page=False)
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-failure.png"), full_page=False)
        raise
    finally:
        page.close()
    timings["total_s"] = time.monotonic() - t0
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=1))
    assert shot.stat().st_size > 10_000


EXPLORER_NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5, "metadata": {},
    "cells": [
        {"cell_type": "markdown", "id": "what", "metadata": {},
         "source": "The `TradeoffExplorer` on the demo cube (`dynasplit demo`)."},
        {"cell_type": "code", "id": "explorer", "metadata": {}, "execution_count": None,
         "outputs": [],
         "source": "from toolkit import open_cube\n"
                   "from toolkit.widgets import TradeoffExplorer\n\n"
                   "explorer = TradeoffExplorer(open_cube('demo.nc'))\n"
                   "explorer.widget"},
    ],
}

#: the split DynaSplit's rule picks, read from the picks table's "dynasplit" row
_DYNASPLIT_SPLIT_JS = """table => {
    const heads = [...table.querySelectorAll('thead th')].map(th => th.innerText.trim());
    const col = heads.indexOf('split');
    for (const row of table.querySelectorAll('tbody tr')) {
        const cells = [...row.querySelectorAll('td')].map(td => td.innerText.trim());
        if (cells[0] === 'dynasplit') return cells[col];
    }
    return null;
}"""


@pytest.mark.slow
def test_tradeoff_explorer_on_the_demo_cube_in_jupyterlab(
        lab: Lab, chromium, demo_run: tuple[Path, str]) -> None:
    """The explorer renders the demo cube, and moving its latency threshold from the
    lowest to the highest value changes the split DynaSplit's rule picks."""
    from playwright.sync_api import expect

    demo_out, _ = demo_run
    means = config_means(open_cube(demo_out / "demo.nc")).dropna(subset=["latency_ms"])
    # the slider's ends: at the lowest threshold only the fastest configuration meets
    # it; at the highest every one does, and DynaSplit's rule takes the most frugal
    limits = {"Home": float(means.latency_ms.min()), "End": float(means.latency_ms.max())}
    expected = {"Home": str(int(means.loc[means.latency_ms.idxmin(), "split"])),
                "End": str(int(means.loc[means.energy_j.idxmin(), "split"]))}
    files = {"explorer.ipynb": _with_test_kernel(EXPLORER_NOTEBOOK).encode(),
             "demo.nc": (demo_out / "demo.nc").read_bytes()}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = {end: ARTIFACTS / f"jupyterlab-tradeoff-{end.lower()}.png" for end in ("Home", "End")}
    failure = ARTIFACTS / "jupyterlab-tradeoff-failure.png"
    failure.unlink(missing_ok=True)
    for name, content in files.items():
        (lab.root / name).write_bytes(content)
    page = _new_page(chromium, height=1400)
    try:
        _open_notebook(page, lab, "explorer.ipynb", "tradeoff")
        _run_all_cells(page)
        panel = page.locator(".dynasplit-tradeoff")
        expect(panel, "the explorer did not render").to_be_visible(timeout=RUN_ALL_S * 1000)
        picks = page.locator(".dynasplit-picks table")
        expect(picks).to_contain_text("dynasplit", timeout=RUN_ALL_S * 1000)
        _expect_idle_without_stderr(page)
        assert "model:" in panel.inner_text()  # the energy says it is modelled

        picked = {}
        readout = panel.locator(".dynasplit-threshold .widget-readout")
        handle = panel.locator(".dynasplit-threshold .noUi-handle")
        for end, shot in shots.items():
            before = readout.inner_text()
            handle.scroll_into_view_if_needed()
            handle.focus()
            handle.press(end)  # the slider's lowest / highest threshold
            expect(readout, f"{end} did not move the threshold").not_to_have_text(
                before, timeout=30_000)
            # the picks and the plot are redrawn, then the summary names the threshold
            expect(panel.locator(".dynasplit-summary")).to_contain_text(
                f"threshold of {limits[end]:.4g} ms", timeout=RUN_CLICK_S * 1000)
            expect(picks).to_contain_text("dynasplit", timeout=60_000)
            picked[end] = picks.evaluate(_DYNASPLIT_SPLIT_JS)
            panel.scroll_into_view_if_needed()
            page.screenshot(path=str(shot), full_page=True)
    except BaseException:
        page.screenshot(path=str(failure), full_page=True)
        raise
    finally:
        page.close()
    # on a cube with a real trade-off the fastest and the most frugal configurations
    # are different splits (the summary is written after the picks: they are current)
    assert picked == expected and picked["Home"] != picked["End"], (picked, expected)
    assert all(shot.stat().st_size > 10_000 for shot in shots.values())
