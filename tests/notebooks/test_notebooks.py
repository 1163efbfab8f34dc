"""Every committed notebook runs headless (papermill) with RUN=True, through the same path as its button."""

import json

import pytest
import soundfile as sf
from notebook_runs import NOTEBOOKS, ROOT, SINGLE_RUN, SWEEPS, TRAINING, outputs, run_notebook, saved_runs

from stable_audio_3.hub import resolve_model_files


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    assert len(SINGLE_RUN) == 5 and {SWEEPS, TRAINING} <= {p.name for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path.name
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, path.name
        source = "".join(tagged[0]["source"])
        names = ("PROMPTS", "SEEDS", "BACKEND") if path.name == SWEEPS else ("PROMPT", "DURATION", "SEED")
        for name in ("MODEL", *names, "OUTPUT_DIR", "RUN"):
            assert f"{name} =" in source, (path.name, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in SINGLE_RUN if p.name != TRAINING])
def test_notebook_runs_headless_with_the_demo_model(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the demo needs no network and no account
    nb = run_notebook(name, tmp_path, MODEL="demo")
    runs = saved_runs(tmp_path)
    assert runs, "the notebook saved no result"
    for wav, _ in runs:
        data, rate = sf.read(str(wav))
        assert rate == 44100 and len(data) > 0
    results = [o["data"]["text/html"] for o in outputs(nb) if "sa3lab-result" in str(o.get("data", {}))]
    assert len(results) == 1 and "<audio" in "".join(results[0]) and "data:image/" in "".join(results[0])
    texts = " ".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs(nb)
    )
    assert "VBox(" not in texts and "%|" not in texts and "Loading weights" not in texts


@pytest.mark.slow
def test_notebook_works_offline_from_a_prefilled_cache(hub, tmp_path, monkeypatch):
    """A workshop machine: the cache was filled once, then the network is gone."""
    resolve_model_files("small-music-base")  # fills HF_HOME from the loopback Hub
    hub.stop()
    monkeypatch.delenv("HF_ENDPOINT")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_notebook("02_base_checkpoints.ipynb", tmp_path, MODEL="small-music-base", DURATION=1.0)
    ((_, meta),) = saved_runs(tmp_path)
    assert meta["model_key"] == "small-music-base" and meta["seed"] == 7


def test_each_notebook_opens_in_colab_and_installs_sa3lab_only_where_it_is_missing():
    import tomllib

    repository = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    owner_repo = repository.removeprefix("https://github.com/")
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        text = ["".join(c["source"]) for c in cells]
        badge = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{path.name}"
        assert any(badge in t for t in text if "Open In Colab" in t), path.name
        (install,) = [t for t in text if "%pip install" in t]
        assert f'"sa3lab @ git+{repository}"' in install and 'find_spec("sa3lab") is None' in install
        assert " -U" not in install and "--upgrade" not in install
    assert f"git+{repository}" in (ROOT / "README.md").read_text()
