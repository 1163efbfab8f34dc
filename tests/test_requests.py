"""Form requests are checked once, with one actionable sentence per problem."""

import pytest

from sa3lab.requests import GenerationRequest


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
        (dict(mode="audio-to-audio", source_audio="/nope.wav"), "existing audio file"),
        (dict(model="same-s"), "autoencoder"),
        (dict(model="optimized"), "cannot run here"),
        (dict(model="large"), "Unknown model"),
        (dict(lora_files=["a.safetensors"], lora_strengths=[1.0, 0.5]), "one LoRA strength"),
    ],
)
def test_bad_requests_name_the_fix(kw, words):
    with pytest.raises(ValueError, match=words):
        req(**kw).check()


def test_inpaint_regions_must_lie_inside_the_audio(tmp_path):
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"x")
    req(mode="inpaint", source_audio=str(wav), regions=[(1.0, 2.0), (3.0, 4.0)]).check()
    with pytest.raises(ValueError, match="inside 0-10"):
        req(mode="inpaint", source_audio=str(wav), regions=[(8.0, 12.0)]).check()
    with pytest.raises(ValueError, match="at least one region"):
        req(mode="inpaint", source_audio=str(wav)).check()
    with pytest.raises(ValueError, match="noise level"):
        req(mode="audio-to-audio", source_audio=str(wav), init_noise_level=0.0).check()
