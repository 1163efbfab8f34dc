"""The notebooks' badges and install cell, made from the one home URL in pyproject.toml.

``python -m sa3lab sync-notebooks`` rewrites them in a checkout (after the URL or the version
changed); tests/notebooks/test_install_cell.py fails while a notebook or the README disagrees.
"""

from __future__ import annotations

import json
from pathlib import Path

from .bootstrap import cell_source

INSTALL_CELL_METADATA = {"cellView": "form", "jupyter": {"source_hidden": True}}  # Colab / JupyterLab


def project(root: Path) -> tuple[str, str]:
    """(home URL, version) of the checkout at ``root``."""
    import tomllib  # Python >= 3.11; only a checkout's maintainer needs this

    meta = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return meta["urls"]["Repository"], meta["version"]


def github_path(home: str) -> str:
    """``owner/name`` of a GitHub home URL (the badges open notebooks from GitHub)."""
    prefix = "https://github.com/"
    if not home.startswith(prefix) or home.removeprefix(prefix).rstrip("/").count("/") != 1:
        raise ValueError(f"The home URL {home} is not a GitHub repository (https://github.com/owner/name).")
    return home.removeprefix(prefix).rstrip("/")


def badges(home: str, notebook: str) -> str:
    """The "Open in Colab" and "Open in Kaggle" badges of one notebook, as one markdown line."""
    blob = f"{github_path(home)}/blob/main/notebooks/{notebook}"
    colab = f"https://colab.research.google.com/github/{blob}"
    kaggle = f"https://kaggle.com/kernels/welcome?src=https://github.com/{blob}"
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
        f"[![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]({kaggle})"
    )


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def badge_cell(cells: list[dict]) -> dict:
    (cell,) = [c for c in cells if c["cell_type"] == "markdown" and "Open In Colab" in "".join(c["source"])]
    return cell


def install_cell(cells: list[dict]) -> dict:
    return next(c for c in cells if c["cell_type"] == "code")


def sync(root: Path) -> list[str]:
    """Rewrite every notebook's badge line and install cell from pyproject.toml; the names changed."""
    home, version = project(root)
    changed = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        cell = badge_cell(nb["cells"])
        lines = _lines("".join(cell["source"]))
        cell["source"] = [badges(home, path.name) + "\n", *lines[1:]]
        first = install_cell(nb["cells"])
        if "parameters" in first["metadata"].get("tags", []):
            raise ValueError(f"{path.name}: its first code cell is not the install cell; fix it by hand.")
        first["source"] = _lines(cell_source(home, version))
        first["metadata"] = {**first["metadata"], **INSTALL_CELL_METADATA}
        text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if text != path.read_text():
            path.write_text(text)
            changed.append(path.name)
    return changed
