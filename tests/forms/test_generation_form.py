"""The generation form, driven through its widgets: real runs with the tiny demo model, no engine mocks.

Gated-model behaviour runs against the loopback Hub (``hub`` fixture) with the fixture models.
"""

import hashlib
import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from form_helpers import (
    LORA,
    demo_form,
    loaded_demo,
    message_text,
    record_calls,
    result_blocks,
    saved_state,
    sidecar,
    upload_item,
)
from hub_fixtures import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN
from parity import MODELS

from sa3lab import autoencoder_form, generation_form
from sa3lab.forms import compat
from sa3lab.forms.parts import LOCAL
from sa3lab.forms.session import Session
from sa3lab.generation import GenerationRequest, LoraUse
from sa3lab.lab import Lab
from sa3lab.prompt_assistant import PromptAssistant

pytestmark = pytest.mark.usefixtures("no_real_login")


# ------------------------------------------------------------------ package and reading widgets


def test_widgets_read_into_a_generation_request(session, out, chord_file):
    form = generation_form(
        "standard",
        model="small-sfx",
        prompt="  door slam ",
        duration=4.0,
        seed=7,
        output_dir=out,
        session=session,
    )
    assert [v for _, v in form.picker.dropdown.options][:4] == ["small-music", "small-sfx", "medium", "demo"]
    form.negative.value, form.batch.value, form.tabs.selected_index = "music", 2, 2
    form.inpaint_audio.path.value, form.regions.value = chord_file, "0.5-1, 2 - 3.5"
    for strength in (0.5, 0.25):
        row = form.loras.add(LoraUse(""))
        row.path.value, row.strength.value = str(LORA), strength
    form.loras.rows[1].interval.value, form.loras.rows[1].layer_filter.value = (0.5, 1.0), " layers.0. "
    request = form.read()
    assert (request.model, request.prompt, request.duration, request.seed) == (
        "small-sfx",
        "door slam",
        4.0,
        7,
    )
    assert (request.mode, request.source_audio, request.regions) == (
        "inpaint",
        chord_file,
        [(0.5, 1.0), (2.0, 3.5)],
    )
    assert (request.steps, request.cfg_scale, request.batch_size, request.negative_prompt) == (
        8,
        1.0,
        2,
        "music",
    )
    assert request.loras() == [LoraUse(str(LORA), 0.5), LoraUse(str(LORA), 0.25, (0.5, 1.0), "layers.0.")]
    assert request.output_dir == out
    form.tabs.selected_index, form.a2a_audio.path.value, form.noise.value = 1, chord_file, 0.3
    request = form.read()
    assert (request.mode, request.init_noise_level) == ("audio-to-audio", 0.3)
    assert len(request.lora_files) == 2  # LoRA is no mode: it applies to whichever mode runs
    form.tabs.selected_index, form.continue_audio.path.value, form.continue_s.value = 3, chord_file, 2.5
    request = form.read()
    assert (request.mode, request.continuation_s, request.duration) == ("continuation", 2.5, 3.5)
    assert "Keeps the clip's 1.00 s and adds 2.5 s" in form.continue_note.value


def test_a_local_folder_is_a_model_and_base_folders_get_base_defaults(session, out):
    form = generation_form("standard", model=str(MODELS / "small-music-base"), prompt="x", session=session)
    assert form.picker.dropdown.value == LOCAL and form.picker.path.layout.display is None
    assert (form.steps.value, form.cfg.value) == (50, 7.0)
    assert form.read().model == str(MODELS / "small-music-base")
    form.picker.dropdown.value = "small-music"
    assert form.picker.path.layout.display == "none"


def test_changing_the_model_sets_its_defaults_and_the_negative_prompt_hint_follows_cfg(session):
    form = generation_form("base", model="small-music-base", prompt="x", session=session)
    assert (form.steps.value, form.cfg.value) == (50, 7.0)
    form.negative.value = "vocals"
    assert form.hint.value == ""
    form.picker.dropdown.value = "demo"
    assert (form.steps.value, form.cfg.value) == (8, 1.0)
    assert "no effect with CFG 1" in form.hint.value
    form.cfg.value = 4.0
    assert form.hint.value == ""


def test_new_seed_button_draws_a_fixed_seed(session):
    form = generation_form(model="demo", prompt="x", seed=-1, session=session)
    assert form.seed.choice.value == "new each run" and form.seed.value == -1 and form.seed.box.disabled
    form.seed.button.click()
    assert form.seed.choice.value == "fixed" and 0 <= form.seed.value <= 99998


