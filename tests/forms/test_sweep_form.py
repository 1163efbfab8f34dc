"""The sweep form (sa3lab.forms.sweeps): widgets make the request, a stopped sweep shows what it finished."""

import html

import pytest
from sweep_helpers import PROMPTS, StopAfter


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the demo model needs no network


def test_the_form_maps_its_widgets_to_the_request_and_shows_the_count(tmp_path):
    from sa3lab.forms.sweeps import SweepForm

    form = SweepForm(
        model="demo", prompts=PROMPTS, seeds=3, steps=[4, 8], duration=1.0, output_dir=str(tmp_path)
    )
    request = form.read()
    assert request.seeds == 3 and request.grid == {"steps": [4, 8]} and request.steps is None
    assert request.prompts == PROMPTS and request.backend == "local"
    assert "18 items (3 prompts x 3 seeds x 2 settings)" in form.summary.value
    form.seeds.value = "random x"
    assert "Write random seeds as" in form.summary.value
    form.seeds.value, form.cfg.value = "5", "1, 100.5"
    assert "CFG scale must be a number from 0 to 100; got 100.5." in form.summary.value


def test_a_stopped_sweep_shows_the_items_it_finished(tmp_path):
    from sa3lab.forms.shell import StopRequested
    from sa3lab.forms.sweeps import STOPPED_TEXT, SweepForm

    form = SweepForm(model="demo", prompts=PROMPTS, seeds=[1, 2], duration=1.0, output_dir=str(tmp_path))
    result = form.execute(form.read(), StopAfter(2, StopRequested))
    assert result.stopped and [r["status"] for r in result.records] == ["done", "done"]
    view = form.render(result)
    assert html.escape(STOPPED_TEXT) in view and view.count("<audio") == 2
    assert "done</th><td>2 of 6" in view
