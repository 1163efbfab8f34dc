"""The Colab-like runtime for tests: .venv-colab (built by .ci/colab_env.sh, `make colab-env`).

It holds Colab's package versions (../shared/runtimes/colab-core-pins.txt: ipywidgets 7.7.1,
ipykernel 6.17.1, notebook 6.5.7, transformers 5.15 ...) and the project installed the way a Colab
user installs it. The tests themselves run in .venv; they use this environment through its Python:
as a Jupyter kernel (``colab_kernel``) and as the classic Notebook 6.5 server (``classic_server``).

Tests that need it skip when it is absent, except where ``SA3LAB_COLAB_VENV`` names it (``make
test`` and CI do): then its absence is a failure.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest
from browser_fixtures import jupyter_server, prepare_notebook, shot
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
COLAB_PINS = ROOT.parent / "shared" / "runtimes" / "colab-core-pins.txt"
COLAB_VENV = ROOT / os.environ.get("SA3LAB_COLAB_VENV", ".venv-colab")  # an absolute path stays as it is
COLAB_KERNEL = "sa3lab-colab"


def read_pins(path: Path) -> dict[str, str]:
    """{canonical name: version} of a ``name==version`` file."""
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {canonicalize_name(n): v for n, v in (line.split("==") for line in lines if line)}


def built_python(venv: Path, variable: str, what: str, target: str) -> Path:
    """The Python of the environment ``venv``, or a skip (a failure when ``variable`` names it)."""
    python = venv / "bin" / "python"
    if not python.exists():
        reason = f"the {what} environment {venv} is not built: run `make {target}`"
        if variable in os.environ:
            pytest.fail(reason)
        pytest.skip(reason)
    return python


def kernel_spec(python: Path, name: str, display_name: str, tmp_path: Path, monkeypatch) -> str:
    """Name of a kernelspec that starts a kernel with ``python`` (for papermill/nbclient)."""
    spec = tmp_path / "jupyter" / "kernels" / name
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": display_name, "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return name


@pytest.fixture(scope="session")
def colab_python() -> Path:
    """The Colab-like environment's Python, or a skip (a failure under ``SA3LAB_COLAB_VENV``)."""
    return built_python(COLAB_VENV, "SA3LAB_COLAB_VENV", "Colab-like", "colab-env")


@pytest.fixture
def colab_kernel(colab_python, tmp_path, monkeypatch) -> str:
    """Name of a kernelspec that starts a kernel in the Colab-like environment (for papermill/nbclient)."""
    return kernel_spec(colab_python, COLAB_KERNEL, "Colab-like", tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def classic_server(colab_python, tmp_path_factory):
    """The classic Notebook 6.5 server of the Colab-like environment on loopback; (base url, token, root).

    Its default ``python3`` kernel is that environment's (ipykernel 6.17.1, ipywidgets 7.7.1), and
    the page loads ipywidgets 7's front end (widgetsnbextension 3.6).
    """
    root = tmp_path_factory.mktemp("classic")
    config = tmp_path_factory.mktemp("classic-config")  # no user configuration of this machine
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "HF_HUB_OFFLINE": "1"}
    command = [
        str(colab_python),
        "-m",
        "notebook",
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        "--port={port}",
        "--port-retries=0",
        "--NotebookApp.token={token}",
        f"--NotebookApp.notebook_dir={root}",
    ]
    with jupyter_server(command, root, env, "the classic Notebook server") as server:
        with urllib.request.urlopen(f"{server[0]}/api?token={server[1]}", timeout=10) as r:
            version = json.load(r)["version"]
        assert version == read_pins(COLAB_PINS)["notebook"], f"the server is notebook {version}"
        yield server


CLASSIC_KERNEL_READY = """() => {
    const kernel = window.Jupyter?.notebook?.kernel;
    return Boolean(kernel && kernel.is_connected() && window.Jupyter.notebook.kernel_selector);
}"""


def watch_widget_manager_load(page) -> list[str]:
    """A list that fills when the page's widget manager has asked the kernel which widgets exist.

    ipywidgets 7's classic widget manager, once created, asks the kernel for its widgets
    (``comm_info_request``) and then re-renders every cell that shows one. Cells run before that
    reply arrives get their widget views replaced by empty ones (the form appears, then goes), so
    ``open_classic_notebook`` runs them only after it.
    """
    replies: list[str] = []

    def on_socket(socket):
        socket.on(
            "framereceived", lambda frame: replies.append("x") if "comm_info_reply" in str(frame) else None
        )

    page.on("websocket", on_socket)
    return replies


def open_classic_notebook(browser, server, name: str, **parameters):
    """Notebook ``name`` with papermill ``parameters``, opened in the classic front end, all cells run."""
    url, token, root = server
    prepare_notebook(name, root / name, **parameters)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    widget_manager_loaded = watch_widget_manager_load(page)
    page.goto(f"{url}/notebooks/{name}?token={token}")
    page.wait_for_selector("#notebook .cell")
    page.wait_for_function(CLASSIC_KERNEL_READY)
    for _ in range(600):
        if widget_manager_loaded:
            break
        page.wait_for_timeout(100)
    else:
        raise AssertionError("the classic widget manager never asked the kernel for its widgets (60 s)")
    page.evaluate("window.Jupyter.notebook.execute_all_cells()")
    return page


def open_classic_demo_form(browser, server, output_dir: str, failure_shot: str | None = None):
    """Notebook 01 for the demo model (1 s results in ``output_dir``) in the classic front end, once its
    Generate button shows (a screenshot ``failure_shot`` and the page closed when it does not)."""
    page = open_classic_notebook(
        browser, server, "01_standard_collection.ipynb", MODEL="demo", DURATION=1.0, OUTPUT_DIR=output_dir
    )
    try:
        page.locator(".output_area .widget-button", has_text="Generate").first.wait_for()
    except Exception:
        if failure_shot:
            shot(page, failure_shot)
        page.close()
        raise
    return page
