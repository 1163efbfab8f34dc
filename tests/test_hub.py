"""The real huggingface_hub download code against the loopback Hub: gating, faults, caching."""

import pytest
from hub_fixtures import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN

from stable_audio_3.hub import (
    DIFFUSION_MODELS,
    HubAccessError,
    resolve_autoencoder_files,
    resolve_model_files,
)

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


def test_server_error_and_dropped_connection_give_a_clear_sentence_then_retry_works(hub):
    hub.inject_fault("*/SAME-S/resolve/*/model.safetensors", "500", count=10)
    with pytest.raises(HubAccessError) as info:
        resolve_autoencoder_files("same-s")
    assert info.value.reason == "server_error" and "try again" in str(info.value)
    hub.inject_fault("*/SAME-S/resolve/*/model.safetensors", "drop", count=10)
    with pytest.raises(HubAccessError) as info:
        resolve_autoencoder_files("same-s")
    assert info.value.reason == "server_error"
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
