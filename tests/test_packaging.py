"""The conda environment and the pip install declare the same packages; importing sa3lab stays light."""

import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI names
CONDA_TO_PYPI = {"pytorch": "torch", "pysoundfile": "soundfile"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("-", "_")


def _conda_packages() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)
        if m and m.group(1) not in ("python", "pip"):
            conda = _name(m.group(1))
            names.add(_name(CONDA_TO_PYPI.get(conda, conda)))
    return names


def test_environment_yml_lists_the_pyproject_dependencies():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pip_names = {_name(r) for r in pyproject["project"]["dependencies"]}
    assert _conda_packages() == pip_names


def test_no_torch_pin_and_no_flash_attn():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_reqs = [d for d in deps if _name(d) in ("torch", "torchaudio")]
    assert torch_reqs and all("==" not in d and "<" not in d for d in torch_reqs)
    assert not any("flash" in d for d in deps)


def test_import_sa3lab_stays_light():
    code = "import sys, sa3lab; print('torch' in sys.modules, 'ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
