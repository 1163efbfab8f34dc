"""The real huggingface_hub download code against the loopback Hub: gating, faults, caching, healing."""

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
from hub_fixtures import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN, REJECTED_TOKEN
from hubserver import RepoSpec
from parity import MODELS

from stable_audio_3.hub import (
    DIFFUSION_MODELS,
    CacheRepairedWarning,
    HubAccessError,
    TokenRejectedWarning,
    resolve_autoencoder_files,
    resolve_model_files,
)
from stable_audio_3.loading import DamagedFileError

GATED = "small-music"


def test_gated_model_downloads_with_an_accepted_token(hub):
    files = resolve_model_files(GATED, token=ACCEPTED_TOKEN)
    assert files.config_path.name == "model_config.json" and files.weights_path.stat().st_size > 1000
    assert (files.text_encoder_dir / "tokenizer.json").exists()
    assert files.repo_id == "stabilityai/stable-audio-3-small-music"
    assert files.revision == hub.repos[files.repo_id].commit


def test_no_token_asks_to_log_in(hub):
    with pytest.raises(HubAccessError) as info:
        resolve_model_files(GATED)
    assert info.value.reason == "needs_login" and "log in" in str(info.value)


def test_token_without_accepted_terms_points_to_the_model_page(hub):
    with pytest.raises(HubAccessError) as info:
        resolve_model_files(GATED, token=NOT_ACCEPTED_TOKEN)
    assert info.value.reason == "needs_terms"
    assert "https://huggingface.co/stabilityai/stable-audio-3-small-music" in str(info.value)
    assert NOT_ACCEPTED_TOKEN not in str(info.value)


def test_open_models_need_no_token_and_unknown_repos_are_not_found(hub):
    assert resolve_model_files("small-music-base").weights_path.exists()
    with pytest.raises(HubAccessError) as info:
        resolve_model_files("someone/not-a-model")
    assert info.value.reason == "not_found"
    with pytest.raises(ValueError, match="known models"):
        resolve_model_files("not-a-name")


def test_server_error_and_dropped_connection_give_a_clear_sentence_then_retry_works(hub, no_retry_waits):
    hub.inject_fault("*/SAME-S/resolve/*/model.safetensors", "500", count=10)
    with pytest.raises(HubAccessError) as info:
        resolve_autoencoder_files("same-s")
    assert info.value.reason == "server_error" and "try again" in str(info.value)
    assert no_retry_waits  # it was retried before giving up
    no_retry_waits.clear()
    hub.inject_fault("*/SAME-S/resolve/*/model.safetensors", "drop", count=10)
    with pytest.raises(HubAccessError) as info:
        resolve_autoencoder_files("same-s")
    assert info.value.reason == "server_error" and no_retry_waits
    hub._faults.clear()
    files = resolve_autoencoder_files("same-s")
    assert (
        files.weights_path.stat().st_size
        == (hub.repos["stabilityai/SAME-S"].folder / "model.safetensors").stat().st_size
    )
    assert files.weights_prefix == "" and files.repo_id == "stabilityai/SAME-S" and files.revision


def test_slow_response_still_completes(hub):
    hub.inject_fault("*/SAME-L/resolve/*/model_config.json", "slow", delay=1.0)
    assert resolve_autoencoder_files("same-l").config_path.exists()


def test_autoencoder_prefers_an_already_cached_full_checkpoint(hub):
    resolve_model_files(GATED, token=ACCEPTED_TOKEN)
    before = hub.count(contains="SAME-S")
    files = resolve_autoencoder_files("same-s")
    assert hub.count(contains="SAME-S") == before == 0
    assert files.weights_prefix == "pretransform.model." and files.repo_id == DIFFUSION_MODELS[GATED]


def test_offline_uses_the_cache_and_says_so_when_missing(hub, monkeypatch):
    resolve_model_files("small-music-base")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.requests)
    assert resolve_model_files("small-music-base").weights_path.exists()
    assert len(hub.requests) == n
    with pytest.raises(HubAccessError) as info:
        resolve_autoencoder_files("same-l")
    assert info.value.reason == "offline"


def test_the_server_log_never_holds_a_token(hub):
    resolve_model_files(GATED, token=ACCEPTED_TOKEN)
    assert any(r.had_token for r in hub.requests)
    assert ACCEPTED_TOKEN not in repr(hub.requests)


# ------------------------------------------------------------------ a token the Hub rejects


def test_a_rejected_token_falls_back_to_anonymous_for_an_open_repo_and_says_so(hub, monkeypatch):
    with pytest.warns(TokenRejectedWarning, match="rejected the token.*small-music-base.*without it"):
        files = resolve_model_files("small-music-base", token=REJECTED_TOKEN)
    assert files.weights_path.exists() and (files.text_encoder_dir / "tokenizer.json").exists()
    assert any(r.status == 401 and r.had_token for r in hub.requests)  # really refused, then anonymous
    assert any(r.status == 200 and not r.had_token and "resolve" in r.path for r in hub.requests)
    monkeypatch.setenv("HF_TOKEN", REJECTED_TOKEN)  # huggingface_hub's own token falls back too
    with pytest.warns(TokenRejectedWarning):
        assert resolve_autoencoder_files("same-l").weights_path.exists()