def test_an_upload_shows_its_name_and_a_player_and_leaves_no_bytes_in_widget_state(session, out, chord_file):
    form = demo_form(session, out)
    data = open(chord_file, "rb").read()
    form.a2a_audio.upload.value = (upload_item("../my clip.wav", data),)
    assert form.a2a_audio.path.value == "my clip.wav"  # the name, not a temporary path
    path = form.a2a_audio.value
    assert path.endswith("my_clip.wav") and open(path, "rb").read() == data
    assert compat.uploaded_files(form.a2a_audio.upload.value) == []  # taken: only the name stays
    chosen = form.a2a_audio.chosen.value
    assert "my clip.wav · 1.00 s" in chosen and "<audio" in chosen and "data:audio/" in chosen
    assert form.read().mode == "text-to-audio"
    form.tabs.selected_index = 1
    assert form.read().source_audio == path
    form.a2a_audio.path.value = "/no/such.wav"  # typing another path drops the upload, and says why
    assert "was not found" in form.a2a_audio.chosen.value
    form.loras.upload.value = (upload_item("style.safetensors", b"abc"), upload_item("b.safetensors", b"d"))
    assert [row.path.value for row in form.loras.rows] == ["style.safetensors", "b.safetensors"]
    assert [Path(use.file).name for use in form.loras.uses()] == ["style.safetensors", "b.safetensors"]
    assert compat.uploaded_files(form.loras.upload.value) == []  # taken: only the names stay
    assert "style.safetensors, b.safetensors" in form.loras.widget.get_title(0)


def test_an_upload_that_arrives_empty_says_how_to_bring_the_file_in(session, out, chord_file, monkeypatch):
    form = demo_form(session, out)
    form.a2a_audio.path.value = chord_file
    form.a2a_audio.upload.value = (upload_item("take 2.wav", b""),)  # what Colab hands back past ~1 MB
    chosen = form.a2a_audio.chosen.value
    assert "take_2.wav arrived empty" in chosen and "/content/take_2.wav" in chosen
    assert form.a2a_audio.value == chord_file  # the earlier choice stays
    assert not compat.uploaded_files(form.a2a_audio.upload.value)
    form.loras.upload.value = (upload_item("style.safetensors", b""),)
    assert "style.safetensors arrived empty" in form.loras.note.value and form.loras.rows == []
    monkeypatch.setattr(compat, "colab_available", lambda: True)  # Colab itself cannot run here
    on_colab = demo_form(session, out)
    assert "Files pane" in on_colab.a2a_audio.widget.children[1].value and "Files pane" in (
        on_colab.loras.widget.children[0].children[-1].value
    )
    assert len(form.a2a_audio.widget.children) == 2  # the line is there on Colab only


# ------------------------------------------------------------------ bad input: one sentence, nothing lost


BROKEN = "<broken file>"


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"prompt.value": "  "}, "Enter a prompt"),
        ({"duration.value": 500.0}, "at most 10 s for demo"),
        ({"batch.value": 0}, "Batch size must be between 1 and 16"),
        ({"seed.box.value": "-5"}, "Seed must be -1"),
        ({"seed.box.value": "4.5"}, "got '4.5'"),
        ({"seed.box.value": str(2**64)}, "Seed must be -1"),
        ({"tabs.selected_index": 1, "a2a_audio.path.value": ""}, "Choose the audio to transform"),
        ({"tabs.selected_index": 1, "a2a_audio.path.value": BROKEN}, "Could not read"),
        ({"tabs.selected_index": 2, "inpaint_audio.path.value": "/no/a.wav"}, "was not found"),
        ({"tabs.selected_index": 2, "regions.value": "0.5-4"}, "must lie inside 0-1 s"),
        ({"tabs.selected_index": 2, "regions.value": "two to four"}, "Write regions as start-end"),
        ({"loras.rows.0.path.value": "/no/lora.safetensors"}, "LoRA file /no/lora.safetensors was not found"),
        ({"loras.rows.0.strength.value": 11.0}, "LoRA strengths must be a list of numbers from -10 to 10"),
        (
            {"advanced.cfg_norm_threshold.value": 500.0},
            "CFG norm cap must be a number from 0 to 100; got 500",
        ),
        ({"advanced.padding.value": 40.0}, "Padding (s) must be a number from 0 to 30; got 40"),
        ({"advanced.steps.value": 250}, "250 steps take about 31 times as long"),
        (
            {"advanced.schedule.value": "full", "advanced.schedule_params.2.value": 5000},
            "min_length (5000) must",
        ),
        ({"tabs.selected_index": 3, "continue_s.value": 0.0}, "Set how many seconds to add"),
        ({"preview_on.value": True, "preview_every.value": 0}, "Previews come every N steps"),
        (
            {"picker.dropdown.value": LOCAL, "picker.path.value": "/no/dir"},
            "The folder /no/dir does not exist",
        ),
    ],
)
def test_bad_input_shows_one_actionable_sentence(session, out, tmp_path, chord_file, changes, words):
    form = demo_form(session, out)
    form.inpaint_audio.path.value, form.regions.value = chord_file, "0.2-0.5"
    form.continue_audio.path.value = chord_file
    form.loras.add(LoraUse(str(LORA)))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"this is not audio")
    for path, value in changes.items():
        owner, name = path.rsplit(".", 1)
        target = form
        for part in owner.split("."):
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        setattr(target, name, str(broken) if value == BROKEN else value)
    assert form.run() is None
    text = message_text(form)
    assert words in text and text.strip().count(". ") <= 1, text
    assert form.shell.results == []
    assert not form.shell.run_button.disabled and form.shell.stop_button.disabled


