"""The project in a Colab-like runtime: installing it changed nothing pinned, and the notebooks run there."""

import json
import subprocess

import pytest
from colab_env import COLAB_PINS, read_pins
from notebook_runs import NOTEBOOKS, run_in_runtime
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.colab
INSTALLED = (
    "import json, importlib.metadata as m; print(json.dumps({d.name: d.version for d in m.distributions()}))"
)


def test_installing_the_project_changed_no_pinned_package(colab_python):
    out = subprocess.run([colab_python, "-c", INSTALLED], capture_output=True, text=True, check=True).stdout
    installed = {canonicalize_name(name): version for name, version in json.loads(out).items()}
    pins = read_pins(COLAB_PINS)
    assert {name: installed.get(name) for name in pins} == pins
    assert "sa3lab" in installed  # installed as a Colab user installs it ...
    assert "jupyterlab" not in installed  # ... without bringing a front end Colab does not use


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_notebook_runs_headless_with_colab_packages(name, colab_kernel, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_in_runtime(name, tmp_path, colab_kernel, read_pins(COLAB_PINS))
