"""Every committed notebook runs headless (papermill) with RUN=True, through the same path as its button."""

import json
import re
from pathlib import Path

import numpy as np
import papermill
import pytest
import soundfile as sf
from notebook_runs import (
    NOTEBOOKS,
    RADIO,
    ROOT,
    SINGLE_RUN,
    SWEEPS,
    TRAINING,
    outputs,
    run_notebook,
    saved_runs,
)
from sweep_helpers import NO_RAY, PROMPTS, manifest
from training_helpers import BASE, assert_upstream_keys, lora_header

from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab
from sa3lab.training import dataset_hash, read_card
from stable_audio_3.hub import resolve_model_files

ROUND_TRIP = "03_same_autoencoders.ipynb"  # its parameters name an audio file, not a prompt


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    assert len(SINGLE_RUN) == 5 and {SWEEPS, RADIO, TRAINING} <= {p.name for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path.name
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, path.name
        source = "".join(tagged[0]["source"])
        names = {
            SWEEPS: ("PROMPTS", "SEEDS", "BACKEND"),
            ROUND_TRIP: ("AUDIO", "DURATION", "SEED"),
            RADIO: ("PLAYLIST", "SEGMENTS", "SEED"),
        }.get(path.name, ("PROMPT", "DURATION", "SEED"))
        for name in ("MODEL", *names, "OUTPUT_DIR", "RUN"):
            assert f"{name} =" in source, (path.name, name)
        later = "".join("".join(c["source"]) for c in code if c is not tagged[0])
        for name in re.findall(r"^([A-Z_]+) =", source, re.M):  # every parameter is used
            assert re.search(rf"\b{name}\b", later), (path.name, name)


def test_start_here_names_each_heading_once_and_ends_with_where_to_go_next():
    from sa3lab.forms.start import StartHere

    nb = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    headings = re.findall(r"^#+ (.+)$", "\n".join(markdown), re.M)
    form = StartHere(model="demo").widget
    shown = re.findall(r"<h3>([^<]+)</h3>", " ".join(w.value for w in form.children if hasattr(w, "value")))
    assert {"Log in", "Quick test"} <= set(shown) and not set(headings) & set(shown), (headings, shown)
    links = re.findall(r"\]\(([0-9][^)]+\.ipynb)\)", markdown[-1])
    assert markdown[-1].startswith("## Next")
    assert links == [p.name for p in NOTEBOOKS if p.name != "00_start_here.ipynb"]


FAST_RUN = "00_start_here.ipynb"  # the one headless run of `make test` (the browser smoke test runs 01)


@pytest.mark.parametrize(
    "name",
    [
        name if name == FAST_RUN else pytest.param(name, marks=pytest.mark.slow)
        for name in (p.name for p in SINGLE_RUN if p.name != TRAINING)
    ],
)
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


# ------------------------------------------------------------------------------ the sweeps notebook


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "ray"])
def test_the_sweeps_notebook_runs_headless_with_each_backend(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the demo model needs no network
    if backend == "ray":
        pytest.importorskip("ray", reason=NO_RAY)
    folder = tmp_path / "sweep"
    nb = run_notebook(
        "05_batch_sweeps.ipynb",
        tmp_path,
        MODEL="demo",
        PROMPTS=PROMPTS,
        SEEDS=[1, 2],
        STEPS=4,
        CFG=[1, 2],  # a list: the grid
        BACKEND=backend,
        OUTPUT_DIR=str(folder),
    )
    records = manifest(folder)
    assert len(records) == 12 and {r["status"] for r in records} == {"done"}
    assert {(r["settings"]["steps"], r["settings"]["cfg_scale"]) for r in records} == {(4, 1), (4, 2)}
    (result,) = [o["data"]["text/html"] for o in outputs(nb) if "sa3lab-sweep" in str(o.get("data", {}))]
    result = "".join(result)
    assert result.count("sa3lab-sweep-prompt") == 3 and result.count("<audio") == 12
    assert result.count("data:image/jpeg") == 12 and f">{backend}</td>" in result
    assert not [o for o in outputs(nb) if o["output_type"] == "stream"]  # no Ray or library log lines


# ------------------------------------------------------------------------------ the training notebook


@pytest.mark.slow
def test_notebook_trains_thirty_steps_headless_and_the_file_changes_generation(tmp_path):
    out_dir = tmp_path / "outputs"
    nb = run_notebook(
        "04_train_lora.ipynb",
        tmp_path,
        MODEL=BASE,
        STEPS=30,
        LEARNING_RATE=1e-3,
        RANK=4,
        DURATION=0.5,
        PREVIEW_EVERY=15,
        PROMPT="plucked notes over a low hum",
    )
    lora = out_dir / "my-lora.safetensors"
    card = read_card(out_dir / "my-lora.card.md")
    assert (
        lora.is_file()
        and (out_dir / "my-lora.resume.pt").is_file()
        and (out_dir / "my-lora.loss.png").is_file()
    )
    assert lora_header(lora)["adapter_type"] == "dora-rows" and lora_header(lora)["rank"] == 4
    assert_upstream_keys(lora)
    losses = card["losses"]
    assert card["step"] == 30 and not card["stopped"] and len(losses) == 30
    assert all(np.isfinite(losses)) and np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    assert (
        card["dataset"]["sha256"] == dataset_hash(out_dir / "example-clips") and card["dataset"]["clips"] == 4
    )
    html = "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs(nb))
    assert "sa3lab-training-live" in html and "preview at step 30" in html and "<audio" in html
    assert str(lora) in html  # the result names the file

    # the try-it cell generated with the adapter: the same request without it sounds different
    (wav,) = sorted(out_dir.glob("*.wav"))
    meta = json.loads(wav.with_suffix(".json").read_text())
    assert meta["request"]["lora_files"] == [str(lora)]
    adapted, _ = sf.read(str(wav), dtype="float32")
    plain = Lab().generate(_without_lora(meta, tmp_path))
    assert np.abs(adapted - plain.audio[0].T.numpy()).max() > 1e-3


def _without_lora(meta: dict, tmp_path: Path) -> GenerationRequest:
    request = GenerationRequest.from_record(meta)
    request.lora_files, request.output_dir = [], str(tmp_path / "plain")
    return request


# ------------------------------------------------------------------------------ headless failures

UNAVAILABLE = {  # a model each notebook takes that is not on this machine (offline, an empty cache)
    "00_start_here.ipynb": "small-music",
    "01_standard_collection.ipynb": "small-music",
    "02_base_checkpoints.ipynb": "small-music-base",
    "03_same_autoencoders.ipynb": "same-s",
    "04_train_lora.ipynb": "small-music-base",
    "05_batch_sweeps.ipynb": "small-sfx",
    "06_radio.ipynb": "small-music",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_a_headless_run_that_cannot_work_fails_loudly_with_its_sentence_as_a_cell_output(
    name, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    assert sorted(UNAVAILABLE) == sorted(p.name for p in NOTEBOOKS)
    with pytest.raises(papermill.PapermillExecutionError) as info:
        run_notebook(name, tmp_path, MODEL=UNAVAILABLE[name], STEPS=2)
    assert info.value.ename == "RunFailed" and "not in the local cache" in info.value.evalue
    saved = json.loads((tmp_path / f"out-{name}").read_text())
    [error] = [o for o in outputs(saved) if o["output_type"] == "error"]
    assert error["traceback"] == [f"RunFailed: {info.value.evalue}"]  # the sentence, no traceback
    assert not saved_runs(tmp_path)