# ------------------------------------------------------------------ tokens and gated models


def test_gated_model_without_token_or_terms_says_what_to_do_and_never_shows_the_token(hub, out):
    session = Session(lab=Lab())
    form = generation_form(model="small-music", prompt="x", duration=1.0, output_dir=out, session=session)
    form.run()
    assert "is gated: log in" in message_text(form)
    session.set_token(NOT_ACCEPTED_TOKEN)
    form.run()
    text = message_text(form)
    assert "has not accepted its terms" in text
    assert "https://huggingface.co/stabilityai/stable-audio-3-small-music" in text
    assert NOT_ACCEPTED_TOKEN not in saved_state() and NOT_ACCEPTED_TOKEN not in text
    assert hub.count(contains="/resolve/") == 0  # nothing was downloaded before the access check


# ------------------------------------------------------------------ real runs with the demo model


def test_demo_run_from_the_button_shows_player_spectrogram_levels_timings_and_file(session, out):
    form = demo_form(session, out)
    seen_disabled = []
    form.shell.run_button.observe(lambda c: seen_disabled.append(c["new"]), "disabled")
    form.shell.run_button.click()  # outside a kernel the run happens here, as on a kernel's main thread
    assert seen_disabled[0] is True and seen_disabled[-1] is False
    assert form.shell.message.value == "" and form.shell.status.value == "done"
    result = form.shell.last_result
    assert result.audio.shape == (1, 2, 44100) and result.seed == 3
    (block,) = result_blocks(form)
    assert "<audio" in block and "data:audio/" in block and "peak" in block
    assert re.search(r"sampling \d+\.\d\d s", block) and result.paths[0] in block
    assert "data:image/jpeg;base64," in block and "data:image/png;base64," in block
    meta = json.loads(open(result.paths[0].replace(".wav", ".json")).read())
    assert meta["seed"] == 3 and meta["settings"]["steps"] == 2


def test_results_stay_after_a_bad_run_and_the_next_run_works(session, out):
    form = demo_form(session, out)
    assert form.run() is not None
    form.prompt.value = ""
    assert form.run() is None and "Enter a prompt" in message_text(form)
    assert len(result_blocks(form)) == 1
    form.prompt.value, form.seed.box.value = "wind", "5"
    assert form.run().seed == 5 and form.shell.message.value == ""
    newest, oldest = result_blocks(form)
    assert "<b>#2</b>" in newest and "wind" in newest and "<b>#1</b>" in oldest


def test_stop_takes_effect_between_steps(session, out):
    form = demo_form(session, out)
    form.run()  # warm: the model is loaded
    form.steps.value = 6
    steps_seen = []

    def on_step(change):
        steps_seen.append(change["new"])
        if change["new"] == 2:
            form.shell.stop_button.click()

    form.shell.bar.observe(on_step, "value")
    form.shell.run_button.click()
    assert "Stopped" in message_text(form) and max(steps_seen) == 2
    assert len(result_blocks(form)) == 1 and not form.shell.run_button.disabled


