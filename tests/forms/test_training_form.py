"""The LoRA training form on the tiny base fixture: train, preview, stop, resume, bad input.

The training notebook: tests/notebooks/test_notebooks.py; the form in a real kernel:
tests/notebooks/test_kernel_runs.py; sa3lab.training itself: tests/lab/test_training.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from form_helpers import upload_item
from parity import MODELS
from safetensors.torch import load_file
from training_helpers import BASE, SHORT, assert_upstream_keys, lora_header, one_sentence

from sa3lab.forms import compat
from sa3lab.forms.session import Session
from sa3lab.forms.training import TrainingForm
from sa3lab.lab import Lab
from sa3lab.training import dataset_hash, read_card, write_example_dataset
from stable_audio_3 import StableAudioModel
from stable_audio_3.training import AdapterConfig
from stable_audio_3.training.adapters import AdapterSet, save_lora_file


@pytest.fixture(scope="module")
def session() -> Session:
    """One lab for the module, so the base fixture loads once (as in a notebook kernel)."""
    return Session(Lab())


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return write_example_dataset(tmp_path_factory.mktemp("data"), clips=3, seconds=0.6)


def form_for(session, data, tmp_path, **values) -> TrainingForm:
    form = TrainingForm(
        model=values.pop("model", BASE),
        data_dir=str(data),
        steps=values.pop("steps", 2),
        output_dir=str(tmp_path / "out"),
        rank=4,
        duration=values.pop("duration", SHORT),
        learning_rate=1e-3,
        session=session,
    )
    for name, value in values.items():
        getattr(form, name).value = value
    return form


def lora_list(generation_form) -> list[str]:
    """The files in a generation form's LoRA list."""
    return [use.file for use in generation_form.loras.uses()]


# ------------------------------------------------------------------------------ the form


def test_form_trains_shows_live_progress_and_previews_and_try_it_changes_the_output(session, clips, tmp_path):
    form = form_for(
        session,
        clips,
        tmp_path,
        preview_every=2,
        preview_prompt="a pluck",
        preview_duration=SHORT,
        preview_steps=2,
    )
    shown = []
    form._set_live = shown.append  # every redraw of the live panel
    result = form.run()
    assert form.shell.last_error is None and result.step == 2 and not result.stopped
    during = shown[-2]  # the last redraw while it trained
    assert "step 2/2" in during and "remaining about" in during and "memory" in during
    assert during.count("<audio") == 1 and "alt='spectrogram'" in during and "alt='loss'" in during
    # after the run the panel keeps its last line; the result alone shows the plots (issue 24)
    assert "Training ended" in shown[-1] and "step 2/2" in shown[-1] and "<img" not in shown[-1]
    block = form.shell.results[0]
    assert result.lora_path in block and result.card_path in block and "preview at step 2" in block
    assert_upstream_keys(result.lora_path)
    card = read_card(result.card_path)
    assert card == result.card and result.dataset_hash in Path(result.card_path).read_text()
    assert card["settings"]["lora_config"] == lora_header(result.lora_path)
    assert card["dataset"]["sha256"] == dataset_hash(clips) and len(card["losses"]) == 2

    assert not form.try_button.disabled
    form.try_button.click()  # opens a generation form below, with the file in its LoRA list
    assert lora_list(form.try_form) == [result.lora_path] and form.try_form.duration.value == SHORT
    # its results show inside the training form's widget (an output displayed from the button's
    # callback is one later display updates do not reach: issue 24; in a browser: test_browser.py)
    assert form.try_box.children == (form.try_form.widget,)
    assert form.try_form.run(check=True) is not None
    shown = form.try_form.shell.fallback.value
    assert "<audio" in shown and "alt='spectrogram'" in shown and "page was reloaded" not in shown
    try_form = form.try_it(duration=SHORT, steps=3, seed=5)
    assert lora_list(try_form) == [result.lora_path] and try_form.prompt.value == "a pluck"
    adapted = try_form.run()
    try_form.loras.fill([])
    plain = try_form.run()
    assert (adapted.audio - plain.audio).abs().max() > 1e-4


def test_stop_after_a_step_saves_a_file_that_resumes_to_the_straight_run(session, clips, tmp_path):
    straight = form_for(session, clips, tmp_path / "straight").run()

    form = form_for(session, clips, tmp_path)
    # the Stop button, pressed while the progress line shows step 1
    form.shell.status.observe(
        lambda change: form.shell.stop_button.click() if "step 1/2" in change["new"] else None, "value"
    )
    stopped = form.run()
    assert stopped.stopped and stopped.step == 1 and Path(stopped.lora_path).is_file()
    assert "stopped at step 1 of 2" in form.shell.results[0]
    assert form.resume.value == stopped.lora_path  # Start again continues it

    resumed = form.run()
    assert resumed.lora_path == stopped.lora_path and resumed.step == 2 and not resumed.stopped
    assert resumed.losses[:1] == stopped.losses and resumed.losses == straight.losses
    ours, expected = load_file(resumed.lora_path), load_file(straight.lora_path)
    assert all(torch.equal(ours[k], expected[k]) for k in expected)


