"""Generation requests (sa3lab.generation) are checked once, with one actionable sentence per problem."""

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from parity import MODELS

from sa3lab.generation import GenerationRequest, LoraUse
from stable_audio_3.checks import MAX_SEED


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
        (dict(steps=0), "Steps must be a whole number from 1 to 1000; got 0"),
        (dict(cfg_scale=-1.0), "CFG scale must be a number from 0 to 100; got -1"),
        (dict(batch_size=0), "Batch size must be between 1 and 16 .*; got 0"),
        (
            dict(mode="audio-to-audio", source_audio="/nope.wav"),
            "audio to transform file /nope.wav was not found",
        ),
        (dict(mode="inpaint", source_audio=None), "Choose the audio to edit"),
        (dict(lora_files=["/nope/a.safetensors"]), "LoRA file /nope/a.safetensors was not found"),
        (dict(model="same-s"), "autoencoder"),
        (dict(model="optimized"), "cannot run here"),
        (dict(model="large"), "Unknown model 'large'; choose one of: small-music"),
        (dict(model="/no/such/folder"), "The model folder /no/such/folder was not found; check the path"),
        (dict(model="~/models/sa3"), "The model folder ~/models/sa3 was not found"),
        (dict(model=3), "The model must be a catalog name .*; got 3[.]"),
        # types: text or lists where numbers are expected and the other way round, True/False
        (dict(duration="10"), "Duration must be a number of seconds, more than 0; got the text '10'"),
        (dict(duration=[10]), r"Duration must be a number .*; got a list: \[10\]"),
        (dict(steps="8"), "Steps must be a whole number from 1 to 1000; got the text '8'"),
        (dict(steps=8.5), "Steps must be a whole number .*; got 8.5"),
        (dict(steps=True), "Steps must be a whole number .*; got True"),
        (dict(batch_size=[2]), "Batch size must be between 1 and 16 .*; got a list"),
        (dict(prompt=["rain", "wind"]), "The prompt must be text, .*; got a list"),
        (dict(prompt=None), "The prompt must be text, .*; got None"),
        (dict(negative_prompt=5), "The negative prompt must be text .*; got 5"),
        (dict(mode=1), "Mode must be one of text-to-audio, audio-to-audio, inpaint, continuation; got 1"),
        (dict(lora_files="style.safetensors"), "LoRA files must be a list of paths, .*; got the text"),
        (dict(lora_strengths=0.5), r"LoRA strengths must be a list of numbers from -10 to 10, .*; got 0.5"),
        (dict(regions="2-4"), "Regions must be a list of .start, end. pairs .*; got the text '2-4'"),
        (dict(regions=[(1, 2, 3)]), "Regions must be a list .*; got a tuple: .1, 2, 3."),
        (dict(regions=[(1, "2")]), "Regions must be a list .*; got the text '2'"),
        (dict(confirm_long="yes"), "confirm_long must be True or False; got the text 'yes'"),
        (dict(output_dir=None), "The output folder must be a folder path, .*; got None"),
        (dict(source_audio=7), "The source audio must be a file path; got 7"),
        # not finite, out of range
        (dict(duration=math.nan), "Duration must be a number .*; got nan"),
        (dict(duration=math.inf), "Duration must be a number .*; got inf"),
        (dict(cfg_scale=math.nan), "CFG scale must be a number from 0 to 100; got nan"),
        (dict(cfg_scale=1e9), "CFG scale must be a number from 0 to 100; got 1e[+]09"),
        (dict(lora_strengths=[math.inf]), "LoRA strengths must be .*; got inf"),
        (dict(init_noise_level=math.nan), "The noise level must be a number above 0 and at most 1; got nan"),
        (dict(steps=5000), "Steps must be a whole number from 1 to 1000; got 5000"),
        (dict(steps=10**30), "Steps must be .*; got a number with 31 digits"),
        # seeds: -1 or 0 .. 2**64 - 1, what torch.manual_seed takes
        (dict(seed=2**64), f"Seed must be -1 .random. or a whole number from 0 to {2**64 - 1}; got {2**64}"),
        (dict(seed=-2), "Seed must be -1 .*; got -2"),
        (dict(seed="42"), "Seed must be -1 .*; got the text '42'"),
        (dict(seed=1.5), "Seed must be -1 .*; got 1.5"),
        # sampler settings: each in its range, with what to give
        (
            dict(sampler="dpmpp-3m-sde"),
            "The sampler must be one of pingpong, euler, dpmpp, rk4; got the text",
        ),
        (
            dict(cfg_interval=(0.8, 0.2)),
            r"The CFG interval must be a pair .low, high. .* <= 1, e.g. .0, 1.; got",
        ),
        (dict(cfg_interval=0.5), "The CFG interval must be a pair .*; got 0.5"),
        (dict(scale_phi=2.0), "CFG rescale must be a number from 0 to 1; got 2"),
        (dict(cfg_norm_threshold=-1), "CFG norm cap must be a number from 0 to 100; got -1"),
        (dict(apg_scale=math.nan), "APG scale must be a number from 0 to 1; got nan"),
        (dict(duration_padding=31), r"Padding \(s\) must be a number from 0 to 30; got 31"),
        (
            dict(schedule="logsnr"),
            "The schedule must be None .* or a dict whose 'type' is one of logsnr, flux",
        ),
        (
            dict(schedule={"type": "flux", "rate": 1}),
            "The flux schedule takes min_length, max_length, alpha_min",
        ),
        (
            dict(schedule={"type": "logsnr", "rate": 5}),
            "The schedule's rate must be a number from -2 to 2; got 5",
        ),
        (
            dict(schedule={"type": "full", "min_length": 4096}),
            "min_length .4096. must be less than its max_length",
        ),
        (
            dict(schedule={"type": "flux", "max_length": 10.5}),
            "max_length must be a whole number from 1 to 10000",
        ),
        (dict(lora_intervals=[(0, 2)]), r"Each LoRA interval must be a pair .* e.g. \(0.5, 1\); got"),
        (dict(lora_layer_filters="layers.0."), "LoRA layer filters must be a list of texts"),
        (dict(mode="continuation", continuation_s=0.0), "Choose the audio to edit"),
        (dict(prompt_expansion="an idea"), "prompt_expansion must be a dict"),
    ],
)
def test_bad_requests_name_the_fix(kw, words):
    with pytest.raises(ValueError, match=words):
        req(**kw).check()


