"""The comparison form (sa3lab.comparison_form): plan, bad input, a demo grid, a gated pair (loopback Hub)."""

import pytest
import torch
from form_helpers import message_text, result_blocks, saved_state
from hub_fixtures import ACCEPTED_TOKEN

from sa3lab import comparison_form
from sa3lab.forms.session import Session
from sa3lab.lab import Lab

pytestmark = pytest.mark.usefixtures("no_real_login")


def test_comparison_input_errors_and_plan(session, out):
    form = comparison_form(
        model="small-sfx", prompt="x", duration=1.0, seed=4, output_dir=out, session=session
    )
    assert form.picker.value == "small-sfx-base" and form.seeds.value == "4"
    assert (
        "small-sfx-base" in form.plan.value and "small-sfx" in form.plan.value and "gated" in form.plan.value
    )
    form.seeds.value = "1, x"
    form.run()
    assert "Seed must be -1" in message_text(form) and "got 'x'" in message_text(form)
    form.seeds.value = ", ".join(str(i) for i in range(9))
    form.run()
    assert "at most 8 seeds" in message_text(form)
    form.others.value = "\n".join(["small-music"] * 4)
    form.seeds.value = "1"
    form.run()
    assert "Compare 1 to 4 models; got 5." in message_text(form)
    form.others.value = "/no/such/folder"
    form.run()
    assert "The model folder /no/such/folder was not found" in message_text(form)


def test_comparison_checks_the_gated_sibling_before_running_anything(hub, out):
    session = Session(lab=Lab())
    form = comparison_form(
        model="small-music-base", prompt="x", duration=1.0, output_dir=out, session=session
    )
    form.run()
    assert "stable-audio-3-small-music is gated" in message_text(form)
    assert hub.count(contains="/resolve/") == 0


def test_demo_comparison_grid_rows_per_seed(session, out):
    form = comparison_form(model="demo", prompt="hum", duration=1.0, seed=1, output_dir=out, session=session)
    form.seeds.value = "1, 2"
    rows = form.run()
    assert [[r.seed for r in row] for row in rows] == [[1], [2]]
    (grid,) = result_blocks(form)
    assert grid.count("class='sa3lab-clip'") == 2 and "<table class='sa3lab-grid'" not in grid
    assert "grid-template-columns:repeat(1," in grid  # one column, a row per seed


def test_gated_pair_comparison_with_an_accepted_token(hub, out):
    session = Session(lab=Lab())  # one-model cache: the comparison still loads each model once
    session.set_token(ACCEPTED_TOKEN)
    form = comparison_form(
        model="small-music-base", prompt="hum", duration=1.0, seed=1, output_dir=out, session=session
    )
    rows = form.run()
    assert rows is not None, message_text(form)
    assert [r.model_key for r in rows[0]] == ["small-music-base", "small-music"]
    assert [(r.settings["steps"], r.settings["cfg_scale"]) for r in rows[0]] == [(50, 7.0), (8, 1.0)]
    assert rows[0][0].seed == rows[0][1].seed == 1
    (grid,) = result_blocks(form)
    assert "grid-template-columns:repeat(2," in grid and grid.count("class='sa3lab-clip'") == 2
    files = " ".join(open(p).read() for r in rows[0] for p in [x.replace(".wav", ".json") for x in r.paths])
    assert ACCEPTED_TOKEN not in files and ACCEPTED_TOKEN not in saved_state()


def test_two_local_folders_are_compared_offline(session, out, tmp_path, monkeypatch):
    from stable_audio_3.random_models import write_model_repo

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    first, second = tmp_path / "music-a", tmp_path / "music-b"
    write_model_repo(first, "small-music", size="tiny")
    write_model_repo(second, "small-music", size="tiny", seed=1)
    form = comparison_form(
        model=str(first), prompt="hum", duration=1.0, seed=3, output_dir=out, session=session
    )
    assert form.others.value == "" and "its config's defaults" in form.plan.value
    form.others.value = str(second)
    assert "music-a" in form.plan.value and "music-b" in form.plan.value
    rows = form.run()
    assert rows is not None, message_text(form)
    assert [r.model_key for r in rows[0]] == [str(first), str(second)] and rows[0][0].seed == rows[0][
        1
    ].seed == 3
    assert not torch.equal(rows[0][0].audio, rows[0][1].audio)  # two models, two results
    (grid,) = result_blocks(form)
    assert "<b>music-a</b>" in grid and "<b>music-b</b>" in grid and "grid-template-columns:repeat(2," in grid
