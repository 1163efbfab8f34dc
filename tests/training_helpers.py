"""Pieces shared by the LoRA training tests of the lab, the form, the notebook and the kernel."""

import json
from pathlib import Path

from parity import MODELS
from safetensors import safe_open
from safetensors.torch import load_file

BASE = str(MODELS / "small-music-base")
REFERENCE = Path(__file__).parent / "fixtures" / "lora-train-step"  # upstream's one-step reference
EXPECTED_KEYS = json.loads((REFERENCE / "expected_keys.json").read_text())
SHORT = 6 * 4096 / 44100  # six latent frames


def lora_header(path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["lora_config"])


def assert_upstream_keys(path, kind: str = "dora-rows") -> None:
    """Exactly the keys upstream's load_lora creates on this model (it loads with strict=False), and for
    row-normalised DoRA one baked row norm per layer, as upstream's later package writes."""
    keys = sorted(load_file(str(path)))
    baked = [k for k in keys if k.endswith(".baked_vnorm_row")]
    assert sorted(set(keys) - set(baked)) == sorted(EXPECTED_KEYS[kind])
    magnitudes = [k for k in EXPECTED_KEYS[kind] if k.endswith(".magnitude")]
    wanted = magnitudes if kind in ("dora-rows", "dora-rows-xs") else []
    assert baked == sorted(k.removesuffix("magnitude") + "baked_vnorm_row" for k in wanted)


def one_sentence(text: str | None) -> bool:
    return bool(text) and text.endswith(".") and ". " not in text
