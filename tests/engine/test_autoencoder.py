"""SAME-S / SAME-L against the upstream fixtures, strict loading, input checks and Hub loading."""

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hub_fixtures import ACCEPTED_TOKEN
from parity import MODELS, CaseRunner, case_names, fixtures, input_audio, load_case
from safetensors.torch import load_file, save_file

from stable_audio_3.autoencoder import SameDecoder
from stable_audio_3.autoencoder_model import AutoencoderModel
from stable_audio_3.hub import resolve_model_files
from stable_audio_3.layers import attend
from stable_audio_3.loading import CheckpointMismatchError
from stable_audio_3.random_models import randomize_

RUNNER = CaseRunner(fixtures)  # CPU, float32


@functools.cache
def local_model(name: str, dtype=torch.float32) -> AutoencoderModel:
    return AutoencoderModel.from_pretrained(MODELS / name, device="cpu", dtype=dtype)


# ------------------------------------------------------------------ parity


@pytest.mark.parametrize("name", case_names("ae_"))
def test_matches_upstream(name):
    case = load_case(name)
    outputs = RUNNER.run(case)
    assert sorted(outputs) == case.outputs()
    for key, actual in outputs.items():
        assert actual.dtype == torch.float32
        case.assert_output(key, actual)


def test_band_attention_over_long_sequences_equals_dense_band_masked_attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 700, 16) for _ in range(3))
    pos = torch.arange(700)
    dense = F.scaled_dot_product_attention(q, k, v, attn_mask=(pos[None, :] - pos[:, None]).abs() <= 17)
    torch.testing.assert_close(attend(q, k, v, window=17), dense, rtol=0, atol=1e-6)


def test_batches_and_input_formats_give_the_same_latents():
    model = local_model("same-s")
    clip = input_audio("clip_a")
    alone = model.encode(clip, 44100)
    batch = model.encode(torch.stack([clip, 0.5 * clip]), 44100)
    torch.testing.assert_close(batch[:1], alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(batch[1:], model.encode(0.5 * clip, 44100), rtol=0, atol=1e-5)
    # numpy (samples, channels) and int16 are read like (channels, samples) floats
    as_numpy = model.encode(clip.T.numpy(), 44100)
    assert torch.equal(as_numpy, alone)
    ints = (clip.clamp(-1, 1) * 32767).round().to(torch.int16)
    torch.testing.assert_close(model.encode(ints.T.numpy(), 44100), model.encode(ints / 32767, 44100))
    # mono is duplicated to stereo
    mono = clip[:1]
    assert torch.equal(model.encode(mono[0], 44100), model.encode(mono.repeat(2, 1), 44100))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["same-s", "same-l"])
def test_half_precision_is_finite_and_close_to_float32(name, dtype):
    reference, model = local_model(name), local_model(name, dtype)
    assert model.dtype == dtype
    clip = input_audio("clip_a")
    latents, expected = model.encode(clip, 44100), reference.encode(clip, 44100)
    assert latents.dtype == torch.float32 and torch.isfinite(latents).all()
    assert (latents - expected).abs().max() < 0.05 * expected.abs().max()
    torch.manual_seed(0)
    audio = model.decode(expected)
    torch.manual_seed(0)
    audio_ref = reference.decode(expected)
    assert audio.dtype == torch.float32 and torch.isfinite(audio).all()
    if name == "same-l":  # SAME-S also adds new-token noise, which torch draws differently in half precision
        assert (audio - audio_ref).abs().max() < 0.05 * audio_ref.abs().max()


# ------------------------------------------------------------------ decoding only what a window keeps

RELEASED_LIKE_DECODERS = {  # the released decoder structures (depth, chunking, window) at a small width
    "same-s": {"chunk_size": 32, "chunk_midpoint_shift": True, "conv_mapping": True, "mask_noise": 0.01},
    "same-l": {"sliding_window": [1, 1], "sinusoidal_blocks": [8]},
}


def released_like_decoder(name: str) -> SameDecoder:
    depth = 6 if name == "same-s" else 12
    config = {"out_channels": 32, "channels": 16, "c_mults": [2], "strides": [16], "latent_dim": 8}
    config |= {"dim_heads": 16, "variable_stride": True, "transformer_depths": [depth]}
    return randomize_(SameDecoder(config | RELEASED_LIKE_DECODERS[name]), seed=5).eval()


@pytest.mark.parametrize("name", ["same-s", "same-l"])
def test_decoding_a_kept_range_equals_slicing_the_full_pass(name):
    decoder, frames = released_like_decoder(name), 64
    latents = torch.randn(2, 8, frames, generator=torch.Generator().manual_seed(0))

    def decode(keep=None):
        torch.manual_seed(11)
        with torch.inference_mode():
            return decoder(latents, keep)

    full = decode()
    for lo, hi in [(16, 48), (0, 48), (16, 64), (7, 31), (30, 33)]:
        start, stop = decoder.crop_for(frames, lo, hi)
        assert stop - start < frames  # the point: less than a full pass
        torch.testing.assert_close(decode((lo, hi)), full[..., lo * 16 : hi * 16], atol=2e-6, rtol=0)


@pytest.mark.parametrize("name", ["same-s", "same-l"])
def test_the_kept_range_check_notices_a_crop_that_is_too_narrow(name, monkeypatch):
    """The test above can fail: cropping right at the kept range changes the kept audio."""
    decoder = released_like_decoder(name)
    latents = torch.randn(1, 8, 64, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(type(decoder.layers[3]), "reach", lambda self: 0)
    assert decoder.crop_for(64, 16, 48) == (16, 48)
    outputs = []
    for keep in (None, (16, 48)):
        torch.manual_seed(11)
        with torch.inference_mode():
            outputs.append(decoder(latents, keep))
    assert (outputs[1] - outputs[0][..., 16 * 16 : 48 * 16]).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["same-s", "same-l"])