def test_audio_to_audio_inpainting_batch_and_lora_through_the_form(session, out, chord_file):
    form = demo_form(session, out)
    form.tabs.selected_index, form.a2a_audio.path.value, form.noise.value = 1, chord_file, 0.5
    form.batch.value = 2
    result = form.run()
    assert result is not None and result.audio.shape[0] == 2 and len(result.paths) == 2
    assert result_blocks(form)[0].count("class='sa3lab-clip'") == 2  # one clip per batch item
    form.batch.value = 1
    form.tabs.selected_index, form.inpaint_audio.path.value = 2, chord_file
    form.duration.value, form.regions.value = 2.0, "0.2-0.4, 1-2"  # a gap and a continuation past the clip
    form.loras.add(LoraUse(str(LORA), 0.5))
    result = form.run()
    assert result is not None and result.settings["mode"] == "inpaint" and result.audio.shape[-1] == 88200, (
        message_text(form)
    )


def test_the_button_ignores_a_second_click_while_running(session, out):
    form = demo_form(session, out)
    form.shell.bar.observe(lambda c: form.shell.run_button.click() if c["new"] == 1 else None, "value")
    form.shell.run_button.click()
    assert len(result_blocks(form)) == 1 and form.shell.last_result is not None


def test_a_past_run_fills_the_form_and_the_form_reads_back_the_same_request(session, out, chord_file):
    form = demo_form(session, out)
    form.tabs.selected_index, form.inpaint_audio.path.value = 2, chord_file
    form.regions.value = "0.2-0.5"
    form.loras.add(LoraUse(str(LORA), 0.5, (0.25, 1.0), "layers.0."))
    form.advanced.sampler.value, form.advanced.apg_scale.value = "euler", 0.5
    form.advanced.schedule.value = "logsnr"
    form.advanced.schedule_params[2].value = 0.5  # rate
    result = form.run()
    assert result is not None, message_text(form)
    other = generation_form("base", session=session)
    other.fill(GenerationRequest.from_record(result.metadata()))
    again = other.read()
    assert (again.mode, again.regions, again.loras(), again.seed) == (
        "inpaint",
        [(0.2, 0.5)],
        [LoraUse(str(LORA), 0.5, (0.25, 1.0), "layers.0.")],
        3,
    )
    assert again.source_audio == chord_file and other.picker.value == "demo"
    assert again.settings() == GenerationRequest.from_record(result.metadata()).settings()
    assert (again.sampler, again.apg_scale, again.schedule["rate"]) == ("euler", 0.5, 0.5)


# ------------------------------------------------------------ the studio: every control reaches the engine


def test_every_sampler_and_lora_control_reaches_the_engine_and_the_record(session, out, monkeypatch):
    form = demo_form(session, out)
    assert (
        form.advanced.widget.selected_index is None and form.loras.widget.selected_index is None
    )  # collapsed
    model = loaded_demo()
    generate = record_calls(monkeypatch, model, "generate")
    advanced = form.advanced
    advanced.sampler.value, advanced.steps.value, advanced.cfg.value = "euler", 3, 2.5
    advanced.cfg_interval.value, advanced.scale_phi.value = (0.2, 0.9), 0.3
    advanced.cfg_norm_threshold.value, advanced.apg_scale.value, advanced.padding.value = 5.0, 0.5, 2.0
    advanced.schedule.value = "flux"
    assert [box.description for box in advanced.schedule_params] == [
        "min length",
        "max length",
        "alpha min",
        "alpha max",
    ]
    for box, value in zip(advanced.schedule_params, (128, 2048, 0.5, 3.0), strict=True):
        box.value = value
    row = form.loras.add(LoraUse(""))
    row.path.value, row.strength.value = str(LORA), 0.7
    row.interval.value, row.layer_filter.value = (0.5, 1.0), "layers.0."
    result = form.run()
    assert result is not None, message_text(form)
    (call,) = generate
    sent = call.kwargs
    assert (sent["sampler_type"], sent["steps"], sent["cfg_scale"]) == ("euler", 3, 2.5)
    assert (sent["cfg_interval"], sent["scale_phi"], sent["cfg_norm_threshold"]) == ((0.2, 0.9), 0.3, 5.0)
    assert (sent["apg_scale"], sent["duration_padding_sec"]) == (0.5, 2.0)
    shift = sent["dist_shift"]
    assert (shift.min_length, shift.max_length) == (128, 2048)
    assert math.isclose(shift.alpha(128), 0.5) and math.isclose(shift.alpha(4096), 3.0)
    assert sent["lora_configs"] == [{"lora_index": 0, "interval": (0.5, 1.0), "layer_filter": "layers.0."}]
    assert sent["lora_strengths"] == [0.7]  # the run's own strength, not the model's default
    assert model.lora_names == ["lora_a"]
    settings = sidecar(result)["settings"]
    assert {k: settings[k] for k in ("sampler", "steps", "cfg_scale", "cfg_interval", "scale_phi")} == {
        "sampler": "euler",
        "steps": 3,
        "cfg_scale": 2.5,
        "cfg_interval": [0.2, 0.9],
        "scale_phi": 0.3,
    }
    assert (settings["cfg_norm_threshold"], settings["apg_scale"], settings["duration_padding"]) == (
        5.0,
        0.5,
        2.0,
    )
    assert settings["schedule"] == {"type": "flux", "min_length": 128, "max_length": 2048, "alpha_min": 0.5,
                                    "alpha_max": 3.0}  # fmt: skip
    (lora,) = settings["loras"]
    assert (lora["name"], lora["sha256"]) == (
        "lora_a.safetensors",
        hashlib.sha256(LORA.read_bytes()).hexdigest(),
    )
    assert (lora["strength"], lora["interval"], lora["layer_filter"]) == (0.7, [0.5, 1.0], "layers.0.")
    table = html.unescape(result_blocks(form)[0])
    assert (
        "euler · CFG interval 0.2–0.9 · CFG rescale 0.3 · CFG norm cap 5 · APG scale 0.5 · flux shift"
        in table
    )
    assert "lora_a.safetensors (sha256 " in table and "layers matching 'layers.0.' off" in table


