"""The notebooks' first cell and badges agree with the one home URL; where the cell looks; the upstream clash.

The cell's real installs (a fresh venv, a wheel, a checkout, a bundle, nothing) are in test_install.py.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from notebook_runs import NOTEBOOKS, ROOT

from sa3lab.bootstrap import BUNDLE_CACHE, BUNDLE_MARK, cell_source, find_sources, install_sa3lab
from sa3lab.notebook_setup import badge_cell, badges, install_cell, project
from sa3lab.upstream_clash import clash_notice

HOME, VERSION = project(ROOT)


def test_the_home_url_is_written_once_and_every_notebook_and_the_readme_follow_it():
    assert HOME == "https://github.com/sa3lab/sa3lab"  # pyproject.toml [project.urls] Repository
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        assert "".join(badge_cell(cells)["source"]).splitlines()[0] == badges(HOME, path.name), path.name
        first = install_cell(cells)
        assert "".join(first["source"]) == cell_source(HOME, VERSION), (
            f"{path.name}: its install cell is stale; run `python -m sa3lab sync-notebooks`"
        )
        assert first["metadata"]["cellView"] == "form"  # Colab shows its title, not its code
    assert "sa3lab/blob/main/notebooks/00_start_here.ipynb" in badges(HOME, "00_start_here.ipynb")
    assert "kaggle.com/kernels/welcome?src=https://github.com/sa3lab/sa3lab/" in badges(HOME, "x.ipynb")
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for url in re.findall(r"git\+(https?://[^\s\"')]+)", doc.read_text()):
            assert url == HOME, (doc.name, url)
    assert f'"sa3lab @ git+{HOME}"' in (ROOT / "README.md").read_text()


def test_the_cell_is_the_bootstrap_module_and_needs_only_the_standard_library():
    source = cell_source(HOME, VERSION)
    assert source.rstrip().endswith(f"install_sa3lab({HOME!r}, {VERSION!r})")
    assert BUNDLE_MARK in source and f'"{BUNDLE_CACHE}", "hub"' in source
    imported = set(re.findall(r"^\s*import ([\w.]+)", source, re.M))
    assert imported <= set(sys.stdlib_module_names) | {"importlib.metadata", "importlib.util"}
    assert "from " not in "".join(re.findall(r"^\s*from \S+ import", source, re.M))  # no from-imports
    compile(source, "cell", "exec")


def _wheel(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "sa3lab-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    return wheel


def _checkout(folder: Path) -> Path:
    (folder / "sa3lab").mkdir(parents=True)
    (folder / "sa3lab" / "__init__.py").write_text("")
    (folder / "pyproject.toml").write_text('[project]\nname = "sa3lab"\n')
    return folder


def test_sources_are_tried_beside_the_notebook_first_then_above_it_then_the_other_places(tmp_path):
    checkout = _checkout(tmp_path / "clone")
    notebooks = checkout / "notebooks"
    beside = _wheel(notebooks)
    kaggle_input = tmp_path / "kaggle-input" / "workshop"
    bundle = kaggle_input / "sa3lab-bundle"  # a dataset holding the unpacked zip: one folder down
    in_bundle = _wheel(bundle)
    (bundle / BUNDLE_MARK).write_text("{}")
    (tmp_path / "drive" / "other").mkdir(parents=True)
    _checkout(tmp_path / "not-ours")
    (tmp_path / "not-ours" / "pyproject.toml").write_text('[project]\nname = "other"\n')
    roots = [
        str(notebooks),
        str(checkout),
        str(tmp_path / "drive"),
        str(kaggle_input),
        str(tmp_path / "not-ours"),
    ]
    found_bundle, sources = find_sources(roots)
    assert found_bundle == str(bundle)
    assert sources == [str(beside), str(checkout), str(in_bundle)]
    assert find_sources([str(tmp_path / "drive")]) == (None, [])


def test_a_bundle_gives_the_models_cache_and_offline_mode_unless_already_set(tmp_path, monkeypatch, capsys):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / BUNDLE_MARK).write_text("{}")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    install_sa3lab(HOME, VERSION, roots=[str(tmp_path)])  # sa3lab imports here: nothing is installed
    assert os.environ["HF_HUB_CACHE"] == str(bundle / BUNDLE_CACHE / "hub")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert f"Models load from the workshop bundle {bundle}" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_CACHE", "/elsewhere")
    install_sa3lab(HOME, VERSION, roots=[str(tmp_path)])
    assert os.environ["HF_HUB_CACHE"] == "/elsewhere" and capsys.readouterr().out == ""


def test_a_different_installed_version_is_named_not_replaced(capsys):
    install_sa3lab(HOME, "9.9.9", roots=[])
    assert (
        capsys.readouterr().out
        == f"sa3lab {VERSION} is installed; these notebooks are of 9.9.9 and may need it.\n"
    )


# ------------------------------------------------------------------------------ upstream's stable-audio-3


def _fake_upstream(site: Path, with_module: bool = False) -> None:
    """What installing upstream's wheel (built by hatchling: no top_level.txt) leaves in a site dir."""
    info = site / "stable_audio_3-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.4\nName: stable-audio-3\nVersion: 0.1.0\n")
    (info / "RECORD").write_text(
        "stable_audio_3/__init__.py,sha256=x,1\nstable_audio_3/models/dit.py,sha256=y,1\n"
        "stable_audio_3-0.1.0.dist-info/RECORD,,\n"
    )
    if with_module:  # its files went over ours: stand-ins for its __init__.py and pipeline.py
        shutil.copytree(ROOT / "stable_audio_3", site / "stable_audio_3")
        (site / "stable_audio_3" / "__init__.py").write_text("from .pipeline import StableAudioPipeline\n")
        (site / "stable_audio_3" / "pipeline.py").write_text("from .models.factory import create_model\n")


