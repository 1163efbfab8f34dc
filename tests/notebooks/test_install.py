"""The notebooks' first cell installs sa3lab for real, in a fresh venv: from a wheel beside the notebook,
from a checkout, from a workshop bundle with no network (then notebook 01 runs offline from the
bundle's models), and with nothing available it stops the notebook with its one sentence.

The fresh venv has no sa3lab. So as not to install torch (2 GB) for each, it sees the test
environment's other packages through a .pth file naming an "overlay" folder: links to everything in
this venv's site-packages except sa3lab, stable_audio_3 and .pth files (the editable install).
pip in the fresh venv sees those packages as installed and adds only sa3lab, into the fresh venv.
"No network" is a dead proxy for pip and git (and HF_HUB_OFFLINE=1 for huggingface_hub).
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import papermill
import pytest
from hub_fixtures import ACCEPTED_TOKEN
from notebook_runs import NOTEBOOKS, ROOT, saved_runs

from sa3lab.bootstrap import BUNDLE_CACHE, BUNDLE_MARK
from sa3lab.bundle import build_wheel

pytestmark = pytest.mark.slow
KERNEL = "sa3lab-fresh"
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there
SENTENCE = "sa3lab could not be installed: put its wheel (`make dist`), a checkout or a workshop bundle"


@pytest.fixture(scope="module")
def overlay(tmp_path_factory) -> Path:
    """A folder of links to this venv's packages, sa3lab and its engine left out."""
    folder = tmp_path_factory.mktemp("overlay")
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("sa3lab", "stable_audio_3", "__editable__", "_sa3lab")) or name.endswith(".pth"):
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