def test_the_seed_is_fixed_or_new_each_run_as_chosen(session, out):
    form = demo_form(session, out)
    form.steps.value = 1
    assert form.seed.choice.value == "fixed" and [form.run().seed for _ in range(2)] == [3, 3]
    form.seed.choice.value = "new each run"
    seeds = [form.run().seed for _ in range(3)]
    assert len(set(seeds)) > 1  # three draws from 0..99998
    assert form.seed.box.value == str(seeds[-1]) and f"last run: seed {seeds[-1]}" in form.seed.last.value
    form.seed.choice.value = "fixed"  # keep the one just heard
    assert form.run().seed == seeds[-1]


def test_a_seed_beyond_what_a_browser_number_holds_is_used_exactly(session, out):
    form = demo_form(session, out)
    form.steps.value, form.seed.box.value = 1, str(2**64 - 3)  # not representable as a double
    result = form.run()
    assert result.seed == 2**64 - 3
    assert sidecar(result)["seed"] == 2**64 - 3 and str(2**64 - 3) in result_blocks(form)[0]


def test_previews_show_during_sampling_and_leave_the_result_unchanged(session, out):
    form = demo_form(session, out)
    form.steps.value = 4
    plain = form.run()
    form.preview_on.value, form.preview_every.value, form.preview_listen.value = True, 2, True
    shown = []
    form.preview_image.observe(
        lambda c: shown.append((form.shell.bar.value, form.preview_caption.value, bytes(c["new"][:8]))),
        "value",
    )
    heard = []
    form.preview_audio.observe(lambda c: heard.append(bytes(c["new"][:4])), "value")
    with_previews = form.run()
    assert torch.equal(plain.audio, with_previews.audio)
    during = [s for s in shown if s[2]]
    assert [s[0] for s in during] == [2, 4] and all(s[2] == b"\x89PNG\r\n\x1a\n" for s in during)
    assert "step 2/4" in during[0][1] and "Preview" in during[0][1]
    assert heard[:2] == [b"RIFF", b"RIFF"]
    assert form.preview_image.value == b"" and form.preview_audio.value == b""  # nothing left in widget state
    assert form.preview_box.layout.display == "none" and with_previews.timings["previews"] > 0


def test_results_loop_when_asked(session, out):
    form = demo_form(session, out)
    form.steps.value, form.loop.value = 1, True
    form.run()
    assert "<audio controls preload='metadata' loop" in result_blocks(form)[0]


