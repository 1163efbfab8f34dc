"""The audio-to-audio schedule choice in the lab: request, noise levels shown, run record, sweeps."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from sa3lab.generation import GenerationRequest, noise_levels
from sa3lab.lab import Lab
from sa3lab.sweep_plan import SweepRequest
from stable_audio_3.sampling import LogSNRShift, build_schedule, default_sampling_shift


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the demo model needs no network


@pytest.fixture(scope="module")
def lab():
    return Lab()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "clip.wav"
    t = np.arange(44100) / 44100
    sf.write(path, 0.3 * np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype("float32"), 44100)
    return str(path)


def a2a(source, tmp_path, **kw):
    base = dict(
        model="demo", prompt="rain", duration=1.0, steps=4, seed=3, mode="audio-to-audio",
        source_audio=source, init_noise_level=0.5, output_dir=str(tmp_path),
    )  # fmt: skip
    return GenerationRequest(**{**base, **kw})


def test_the_request_defaults_to_upstreams_schedule_and_refuses_unknown_names(source, tmp_path):
    assert a2a(source, tmp_path).settings()["a2a_schedule"] == "upstream"
    assert a2a(source, tmp_path, a2a_schedule="corrected").settings()["a2a_schedule"] == "corrected"
    for bad in ("fixed", 1, True):
        with pytest.raises(ValueError, match="audio-to-audio schedule must be one of upstream, corrected"):
            a2a(source, tmp_path, a2a_schedule=bad)


def test_noise_levels_are_the_engines_schedule_for_the_settings(tmp_path):
    upstream = noise_levels("small-music", 10.0, 8, 0.5, None, "upstream")
    corrected = noise_levels("small-music", 10.0, 8, 0.5, None, "corrected")
    engine = build_schedule(8, 0.5, default_sampling_shift(), torch.tensor([108.0]))
    assert upstream == [float(x) for x in engine[0]]
    assert upstream[0] == 0.5 and max(upstream) > 0.8  # asked 0.5, reaches ~0.83
    assert corrected[0] == 0.5 and max(corrected) == 0.5 and corrected == sorted(corrected, reverse=True)
    by_length = {"type": "logsnr", "rate": 1.0}
    assert noise_levels("small-music", 2.0, 8, 0.5, by_length, "upstream") != noise_levels(
        "small-music", 60.0, 8, 0.5, by_length, "upstream"
    )
    folder = tmp_path / "model"  # a folder's own sampling shift is the model's
    folder.mkdir()
    options = {"type": "logsnr", "rate": 0.0, "anchor_logsnr": -3.0}
    config = {"model": {"diffusion": {"sampling_distribution_shift_options": options}}}
    (folder / "model_config.json").write_text(json.dumps(config))
    own = build_schedule(4, 0.7, LogSNRShift(rate=0.0, anchor_logsnr=-3.0), 10)
    assert noise_levels(str(folder), 1.0, 4, 0.7, None, "upstream") == [float(x) for x in own]
    with pytest.raises(ValueError, match="noise level must be a number above 0"):
        noise_levels("small-music", 10.0, 8, 0.0, None, "upstream")


def test_the_choice_reaches_the_engine_and_the_record_and_reruns_from_it(lab, source, tmp_path):
    upstream = lab.generate(a2a(source, tmp_path / "up"))
    corrected = lab.generate(a2a(source, tmp_path / "fix", a2a_schedule="corrected"))
    assert upstream.settings["a2a_schedule"] == "upstream"
    assert corrected.settings["a2a_schedule"] == "corrected"
    assert not np.array_equal(upstream.audio.numpy(), corrected.audio.numpy())
    sidecar = json.loads(next((tmp_path / "fix").glob("*.json")).read_text())
    again = lab.generate(GenerationRequest.from_record(sidecar))
    assert again.settings["a2a_schedule"] == "corrected"
    assert np.array_equal(again.audio.numpy(), corrected.audio.numpy())
    # at full noise both schedules are the same, so the audio is too
    full = [
        lab.generate(a2a(source, tmp_path / name, init_noise_level=1.0, a2a_schedule=name)).audio.numpy()
        for name in ("upstream", "corrected")
    ]
    assert np.array_equal(*full)


def test_a_sweep_can_vary_the_schedule_and_a_csv_column_can_set_it(lab, source, tmp_path):
    request = SweepRequest(
        model="demo",
        prompts=["rain"],
        seeds=[2],
        duration=1.0,
        steps=4,
        settings={"mode": "audio-to-audio", "source_audio": source, "init_noise_level": 0.4},
        grid={"a2a_schedule": ["upstream", "corrected"]},
        output_dir=str(tmp_path / "grid"),
    )
    result = lab.sweep(request)
    assert not result.failed()
    assert sorted(r["settings"]["a2a_schedule"] for r in result.records) == ["corrected", "upstream"]
    audio = {sf.read(str(p), dtype="float32")[0].tobytes() for p in (tmp_path / "grid").glob("*.wav")}
    assert len(audio) == 2
    csv = tmp_path / "prompts.csv"
    csv.write_text("prompt,a2a_schedule\nrain,corrected\nwind,\n")
    rows = SweepRequest(model="demo", prompts=str(csv)).rows()
    assert rows == [{"prompt": "rain", "a2a_schedule": "corrected"}, {"prompt": "wind"}]
