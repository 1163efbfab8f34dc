"""The Lab end to end against the loopback Hub: cache hits, healing, rejected tokens, no token leaks."""

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hub_fixtures import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN, REJECTED_TOKEN
from parity import MODELS

from sa3lab import catalog
from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab
from sa3lab.roundtrip import RoundTripRequest
from stable_audio_3.hub import CacheRepairedWarning, TokenRejectedWarning

TOKENS = (ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN, REJECTED_TOKEN)


def request(tmp_path, model="small-music", **kw):
    base = dict(prompt="rain on a tin roof", duration=0.5, steps=2, seed=3, output_dir=str(tmp_path / "out"))
    return GenerationRequest(model=model, **{**base, **kw})


def test_second_run_of_the_same_model_is_a_cache_hit(tmp_path):
    lab = Lab()
    first = lab.generate(request(tmp_path, model="demo"))
    second = lab.generate(request(tmp_path, model="demo"))
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.load_elapsed_s < 0.05 and second.timings["load"] == second.load_elapsed_s
    assert json.loads(open(second.paths[0].replace(".wav", ".json")).read())["cache_hit"] is True


def test_no_token_leaks_into_results_files_logs_warnings_or_errors(
    hub, no_retry_waits, tmp_path, capfd, caplog, monkeypatch
):
    """Every path a token takes: pasted (accepted, terms missing, unknown), HF_TOKEN, a failing Hub."""
    caplog.set_level(logging.DEBUG)
    texts = []
    lab = Lab()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = lab.generate(request(tmp_path), pasted_token=ACCEPTED_TOKEN)
        texts += [json.dumps(result.metadata(), default=str), repr(result)]
        for token in (NOT_ACCEPTED_TOKEN, REJECTED_TOKEN):
            with pytest.raises(ValueError) as info:
                Lab().generate(request(tmp_path), pasted_token=token)
            texts += [str(info.value), repr(info.value)]
        monkeypatch.setenv("HF_TOKEN", NOT_ACCEPTED_TOKEN)
        with pytest.raises(ValueError) as info:
            Lab().generate(request(tmp_path))
        texts += [str(info.value)]
        hub.inject_fault("*/resolve/*/model.safetensors", "500", count=50)
        with pytest.raises(Exception) as info:  # noqa: PT011 - whatever the failure, its text is scanned
            Lab(checker=lab.checker).generate(
                request(tmp_path, model="small-music-base"), pasted_token=ACCEPTED_TOKEN
            )
        texts += [str(info.value), repr(info.value)]
    out, err = capfd.readouterr()
    texts += [out, err, caplog.text, *(str(w.message) for w in caught)]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in files) and any(p.suffix == ".wav" for p in files)
    for token in TOKENS:
        assert not any(token in text for text in texts), token
        leaked = [p for p in files if token.encode() in p.read_bytes()]
        assert not leaked, (token, leaked)


def test_a_headless_run_on_a_base_folder_uses_the_base_defaults(tmp_path):
    result = Lab().generate(request(tmp_path, model=str(MODELS / "small-music-base"), steps=None))
    assert (result.settings["steps"], result.settings["cfg_scale"], result.settings["sampler"]) == (
        50,
        7.0,
        "euler",
    )
    sidecar = json.loads(open(result.paths[0].replace(".wav", ".json")).read())
    assert sidecar["settings"]["steps"] == 50


def test_a_damaged_cached_model_is_explained_offline_repaired_online_and_never_costs_the_loaded_one(
    hub, monkeypatch
):
    lab, same_l, same_s = Lab(), catalog.get("same-l"), catalog.get("same-s")
    first, _, _ = lab.load_autoencoder("same-l", same_l, None)
    weights = Path(first.source.weights_path)
    lab.load_autoencoder("same-s", same_s, None)  # a one-model cache: same-l is evicted
    del first
    blob = weights.resolve()
    blob.write_bytes(blob.read_bytes()[:1000])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = Path(os.environ["HF_HOME"]) / "hub" / "models--stabilityai--SAME-L"
    with pytest.raises(ValueError, match=f"is truncated: 1000 of .* delete the folder {folder} "):
        lab.load_autoencoder("same-l", same_l, None)
    assert lab.load_autoencoder("same-s", same_s, None)[1]  # still loaded: a cache hit
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.warns(
        CacheRepairedWarning, match="model.safetensors of stabilityai/SAME-L .* downloaded again"
    ):
        repaired, hit, _ = lab.load_autoencoder("same-l", same_l, None)
    assert not hit and repaired.latent_dim > 0 and "same-l" in lab.cache.keys()[0]


