"""The sweep form (sa3lab.forms.sweeps): widgets make the request, a stopped sweep shows what it finished."""

import html
import re

import pytest
from sweep_helpers import PROMPTS, StopAfter


def text_of(view: str) -> str:
    """The words an HTML block shows, one space apart."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", view)).split())


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
    assert "done 2 of 6" in text_of(view)


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


def test_a_csv_summary_counts_rows_with_their_own_seeds_as_the_run_does(tmp_path):
    """Issue 24: "4 items (3 prompts x 4 seeds x 3 settings)" multiplied counts that do not multiply."""
    from sa3lab.forms.sweeps import SweepForm

    pack = tmp_path / "pack.csv"
    pack.write_text("prompt,seed\nkick,9\nsnare,\nhat,5\n")
    form = SweepForm(model="demo", prompts=str(pack), seeds=[1, 2], duration=1.0, output_dir=str(tmp_path))
    assert len(form.read().items()) == 4  # kick 9, snare 1 and 2, hat 5
    said = text_of(form.summary.value)
    assert said.startswith(
        "4 items from 3 prompt rows (a row with its own seed or settings makes only those; 4 seeds and "
        "1 setting in all); about "
    )
    form.prompt_file.value, form.prompts.value = "", "rain\nwind"
    assert text_of(form.summary.value).startswith("4 items (2 prompts x 2 seeds x 1 setting); about ")


def test_a_prompts_file_corrected_on_disk_is_read_again_at_run(tmp_path):
    """Issue 24: a corrected CSV kept its old error until another field changed."""
    from sa3lab.forms.sweeps import SweepForm

    pack = tmp_path / "pack.csv"
    pack.write_text("prompt,seed\nkick,x\n")
    form = SweepForm(model="demo", prompts=str(pack), duration=1.0, output_dir=str(tmp_path / "out"))
    assert "Line 2 of pack.csv: the seed 'x' is not a whole number." in html.unescape(form.summary.value)
    pack.write_text("prompt,seed\nkick,3\n")  # fixed in an editor; no field of the form changes
    result = form.run()
    assert result is not None and [r["seed"] for r in result.records] == [3]
    assert "not a whole number" not in html.unescape(form.summary.value)
    assert "1 item (1 prompt x 1 seed x 1 setting)" in html.unescape(form.summary.value)


def test_after_stop_the_table_and_the_status_say_stopped_with_what_was_saved(tmp_path, monkeypatch):
    """Issue 24: after Stop the table said "running 6 · time left 24 s" and the status "done"."""
    from sa3lab.forms.shell import StopRequested
    from sa3lab.forms.sweeps import SweepForm

    form = SweepForm(model="demo", prompts=PROMPTS, seeds=[1, 2], duration=1.0, output_dir=str(tmp_path))
    monkeypatch.setattr(form.shell.progress, "step", StopAfter(2, StopRequested).step)
    result = form.run()
    assert result is not None and result.stopped
    assert form.shell.status.value == "stopped (what it finished is below)"
    live = text_of(form.live.value)
    assert "state stopped: 2 saved running 0 " in live and "time left" not in live
    shown = text_of(form.shell.results_html())
    assert "state stopped: 2 saved running 0 " in shown and "time left" not in shown


def test_the_ray_workers_field_says_what_its_number_means(tmp_path):
    from sa3lab.forms.sweeps import SweepForm

    form = SweepForm(model="demo", prompts=PROMPTS, backend="ray", output_dir=str(tmp_path))
    assert form.workers_note.layout.display is None
    assert "0: Ray starts one worker per GPU at Run (2 on a machine without GPUs)" in form.workers_note.value
    form.workers.value = 3
    assert "Ray starts 3 worker(s) at Run" in form.workers_note.value
    form.backend.value = "local"
    assert form.workers_note.layout.display == "none"
