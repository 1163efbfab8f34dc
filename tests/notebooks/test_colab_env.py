"""The project in a Colab-like runtime: installing it changed nothing pinned, and the notebooks run there."""

import json
import subprocess

import pytest
import soundfile as sf
from colab_env import COLAB_PINS, read_pins
from notebook_runs import NOTEBOOKS, offline_model, run_notebook, saved_runs
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
    run_notebook(name, tmp_path, kernel_name=colab_kernel, **offline_model(name))
    runs = saved_runs(tmp_path)
    assert runs, "the notebook saved no result"
    pins = read_pins(COLAB_PINS)
    for wav, meta in runs:
        data, rate = sf.read(str(wav))
        assert rate == 44100 and len(data) > 0
        # the kernel ran on Colab's packages, not on those of the test environment
        assert meta["versions"]["transformers"] == pins["transformers"]
        assert meta["versions"]["huggingface_hub"] == pins["huggingface-hub"]