def test_a_rejected_token_on_a_gated_repo_says_to_replace_it(hub):
    with pytest.raises(HubAccessError) as info:
        resolve_model_files(GATED, token=REJECTED_TOKEN)
    text = str(info.value)
    assert info.value.reason == "token_rejected" and "rejected the token" in text
    assert "https://huggingface.co/settings/tokens" in text and DIFFUSION_MODELS[GATED] in text
    assert REJECTED_TOKEN not in text


# ------------------------------------------------------------------ damaged files in the cache


def _cut(path: Path) -> bytes:
    """Truncate the cache blob behind ``path`` to half; returns the intact bytes."""
    blob = path.resolve()
    assert "blobs" in blob.parts and blob.is_relative_to(Path(os.environ["HF_HOME"]))
    good = blob.read_bytes()
    blob.write_bytes(good[: len(good) // 2])
    return good


def test_a_truncated_cached_file_is_downloaded_again_once(hub):
    files = resolve_autoencoder_files("same-s")
    good = _cut(files.weights_path)
    gets = hub.count("GET", contains="SAME-S/resolve/")
    with pytest.warns(CacheRepairedWarning, match="model.safetensors of stabilityai/SAME-S .* is truncated"):
        again = resolve_autoencoder_files("same-s")
    assert again.weights_path.read_bytes() == good
    assert hub.count("GET", contains="SAME-S/resolve/") == gets + 1  # once, the damaged file only
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # healed: no more warnings, no more downloads
        resolve_autoencoder_files("same-s")
    assert hub.count("GET", contains="SAME-S/resolve/") == gets + 1


def test_a_broken_config_and_a_damaged_text_encoder_file_are_repaired_too(hub):
    files = resolve_model_files("small-music-base")
    _cut(files.config_path)
    _cut(next(files.text_encoder_dir.glob("*.safetensors")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = resolve_model_files("small-music-base")
    repaired = sorted(str(w.message).split(" of ")[0] for w in caught if w.category is CacheRepairedWarning)
    assert repaired == ["model_config.json", "t5gemma-b-b-ul2/model.safetensors"]
    assert json.loads(again.config_path.read_text())["model"]


def test_offline_a_damaged_file_names_the_folder_to_delete(hub, monkeypatch):
    files = resolve_autoencoder_files("same-s")
    _cut(files.weights_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.requests)
    with pytest.raises(HubAccessError) as info:
        resolve_autoencoder_files("same-s")
    folder = Path(os.environ["HF_HOME"]) / "hub" / "models--stabilityai--SAME-S"
    assert info.value.reason == "damaged" and f"delete the folder {folder} " in str(info.value)
    assert "is truncated" in str(info.value) and "HF_HUB_OFFLINE" in str(info.value)
    assert len(hub.requests) == n


def test_a_file_damaged_on_the_hub_itself_is_fetched_once_more_then_explained(hub, tmp_path):
    folder = tmp_path / "broken-repo"
    folder.mkdir()
    source = hub.repos["stabilityai/SAME-S"].folder
    shutil.copy(source / "model_config.json", folder)
    data = (source / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) - 100])
    hub.repos["someone/broken"] = RepoSpec(folder)
    with pytest.raises(HubAccessError) as info:
        resolve_autoencoder_files("someone/broken")
    assert info.value.reason == "damaged" and "even after downloading it again" in str(info.value)
    assert "models--someone--broken" in str(info.value)
    assert hub.count("GET", contains="someone/broken/resolve/main/model.safetensors") == 1
    assert hub.count("GET", contains="someone/broken/resolve/") == 3  # config, weights, weights again


def test_a_damaged_local_folder_is_refused_before_anything_is_built(tmp_path):
    folder = tmp_path / "my-model"
    shutil.copytree(MODELS / "same-s", folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(
        DamagedFileError, match=f"{weights} is truncated: .*; download it again or replace it"
    ):
        resolve_autoencoder_files(folder)


def test_a_prompt_is_counted_from_files_already_here_and_nothing_is_downloaded_to_count_it(hub):
    from stable_audio_3 import StableAudioModel
    from stable_audio_3.pipeline import prompt_fit

    prompt = "rain on a tin roof, " * 60
    requests_before = len(hub.requests)
    assert prompt_fit(GATED, prompt) is None and prompt_fit("small-music-base", prompt) is None
    assert prompt_fit("/no/such/folder", prompt) is None
    with pytest.raises(ValueError, match="prompt must be text, got 5"):  # refused, files here or not
        prompt_fit("/no/such/folder", 5)
    assert len(hub.requests) == requests_before  # not downloaded, not even asked
    files = resolve_model_files(GATED, token=ACCEPTED_TOKEN)
    counted = prompt_fit(GATED, prompt)  # from the huggingface_hub cache, the weights not loaded
    model = StableAudioModel.from_pretrained(files)
    assert counted == model.prompt_fit(prompt) and counted.cut and counted.tokens > counted.max_tokens
    assert prompt_fit(GATED, "rain") == model.prompt_fit("rain") and not model.prompt_fit("rain").cut
    with pytest.raises(ValueError, match=r"prompt must be text, got \['rain'\]"):
        model.prompt_fit(["rain"])