@pytest.mark.parametrize("chunked", [True, False])
def test_decoding_only_the_first_frames_equals_the_full_decode_there(name, chunked, monkeypatch):
    ae = local_model(name).autoencoder
    latents = torch.randn(1, ae.latent_dim, 40, generator=torch.Generator().manual_seed(3))
    chunking = dict(chunked=chunked, chunk_size=8, overlap=4)
    windows = []
    run_window = ae.decode_once
    monkeypatch.setattr(
        ae, "decode_once", lambda x, keep=None, *noise: windows.append(keep) or run_window(x, keep, *noise)
    )

    def decode(frames=None):
        windows.clear()
        torch.manual_seed(4)
        with torch.inference_mode():
            return ae.decode(latents, frames=frames, **chunking), len(windows)

    (full, all_windows), ds = decode(), ae.downsampling_ratio
    for frames in (13, 30):
        part, some_windows = decode(frames)
        assert part.shape == full.shape and not part[..., frames * ds :].any()
        torch.testing.assert_close(part[..., : frames * ds], full[..., : frames * ds], atol=2e-6, rtol=0)
        assert some_windows < all_windows if chunked else windows == [(0, frames)]


# ------------------------------------------------------------------ strict loading


def _folder_with_weights(tmp_path, change) -> Path:
    folder = tmp_path / "same-s"
    folder.mkdir()
    shutil.copy(MODELS / "same-s" / "model_config.json", folder)
    tensors = load_file(str(MODELS / "same-s" / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize(
    "key, change",
    [
        ("decoder.layers.3.mapping.weight_g", lambda t: t.pop("decoder.layers.3.mapping.weight_g")),
        ("encoder.layers.0.surplus", lambda t: t.update({"encoder.layers.0.surplus": torch.zeros(1)})),
        ("bottleneck.bias", lambda t: t.update({"bottleneck.bias": torch.zeros(1, 33, 1)})),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_strict_loading_names_the_key_and_the_file(tmp_path, key, change):
    folder = _folder_with_weights(tmp_path, change)
    with pytest.raises(CheckpointMismatchError) as info:
        AutoencoderModel.from_pretrained(folder, device="cpu")
    assert key in str(info.value) and str(folder / "model.safetensors") in str(info.value)


def test_a_config_that_is_not_an_autoencoder_is_refused(tmp_path):
    folder = tmp_path / "dit"
    folder.mkdir()
    (folder / "model_config.json").write_text(json.dumps({"sample_rate": 44100, "model": {"diffusion": {}}}))
    save_file({"x": torch.zeros(1)}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="not an autoencoder config"):
        AutoencoderModel.from_pretrained(folder, device="cpu")


# ------------------------------------------------------------------ bad input

NAN_AUDIO = torch.zeros(2, 1000).index_fill_(1, torch.tensor([5]), float("nan"))


@pytest.mark.parametrize(
    "audio, sr, kwargs, match",
    [
        (torch.zeros(1, 1, 2, 100), 44100, {}, "dimensions"),
        (torch.zeros(3, 1000), 44100, {}, "3 channels"),
        (torch.zeros(2, 0), 44100, {}, "empty"),
        (NAN_AUDIO, 44100, {}, "NaN"),
        (torch.full((2, 100), float("inf")), 44100, {}, "NaN or infinite"),
        (torch.zeros(2, 100), 0, {}, "sr must be"),
        (torch.zeros(2, 100), 44100.5, {}, "sr must be"),
        ("clip.wav", 44100, {}, "file path"),
        ([], 44100, {}, "empty"),
        (np.zeros((2, 100), dtype=np.complex64), 44100, {}, "not supported"),
        (torch.zeros(2, 100), 44100, {"chunked": True, "chunk_size": 4, "overlap": 4}, "overlap"),
    ],
    ids=[
        "rank",
        "channels",
        "empty",
        "nan",
        "inf",
        "sr-zero",
        "sr-float",
        "path",
        "empty-list",
        "dtype",
        "chunks",
    ],
)
def test_bad_audio_gets_one_actionable_sentence(audio, sr, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        local_model("same-s").encode(audio, sr, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith(".")


@pytest.mark.parametrize(
    "latents, match",
    [
        (torch.zeros(1, 7, 4), "shape"),
        (torch.zeros(1, 32, 0), "shape"),
        (torch.zeros(1, 1, 32, 4), "shape"),
        (torch.full((1, 32, 4), float("nan")), "NaN"),
        (torch.zeros(1, 32, 4, dtype=torch.long), "float"),
    ],
    ids=["channels", "empty", "rank", "nan", "ints"],
)
def test_bad_latents_get_one_actionable_sentence(latents, match):
    with pytest.raises(ValueError, match=match) as info:
        local_model("same-s").decode(latents)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ Hub


def test_same_s_from_the_hub_equals_the_local_folder(hub):
    model = AutoencoderModel.from_pretrained("same-s", device="cpu")
    assert hub.count(contains="SAME-S") > 0
    clip = input_audio("clip_a")
    assert torch.equal(model.encode(clip, 44100), local_model("same-s").encode(clip, 44100))


def test_same_s_prefers_a_cached_full_checkpoint(hub):
    resolve_model_files("small-music", token=ACCEPTED_TOKEN)
    model = AutoencoderModel.from_pretrained("same-s", device="cpu")
    assert hub.count(contains="SAME-S") == 0
    assert model.source.repo_id == "stabilityai/stable-audio-3-small-music"
    clip = input_audio("clip_a")
    assert torch.equal(model.encode(clip, 44100), local_model("same-s").encode(clip, 44100))
