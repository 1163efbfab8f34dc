"""What the pip install and the conda environment declare, that Colab's versions fit it; a light import."""

import re
import subprocess
import sys
from pathlib import Path

import tomllib
from colab_env import COLAB_PINS, read_pins
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# conda-forge names that differ from PyPI names
CONDA_TO_PYPI = {"pytorch": "torch", "pysoundfile": "soundfile"}
# Kaggle's GPU image, 2026-08 (../shared/runtimes/README.md): a Colab base of 2026-05 plus its own pins
# Dependencies Colab does not ship: installed beside its packages (the Colab-like environment's test
# checks that installing the project changes none of Colab's pins).
NOT_ON_COLAB = {"anywidget"}
KAGGLE = {"torch": "2.10.0", "transformers": "5.0.0", "numpy": "2.0.2", "ipywidgets": "8.1.5"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEPENDENCIES = [Requirement(r) for r in PYPROJECT["dependencies"]]


def _extra(name: str) -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["optional-dependencies"][name]]


def _conda_packages() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)
        if m and m.group(1) not in ("python", "pip"):
            names.add(canonicalize_name(CONDA_TO_PYPI.get(m.group(1), m.group(1))))
    return names


def test_environment_yml_lists_the_runtime_dependencies_and_the_lab_extra():
    wanted = {canonicalize_name(r.name) for r in DEPENDENCIES + _extra("lab")}
    assert _conda_packages() == wanted


def test_runtime_needs_no_front_end_no_torchaudio_and_no_upper_bounds():
    by_name = {canonicalize_name(r.name): r for r in DEPENDENCIES}
    assert "torch" in by_name and not {"torchaudio", "jupyterlab", "notebook", "flash-attn"} & set(by_name)
    capping = ("<", "<=", "==", "===", "~=")
    bounded = {n for n, r in by_name.items() if any(s.operator in capping for s in r.specifier)}
    assert bounded == {"ipywidgets"}  # the one upper bound the forms need (they target ipywidgets 7.7 and 8)
    widgets = by_name["ipywidgets"].specifier
    assert widgets.contains("7.7.1") and widgets.contains("8.1.5") and not widgets.contains("9.0.0")
    lab = {canonicalize_name(r.name) for r in _extra("lab")}
    assert {"jupyterlab", "notebook"} <= lab


def test_colab_and_ci_versions_satisfy_every_requirement():
    """Installing into Colab's or Kaggle's runtime, or CI's pinned one, has nothing to up- or downgrade."""
    for pins in (read_pins(COLAB_PINS), KAGGLE, read_pins(ROOT / "constraints-ci.txt")):
        for requirement in DEPENDENCIES:
            version = pins.get(canonicalize_name(requirement.name))
            assert version is None or requirement.specifier.contains(version), (requirement, version)
    missing = {canonicalize_name(r.name) for r in DEPENDENCIES} - set(read_pins(COLAB_PINS))
    assert missing == NOT_ON_COLAB  # every other one is checked against Colab's version above


def test_import_sa3lab_stays_light():
    code = "import sys, sa3lab; print('torch' in sys.modules, 'ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
