"""The project in a Kaggle-like runtime: installing it changed nothing pinned, the notebooks run there,
and the Prompt Assistant says up front what it needs from Kaggle's transformers 5.0."""

import json
import subprocess

import pytest
from colab_env import read_pins
from kaggle_env import KAGGLE_PINS
from notebook_runs import NOTEBOOKS, run_in_runtime
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.kaggle
INSTALLED = (
    "import json, importlib.metadata as m; print(json.dumps({d.name: d.version for d in m.distributions()}))"
)


def in_kaggle(python, code: str) -> str:
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_installing_the_project_changed_no_pinned_package(kaggle_python):
    installed = {canonicalize_name(n): v for n, v in json.loads(in_kaggle(kaggle_python, INSTALLED)).items()}
    pins = read_pins(KAGGLE_PINS)
    assert {name: installed.get(name) for name in pins} == pins
    assert "sa3lab" in installed and "jupyterlab" in installed and "papermill" in installed


def test_the_prompt_assistant_says_what_it_needs_before_anything_is_clicked(kaggle_python):
    """Qwen3.5 first ran in transformers 5.2: on 5.0 the form says so, and clicking says the same."""
    code = (
        "import html, re\n"
        "from sa3lab.forms.generation import GenerationForm\n"
        "from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as M\n"
        "note = GenerationForm(model='demo', output_dir='/tmp/kaggle-form-out').assist_note.value\n"
        "print('qwen3_5' in M)\n"
        "print(html.unescape(re.sub('<[^>]+>', '', note)))\n"
    )
    runs, note = in_kaggle(kaggle_python, code).strip().split("\n", 1)
    assert runs == "False"  # the architecture really is missing from transformers 5.0
    assert note == (
        "The Prompt Assistant needs transformers 5.2 or newer for Qwen/Qwen3.5-2B and this runtime has "
        '5.0.0 (Kaggle\'s is 5.0): run `pip install -U "transformers>=5.2"` and restart the kernel to use '
        "it; everything else works with this transformers."
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_notebook_runs_headless_with_kaggle_packages(name, kaggle_kernel, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_in_runtime(name, tmp_path, kaggle_kernel, read_pins(KAGGLE_PINS))
