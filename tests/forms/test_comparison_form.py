"""The comparison form (sa3lab.comparison_form): plan, bad input, a demo grid, a gated pair (loopback Hub)."""

import pytest
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
    local = comparison_form(model="/some/folder", prompt="x", session=session)
    assert "catalog models only" in local.shell.message.value


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
    assert grid.count("<tr>") == 1 + 2 and grid.count("class='sa3lab-clip'") == 2  # header + a row per seed


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
    assert grid.count("<th") == 2 and grid.count("class='sa3lab-clip'") == 2
    files = " ".join(open(p).read() for r in rows[0] for p in [x.replace(".wav", ".json") for x in r.paths])
    assert ACCEPTED_TOKEN not in files and ACCEPTED_TOKEN not in saved_state()