def test_a_result_is_sent_on_to_inpainting_continuation_and_a_round_trip(session, out):
    form = demo_form(session, out)
    assert form.send_box.layout.display == "none"
    first = form.run()
    assert form.send_box.layout.display is None and form.use_result.value == first.paths[0]
    form.send_buttons["Inpaint"].click()
    assert (form.mode, form.inpaint_audio.value, form.regions.value) == (
        "inpaint",
        first.paths[0],
        "0.33-0.67",
    )
    assert "#1 · demo · rain on a tin roof is now the source of inpainting" in message_text(form)
    inpainted = form.run()
    assert inpainted is not None, message_text(form)
    record = sidecar(inpainted)["settings"]
    assert record["mode"] == "inpaint" and record["regions"] == [[0.33, 0.67]]
    assert record["source"]["sha256"] == hashlib.sha256(open(first.paths[0], "rb").read()).hexdigest()
    assert [label for label, _ in form.use_result.options][1] == "#1 · demo · rain on a tin roof"
    form.use_result.value, form.continue_s.value = first.paths[0], 2.0
    form.send_buttons["Continue"].click()
    assert (form.mode, form.continue_audio.value, form.duration.value) == (
        "continuation",
        first.paths[0],
        3.0,
    )
    continued = form.run()
    assert continued is not None and continued.audio.shape[-1] == 3 * 44100, message_text(form)
    record = sidecar(continued)
    assert (record["settings"]["mode"], record["settings"]["regions"]) == ("continuation", [[1.0, 3.0]])
    assert (record["request"]["mode"], record["request"]["continuation_s"]) == ("continuation", 2.0)
    assert "continuation" in result_blocks(form)[0] and "keeps 1 s, adds 2 s" in result_blocks(form)[0]
    form.send_buttons["SAME round trip"].click()
    assert "No SAME round-trip form is connected" in message_text(form)
    roundtrip = autoencoder_form(model="demo", duration=1.0, output_dir=out, session=session)
    form.send_to_roundtrip = roundtrip.audio.set
    form.send_buttons["SAME round trip"].click()
    assert roundtrip.audio.value == form.use_result.value == continued.paths[0]
    assert roundtrip.run().source == continued.paths[0]


def test_an_earlier_runs_message_clears_when_an_input_changes(session, out):
    form = demo_form(session, out)
    form.prompt.value = ""
    form.run()
    assert "Enter a prompt" in message_text(form)
    form.prompt.value = "wind"
    assert form.shell.message.value == "" and form.shell.last_error is None
    form.duration.value = 500.0
    form.run()
    assert "at most 10 s" in message_text(form)
    form.advanced.steps.value = 3
    assert form.shell.message.value == ""


def test_a_model_that_cannot_load_here_says_so_when_picked_and_offers_one_that_can(hub, monkeypatch):
    session = Session(lab=Lab())
    form = generation_form(model="demo", prompt="x", session=session)
    assert form.readiness.value == ""
    form.picker.dropdown.value = "small-music"
    assert "small-music is gated: log in" in html.unescape(form.readiness.value)
    offered = [b.description for b in form.alternative_buttons if b.layout.display != "none"]
    assert offered == ["Use small-music-base instead", "Use demo instead"]
    form.alternative_buttons[0].click()
    assert form.picker.value == "small-music-base" and form.readiness.value == ""
    assert (form.steps.value, form.cfg.value, form.advanced.sampler.value) == (
        50,
        7.0,
        "euler",
    )  # base defaults
    session.set_token(NOT_ACCEPTED_TOKEN)
    form.picker.dropdown.value = "small-music"
    assert "has not accepted its terms" in html.unescape(form.readiness.value)
    session.set_token(ACCEPTED_TOKEN)  # the form hears the new token
    assert form.readiness.value == ""
    assert all(b.layout.display == "none" for b in form.alternative_buttons)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    form.picker.dropdown.value = "medium"
    text = html.unescape(form.readiness.value)
    assert "Offline (HF_HUB_OFFLINE is set) and medium is not in the local cache" in text
    assert "after changing it, restart Jupyter" in text
    assert [b.description for b in form.alternative_buttons if b.layout.display != "none"] == [
        "Use demo instead"
    ]
    assert hub.count(contains="/resolve/") == 0  # nothing downloaded to find this out