def test_upstreams_distribution_is_found_and_the_sentence_says_what_to_do(tmp_path):
    site = tmp_path / "site"
    assert clash_notice([str(site)]) == ""
    _fake_upstream(site)
    notice = clash_notice([str(site)])
    assert notice.startswith("stable-audio-3 (upstream's package) is installed here too")
    assert "`pip uninstall -y stable-audio-3 sa3lab`" in notice
    assert clash_notice() == ""  # this environment has sa3lab only


def _python(code: str, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=site)


def test_the_start_here_report_and_a_broken_import_say_it(tmp_path):
    site = tmp_path / "site"
    _fake_upstream(site)
    report = (
        "from sa3lab.auth import TokenChoice; from sa3lab.device import Machine; "
        "from sa3lab.setup_check import setup_report; "
        "print(setup_report(Machine(), 'demo', TokenChoice(None, 'none'), {'cpu_free_gib': 8.0}, {}).limits)"
    )
    done = _python(report, site)
    assert done.returncode == 0 and "`pip uninstall -y stable-audio-3 sa3lab`" in done.stdout, done.stderr
    _fake_upstream(site2 := tmp_path / "site2", with_module=True)
    done = _python("import sa3lab; sa3lab.Lab", site2)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: stable-audio-3 (upstream's package) is installed here too"), last


def test_a_form_whose_run_fails_on_an_import_says_it(tmp_path, monkeypatch):
    import ipywidgets as widgets

    from sa3lab.forms.shell import FormShell

    def generate(request, progress):
        from stable_audio_3 import StableAudioPipeline  # what upstream's files over ours make of an import

        return StableAudioPipeline

    shell = FormShell(widgets.VBox([]), dict, generate, str)
    assert shell.run() is None and "Something went wrong" in shell.message.value  # no clash: the plain note
    _fake_upstream(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert shell.run() is None
    assert "`pip uninstall -y stable-audio-3 sa3lab`" in shell.message.value
    assert "Technical details" not in shell.message.value


def test_the_bundle_command_refuses_unknown_models_in_one_sentence(tmp_path, capsys):
    from sa3lab.__main__ import main

    assert main(["bundle", "--models", "small-music,demo", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: A bundle holds models of the collections: demo given, known ones are")
    assert err.count("\n") == 1 and not (tmp_path / "b").exists()
