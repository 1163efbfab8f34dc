"""The notebooks' first cell: make sa3lab importable here, from wherever the project is.

It runs before sa3lab exists, so it uses the standard library only: the first code cell of every
notebook is :func:`cell_source`, the source of :func:`find_sources` and :func:`install_sa3lab` plus
one call with the project's home URL and version (``python -m sa3lab sync-notebooks`` writes it;
tests/notebooks/test_install_cell.py fails when a notebook's cell differs). In order:

1. nothing, if sa3lab imports (a note if its version is not the notebooks');
2. a wheel (``sa3lab-*.whl``) or a checkout of the project in the notebook's folder or the one above
   it, in the runtime's working folder (/content on Colab, /kaggle/working), on a mounted Drive
   (/content/drive/MyDrive) or in a Kaggle input dataset (/kaggle/input/<dataset>), each also one
   folder down;
3. the home URL (``pip install "sa3lab @ git+<home>"``).

If none works it raises one sentence, so "Run all" stops at this cell. A workshop bundle
(:mod:`sa3lab.bundle`, marked by ``sa3lab-bundle.json``) found in those places also gives the
models: ``HF_HUB_CACHE`` points at its cache and ``HF_HUB_OFFLINE`` is set, unless already set.
"""

import inspect

BUNDLE_MARK = "sa3lab-bundle.json"
BUNDLE_CACHE = "hf-cache"  # the bundle's HF_HOME; its hub/ folder is the HF_HUB_CACHE


def find_sources(roots=None):
    """(the first workshop bundle folder or None, the wheels and checkouts found, in the order to try)."""
    import glob
    import os

    if roots is None:
        here = os.getcwd()
        kaggle_inputs = sorted(glob.glob("/kaggle/input/*/"))
        roots = [here, os.path.dirname(here), "/content", "/kaggle/working", "/content/drive/MyDrive"]
        roots += kaggle_inputs
    folders = []
    for root in roots:
        for folder in [root, *sorted(glob.glob(os.path.join(glob.escape(root), "*", "")))]:
            folder = os.path.normpath(folder)
            if os.path.isdir(folder) and folder not in folders:
                folders.append(folder)
    bundle = next((f for f in folders if os.path.isfile(os.path.join(f, "sa3lab-bundle.json"))), None)
    sources = []
    for folder in folders:
        sources += sorted(glob.glob(os.path.join(glob.escape(folder), "sa3lab-*.whl")))[-1:]
        pyproject = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(os.path.join(folder, "sa3lab", "__init__.py")) and os.path.isfile(pyproject):
            with open(pyproject, encoding="utf-8") as file:
                if 'name = "sa3lab"' in file.read():
                    sources.append(folder)
    return bundle, sources


def install_sa3lab(home, version, roots=None):
    """Use a bundle's models if one is found; install sa3lab if it does not import (see the module)."""
    import importlib.metadata
    import importlib.util
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    bundle, sources = find_sources(roots)
    if bundle and not os.environ.get("HF_HUB_CACHE"):
        os.environ["HF_HUB_CACHE"] = os.path.join(bundle, "hf-cache", "hub")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        offline = os.environ["HF_HUB_OFFLINE"]
        print(f"Models load from the workshop bundle {bundle} (HF_HUB_OFFLINE={offline}).")
    if importlib.util.find_spec("sa3lab") is not None:
        try:
            installed = importlib.metadata.version("sa3lab")
        except importlib.metadata.PackageNotFoundError:
            installed = version  # importable from a folder on the path: nothing to compare
        if installed != version:
            print(f"sa3lab {installed} is installed; these notebooks are of {version} and may need it.")
        return
    attempts = []  # (what, pip's target, pip's flags); a checkout is built from a copy (it may be read-only)
    for source in sources:
        if os.path.isdir(source):
            copy = os.path.join(tempfile.mkdtemp(), "sa3lab")
            skip = shutil.ignore_patterns(".*", "tests", "outputs", "build", "dist", "*.egg-info")
            shutil.copytree(source, copy, ignore=skip)
            attempts += [(source, copy, ["--no-build-isolation"]), (source, copy, [])]  # offline first
        else:
            attempts.append((source, source, []))
    attempts.append((home, f"sa3lab @ git+{home}", []))
    for source, target, flags in attempts:
        print(f"Installing sa3lab from {source} ...")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", *flags, target], capture_output=True, text=True
        )
        importlib.invalidate_caches()
        if done.returncode == 0 and importlib.util.find_spec("sa3lab") is not None:
            print(f"sa3lab installed from {source}.")
            return
        if done.returncode == 0:
            raise RuntimeError(
                "sa3lab was installed but this kernel cannot see it: restart it and run again."
            )
        print((done.stderr.strip().splitlines() or ["(pip said nothing)"])[-1])  # pip's ERROR line
    raise RuntimeError(
        "sa3lab could not be installed: put its wheel (`make dist`), a checkout or a workshop bundle beside "
        "this notebook, in /content or /kaggle/working, on your Drive or in a Kaggle input dataset, or turn "
        f"the internet on so that it installs from {home}; then run this cell again."
    )


CELL_TITLE = '# @title Install sa3lab where it is missing { display-mode: "form" }'


def cell_source(home: str, version: str) -> str:
    """The first code cell of every notebook."""
    return "\n".join(
        [
            CELL_TITLE,
            "# Source: sa3lab/bootstrap.py (python -m sa3lab sync-notebooks writes this cell).",
            "",
            inspect.getsource(find_sources).rstrip(),
            "",
            "",
            inspect.getsource(install_sa3lab).rstrip(),
            "",
            "",
            f"install_sa3lab({home!r}, {version!r})",
        ]
    )