def test_the_prompt_assistant_expands_an_idea_into_the_prompt_and_the_record(qwen_hub, out):
    session = Session(lab=Lab(assistant=PromptAssistant()))
    form = generation_form(model="demo", duration=1.0, seed=2, output_dir=out, session=session)
    form.steps.value = 2
    form.idea.value, form.preset.value, form.greedy.value = "rain on a tin roof", "SFX", True
    labels = []
    form.shell.status.observe(lambda c: labels.append(c["new"]), "value")
    form.expand_button.click()
    assert form.shell.message.value == "", message_text(form)
    expanded = form.prompt.value
    assert (
        expanded.startswith("TrackType: SFX, ")
        and "Written as SFX by Qwen/Qwen3.5-2B" in form.assist_note.value
    )
    assert any("writing a SFX prompt" in label for label in labels)
    form.prompt.value = expanded + " Close."  # edited before generating
    result = form.run()
    assert result is not None, message_text(form)
    record = sidecar(result)
    assert record["request"]["prompt"] == expanded + " Close."
    expansion = record["request"]["prompt_expansion"]
    assert (expansion["text"], expansion["idea"], expansion["preset"]) == (
        expanded,
        "rain on a tin roof",
        "SFX",
    )
    assert expansion["edited"] is True and record["settings"]["prompt_expansion"] == expansion
    assert "expanded and edited from “rain on a tin roof” (SFX → SFX" in html.unescape(result_blocks(form)[0])
    form.shell.bar.observe(lambda c: form.shell.stop_button.click() if c["new"] == 3 else None, "value")
    form.expand_button.click()  # Stop during an expansion: the prompt stays as it was
    assert "Stopped" in message_text(form) and form.prompt.value == expanded + " Close."
    assert not form.expand_button.disabled and not form.shell.run_button.disabled


def test_two_forms_started_at_once_each_give_what_they_give_alone(session, out, monkeypatch):
    styled, plain = demo_form(session, out), demo_form(session, out)
    styled.loras.add(LoraUse(str(LORA), strength=0.8))
    plain.seed.fix(5)
    solo = [form.run() for form in (styled, plain)]
    seen = []
    real_step = styled.shell.progress.step

    def click_the_other_form_midway(done, total, text=None):
        real_step(done, total, text)
        if done == 1:
            plain.shell.run_button.click()  # a person clicks the second form during the first run
            seen.append(plain.shell.status.value)

    monkeypatch.setattr(styled.shell.progress, "step", click_the_other_form_midway)
    styled.shell.run_button.click()
    assert seen == ["queued behind the running generation"]
    together = [styled.shell.last_result, plain.shell.last_result]
    assert [r.seed for r in together] == [3, 5] and together[1] is not solo[1]
    for alone, with_other in zip(solo, together, strict=True):
        assert np.array_equal(alone.audio, with_other.audio)
        assert sidecar(with_other)["settings"]["loras"] == sidecar(alone)["settings"]["loras"]
    assert "seed 5" in result_blocks(plain)[0] and "seed 3" in result_blocks(styled)[0]


def test_a_prompt_longer_than_the_model_reads_is_named_under_the_prompt_and_in_the_result(out):
    form = generation_form(model="demo", duration=1.0, seed=2, output_dir=out, session=Session(lab=Lab()))
    form.steps.value = 2
    form.prompt.value = "rain on a tin roof, " * 60
    before = html.unescape(form.hint.value)  # named before the first run, the model not loaded yet
    assert "The prompt is" in before and "the model reads only the first 64" in before
    result = form.run()
    assert result is not None, message_text(form)
    assert html.unescape(form.hint.value) == before
    assert "prompt length" in html.unescape(result_blocks(form)[0])
    form.prompt.value = "rain on a tin roof"
    assert "tokens" not in form.hint.value


