"""Input audio conversion (stable_audio_3.audio), against the fixtures where they exist."""

import numpy as np
import pytest
import soundfile as sf
import torch
from parity import INPUTS, input_audio, load_case

from stable_audio_3.audio import prepare_audio, split_audio

SR, DS = 44100, 4096


def test_both_tuple_orders_and_layouts_give_channels_first():
    audio = input_audio("clip_a")  # (2, n)
    data, rate = sf.read(str(INPUTS / "clip_a.wav"), dtype="float32")  # (n, 2), like upstream's numpy input
    for pair in [(rate, audio), (audio, rate), (rate, data), (data, rate), (np.int64(rate), audio[None])]:
        got_rate, got = split_audio(pair)
        assert got_rate == 44100 and torch.equal(got, audio)
    _, mono = split_audio((48000, input_audio("clip_b")[0].numpy()))
    assert mono.shape == (1, 38400)


def test_integer_samples_are_scaled_like_upstream():
    ints = np.array([[32767, -32767], [16384, 0]], dtype=np.int16)  # (samples, channels)
    _, got = split_audio((SR, ints))
    torch.testing.assert_close(got, torch.tensor([[1.0, 16384 / 32767], [-1.0, 0.0]]))
    _, got32 = split_audio((torch.tensor([2147483647, 0], dtype=torch.int32), SR))
    torch.testing.assert_close(got32, torch.tensor([[1.0, 0.0]]))
    _, got64 = split_audio((SR, np.zeros(10, dtype=np.float64)))
    assert got64.dtype == torch.float32


@pytest.mark.parametrize(
    "pair, match",
    [
        ((SR, np.zeros(10, dtype=np.uint8)), "dtype uint8"),
        ((SR, [0.0, 0.1]), "numpy array or a torch tensor"),
        ((SR, SR), "integer sample rate and an array"),
        (torch.zeros(2, 10), "pair"),
        ((0, torch.zeros(2, 10)), "positive"),
        ((SR, torch.zeros(2, 2, 10)), "shape"),
        ((SR, torch.zeros(2, 0)), "shape"),
    ],
)
def test_bad_audio_inputs_raise_one_sentence(pair, match):
    with pytest.raises(ValueError, match=match):
        split_audio(pair)


def test_resampling_and_mono_to_stereo_match_the_encoder_fixture():
    case = load_case("ae_same_s_encode_resample_mono")
    expected = case.tensors["intermediate.preprocessed"]  # resampled, padded to a multiple of 4096, stereo
    got = prepare_audio((48000, input_audio("clip_b")), sample_rate=SR, length=expected.shape[-1], channels=2)
    assert torch.equal(got, expected)


def test_prepare_audio_pads_crops_and_sets_channels():
    audio = input_audio("clip_c")
    padded = prepare_audio((SR, audio), sample_rate=SR, length=60000, channels=2)
    assert padded.shape == (1, 2, 60000)
    assert torch.equal(padded[0, :, : audio.shape[1]], audio) and padded[0, :, audio.shape[1] :].eq(0).all()
    cropped = prepare_audio((audio, SR), sample_rate=SR, length=1000, channels=2)
    assert torch.equal(cropped[0], audio[:, :1000])
    mono = prepare_audio((SR, audio), sample_rate=SR, length=1000, channels=1)
    torch.testing.assert_close(mono[0], audio[:, :1000].mean(0, keepdim=True))
    three = torch.stack([audio[0], audio[1], -audio[0]])
    with pytest.warns(UserWarning, match="has 3 channels; only the first 2 are used"):
        kept = prepare_audio((SR, three), sample_rate=SR, length=1000, channels=2)
    assert torch.equal(kept[0], audio[:, :1000])


def test_prepare_audio_refuses_non_finite_samples_naming_the_input():
    audio = input_audio("clip_c").clone()
    audio[1, 5] = float("nan")
    with pytest.raises(ValueError, match="init_audio contains NaN or infinite samples"):
        prepare_audio((SR, audio), sample_rate=SR, length=1000, channels=2, name="init_audio")
