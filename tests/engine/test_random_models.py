"""The tiny-model toolkit writes repos with the released structure: the fixtures' keys, shapes and layout."""

import json

import pytest
import torch
from parity import MODELS
from safetensors import safe_open

from stable_audio_3 import AutoencoderModel, StableAudioModel
from stable_audio_3.random_models import write_model_repo


def header(path) -> dict[str, tuple]:
    with safe_open(str(path), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def key_tree(value):
    """The nested key structure of a JSON value (lists by their items' structure)."""
    if isinstance(value, dict):
        return {k: key_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [key_tree(v) for v in value]
    return type(value).__name__


@pytest.mark.parametrize("name", ["small-music", "small-music-base", "medium", "same-s", "same-l"])
def test_tiny_repo_matches_the_fixture_layout_keys_and_shapes(tmp_path, name):
    ours = write_model_repo(tmp_path / name, name)
    theirs = MODELS / name
    assert header(ours / "model.safetensors") == header(theirs / "model.safetensors")
    ours_cfg = json.loads((ours / "model_config.json").read_text())
    theirs_cfg = json.loads((theirs / "model_config.json").read_text())
    assert key_tree(ours_cfg) == key_tree(theirs_cfg)
    if (theirs / "t5gemma-b-b-ul2").exists():
        te = "t5gemma-b-b-ul2"
        assert header(ours / te / "model.safetensors") == header(theirs / te / "model.safetensors")
        assert sorted(p.name for p in (ours / te).iterdir()) == sorted(
            p.name for p in (theirs / te).iterdir()
        )


def test_a_tiny_model_loads_and_makes_finite_sound(tmp_path):
    folder = write_model_repo(tmp_path / "m", "small-music", seed=3)
    model = StableAudioModel.from_pretrained(str(folder), device="cpu")
    audio = model.generate("a test tone", duration=0.5, steps=2, seed=1, disable_tqdm=True)
    assert audio.shape == (1, 2, 22050) and torch.isfinite(audio).all() and audio.abs().max() > 1e-4


def test_a_tiny_autoencoder_round_trips(tmp_path):
    folder = write_model_repo(tmp_path / "ae", "same-s")
    ae = AutoencoderModel.from_pretrained(str(folder), device="cpu")
    latents = ae.encode(torch.randn(2, 44100) * 0.1, 44100)
    assert latents.shape[:2] == (1, 32) and torch.isfinite(latents).all()
    assert torch.isfinite(ae.decode(latents)).all()