def test_lora_strengths_are_one_per_file_or_one_for_all(tmp_path):
    files = [str(tmp_path / name) for name in ("a.safetensors", "b.safetensors")]
    for file in files:
        Path(file).write_bytes(b"x")
    assert req(lora_files=files).loras() == [LoraUse(files[0]), LoraUse(files[1])]
    assert [u.strength for u in req(lora_files=files, lora_strengths=[0.5]).loras()] == [0.5, 0.5]
    assert [u.strength for u in req(lora_files=files, lora_strengths=[0.5, 2.0]).loras()] == [0.5, 2.0]
    with pytest.raises(ValueError, match="one LoRA strength per LoRA file"):
        req(lora_files=files, lora_strengths=[1.0, 0.5, 0.2]).check()
    each = req(lora_files=files, lora_intervals=[[0.5, 1]], lora_layer_filters=["layers.0.", ""])
    each.check()
    assert each.loras() == [
        LoraUse(files[0], 1.0, (0.5, 1.0), "layers.0."),
        LoraUse(files[1], 1.0, (0.5, 1.0), ""),
    ]
    with pytest.raises(ValueError, match="one LoRA layer filter per LoRA file"):
        req(lora_files=files, lora_layer_filters=["a", "b", "c"]).check()


GUIDANCE = {
    "cfg_interval": (0.0, 1.0),
    "scale_phi": 0.0,
    "cfg_norm_threshold": 0.0,
    "apg_scale": 1.0,
    "schedule": None,
    "duration_padding": 6.0,
    "a2a_schedule": "upstream",
}


