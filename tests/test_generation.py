"""Generation requests (sa3lab.generation) are checked once, with one actionable sentence per problem."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from parity import MODELS

from sa3lab.generation import GenerationRequest


def req(**kw):
    base = dict(model="small-music", prompt="rain on a tin roof", duration=10.0)
    return GenerationRequest(**{**base, **kw})


def test_a_plain_request_passes():
    req().check()
    req(model="medium", duration=300.0).check()


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(prompt="   "), "Enter a prompt"),
        (dict(duration=0), "more than 0"),
        (dict(duration=200.0), "at most 120"),
        (dict(steps=0), "at least 1"),
        (dict(cfg_scale=-1.0), "0 or more"),
        (dict(batch_size=0), "between 1 and 16"),
        (
            dict(mode="audio-to-audio", source_audio="/nope.wav"),
            "audio to transform file /nope.wav was not found",
        ),
        (dict(mode="inpaint", source_audio=None), "Choose the audio to edit"),
        (dict(lora_files=["/nope/a.safetensors"]), "LoRA file /nope/a.safetensors was not found"),
        (dict(model="same-s"), "autoencoder"),
        (dict(model="optimized"), "cannot run here"),
        (dict(model="large"), "Unknown model"),
    ],
)
def test_bad_requests_name_the_fix(kw, words):
    with pytest.raises(ValueError, match=words):
        req(**kw).check()


def test_lora_strengths_are_one_per_file_or_one_for_all(tmp_path):
    files = [str(tmp_path / name) for name in ("a.safetensors", "b.safetensors")]
    for file in files:
        Path(file).write_bytes(b"x")
    assert req(lora_files=files).loras() == [(files[0], 1.0), (files[1], 1.0)]
    assert req(lora_files=files, lora_strengths=[0.5]).loras() == [(files[0], 0.5), (files[1], 0.5)]
    assert req(lora_files=files, lora_strengths=[0.5, 2.0]).loras() == [(files[0], 0.5), (files[1], 2.0)]
    with pytest.raises(ValueError, match="one LoRA strength per LoRA file"):
        req(lora_files=files, lora_strengths=[1.0, 0.5, 0.2]).check()


def test_defaults_come_from_the_model_kind_for_keys_and_folders(tmp_path):
    assert req(model="small-music").settings() == {"steps": 8, "cfg_scale": 1.0, "sampler": "pingpong"}
    assert req(model="small-music-base").settings()["steps"] == 50
    assert req(model=str(MODELS / "small-music-base")).settings() == {
        "steps": 50,
        "cfg_scale": 7.0,
        "sampler": "euler",
    }
    assert req(model=str(MODELS / "small-music")).settings()["cfg_scale"] == 1.0
    assert req(model="small-music-base", steps=4, cfg_scale=0.0).settings()["cfg_scale"] == 0.0


def test_inpaint_regions_must_lie_inside_the_audio(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros((4410, 2), dtype="float32"), 44100)
    req(mode="inpaint", source_audio=str(wav), regions=[(1.0, 2.0), (3.0, 4.0)]).check()
    with pytest.raises(ValueError, match="inside 0-10"):
        req(mode="inpaint", source_audio=str(wav), regions=[(8.0, 12.0)]).check()
    with pytest.raises(ValueError, match="at least one region"):
        req(mode="inpaint", source_audio=str(wav)).check()
    with pytest.raises(ValueError, match="noise level"):
        req(mode="audio-to-audio", source_audio=str(wav), init_noise_level=0.0).check()