def test_uploaded_clips_and_captions_go_into_one_folder_and_the_editor_writes_captions(session, tmp_path):
    form = form_for(session, "", tmp_path)
    wavs = []
    for i in range(2):
        path = tmp_path / f"take {i}.wav"
        sf.write(path, 0.3 * np.sin(np.arange(22050 if i else 20 * 44100) * (0.05 + 0.01 * i)), 44100)
        wavs.append(upload_item(path.name, path.read_bytes()))
    form.upload.value = (*wavs, upload_item("take 0.txt", b"a soft sine"))
    folder = Path(form.data_dir.value)
    assert sorted(p.name for p in folder.iterdir()) == ["take_0.txt", "take_0.wav", "take_1.wav"]
    assert not compat.uploaded_files(form.upload.value)  # no audio bytes stay in the widget state
    boxes = form.editor.boxes
    assert [b.value for b in boxes.values()] == ["a soft sine", ""]
    players = [row.children[0].value for row in form.editor.rows.children]
    assert all("<audio" in p and len(p) < 80_000 for p in players)  # 20 s clip too: widget state stays small
    assert "1 without a caption" in form.editor.note.value

    with pytest.raises(ValueError, match=r"1 clip\(s\) have no caption file .*: take_1.wav; add"):
        form.read()
    list(boxes.values())[1].value = "a lower sine"
    assert form.editor.save() == 2
    assert (folder / "take_1.txt").read_text() == "a lower sine\n"
    assert form.read().data_dir == str(folder)


# ------------------------------------------------------------------------------ bad input, one sentence each


def failed(form) -> str:
    assert form.run() is None
    assert one_sentence(form.shell.last_error), form.shell.last_error
    return form.shell.last_error


def write_tone(path: Path, level: float = 0.3) -> None:
    sf.write(path, level * np.sin(np.arange(8820) * 0.05), 44100)


def no_captions(folder: Path) -> None:
    write_tone(folder / "a.wav")
    write_tone(folder / "b.wav")


def unreadable(folder: Path) -> None:
    (folder / "x.wav").write_bytes(b"RIFF junk")
    (folder / "x.txt").write_text("x")


def silent(folder: Path) -> None:
    write_tone(folder / "q.wav", 0.0)
    (folder / "q.txt").write_text("quiet")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda folder: None, "holds no audio files"),
        (no_captions, r"2 clip\(s\) have no caption file .*a.wav, b.wav"),
        (unreadable, "cannot be read as audio: x.wav"),
        (silent, "are silent .*: q.wav"),
    ],
)
def test_bad_datasets_are_named_before_the_model_loads(session, tmp_path, make, words):
    folder = tmp_path / "data"
    folder.mkdir()
    make(folder)
    form = form_for(session, folder, tmp_path)
    assert pytest.raises(ValueError, form.read).match(words)
    assert failed(form)


@pytest.mark.parametrize("model", ["small-music", "demo", str(MODELS / "small-music")])
def test_a_post_trained_model_is_refused(session, clips, tmp_path, model):
    text = failed(form_for(session, clips, tmp_path, model=model))
    assert "post-trained model" in text and "needs a base model (small-music-base" in text


def test_out_of_memory_names_the_settings_that_lower_it(session, clips, tmp_path):
    text = failed(form_for(session, clips, tmp_path, duration=1e9))  # 3.5 TB of audio per batch
    assert text.startswith("Out of memory on cpu at step 1; lower batch_size") and "duration" in text


def test_a_resume_file_made_for_another_model_is_refused(session, clips, tmp_path):
    medium = StableAudioModel.from_pretrained(str(MODELS / "medium"), device="cpu")
    roots = {"model": medium.model.model, "conditioner": medium.model.conditioner}
    adapters = AdapterSet.attach(roots, AdapterConfig(rank=4), torch.Generator().manual_seed(0))
    save_lora_file(tmp_path / "medium.safetensors", adapters)
    form = form_for(session, clips, tmp_path, resume=str(tmp_path / "medium.safetensors"))
    assert "medium.safetensors was made for another model" in failed(form)
    # the cached base model is left without adapters: a plain training run works next
    form.resume.value = ""
    assert form.run().step == 2


# ------------------------------------------------------------------ status that says what happened (issue 24)