def test_the_a2a_schedule_is_an_advanced_setting_and_the_a2a_tab_says_what_the_schedule_does(
    session, out, chord_file, monkeypatch
):
    form = demo_form(session, out)
    advanced = form.advanced
    assert advanced.a2a_schedule.value == "upstream"  # the default: upstream's audio, seed for seed
    (row,) = [
        r for r in advanced.widget.children[0].children if advanced.a2a_schedule in getattr(r, "children", ())
    ]
    assert "corrected (upstream PR #94) never goes above it" in row.children[1].value  # its one-line help
    form.tabs.selected_index, form.a2a_audio.path.value = 1, chord_file
    form.noise.value, advanced.steps.value = 0.5, 8
    text = html.unescape(form.a2a_levels.value)
    assert "First noise level 0.50, highest reached 0.83 at step 2 (asked 0.50)" in text
    assert "rises above the level asked for" in text
    advanced.a2a_schedule.value = "corrected"
    text = html.unescape(form.a2a_levels.value)
    assert "highest reached 0.50 at step 1 (asked 0.50)." in text and "rises" not in text
    advanced.a2a_schedule.value = "upstream"
    advanced.schedule.value = "none"  # linear: upstream's stays below the level too
    assert "highest reached 0.50 at step 1 (asked 0.50)." in html.unescape(form.a2a_levels.value)
    advanced.schedule.value = "default"
    form.noise.value = 0.3
    assert "(asked 0.30)" in form.a2a_levels.value and "rises" in form.a2a_levels.value
    advanced.steps.value = 0  # refused when Generate is pressed; nothing to show meanwhile
    assert form.a2a_levels.value == ""
    advanced.steps.value, advanced.a2a_schedule.value = 2, "corrected"
    generate = record_calls(monkeypatch, loaded_demo(), "generate")
    result = form.run()
    assert result is not None, message_text(form)
    (call,) = generate
    assert (call.kwargs["a2a_schedule"], call.kwargs["init_noise_level"]) == ("corrected", 0.3)
    assert sidecar(result)["settings"]["a2a_schedule"] == "corrected"
    assert re.search(
        r"noise level</th><td[^>]*>0.3 \(corrected schedule\)", html.unescape(result_blocks(form)[0])
    )
    other = generation_form("standard", session=session)
    other.fill(GenerationRequest.from_record(result.metadata()))
    assert other.advanced.a2a_schedule.value == "corrected" and other.read().a2a_schedule == "corrected"


@pytest.mark.parametrize("clip_s", [10.0, 20.0])
def test_a_continuation_stays_within_the_models_limit_and_its_note_is_the_runs_arithmetic(
    session, out, tmp_path, clip_s
):
    """The demo makes at most 10 s: a 10 s clip (a demo result) or a 20 s one plus 5 s asks for 10 s, and
    the note says what the run keeps and adds, also after the duration is changed by hand."""
    import soundfile as sf

    clip = tmp_path / "clip.wav"
    t = np.arange(int(clip_s * 44100)) / 44100
    sf.write(clip, np.stack([0.2 * np.sin(2 * np.pi * 220 * t)] * 2, 1), 44100, subtype="PCM_16")
    form = demo_form(session, out)
    form.tabs.selected_index, form.continue_audio.path.value, form.continue_s.value = 3, str(clip), 5.0
    assert form.duration.value == 10.0
    note = html.unescape(form.continue_note.value)
    assert f"Keeps the clip's first 5.00 s (of its {clip_s:.2f} s) and adds 5 s: duration 10.00 s." in note
    result = form.run()
    assert result is not None, message_text(form)
    assert sidecar(result)["settings"]["regions"] == [[5.0, 10.0]]  # kept 0-5 s, generated 5-10 s
    form.duration.value = 8.0
    note = html.unescape(form.continue_note.value)
    assert "Keeps the clip's first 3.00 s" in note and "adds 5 s: duration 8.00 s" in note
    assert sidecar(form.run())["settings"]["regions"] == [[3.0, 8.0]]
    form.continue_s.value = 9.0  # a new length to add: the duration follows, within the limit again
    assert form.duration.value == 10.0 and "first 1.00 s" in html.unescape(form.continue_note.value)


def test_the_previews_row_reads_in_order_and_wraps(session, out):
    form = demo_form(session, out)
    row = form.preview_row
    labels = [getattr(w, "description", "") or getattr(w, "value", "") for w in row.children]
    assert labels[0].endswith("every") and row.children[1] is form.preview_every and labels[2] == "steps"
    assert "listen" in labels[3] and "steps" not in labels[3] and row.layout.flex_flow == "row wrap"


def test_the_output_level_is_an_advanced_setting_that_reaches_the_record_and_loads_back(session, out):
    form = demo_form(session, out)
    advanced = form.advanced
    assert (advanced.ceiling.value, advanced.float_wav.value) == (0.0, "raw")  # the defaults
    advanced.ceiling.value, advanced.float_wav.value = -6.0, "protected"
    request = form.read()
    assert (request.peak_ceiling_dbfs, request.float_wav) == (-6.0, "protected")
    result = form.run()
    assert result is not None, message_text(form)
    assert sidecar(result)["float_wav"] == "protected" and result.quality[0]["ceiling_dbfs"] == -6.0
    again = demo_form(session, out)
    again.fill(GenerationRequest.from_record(sidecar(result)))
    assert (again.advanced.ceiling.value, again.advanced.float_wav.value) == (-6.0, "protected")
    advanced.ceiling.value = 3.0
    assert form.run() is None and "The peak ceiling must be a level in dBFS" in message_text(form)
