"""Every user-reachable input of the engine's public API: one sentence for a bad value, no NaN result.

Covers StableAudioModel.from_pretrained / generate / load_lora / set_lora_strength and
AutoencoderModel.from_pretrained / encode / decode.
"""

import functools
import json
import shutil

import pytest
import torch
from parity import MODELS, input_audio

from stable_audio_3 import AutoencoderModel, StableAudioModel
from stable_audio_3.checks import NonFiniteOutputError

NAN, INF = float("nan"), float("inf")
SR = 44100
LORA = MODELS / "lora" / "lora_a.safetensors"
QUICK = dict(duration=0.4, steps=2, disable_tqdm=True)


@functools.cache
def model(name: str = "small-music") -> StableAudioModel:
    return StableAudioModel.from_pretrained(str(MODELS / name), device="cpu")


@functools.cache
def autoencoder() -> AutoencoderModel:
    return AutoencoderModel.from_pretrained(MODELS / "same-s", device="cpu")


def clip() -> tuple[int, torch.Tensor]:
    return SR, input_audio("clip_a")


# ------------------------------------------------------------------ generate


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cfg_scale=NAN), "cfg_scale must be a finite number"),
        (dict(cfg_scale=INF), "cfg_scale must be a finite number"),
        (dict(cfg_scale="7"), "cfg_scale must be a number, got '7'"),
        (dict(cfg_scale=[7]), "cfg_scale must be a number"),
        (dict(apg_scale=NAN), "apg_scale must be a finite number"),
        (dict(init_noise_level=NAN), "init_noise_level must be a number above 0"),
        (dict(duration_padding_sec=INF), "duration_padding_sec must be a finite number"),
        (dict(duration=NAN), "duration must be a number of seconds"),
        (dict(duration="5"), "duration must be a number of seconds"),
        (dict(prompt=5), "must be a string"),
        (dict(prompt=["a", 5], batch_size=2), "must be a string"),
        (dict(seed=2**64), "from 0 to 2\\*\\*64 - 1"),
        (dict(seed=-2), "from 0 to 2\\*\\*64 - 1"),
        (dict(seed="5"), "seed must be a whole number"),
        (dict(seed=1.5), "seed must be a whole number"),
        (dict(seed=True), "seed must be a whole number"),
        (dict(steps=1001), "at most 1000"),
        (dict(steps="8"), "steps must be a whole number"),
        (dict(batch_size="2"), "batch_size must be a whole number"),
        (dict(sample_size="big"), "sample_size must be a whole number"),
        (dict(sampler_type=["euler"]), "Unknown sampler"),
        (dict(return_latents="yes"), "return_latents must be True or False"),
        (dict(chunked_decode=1), "chunked_decode must be True or False"),
        (dict(callback=5), "callback must be a function"),
        (dict(dist_shift=0.5), "dist_shift must be a shift object"),
        (dict(cfg_intervall=(0, 1)), "unknown argument"),
        (dict(cfg_interval=(0.9, 0.1)), "low <= high"),
        (dict(lora_interval=(0, NAN)), "lora_interval must be a finite number"),
        (dict(scale_phi=2.0), "scale_phi must be at most 1"),
        (dict(lora_layer_filter=3), "lora_layer_filter must be a string"),
        (dict(inpaint_mask_start_seconds=NAN, inpaint_mask_end_seconds=0.3), "numbers of seconds"),
        (dict(lora_strengths=0.5), "no LoRA file is loaded"),
    ],
)
def test_bad_generate_arguments_get_one_sentence_before_any_work(kwargs, message):
    args = dict(prompt="rain", **QUICK) | kwargs
    with pytest.raises(ValueError, match=message) as info:
        model().generate(**args)
    assert str(info.value).count("\n") == 0 and str(info.value).endswith(".")


@pytest.mark.parametrize("name", ["init_audio", "inpaint_audio"])
@pytest.mark.parametrize("bad", [NAN, INF])
def test_non_finite_input_audio_is_refused_naming_the_argument(name, bad):
    rate, samples = clip()
    samples = samples.clone()
    samples[0, 100] = bad
    extra = (
        dict(inpaint_mask_start_seconds=0.1, inpaint_mask_end_seconds=0.3) if name == "inpaint_audio" else {}
    )
    with pytest.raises(ValueError, match=f"{name} contains NaN or infinite samples"):
        model().generate("rain", seed=1, **{name: (rate, samples)}, **extra, **QUICK)


def test_audio_with_more_than_two_channels_warns_and_uses_the_first_two():
    rate, samples = clip()
    six = torch.cat([samples, samples, samples])
    args = dict(prompt="rain", seed=1, init_noise_level=0.6, **QUICK)
    with pytest.warns(UserWarning, match="init_audio has 6 channels; only the first 2 are used"):
        out = model().generate(init_audio=(rate, six), **args)
    assert torch.equal(out, model().generate(init_audio=(rate, samples), **args))


def test_a_guidance_scale_that_overflows_raises_instead_of_returning_nan():
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite values; try a lower cfg_scale"):
        model("small-music-base").generate("rain", seed=1, cfg_scale=1e38, **QUICK)