def test_defaults_come_from_the_model_kind_for_keys_and_folders(tmp_path):
    post_trained = {"steps": 8, "cfg_scale": 1.0, "sampler": "pingpong", **GUIDANCE}
    assert req(model="small-music").settings() == post_trained
    assert req(model="small-music-base").settings()["steps"] == 50
    assert req(model=str(MODELS / "small-music-base")).settings() == {
        "steps": 50,
        "cfg_scale": 7.0,
        "sampler": "euler",
        **GUIDANCE,
    }
    assert req(model=str(MODELS / "small-music")).settings()["cfg_scale"] == 1.0
    assert req(model="small-music-base", steps=4, cfg_scale=0.0).settings()["cfg_scale"] == 0.0
    own = req(
        model="small-music-base",
        sampler="dpmpp",
        apg_scale=0.0,
        duration_padding=0,
        schedule={"type": "none"},
    )
    own.check()
    assert {k: own.settings()[k] for k in ("sampler", "apg_scale", "duration_padding", "schedule")} == {
        "sampler": "dpmpp",
        "apg_scale": 0.0,
        "duration_padding": 0.0,
        "schedule": {"type": "none"},
    }


def test_a_schedule_gets_the_missing_parameters_from_its_defaults():
    request = req(schedule={"type": "logsnr", "rate": 0.5, "anchor_length": 1000.0})
    request.check()
    assert request.schedule == {
        "type": "logsnr",
        "anchor_length": 1000,
        "anchor_logsnr": -6.2,
        "rate": 0.5,
        "logsnr_end": 2.0,
    }
    assert type(request.schedule["anchor_length"]) is int


def test_a_continuation_keeps_the_start_and_regenerates_the_rest(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros((4410, 2), dtype="float32"), 44100)
    request = req(mode="continuation", source_audio=str(wav), duration=12.0, continuation_s=4.0)
    request.check()
    assert request.edit_regions() == [(8.0, 12.0)]
    with pytest.raises(
        ValueError, match=r"Set how many seconds to add: more than 0 and less than the duration \(12 s\)"
    ):
        req(mode="continuation", source_audio=str(wav), duration=12.0, continuation_s=12.0).check()


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


def test_whole_floats_and_paths_are_normalised_and_the_largest_seed_is_torchs(tmp_path):
    request = req(steps=8.0, batch_size=2.0, seed=float(42), output_dir=tmp_path, negative_prompt=None)
    request.check()
    assert (request.steps, request.batch_size, request.seed) == (8, 2, 42)
    assert (
        type(request.steps) is int and request.output_dir == str(tmp_path) and request.negative_prompt == ""
    )
    request = req(seed=MAX_SEED)
    request.check()
    torch.manual_seed(request.seed)  # the bound is exactly what torch accepts ...
    with pytest.raises(ValueError):
        torch.manual_seed(MAX_SEED + 1)  # ... and one more it refuses


def test_more_than_200_steps_need_confirmation_and_say_how_long_they_take():
    with pytest.raises(ValueError) as info:
        req(steps=400).check()
    assert str(info.value) == (
        "400 steps take about 50 times as long as this model's default of 8 steps (the model runs once "
        "per step): confirm the long run (confirm_long=True; in the form: tick allow more than 200 steps) "
        "or use at most 200 steps."
    )
    req(steps=200).check()
    req(steps=400, confirm_long=True).check()
    with pytest.raises(ValueError, match="about 8 times as long as this model's default of 50 steps"):
        req(model="small-music-base", steps=400).check()


def test_a_prompt_longer_than_the_text_encoder_reads_is_recorded_with_where_it_is_cut(tmp_path):
    from sa3lab.lab import Lab

    lab, long_prompt = Lab(), "rain on a tin roof, " * 60
    base = dict(model="demo", duration=1.0, steps=2, seed=3, output_dir=str(tmp_path))
    before = lab.prompt_fit("demo", long_prompt)  # counted before the model is loaded
    assert not lab.core.cache.keys()
    result = lab.generate(GenerationRequest(prompt=long_prompt, **base))
    fit = result.settings["prompt_tokens"]
    assert fit["tokens"] > fit["max_tokens"] == 64 and 0 < fit["cut_at"] < len(long_prompt)
    assert (before.tokens, before.max_tokens, before.cut_at) == (fit["tokens"], 64, fit["cut_at"])
    assert lab.prompt_fit("demo", long_prompt) == before
    kept = lab.generate(GenerationRequest(prompt=long_prompt[: fit["cut_at"]], **base))
    assert kept.settings["prompt_tokens"]["cut_at"] is None
    assert np.array_equal(kept.audio.numpy(), result.audio.numpy())  # the rest was not used
