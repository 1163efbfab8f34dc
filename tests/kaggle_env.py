"""The Kaggle-like runtime for tests: .venv-kaggle (built by .ci/kaggle_env.sh, `make kaggle-env`).

It holds Kaggle's package versions (../shared/runtimes/kaggle-core-pins.txt: ipywidgets 8.1.5,
transformers 5.0.0, huggingface_hub 1.11.0, torch 2.10, numpy 2.0.2 ...) plus JupyterLab and papermill,
on Python 3.12 where this machine has it (Kaggle's), and the project installed as a Kaggle user installs
it. The tests run in .venv and use it through its Python, as a Jupyter kernel (``kaggle_kernel``).

Tests that need it skip when it is absent, except where ``SA3LAB_KAGGLE_VENV`` names it (``make
test-all`` and CI do): then its absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from colab_env import built_python, kernel_spec

ROOT = Path(__file__).resolve().parents[1]
KAGGLE_PINS = ROOT.parent / "shared" / "runtimes" / "kaggle-core-pins.txt"
KAGGLE_VENV = ROOT / os.environ.get("SA3LAB_KAGGLE_VENV", ".venv-kaggle")  # an absolute path stays as it is
KAGGLE_KERNEL = "sa3lab-kaggle"


@pytest.fixture(scope="session")
def kaggle_python() -> Path:
    """The Kaggle-like environment's Python, or a skip (a failure under ``SA3LAB_KAGGLE_VENV``)."""
    return built_python(KAGGLE_VENV, "SA3LAB_KAGGLE_VENV", "Kaggle-like", "kaggle-env")


@pytest.fixture
def kaggle_kernel(kaggle_python, tmp_path, monkeypatch) -> str:
    """Name of a kernelspec that starts a kernel in the Kaggle-like environment (for papermill/nbclient)."""
    return kernel_spec(kaggle_python, KAGGLE_KERNEL, "Kaggle-like", tmp_path, monkeypatch)
