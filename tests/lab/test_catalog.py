"""The catalog (sa3lab.catalog): collections, gating, defaults per model kind."""

import pytest

from sa3lab import catalog


def test_catalog_covers_the_collections_with_defaults_and_gating():
    keys = set(catalog.ENTRIES)
    assert {
        "small-music",
        "small-sfx",
        "medium",
        "small-music-base",
        "small-sfx-base",
        "medium-base",
        "same-s",
        "same-l",
        "demo",
        "optimized",
    } <= keys
    assert all(catalog.get(k).gated for k in ("small-music", "small-sfx", "medium"))
    assert not any(catalog.get(k).gated for k in ("small-music-base", "same-s", "same-l", "demo"))
    assert catalog.get("medium-base").defaults["steps"] == 50 and catalog.get("medium").defaults["steps"] == 8
    assert catalog.get("small-sfx-base").sibling == "small-sfx"
    opt = catalog.get("optimized")
    assert not opt.runnable and "model.safetensors" in opt.not_runnable_reason
    assert "noise" in catalog.get("demo").description
    with pytest.raises(ValueError, match="small-music"):
        catalog.get("large")
