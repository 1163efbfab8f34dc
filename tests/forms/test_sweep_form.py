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
    from sa3lab.forms.sweeps import SweepForm

    form = SweepForm(model="demo", prompts=PROMPTS, seeds=[1, 2], duration=1.0, output_dir=str(tmp_path))
    result = form.execute(form.read(), StopAfter(2, StopRequested))
    assert result.stopped and [r["status"] for r in result.records] == ["done", "done"]
    view = form.render(result)
    said = f"Stopped: 2 of 6 items are saved in {tmp_path}; run the sweep again to make the others."
    assert html.escape(said) in view and view.count("<audio") == 2
    assert "done</th><td style='text-align:left'>2 of 6" in view


def test_an_interrupt_after_items_were_saved_says_how_many_not_nothing_was_generated(tmp_path, monkeypatch):
    """Issue 29: an interrupt that ends the run outright (here while the gallery is drawn, after the
    sweep stopped with 2 items saved) said "nothing was generated"; it now counts the saved items."""
    from sa3lab.forms import sweeps as form_module
    from sa3lab.forms.shell import STOPPED_TEXT

    form = form_module.SweepForm(
        model="demo", prompts=PROMPTS, seeds=[1, 2], duration=1.0, output_dir=str(tmp_path)
    )
    stop = StopAfter(2)
    monkeypatch.setattr(form.shell.progress, "step", stop.step)

    def interrupted(result):
        raise KeyboardInterrupt

    monkeypatch.setattr(form_module, "gallery_html", interrupted)
    assert form.run() is None
    said = html.unescape(form.shell.message.value)
    assert f"Stopped: 2 of 6 items are saved in {tmp_path}; run the sweep again to make the others." in said
    assert "nothing was generated" not in said and len(list(tmp_path.glob("*.wav"))) == 2
    stop.count = 0  # stopped again before any new item: the 2 saved earlier still count
    assert form.run() is None
    assert "Stopped: 2 of 6 items are saved in" in html.unescape(form.shell.message.value)
    empty = form_module.SweepForm(
        model="demo", prompts=PROMPTS, seeds=[1], duration=1.0, output_dir=str(tmp_path / "new")
    )
    monkeypatch.setattr(empty.shell.progress, "step", StopAfter(0).step)
    assert empty.run() is None and html.escape(STOPPED_TEXT) in empty.shell.message.value
