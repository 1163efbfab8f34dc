"""Newer LoRA files: baked DoRA row norms and -xs adapters with frozen SVD bases (issue 25).

The files in tests/fixtures/lora-baked were written by this repository's training code in the layout
of upstream's later LoRA package (see that folder's README).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from parity import MODELS
from safetensors import safe_open
from safetensors.torch import save_file

from stable_audio_3 import StableAudioModel
from stable_audio_3.lora import (
    BAKED_NORM,
    LoraNote,
    LoraStack,
    companion_bases,
    read_lora_file,
    read_svd_bases,
)
from stable_audio_3.training import AdapterConfig, LoraTrainer, TrainingSettings
from stable_audio_3.training.adapters import AdapterSet, read_start, save_lora_file

HERE = Path(__file__).parents[1] / "fixtures" / "lora-baked"
ROWS, XS, BASES = HERE / "dora-rows.safetensors", HERE / "dora-rows-xs.safetensors", HERE / "svd_bases.pt"
GEN = dict(prompt="warm analog synth", duration=1.0, seed=5, return_latents=True, disable_tqdm=True)


def rewrite(source: Path, target: Path, change) -> Path:
    """A copy of ``source`` whose tensors went through ``change(dict) -> dict`` (header kept)."""
    with safe_open(str(source), framework="pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    save_file(change(tensors), str(target), metadata=meta)
    return target


def unbaked(tensors):
    return {k: v for k, v in tensors.items() if not k.endswith(BAKED_NORM)}


def scaled_norms(factor):
    return lambda tensors: {k: v * factor if k.endswith(BAKED_NORM) else v for k, v in tensors.items()}


@pytest.fixture(scope="module")
def model():
    return StableAudioModel.from_pretrained(
        str(MODELS / "small-music-base"), device="cpu", attention_padding="upstream_fallback"
    )


def weights(model, layers):
    inner = {"model": model.model.model, "conditioner": model.model.conditioner}
    return {name: inner["model"].get_submodule(name).weight.detach().clone() for name in layers}


def test_the_fixture_files_hold_baked_norms_and_bases_in_upstreams_layout():
    rows = read_lora_file(ROWS)
    assert rows.baked and rows.adapter_type == "dora-rows"
    assert rows.config["baked_norms"] == len(rows.layers) and rows.metadata["baked_variant"] == "dora-rows"
    for params in rows.layers.values():
        assert params[BAKED_NORM].dtype == torch.float32
        assert params[BAKED_NORM].shape == params["magnitude"].shape
    xs = read_lora_file(XS)
    assert xs.adapter_type == "dora-rows-xs" and xs.metadata["svd_bases"] == "dora-rows-xs.svd_bases.pt"
    bases = read_svd_bases(BASES)
    assert all(key.startswith("model.model.transformer.layers.0.") for key in bases)
    assert all(entry["U"].shape[1] == 8 > xs.rank for entry in bases.values())


def test_baked_norms_give_the_same_audio_as_the_same_file_without_them(model, tmp_path):
    plain = rewrite(ROWS, tmp_path / "plain.safetensors", unbaked)
    runs = {}
    for name, path in {"baked": ROWS, "plain": plain}.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", LoraNote)
            assert model.load_lora([path]) == []
        runs[name] = model.generate(**GEN)
        model.unload_lora()
    base = model.generate(**GEN)
    torch.testing.assert_close(runs["baked"], runs["plain"], rtol=0, atol=1e-6)
    assert not torch.allclose(runs["baked"], base, atol=1e-3)

    # the baked norms are what is used: off by float noise (accepted), the output moves by as much
    nudged = rewrite(ROWS, tmp_path / "nudged.safetensors", scaled_norms(1 + 5e-4))
    assert model.load_lora([nudged]) == []
    moved = model.generate(**GEN)
    model.unload_lora()
    assert not torch.equal(moved, runs["plain"])


def test_a_wrong_baked_norm_is_caught_in_one_sentence_and_this_models_norms_are_used(model, tmp_path):
    wrong = rewrite(ROWS, tmp_path / "wrong.safetensors", scaled_norms(1.05))
    plain = rewrite(ROWS, tmp_path / "plain.safetensors", unbaked)
    model.load_lora([plain])
    want = weights(model, read_lora_file(ROWS).layers)
    model.unload_lora()
    with pytest.warns(LoraNote, match="made for another base model") as caught:
        notes = model.load_lora([wrong])
    assert len(notes) == 1 and str(caught[0].message) == notes[0]
    assert notes[0].endswith(".") and ". " not in notes[0] and "off by 5.00%" in notes[0]
    assert model.lora_notes == [tuple(notes)]
    got = weights(model, want)
    model.unload_lora()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)


def expected_xs_weights(model, lora, bases):
    """mag * (W + s U M V^T) / ||...||_row with the frozen bases the adapter was trained against."""
    out = {}
    for name, params in lora.layers.items():
        w = model.model.model.get_submodule(name).weight.detach().float()
        entry = bases[f"model.{name}.weight"]
        u, v = entry["U"][:, : lora.rank].float(), entry["V"][:, : lora.rank].float()
        direction = w + lora.alpha / lora.rank * (u @ params["M_xs"] @ v.T)
        out[name] = direction / direction.norm(dim=1, keepdim=True) * params["magnitude"][:, None]
    return out


def test_an_xs_adapter_loads_to_the_weights_trained_against_its_frozen_bases(model):
    lora, bases = read_lora_file(XS), read_svd_bases(BASES)
    want = expected_xs_weights(model, lora, bases)
    for given in (BASES, HERE / "dora-rows-xs.svd_bases.pt"):  # upstream's full file, our training's slice
        with warnings.catch_warnings():
            warnings.simplefilter("error", LoraNote)
            assert model.load_lora([XS], svd_bases=given) == []
        got = weights(model, want)
        model.unload_lora()
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6)

    # the recomputed SVD has the other signs, so without the file the weights differ, and it says so
    with pytest.warns(LoraNote) as caught:
        notes = model.load_lora([XS])
    got = weights(model, want)
    model.unload_lora()
    assert any("without the frozen SVD bases file (svd_bases.pt)" in note for note in notes)
    assert any("other SVD bases" in note for note in notes)  # its baked norms disagree too
    assert [str(w.message) for w in caught] == notes
    assert all(not torch.allclose(got[name], want[name], atol=1e-3) for name in want)


def test_bases_for_another_model_or_not_bases_at_all_are_refused_and_nothing_loads(model, tmp_path):
    stripped = tmp_path / "svd_bases.pt"
    bases = read_svd_bases(BASES)
    torch.save({k: v for k, v in bases.items() if "to_qkv" not in k}, stripped)
    with pytest.raises(
        ValueError, match="has no bases for layer 'model.transformer.layers.0.self_attn.to_qkv'"
    ):
        model.load_lora([XS], svd_bases=stripped)
    narrow = tmp_path / "narrow.pt"
    torch.save({k: {"U": v["U"][:, :2], "V": v["V"][:, :2]} for k, v in bases.items()}, narrow)
    with pytest.raises(ValueError, match="does not fit layer"):
        model.load_lora([XS], svd_bases=narrow)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a usable SVD bases file"):
        model.load_lora([XS], svd_bases=junk)
    with pytest.raises(ValueError, match="one per LoRA file"):
        model.load_lora([XS, ROWS], svd_bases=[BASES])
    assert model.lora_paths == []


def test_baked_norms_serve_strength_one_on_the_base_weight_only_and_never_when_coarser(tmp_path):
    layer = torch.nn.Linear(6, 5, bias=False)
    root = torch.nn.Module()
    root.model = torch.nn.Module()
    root.model.proj = layer
    g = torch.Generator().manual_seed(3)
    a, b, mag = (
        torch.randn(2, 6, generator=g),
        torch.randn(5, 2, generator=g),
        torch.rand(5, generator=g) + 0.5,
    )
    w = layer.weight.detach().clone()
    norms = (w + 2.0 * (b.half().float() @ a.half().float())).norm(dim=1)
    tensors = {
        "model.proj.parametrizations.weight.0." + k: v.half()
        for k, v in dict(lora_A=a, lora_B=b, magnitude=mag).items()
    }
    config = {"lora_config": json.dumps({"rank": 2, "alpha": 4.0, "adapter_type": "dora-rows"})}
    save_file(tensors, str(tmp_path / "plain.safetensors"), metadata=config)
    baked = {**tensors, f"model.proj.parametrizations.weight.0.{BAKED_NORM}": norms * (1 + 4e-4)}
    save_file(baked, str(tmp_path / "baked.safetensors"), metadata=config)
    results = {}
    for name in ("plain", "baked"):
        stack = LoraStack([root])
        stack.load(tmp_path / f"{name}.safetensors")
        results[name] = {s: (stack.set_strength(s), layer.weight.detach().clone())[1] for s in (1.0, 0.5)}
        stack.unload()
    assert not torch.equal(results["baked"][1.0], results["plain"][1.0])  # the (nudged) baked norms at 1
    torch.testing.assert_close(results["baked"][1.0], results["plain"][1.0] / (1 + 4e-4))
    assert torch.equal(results["baked"][0.5], results["plain"][0.5])  # computed, as upstream, elsewhere

    # norms baked on bfloat16 weights (a bf16 training run) are coarser than this float32 layer's own
    save_file(baked, str(tmp_path / "coarse.safetensors"), metadata={**config, "norm_dtype": "bfloat16"})
    stack = LoraStack([root])
    assert stack.load(tmp_path / "coarse.safetensors") == []
    assert torch.equal(layer.weight.detach(), results["plain"][1.0])
    stack.unload()

    # stacked on another file that is on, a file sees that file's output, not the base: norms computed
    shift = {
        "model.proj.parametrizations.weight.0." + k: v.half() for k, v in dict(lora_A=a, lora_B=b).items()
    }
    save_file(shift, str(tmp_path / "first.safetensors"), metadata={"lora_config": json.dumps({"rank": 2})})
    stacked = {}
    for name in ("plain", "baked"):
        stack = LoraStack([root])
        stack.load([tmp_path / "first.safetensors", tmp_path / f"{name}.safetensors"])
        stacked[name] = layer.weight.detach().clone()
        stack.set_strength(0.0, lora_index=0)  # off: the second file sees the base weight again
        stacked[f"{name} alone"] = layer.weight.detach().clone()
        stack.unload()
    assert torch.equal(stacked["baked"], stacked["plain"])
    assert torch.equal(stacked["baked alone"], results["baked"][1.0])


def test_resuming_an_xs_file_keeps_its_bases_and_saving_writes_them_and_the_baked_norms(model, tmp_path):
    roots = {"model": model.model.model, "conditioner": model.model.conditioner}
    config, start, _ = read_start(XS, roots)
    adapters = AdapterSet.attach(roots, config, torch.Generator().manual_seed(0), start)
    try:
        again = save_lora_file(tmp_path / "again.safetensors", adapters)
    finally:
        adapters.detach()
    written, trained = (
        read_svd_bases(companion_bases(again)),
        read_svd_bases(HERE / "dora-rows-xs.svd_bases.pt"),
    )
    assert written.keys() == trained.keys()
    for key in written:
        assert torch.equal(written[key]["U"], trained[key]["U"]) and torch.equal(
            written[key]["V"], trained[key]["V"]
        )
    first, second = read_lora_file(XS), read_lora_file(again)
    for name, params in first.layers.items():
        torch.testing.assert_close(second.layers[name][BAKED_NORM], params[BAKED_NORM], rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoraNote)
        assert model.load_lora([again], svd_bases=companion_bases(again)) == []
    model.unload_lora()


def test_an_xs_run_trains_against_a_given_frozen_bases_file_and_writes_them_beside_its_file(model, tmp_path):
    data = tmp_path / "clips"
    data.mkdir()
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(22050) / 44100)
    sf.write(data / "a.wav", np.stack([tone, tone], 1).astype(np.float32), 44100)
    (data / "a.txt").write_text("a tone\n")
    config = AdapterConfig(rank=4, adapter_type="lora-xs", include=("transformer.layers.0.",))
    trainer = LoraTrainer(
        model, data, TrainingSettings(steps=1, duration=0.5, adapter=config), svd_bases=BASES
    )
    try:
        bases = read_svd_bases(BASES)
        for name, adapter in trainer.adapters.adapters.items():
            assert torch.equal(adapter.U, bases[f"model.{name}.weight"]["U"][:, :4].float())
        trainer.train(save_path=tmp_path / "xs.safetensors")
    finally:
        trainer.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoraNote)
        assert model.load_lora([tmp_path / "xs.safetensors"], svd_bases=BASES) == []
        on_given = weights(model, read_lora_file(tmp_path / "xs.safetensors").layers)
        model.unload_lora()
        model.load_lora([tmp_path / "xs.safetensors"], svd_bases=companion_bases(tmp_path / "xs.safetensors"))
        on_written = weights(model, on_given)
        model.unload_lora()
    assert all(torch.equal(on_given[name], on_written[name]) for name in on_given)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_float32_baked_norms_hold_on_a_half_precision_model(dtype):
    """Rounding the base weights to half precision is float noise, not another base model."""
    half = StableAudioModel.from_pretrained(str(MODELS / "small-music-base"), device="cpu", dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoraNote)
        assert half.load_lora([ROWS, XS], svd_bases=[None, BASES]) == []
    out = half.generate(prompt="rain", duration=0.5, steps=2, seed=4, return_latents=True, disable_tqdm=True)
    half.unload_lora()
    assert torch.isfinite(out).all()
