"""Notebook 06 headless (papermill): RUN = True with SEGMENTS = N writes N segments and the joined file."""

import json

import numpy as np
import pytest
import soundfile as sf
from notebook_runs import RADIO, outputs, run_notebook

from sa3lab.forms.shell import RESULTS_BUDGET
from sa3lab.radio import join_jumps


@pytest.mark.slow
def test_the_radio_notebook_makes_its_segments_and_the_joined_file_headless(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the demo model needs no network
    nb = run_notebook(
        RADIO,
        tmp_path,
        MODEL="demo",
        PLAYLIST=[["warm pads", 2], ["soft drums", 1]],  # papermill writes a tuple as its text
        SEGMENT_S=1.0,
        CONTEXT_S=0.5,
        SEGMENTS=3,
    )
    (joined,) = (tmp_path / "outputs").glob("*-radio-demo.wav")
    sidecar = json.loads((joined.with_suffix("") / "radio.json").read_text())
    segments = sidecar["state"]["segments"]
    assert [s["prompt"] for s in segments] == ["warm pads", "warm pads", "soft drums"]
    assert [s["seed"] for s in segments] == [7, 8, 9]  # the tests' SEED, incremented
    audio, rate = sf.read(str(joined), dtype="float32", always_2d=True)
    assert audio.shape == (3 * rate, 2) and np.isfinite(audio).all()
    joins = [b for s in segments[1:] for b in s["crossfade"]]
    assert all(j["jump"] <= j["local"] for j in join_jumps(audio.T, joins))
    for segment in segments:
        assert (joined.with_suffix("") / segment["run"]).is_file()
    (result,) = [o["data"]["text/html"] for o in outputs(nb) if "sa3lab-result" in str(o.get("data", {}))]
    result = "".join(result)
    assert result.count("<audio") == 1 and "data:audio/mpeg" in result and "3 segments · 3.0 s" in result
    assert len(json.dumps(nb)) < RESULTS_BUDGET
