"""Newer LoRA files through the run core: an -xs file's frozen SVD bases reach the engine and the
record, and a file loaded without them is noted in the record and warned, on every run (issue 25)."""

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from parity import MODELS

from sa3lab.generation import GenerationRequest, LoraUse
from sa3lab.lab import Lab
from sa3lab.training import TrainingRequest
from stable_audio_3.lora import LoraNote

HERE = Path(__file__).parents[1] / "fixtures" / "lora-baked"
XS, BASES = str(HERE / "dora-rows-xs.safetensors"), str(HERE / "svd_bases.pt")


def run(lab, tmp_path, **kw):
    request = GenerationRequest(
        model=str(MODELS / "small-music-base"),
        prompt="warm analog synth",
        duration=1.0,
        steps=2,
        seed=3,
        lora_files=[XS],
        output_dir=str(tmp_path),
        **kw,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = lab.generate(request)
    return result, [str(w.message) for w in caught if w.category is LoraNote]


def test_the_bases_file_is_used_and_recorded_and_its_absence_is_noted_on_every_run(tmp_path):
    lab = Lab()
    bare, warned = run(lab, tmp_path)
    (lora,) = bare.settings["loras"]
    assert lora["svd_bases"] is None and any("without the frozen SVD bases file" in n for n in lora["notes"])
    assert set(lora["notes"]) <= set(warned)
    again, warned_again = run(lab, tmp_path)  # the file stays loaded: its notes still hold, and say so
    assert again.settings["loras"][0]["notes"] == lora["notes"] and set(lora["notes"]) <= set(warned_again)

    exact, warned = run(lab, tmp_path, lora_svd_bases=[BASES])
    (lora,) = exact.settings["loras"]
    assert warned == [] and lora["notes"] == []
    digest = hashlib.sha256(Path(BASES).read_bytes()).hexdigest()
    assert lora["svd_bases"] == {"file": BASES, "name": "svd_bases.pt", "sha256": digest}
    assert GenerationRequest.from_record(exact.metadata()).loras() == [LoraUse(XS, svd_bases=BASES)]
    assert not np.allclose(exact.audio.numpy(), bare.audio.numpy(), atol=1e-4)


def test_a_training_request_takes_an_svd_bases_file_for_xs_types_only(tmp_path):
    base = dict(model=str(MODELS / "small-music-base"), data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="only for -xs adapter types, not dora-rows; leave it empty"):
        TrainingRequest(**base, svd_bases=BASES)
    with pytest.raises(ValueError, match="SVD bases file /no/svd_bases.pt was not found"):
        TrainingRequest(**base, adapter_type="lora-xs", svd_bases="/no/svd_bases.pt")