def test_a_resumed_run_counts_its_parameters_total_time_and_plots_from_its_real_steps(
    session, clips, tmp_path
):
    form = form_for(session, clips, tmp_path, steps=3)
    form.shell.status.observe(
        lambda change: form.shell.stop_button.click() if "step 1/3" in change["new"] else None, "value"
    )
    stopped = form.run()
    assert stopped.stopped and stopped.step == 1 and stopped.earlier_s == 0
    first = read_card(stopped.card_path)
    assert first["trainable_parameters"] > 0  # was 0: counted after the adapters were taken off
    trained = {k: t for k, t in load_file(stopped.lora_path).items() if not k.endswith("baked_vnorm_row")}
    assert first["trainable_parameters"] == sum(t.numel() for t in trained.values())  # norms are derived
    assert form.live_panel.first_step == 1
    form.shell.status.unobserve_all("value")

    resumed = form.run()
    assert resumed.step == 3 and resumed.earlier_s == pytest.approx(first["total_elapsed_s"])
    card = read_card(resumed.card_path)
    assert card["elapsed_s"] == pytest.approx(resumed.elapsed_s, abs=1e-3)
    assert card["total_elapsed_s"] == pytest.approx(first["total_elapsed_s"] + resumed.elapsed_s, abs=2e-3)
    assert "in all (this session " in form.shell.results[0]
    assert "in all (this session " in Path(resumed.card_path).read_text()
    assert form.live_panel.first_step == 2 and len(form.live_panel.losses) == 2  # steps 2 and 3, not 1 and 2


def test_base_precision_shows_its_choice_and_uploads_go_under_the_output_folder(session, tmp_path):
    form = form_for(session, "", tmp_path)
    assert form.precision.label == "keep (as loaded)"  # was blank: None is "nothing chosen" to a Dropdown
    path = tmp_path / "take.wav"
    write_tone(path)
    form.upload.value = (upload_item("take.wav", path.read_bytes()), upload_item("take.txt", b"a tone"))
    folder = Path(form.data_dir.value)
    assert folder.parent == tmp_path / "out" / "uploads" and (folder / "take.wav").is_file()
    assert f"2 uploaded file(s) saved in {folder}." in form.editor.note.value
    assert form.read().base_precision is None
    form.precision.value = "bf16"
    assert form.read().base_precision == "bf16"


def test_the_live_panel_makes_each_preview_once_and_its_times_include_the_previews(
    session, clips, tmp_path, monkeypatch
):
    """Issue 24: every redraw re-encoded every preview, and "elapsed" left the previews out."""
    import time

    from sa3lab import render

    made, real = [], render.spectrogram_jpeg
    monkeypatch.setattr(render, "spectrogram_jpeg", lambda *a, **k: made.append(1) or real(*a, **k))
    form = form_for(
        session,
        clips,
        tmp_path,
        steps=4,
        preview_every=1,
        preview_prompt="a pluck",
        preview_duration=SHORT,
        preview_steps=4,
    )
    monkeypatch.setattr("sa3lab.forms.training.LIVE_EVERY_S", 0.0)  # redraw after every step
    spent, sample = [], session.lab.core.sample

    def timed_sample(*args, **kwargs):
        began = time.perf_counter()
        try:
            return sample(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - began)

    monkeypatch.setattr(session.lab.core, "sample", timed_sample)
    shown = []
    form._set_live = shown.append
    start = time.perf_counter()
    result = form.run()
    wall = time.perf_counter() - start
    assert result.step == 4 and len(spent) == 4 and len(shown) >= 8
    during = len(made) - sum(block.count("alt='spectrogram'") for block in form.shell.results[:1])
    assert during == 4  # one spectrogram per preview, however often the panel is redrawn
    last = form.live_panel.report
    assert last.elapsed >= sum(spent) and last.elapsed <= wall and last.remaining == 0
    assert result.elapsed_s >= last.elapsed


def test_before_start_the_form_estimates_the_run_with_its_previews_and_the_load(clips, tmp_path):
    """Issue 24: nothing said before training how long it would take on this machine."""
    from sa3lab.training import estimate

    fresh = Session(Lab())  # the base model is not loaded yet
    form = form_for(fresh, clips, tmp_path, steps=40)
    note = form.estimate_note.value
    assert (
        note.startswith("<small>About ") and "(load " in note and "steps " in note and "previews" not in note
    )
    form.preview_every.value = 10
    assert "previews " in form.estimate_note.value
    values = {"model": BASE, "steps": 40, "duration": SHORT, "preview_every": 10}
    parts = estimate(fresh.lab.machine, **values)
    assert parts["load"] > 0 and parts["steps"] > 0 and parts["previews"] > 0
    twice = estimate(fresh.lab.machine, **{**values, "steps": 80})
    assert twice["steps"] == pytest.approx(2 * parts["steps"])
    assert twice["previews"] == pytest.approx(2 * parts["previews"])
    assert estimate(fresh.lab.machine, {BASE}, **values)["load"] == 0
    form.steps.value = 0  # a value no run takes: no estimate rather than a wrong one
    assert form.estimate_note.value == ""
