"""Shared pieces of the real-browser tests: Debian chromium through playwright, Jupyter servers on loopback.

Never downloads a browser: playwright drives /usr/bin/chromium. Servers bind 127.0.0.1 on a free port
with a random token. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(command: list[str], root: Path, env: dict, what: str, timeout: float = 90):
    """Run ``command`` + loopback/port/token options until the block ends; yields (base url, token, root).

    ``command`` starts a Jupyter server (``python -m jupyter lab``, ``python -m notebook`` ...) that
    takes ``--ip``, ``--port`` and ``--IdentityProvider.token`` / ``--NotebookApp.token`` style options
    given in it as ``{port}`` and ``{token}`` placeholders.
    """
    token, port = secrets.token_hex(16), free_port()
    argv = [part.format(port=port, token=token) for part in command]
    proc = subprocess.Popen(argv, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"{what} did not start within {timeout:.0f} s (exit code {proc.poll()})")
                time.sleep(0.5)
        yield url, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


def prepare_notebook(name: str, target: Path, **parameters) -> None:
    """Committed notebook ``name`` with papermill ``parameters`` injected, written to ``target`` (not run)."""
    papermill.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(target),
        parameters=parameters,
        prepare_only=True,
        progress_bar=False,
    )


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def jupyter_lab_command(root: Path) -> list[str]:
    """This environment's JupyterLab (and Notebook 7) server on loopback, serving ``root``, for
    :func:`jupyter_server` (which fills in the port and token); the page exposes its app to scripts."""
    return [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        "--port={port}",
        "--port-retries=0",
        "--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",
    ]


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """A JupyterLab server on loopback with a random token; yields (base url, token, root dir)."""
    root = tmp_path_factory.mktemp("lab")
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"), "HF_HUB_OFFLINE": "1"}
    with jupyter_server(jupyter_lab_command(root), root, env, "JupyterLab") as server:
        yield server


APPS = {"jupyterlab": "lab/tree", "notebook7": "notebooks"}  # both served by the one Jupyter server
GENERATE_ENABLED = """() => ![...document.querySelectorAll('.widget-button')]
    .some(b => b.textContent.includes('Generate') && b.disabled)"""  # no run going: Generate clickable
KERNEL_READY = """() => {
    const kernel = window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel;
    return kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""


def open_notebook(browser, lab_server, name: str, app: str = "jupyterlab", **parameters):
    """Parameterise committed notebook ``name`` into the server's root, open it and run all cells."""
    prepare_notebook(name, lab_server[2] / name, **parameters)
    return open_page(browser, lab_server, name, app)


def open_page(browser, lab_server, name: str, app: str):
    """Open notebook ``name`` of the server's root in ``app`` and run all its cells."""
    page = show_page(browser, lab_server, name, app)
    # run every cell once the notebook's kernel is connected and idle (typing earlier is lost)
    page.wait_for_function(KERNEL_READY)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return page


def show_page(browser, lab_server, name: str, app: str):
    """Open notebook ``name`` of the server's root in ``app``, running nothing."""
    url, token, _ = lab_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(f"{url}/{APPS[app]}/{name}?token={token}&reset")  # reset: no tabs restored from earlier
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    return page


# every control of a form; a slider is measured by its track, a checkbox by its label
CONTROLS = (
    "button, input:not([type=hidden]):not([type=file]), select, textarea, .slider-container, "
    ".widget-checkbox, .widget-upload"
)
MIN_WIDTH = {"slider": 100, "textarea": 200, "select": 80, "input": 40, "button": 24}
OUT_OF_PLACE = """([controls, minWidth]) => {
    const problems = [];
    let measured = 0;
    const areas = document.querySelectorAll('.jp-OutputArea-output, .output_subarea');
    for (const area of areas) {
        const outputs = area.closest('.jp-Cell-outputArea, div.output');
        if (outputs && ['auto', 'scroll'].includes(getComputedStyle(outputs).overflowY)
            && outputs.scrollHeight > outputs.clientHeight + 1)
            problems.push(`a form sits in a scrolling box ${outputs.clientHeight} px high`);
        const box = area.getBoundingClientRect();
        const scroller = area.closest('.jp-WindowedPanel-outer, .jp-Notebook, #site') || document.body;
        const right = Math.min(box.right, scroller.getBoundingClientRect().right, window.innerWidth);
        const left = Math.max(box.left, scroller.getBoundingClientRect().left, 0);
        for (const el of area.querySelectorAll(controls)) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 && r.height === 0) continue;  // not shown (a closed pane, a hidden row)
            measured += 1;
            const kind = el.matches('.slider-container') ? 'slider'
                : el.tagName === 'TEXTAREA' ? 'textarea'
                : el.tagName === 'SELECT' ? 'select'
                : el.tagName === 'INPUT' && el.type !== 'checkbox' ? 'input'
                : el.tagName === 'BUTTON' ? 'button' : 'label';
            const name = (el.closest('.widget-inline-hbox, .widget-box, .widget-checkbox, button') || el)
                .textContent.trim().slice(0, 40) || el.placeholder || el.title || kind;
            if (r.right > right + 1 || r.left < left - 1)
                problems.push(`${kind} "${name}" spans ${r.left.toFixed(0)}-${r.right.toFixed(0)} px, `
                    + `the output area ${left.toFixed(0)}-${right.toFixed(0)} px`);
            else if (minWidth[kind] && r.width < minWidth[kind])
                problems.push(`${kind} "${name}" is ${r.width.toFixed(0)} px wide (< ${minWidth[kind]})`);
            const label = el.matches('.widget-checkbox') ? el.querySelector('span') : null;
            if (label && label.scrollWidth > label.clientWidth + 1)
                problems.push(`the label "${name}" is cut off`);
        }
        for (const label of area.querySelectorAll('.widget-label')) {
            const r = label.getBoundingClientRect();
            if (r.width > 0 && label.scrollWidth > label.clientWidth + 1)
                problems.push(`the description "${label.textContent.trim()}" is cut off`);
        }
    }
    return [problems, measured];
}"""


def out_of_place(page) -> tuple[list[str], int]:
    """One line for each shown control of the page's output areas that sticks out of the visible output
    area horizontally, is too narrow to use, or whose label is cut off; and how many controls were shown."""
    return page.evaluate(OUT_OF_PLACE, [CONTROLS, MIN_WIDTH])
