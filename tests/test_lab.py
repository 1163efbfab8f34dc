"""The Lab end to end against the loopback Hub: cache hits, and no token anywhere it could leak to."""

import json
import logging
import warnings

import pytest
from hub_fixtures import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN
from parity import MODELS

from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab

UNKNOWN_TOKEN = "hf_test_unknown_0123456789abcdef"
TOKENS = (ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN, UNKNOWN_TOKEN)


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


def test_no_token_leaks_into_results_files_logs_warnings_or_errors(hub, tmp_path, capfd, caplog, monkeypatch):
    """Every path a token takes: pasted (accepted, terms missing, unknown), HF_TOKEN, a failing Hub."""
    caplog.set_level(logging.DEBUG)
    texts = []
    lab = Lab()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = lab.generate(request(tmp_path), pasted_token=ACCEPTED_TOKEN)
        texts += [json.dumps(result.metadata(), default=str), repr(result)]
        for token in (NOT_ACCEPTED_TOKEN, UNKNOWN_TOKEN):
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
