"""Real-browser checks: JupyterLab and Notebook 7 on 127.0.0.1, driven by Debian chromium via playwright.

The committed notebook is parameterised for the offline ``demo`` model (papermill --prepare-only),
opened in JupyterLab and in Notebook 7, run cell by cell; then the form's Generate button is clicked
like a person would. Screenshots go to test-artifacts/.
"""

import json
import os
import shutil
import sys

import pytest
from browser_fixtures import jupyter_server, needs_chromium, prepare_notebook, shot

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """A JupyterLab server on loopback with a random token; yields (base url, token, root dir)."""
    root = tmp_path_factory.mktemp("lab")
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"), "HF_HUB_OFFLINE": "1"}
    command = [
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
    with jupyter_server(command, root, env, "JupyterLab") as server:
        yield server


APPS = {"jupyterlab": "lab/tree", "notebook7": "notebooks"}  # both served by the one Jupyter server
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
    url, token, _ = lab_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(f"{url}/{APPS[app]}/{name}?token={token}&reset")  # reset: no tabs restored from earlier
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    # run every cell once the notebook's kernel is connected and idle (typing earlier is lost)
    page.wait_for_function(KERNEL_READY)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return page


@pytest.mark.parametrize("app", list(APPS))
def test_generate_shows_player_spectrogram_and_keeps_results(browser, lab_server, app):
    output_dir = str(lab_server[2] / f"outputs-{app}")
    page = open_notebook(
        browser,
        lab_server,
        "01_standard_collection.ipynb",
        app,
        MODEL="demo",
        DURATION=1.0,
        OUTPUT_DIR=output_dir,
    )
    try:
        generate = page.locator(".jp-OutputArea .widget-button", has_text="Generate").first
        try:
            generate.wait_for()
        except Exception:
            shot(page, f"failure_{app}.png")
            raise
        assert "VBox(children" not in page.inner_text(".jp-Notebook")  # widgets rendered, not their repr
        generate.click()
        page.wait_for_selector(".jp-OutputArea audio")
        page.wait_for_selector(".jp-OutputArea img")
        page.wait_for_function(
            "() => ![...document.querySelectorAll('.widget-button')]"
            ".some(b => b.textContent.includes('Generate') && b.disabled)"
        )
        shot(page, f"01_generate_demo_{app}.png")
        assert page.locator(".jp-OutputArea audio").count() == 1

        prompt = page.locator(".jp-OutputArea textarea").first
        prompt.fill("")
        generate.click()
        page.wait_for_selector(".sa3lab-error")
        assert "prompt" in page.inner_text(".sa3lab-error").lower()
        assert page.locator(".jp-OutputArea audio").count() == 1  # the earlier result stays
        shot(page, f"01_empty_prompt_{app}.png")
    finally:
        page.close()
        shutil.rmtree(output_dir, ignore_errors=True)


LONG_CLIP_CELL = """import math, torch
from IPython.display import HTML
from sa3lab import render
t = torch.arange(44100 * 61) / 44100
tone = 0.3 * torch.sin(2 * math.pi * 440 * t).repeat(2, 1)
HTML(render.clip_html(tone, 44100, saved="outputs/long.wav"))"""


@pytest.mark.parametrize("app", list(APPS))
def test_a_long_clip_preview_plays(browser, lab_server, app):
    """A long clip is embedded as a compressed preview that the browser can play from the saved notebook."""
    import nbformat

    name = f"long_clip_{app}.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LONG_CLIP_CELL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab_server[2] / name)
    page = open_page(browser, lab_server, name, app)
    try:
        page.wait_for_selector(".jp-OutputArea audio")
        page.wait_for_function(
            "() => { const a = document.querySelector('.jp-OutputArea audio'); return a && a.duration > 0; }"
        )
        duration = page.evaluate("document.querySelector('.jp-OutputArea audio').duration")
        assert abs(duration - 61) < 0.2
        shot(page, f"long_clip_{app}.png")
    finally:
        page.close()