@pytest.fixture
def fresh(overlay, tmp_path_factory, monkeypatch) -> Path:
    """A fresh venv without sa3lab, registered as the kernel KERNEL; returns its site-packages."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "test-overlay.pth").write_text(f"{overlay}\n")
    spec = tmp_path_factory.mktemp("jupyter") / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "fresh", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(spec.parents[1]))
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the tests' own sa3lab must not leak in
    for name in ("HF_HUB_CACHE", "HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf-home")))  # empty: no cache, no login
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    return Path(purelib)


def no_network(monkeypatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, DEAD_PROXY)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run(notebook: Path, tmp_path: Path, **parameters) -> dict:
    """Run ``notebook`` where it lies (its folder is the kernel's working folder) on the fresh kernel."""
    out = tmp_path / "executed.ipynb"
    parameters = {
        "DURATION": 1.0,
        "SEED": 7,
        "OUTPUT_DIR": str(tmp_path / "outputs"),
        "RUN": True,
        **parameters,
    }
    try:
        papermill.execute_notebook(
            str(notebook),
            str(out),
            parameters=parameters,
            cwd=str(notebook.parent),
            kernel_name=KERNEL,
            progress_bar=False,
            execution_timeout=600,
        )
    finally:
        executed = json.loads(out.read_text()) if out.exists() else None
    return executed


def first_cell_text(nb: dict) -> str:
    first = next(
        c for c in nb["cells"] if c["cell_type"] == "code" and "install_sa3lab(" in "".join(c["source"])
    )
    return "".join("".join(o.get("text", "")) for o in first["outputs"])


def test_a_wheel_beside_the_notebook_is_installed_with_no_network(fresh, wheel, tmp_path, monkeypatch):
    no_network(monkeypatch)
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy2(wheel, folder)
    shutil.copy2(ROOT / "notebooks" / "00_start_here.ipynb", folder)
    nb = run(folder / "00_start_here.ipynb", tmp_path, MODEL="demo")
    assert f"sa3lab installed from {folder / wheel.name}." in first_cell_text(nb)
    assert (fresh / "sa3lab" / "__init__.py").is_file() and (fresh / "stable_audio_3" / "hub.py").is_file()
    assert saved_runs(tmp_path), "the notebook saved no result"


def test_a_checkout_is_installed_from_a_copy_and_left_clean(fresh, tmp_path):
    """Online (its build needs setuptools from PyPI where the runtime lacks a wheel-building setuptools)."""
    checkout = tmp_path / "sa3lab"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md", "sa3lab", "stable_audio_3", "notebooks"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, checkout / name)
    before = sorted(p.relative_to(checkout) for p in checkout.rglob("*"))
    checkout.chmod(0o555)  # read-only, as a Kaggle input dataset is
    try:
        nb = run(checkout / "notebooks" / "00_start_here.ipynb", tmp_path, MODEL="demo")
    finally:
        checkout.chmod(0o755)
    assert f"sa3lab installed from {checkout}." in first_cell_text(nb)
    assert (fresh / "sa3lab" / "__init__.py").is_file() and saved_runs(tmp_path)
    assert sorted(p.relative_to(checkout) for p in checkout.rglob("*")) == before


def test_with_nothing_available_the_first_cell_stops_the_notebook_with_one_sentence(
    fresh, tmp_path, monkeypatch
):
    no_network(monkeypatch)
    folder = tmp_path / "alone"
    folder.mkdir()
    shutil.copy2(ROOT / "notebooks" / "01_standard_collection.ipynb", folder)
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        run(folder / "01_standard_collection.ipynb", tmp_path, MODEL="demo")
    assert raised.value.ename == "RuntimeError" and raised.value.evalue.startswith(SENTENCE)
    nb = json.loads((tmp_path / "executed.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    install = next(i for i, c in enumerate(code) if "install_sa3lab(" in "".join(c["source"]))
    errors = [o for o in code[install]["outputs"] if o["output_type"] == "error"]
    assert len(errors) == 1 and errors[0]["evalue"].startswith(SENTENCE)
    said = "".join("".join(o.get("text", "")) for o in code[install]["outputs"])
    assert "Installing sa3lab from https://github.com/sa3lab/sa3lab ..." in said and "ERROR" in said
    assert all(c.get("execution_count") is None and not c["outputs"] for c in code[install + 1 :])
    assert not (fresh / "sa3lab").exists()


def test_a_bundle_built_online_runs_notebook_01_offline_with_no_token(hub, fresh, tmp_path, monkeypatch):
    """The workshop round trip: build with the loopback Hub and a token, then no Hub, no network, no token."""
    bundle = tmp_path / "instructor" / "sa3lab-workshop"
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": ACCEPTED_TOKEN, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "sa3lab",
        "bundle",
        "--models",
        "small-music,same-s",
        "--out",
        str(bundle),
    ]
    built = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    archive = bundle.with_name("sa3lab-workshop.zip")
    files = [p for p in bundle.rglob("*")]
    assert not [p for p in files if p.is_symlink()]  # survives zips, Drive and Kaggle datasets
    cache = bundle / BUNDLE_CACHE / "hub"
    assert (
        len(list(cache.glob("models--stabilityai--stable-audio-3-small-music/snapshots/*/model.safetensors")))
        == 1
    )
    assert list(cache.glob("models--stabilityai--SAME-S/snapshots/*/model.safetensors"))
    marker = json.loads((bundle / BUNDLE_MARK).read_text())
    assert set(marker["models"]) == {"small-music", "same-s"} and (bundle / marker["wheel"]).is_file()
    assert sorted(p.name for p in (bundle / "notebooks").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    for path in [archive, *files]:  # the token is written nowhere
        assert not path.is_file() or ACCEPTED_TOKEN.encode() not in path.read_bytes(), path
    assert ACCEPTED_TOKEN not in built.stdout + built.stderr
    hub.stop()

    dataset = tmp_path / "kaggle-input" / "workshop"  # the zip, unpacked as Kaggle does with a dataset
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dataset)
        assert {n.split("/")[0] for n in zf.namelist()} == {"sa3lab-workshop"}
    no_network(monkeypatch)
    notebook = dataset / "sa3lab-workshop" / "notebooks" / "01_standard_collection.ipynb"
    nb = run(notebook, tmp_path, MODEL="small-music")
    said = first_cell_text(nb)
    assert f"Models load from the workshop bundle {dataset / 'sa3lab-workshop'}" in said
    assert f"sa3lab installed from {dataset / 'sa3lab-workshop' / marker['wheel']}." in said
    ((_, meta),) = saved_runs(tmp_path)
    assert meta["model_key"] == "small-music" and meta["seed"] == 7


def test_the_bundle_command_says_in_one_sentence_when_the_token_cannot_download(hub, tmp_path, wheel):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HF_TOKEN", None)
    command = [
        sys.executable,
        "-m",
        "sa3lab",
        "bundle",
        "--models",
        "small-music",
        "--out",
        str(tmp_path / "b"),
    ]
    done = subprocess.run([*command, "--wheel", str(wheel)], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("error: stabilityai/stable-audio-3-small-music is gated: log in")