def test_a_lora_strength_that_overflows_raises_and_nan_strengths_are_refused():
    m = StableAudioModel.from_pretrained(str(MODELS / "small-music"), device="cpu")
    m.load_lora([LORA])
    with pytest.raises(NonFiniteOutputError, match="try lower LoRA strengths"):
        m.generate("rain", seed=1, lora_strengths=1e20, **QUICK)
    for strength in (NAN, INF, "1"):
        with pytest.raises(ValueError, match="LoRA strength must be a"):
            m.set_lora_strength(strength)
        with pytest.raises(ValueError, match="LoRA strength must be a"):
            m.generate("rain", seed=1, lora_strengths=[strength], **QUICK)
    with pytest.raises(ValueError, match="lora_index must be a whole number"):
        m.set_lora_strength(0.5, lora_index="0")
    with pytest.raises(ValueError, match="out of range"):
        m.set_lora_strength(0.5, lora_index=3)
    with pytest.raises(ValueError, match="not loaded"):
        m.generate("rain", seed=1, lora_strengths={"elsewhere.safetensors": 1.0}, **QUICK)


@pytest.mark.parametrize(
    "paths, message",
    [
        (5, "a LoRA file path or a list"),
        ([None], "A LoRA file must be a name or a path"),
        (["nope.safetensors"], "does not exist"),
    ],
)
def test_bad_lora_paths_get_one_sentence(paths, message):
    m = StableAudioModel.from_pretrained(str(MODELS / "small-music"), device="cpu")
    with pytest.raises(ValueError, match=message):
        m.load_lora(paths)
    with pytest.raises(ValueError, match="No LoRA file is loaded"):
        m.set_lora_strength(0.5)


# ------------------------------------------------------------------ from_pretrained


@pytest.mark.parametrize("cls", [StableAudioModel, AutoencoderModel])
@pytest.mark.parametrize("path", ["/no/such/folder", "./missing-model", "~/missing-model-xyz"])
def test_a_folder_that_does_not_exist_is_not_found(cls, path):
    with pytest.raises(ValueError, match="was not found; check the path"):
        cls.from_pretrained(path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(device="gpu"), "is not a torch device"),
        (dict(device=3.5), "device must be a string"),
        (dict(dtype="float16"), "dtype must be one of"),
        (dict(token=123), "token must be a Hugging Face access token"),
        (dict(revision=5), "revision must be a branch"),
        (dict(cache_dir=5), "cache_dir must be a name or a path"),
        (dict(compile="yes"), "compile must be True or False"),
        (dict(model_half="no"), "model_half must be True or False"),
        (dict(attention_padding="flash"), "attention_padding must be one of"),
    ],
)
def test_bad_from_pretrained_arguments_get_one_sentence(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StableAudioModel.from_pretrained(str(MODELS / "small-music"), **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_a_device_this_machine_lacks_is_named():
    with pytest.raises(ValueError, match="'cuda' is not available on this machine"):
        AutoencoderModel.from_pretrained(MODELS / "same-s", device="cuda")


def test_a_name_that_is_not_a_string_is_refused():
    with pytest.raises(ValueError, match="name_or_path must be a name or a path"):
        StableAudioModel.from_pretrained(["small-music"])


def _copy_model(tmp_path, name: str, text_encoder: bool = True):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.safetensors").symlink_to((MODELS / name / "model.safetensors").resolve())
    shutil.copy(MODELS / name / "model_config.json", folder)
    if text_encoder:
        (folder / "t5gemma-b-b-ul2").symlink_to((MODELS / name / "t5gemma-b-b-ul2").resolve())
    return folder


@pytest.mark.parametrize("text_encoder", [True, False])  # without it, the config is read to find one
def test_a_config_that_is_not_json_names_the_file(tmp_path, text_encoder):
    folder = _copy_model(tmp_path, "small-music", text_encoder)
    (folder / "model_config.json").write_text('{"model": {')
    with pytest.raises(ValueError, match="model_config.json is not valid JSON.*download it again"):
        StableAudioModel.from_pretrained(str(folder))


def test_a_config_missing_entries_names_the_file(tmp_path):
    folder = _copy_model(tmp_path, "small-music")
    config = json.loads((folder / "model_config.json").read_text())
    del config["model"]["conditioning"]["cond_dim"]
    (folder / "model_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not describe a model this engine can build"):
        StableAudioModel.from_pretrained(str(folder))
    ae_folder = _copy_model(tmp_path, "same-s", text_encoder=False)
    (ae_folder / "model_config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds no JSON object"):
        AutoencoderModel.from_pretrained(ae_folder)


# ------------------------------------------------------------------ autoencoder


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(chunked="yes"), "chunked must be True or False"),
        (dict(chunk_size=True), "chunk_size must be a whole number"),
        (dict(overlap=-1), "overlap must be at least 0"),
    ],
)
def test_bad_encode_and_decode_options_get_one_sentence(kwargs, message):
    ae = autoencoder()
    with pytest.raises(ValueError, match=message):
        ae.encode(input_audio("clip_a"), SR, **kwargs)
    with pytest.raises(ValueError, match=message):
        ae.decode(torch.zeros(1, ae.latent_dim, 8), **kwargs)


def test_encoding_audio_that_overflows_raises_instead_of_returning_nan():
    with pytest.raises(NonFiniteOutputError, match="Encoding came out with NaN or infinite values"):
        autoencoder().encode(torch.full((2, SR), 3e38), SR)