def test_a_rejected_token_runs_open_models_anonymously_with_one_notice(hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", REJECTED_TOKEN)
    lab = Lab()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = lab.roundtrip(RoundTripRequest("same-s", duration=0.5, seed=1, output_dir=str(tmp_path)))
    notices = {str(w.message) for w in caught if w.category is TokenRejectedWarning}
    assert len(notices) == 1 and result.run.repo_id == "stabilityai/SAME-S"
    (notice,) = notices
    assert notice.startswith("The Hub rejected the token from the HF_TOKEN environment variable")
    assert not any(r.had_token for r in hub.requests if "/resolve/" in r.path)  # anonymous downloads
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        lab.roundtrip(RoundTripRequest("same-s", duration=0.5, seed=2, output_dir=str(tmp_path)))
    assert not [w for w in again if w.category is TokenRejectedWarning]  # noted once per kernel
    with pytest.raises(ValueError, match="is gated: set HF_TOKEN to a valid token"):
        lab.generate(request(tmp_path))
    assert REJECTED_TOKEN not in notice


LORA = MODELS / "lora" / "lora_a.safetensors"
MODE_RUNS = {
    "text-to-audio": dict(negative_prompt="hiss", cfg_scale=3.0, cfg_interval=(0.1, 0.9), scale_phi=0.5),
    "audio-to-audio": dict(mode="audio-to-audio", init_noise_level=0.6, sampler="euler"),
    "inpaint": dict(mode="inpaint", regions=[(0.1, 0.3), (0.6, 1)], schedule={"type": "none"}),
    "continuation": dict(mode="continuation", duration=1.5, continuation_s=0.5, duration_padding=1.0),
    "lora": dict(lora_files=[str(LORA), str(LORA)], lora_strengths=[0.5, -0.25], lora_intervals=[(0.5, 1.0)],
                 lora_layer_filters=["", "transformer.layers.0."], cfg_norm_threshold=2.0, apg_scale=0.0),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(MODE_RUNS))
def test_a_result_is_reproduced_bit_exactly_from_its_sidecar_alone(tmp_path, kind):
    lab, source = Lab(), tmp_path / "source.wav"
    sf.write(source, 0.3 * np.sin(np.linspace(0, 2000, 44100))[:, None].repeat(2, 1), 44100)
    kw = {"duration": 1.0, "source_audio": str(source), **MODE_RUNS[kind]}
    first = lab.generate(request(tmp_path, model="demo", seed=-1, steps=None, **kw))
    sidecar = json.loads(open(first.paths[0].replace(".wav", ".json")).read())
    again = GenerationRequest.from_record(sidecar)
    again.output_dir = str(tmp_path / "again")
    second = lab.generate(again)
    assert second.seed == first.seed and second.settings == first.settings
    original, _ = sf.read(first.paths[0], dtype="float32")
    reproduced, _ = sf.read(second.paths[0], dtype="float32")
    assert np.array_equal(original, reproduced)
    settings = sidecar["settings"]
    assert (settings["mode"], settings["steps"], sidecar["seed"]) == (again.mode, 8, first.seed)
    if again.mode != "text-to-audio":
        assert settings["source"] == {
            "file": str(source),
            "name": "source.wav",
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        }
    if kind == "continuation":
        assert (settings["continuation_s"], settings["kept_s"], settings["regions"]) == (
            0.5,
            1.0,
            [[1.0, 1.5]],
        )
    if kind == "lora":
        digest = hashlib.sha256(LORA.read_bytes()).hexdigest()
        assert [
            (x["name"], x["sha256"], x["strength"], x["interval"], x["layer_filter"])
            for x in settings["loras"]
        ] == [
            ("lora_a.safetensors", digest, 0.5, [0.5, 1.0], ""),
            ("lora_a.safetensors", digest, -0.25, [0.5, 1.0], "transformer.layers.0."),
        ]


def test_lora_files_stay_loaded_between_runs_and_leave_no_trace_on_other_runs(tmp_path):
    lab, lora = Lab(), tmp_path / "style.safetensors"
    lora.write_bytes(LORA.read_bytes())
    plain = lab.generate(request(tmp_path, model="demo"))
    styled = lab.generate(request(tmp_path, model="demo", lora_files=[str(lora)], lora_strengths=[0.8]))
    weaker = lab.generate(request(tmp_path, model="demo", lora_files=[str(lora)], lora_strengths=[0.2]))
    assert not np.array_equal(styled.audio, plain.audio) and not np.array_equal(weaker.audio, styled.audio)
    # the file is not read again while it is unchanged: damaged on disk with its old time, it still runs
    version = lora.stat()
    lora.write_bytes(b"\0" * version.st_size)
    os.utime(lora, ns=(version.st_atime_ns, version.st_mtime_ns))
    again = lab.generate(request(tmp_path, model="demo", lora_files=[str(lora)], lora_strengths=[0.8]))
    assert np.array_equal(again.audio, styled.audio)  # and its strength is this run's, not the last run's
    # rewritten (a new time): read again, so the damage is found
    os.utime(lora, ns=(version.st_atime_ns, version.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="is not a usable LoRA file"):
        lab.generate(request(tmp_path, model="demo", lora_files=[str(lora)]))
    assert np.array_equal(lab.generate(request(tmp_path, model="demo")).audio, plain.audio)


def test_a_lora_file_that_makes_non_finite_audio_is_named(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(LORA), "pt") as f:
        loud = {key: f.get_tensor(key) * 1e30 for key in f.keys()}
        header = f.metadata()
    save_file(loud, str(tmp_path / "loud.safetensors"), header)
    lab = Lab()
    with pytest.raises(ValueError) as caught:
        lab.generate(request(tmp_path, model="demo", lora_files=[str(tmp_path / "loud.safetensors")]))
    assert str(caught.value) == (
        "The generated audio (with the LoRA file loud.safetensors) came out with NaN or infinite values; "
        "check that LoRA file, or try lower strengths or another seed."
    )
    assert np.isfinite(lab.generate(request(tmp_path, model="demo")).audio.numpy()).all()


def test_the_loading_stage_says_download_only_when_the_model_is_not_here_yet(hub, tmp_path):
    class Stages:
        def __init__(self):
            self.seen = []

        def stage(self, text):
            self.seen.append(text)

        def start(self, total, text):
            pass

        def step(self, done, total, text=None):
            pass

    lab, stages = Lab(), Stages()
    lab.core.load("demo", progress=stages)
    lab.core.load("small-music-base", progress=stages)  # open, not cached yet
    lab.core.load("small-music-base", progress=stages)
    lab.core.load("same-s", progress=stages, autoencoder=True)
    assert stages.seen == [
        "loading the model",
        "downloading the model (first use only), then loading it",
        "loading the model",
        "downloading the autoencoder (first use only), then loading it",
    ]
