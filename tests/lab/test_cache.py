"""The kernel model cache: hits, eviction that really frees, configurable size."""

import gc
import weakref

import pytest
import torch

from sa3lab.cache import ModelCache


def loader(log):
    def load():
        log.append("load")
        return torch.nn.Linear(64, 64)

    return load


def test_second_get_is_a_hit_with_near_zero_load_time():
    cache, log = ModelCache(), []
    model, hit, elapsed = cache.get("a", loader(log))
    again, hit2, elapsed2 = cache.get("a", loader(log))
    assert (hit, hit2) == (False, True) and again is model and log == ["load"]
    assert elapsed2 < 0.05


def test_loading_another_model_evicts_and_frees_the_previous_one():
    cache, log = ModelCache(max_models=1), []
    model, _, _ = cache.get("a", loader(log))
    ref = weakref.ref(model)
    del model
    cache.get("b", loader(log))
    gc.collect()
    assert ref() is None and cache.keys() == ["b"]


def test_a_bigger_cache_keeps_the_most_recently_used():
    cache, log = ModelCache(max_models=2), []
    cache.get("a", loader(log))
    cache.get("b", loader(log))
    cache.get("a", loader(log))
    cache.get("c", loader(log))
    assert cache.keys() == ["a", "c"]
    with pytest.raises(ValueError):
        ModelCache(max_models=0)


def test_a_load_that_fails_before_building_keeps_the_previous_model():
    cache, log = ModelCache(max_models=1), []
    model, _, _ = cache.get("a", loader(log))

    def damaged_files():
        raise ValueError("model.safetensors is truncated")

    with pytest.raises(ValueError, match="truncated"):
        cache.get("b", lambda files: log.append("built b"), prepare=damaged_files)
    assert cache.keys() == ["a"] and "built b" not in log
    again, hit, _ = cache.get("a", loader(log))
    assert hit and again is model


def test_build_gets_what_prepare_made_and_the_old_model_goes_before_building():
    cache, seen = ModelCache(max_models=1), []
    cache.get("a", lambda: "model a")
    model, hit, _ = cache.get(
        "b",
        lambda files: seen.append((files, cache.keys())) or f"model from {files}",
        prepare=lambda: "files b",
    )
    assert (model, hit) == ("model from files b", False)
    assert seen == [("files b", [])]  # evicted (memory freed) only once the files were had
    with pytest.raises(ValueError, match="whole number of at least 1"):
        ModelCache(max_models="2")
