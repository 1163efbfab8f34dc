"""sa3lab.training: a training request's checks, a run from the (loopback) Hub, an interrupt mid-step.

The engine's trainer: tests/engine/test_training.py; the training form: tests/forms/test_training_form.py.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from training_helpers import BASE, SHORT, lora_header, one_sentence

from sa3lab.lab import Lab
from sa3lab.training import TrainingRequest, read_card, write_example_dataset


@pytest.fixture(scope="module")
def lab() -> Lab:
    """One lab for the module, so the base fixture loads once."""
    return Lab()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return write_example_dataset(tmp_path_factory.mktemp("data"), clips=3, seconds=0.6)


def test_request_checks_settings_in_one_sentence(clips):
    base = dict(model=BASE, data_dir=str(clips))
    for bad, words in [
        (dict(steps=0), "Steps must be"),
        (dict(learning_rate=float("nan")), "learning rate"),
        (dict(rank=0), "Rank must be"),
        (dict(adapter_type="qlora"), "adapter_type must be one of"),
        (dict(base_precision="int8"), "Base precision"),
        (dict(name="../x"), "plain file name"),
        (dict(resume_from="nowhere.safetensors"), "was not found"),
        (dict(data_dir="nowhere"), "does not exist"),
        (dict(model="same-s"), "same-s is not a text-to-audio model"),
    ]:
        with pytest.raises(ValueError, match=words) as err:
            TrainingRequest(**{**base, **bad}).check()
        assert one_sentence(str(err.value)), str(err.value)


def test_a_catalog_base_model_trains_from_the_hub_and_the_card_names_its_revision(hub, clips, tmp_path):
    result = Lab().train(
        TrainingRequest(
            model="small-music-base",
            data_dir=str(clips),
            steps=1,
            rank=2,
            duration=SHORT,
            output_dir=str(tmp_path),
        )
    )
    card = read_card(result.card_path)
    assert card["repo_id"] == "stabilityai/stable-audio-3-small-music-base" and card["revision"]
    assert card["model"] == "small-music-base" and lora_header(result.lora_path)["rank"] == 2


def test_an_interrupt_mid_step_keeps_the_last_finished_step(lab, clips, tmp_path):
    """The notebook's interrupt (SIGINT) in step 3's forward pass: steps 1-2 are saved and the run says so."""
    model, _, _ = lab.load_generator(BASE, None, None)
    calls = []

    def interrupt_in_third_step(module, args, output):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)

    handle = model.model.dit.register_forward_hook(interrupt_in_third_step)
    # as a kernel does while a cell runs (an earlier test in the process may have left another handler)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        request = TrainingRequest(
            model=BASE, data_dir=str(clips), steps=4, rank=2, duration=SHORT, output_dir=str(tmp_path)
        )
        result = lab.train(request)
    finally:
        handle.remove()
        signal.signal(signal.SIGINT, previous)
    assert result.stopped and result.step == 2 and len(result.losses) == 2
    with safe_open(result.lora_path, framework="pt") as f:
        assert json.loads(f.metadata()["training"])["step"] == 2


def test_previews_through_the_run_core_leave_training_alone(lab, clips, tmp_path):
    """A run with a preview every step saves the same adapter, bit for bit, as the same run without."""

    def run(folder, every):
        request = TrainingRequest(
            model=BASE,
            data_dir=str(clips),
            steps=3,
            rank=2,
            duration=SHORT,
            output_dir=str(tmp_path / folder),
            preview_every=every,
            preview_steps=2,
            preview_duration=SHORT,
        )
        return lab.train(request)

    plain, seen = run("plain", 0), run("previews", 1)
    assert not plain.previews and [step for step, _ in seen.previews] == [1, 2, 3]
    expected, got = load_file(plain.lora_path), load_file(seen.lora_path)  # the float16 files
    assert expected.keys() == got.keys() and all(torch.equal(got[k], expected[k]) for k in expected)
    resume_files = [Path(r.lora_path).with_suffix(".resume.pt") for r in (plain, seen)]
    states = [torch.load(path, weights_only=True) for path in resume_files]
    expected, got = (state["adapters"] for state in states)  # float32
    assert expected.keys() == got.keys() and all(torch.equal(got[k], expected[k]) for k in expected)
    for part in ("generator", "dropout_generator"):  # the run's own random states
        assert torch.equal(states[0][part], states[1][part])
    assert states[0]["rng"] == states[1]["rng"] and states[0]["data_rng"] == states[1]["data_rng"]
