"""The library form (sa3lab.library_form) over real demo-model runs: reloading a run into a form,
deleting, exporting, the Colab download button, clearing a form's results.

The library itself: tests/lab/test_library.py.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from form_helpers import shared_lab
from library_helpers import demo_run, library_folder

from sa3lab import library, library_form
from sa3lab.forms.generation import GenerationForm
from sa3lab.forms.session import Session
from sa3lab.generation import GenerationRequest
from sa3lab.library import EXPORTS, Library, export_formats
from sa3lab.roundtrip import RoundTripRequest


@pytest.fixture
def out(tmp_path, monkeypatch) -> Path:
    return library_folder(tmp_path, monkeypatch)


def generate(out: Path, seed: int, prompt: str = "rain on a tin roof", **kw):
    return demo_run(shared_lab(), out, seed, prompt, **kw)


def demo_form(out: Path, **kw) -> GenerationForm:
    return GenerationForm(model="demo", output_dir=str(out), session=Session(lab=shared_lab()), **kw)


def text(widget) -> str:
    return widget.value


def test_a_past_run_loads_into_the_form_which_reads_back_the_same_request(out):
    result = generate(out, seed=11, prompt="a music box melody", negative_prompt="hiss", cfg_scale=2.5)
    form = demo_form(out, prompt="something else", seed=-1, duration=4.0)
    view = library_form(out, form=form)
    view.refresh()
    assert view.choice.value == 0
    view.load_button.click()
    assert "Loaded the settings of" in text(view.message), text(view.message)
    assert form.read() == GenerationRequest.from_record(result.metadata())
    assert (form.prompt.value, form.seed.value, form.negative.value, form.cfg.value) == (
        "a music box melody",
        11,
        "hiss",
        2.5,
    )


def test_a_round_trip_or_an_old_record_does_not_load_and_says_why_in_one_sentence(out):
    trip = shared_lab().roundtrip(RoundTripRequest(model="demo", duration=0.5, seed=1, output_dir=str(out)))
    old = Path(generate(out, seed=4).paths[0]).with_suffix(".json")
    meta = json.loads(old.read_text())
    meta.pop("request")  # as an older sa3lab wrote it
    old.write_text(json.dumps(meta))
    form = demo_form(out, prompt="wind chimes")
    before = form.read()
    view = library_form(out, form=form)
    view.refresh()
    said = {}
    for index, run in enumerate(view.listing.runs):
        view.choice.value = index
        view.load_button.click()
        said[run.wav] = text(view.message)
    assert "SAME round trip, not a generation" in said[Path(trip.run.paths[0])]
    assert "has no request" in said[old.with_suffix(".wav")]
    assert form.read() == before


def test_a_run_is_deleted_only_after_really_delete_is_ticked(out):
    keep = generate(out, seed=1)
    gone = generate(out, seed=2)
    view = library_form(out)
    view.refresh()
    run = view.selected()
    assert run.wav == Path(gone.paths[0])
    view.library.export(run, "flac")
    files = run.files()
    assert len(files) == 3  # WAV, record, FLAC

    view.delete_button.click()
    assert "Tick “really delete” first" in text(view.message)
    assert all(path.is_file() for path in files)

    view.really.value = True
    view.choice.value = 1  # another run: the tick does not carry over
    assert view.really.value is False
    view.choice.value = 0
    view.really.value = True
    view.delete_button.click()
    assert "Deleted" in text(view.message)
    assert not any(path.exists() for path in files)
    assert [r.wav for r in view.listing.runs] == [Path(keep.paths[0])] and Path(keep.paths[0]).is_file()
    assert view.really.value is False
    with pytest.raises(ValueError, match="confirm it"):
        Library(out).delete(view.listing.runs[0])
    assert Path(keep.paths[0]).is_file()


@pytest.mark.parametrize("key", list(EXPORTS))
def test_each_export_format_reads_back_with_its_subtype(out, key):
    if key not in export_formats():
        pytest.skip(library.missing_formats_note())
    result = generate(out, seed=8)
    view = library_form(out)
    view.refresh()
    view.format.value = key
    view.export_button.click()
    assert "its link is in the list below" in text(view.message), text(view.message)
    run = view.selected()
    path = run.wav if key == "wav-float32" else run.export_path(key)
    info = sf.info(str(path))
    assert (info.format, info.subtype) == (EXPORTS[key].format, EXPORTS[key].subtype)
    original = result.audio[0].T.numpy()
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == result.sample_rate and data.shape[1] == original.shape[1]
    assert np.isfinite(data).all()
    if key in ("mp3", "ogg"):
        assert abs(len(data) - len(original)) < 0.1 * rate  # encoder padding only
        assert np.sqrt(np.mean(data**2)) == pytest.approx(np.sqrt(np.mean(original**2)), rel=0.3)
    else:
        step = {"PCM_16": 2**-15, "PCM_24": 2**-23, "FLOAT": 0.0}[info.subtype]
        assert len(data) == len(original)
        assert np.abs(data - original.clip(-1, 1)).max() <= step
    assert f"href='outputs/{path.name}' download=" in view.html


def test_the_colab_download_button_is_there_on_colab_and_says_what_it_needs_elsewhere(out):
    generate(out, seed=6)
    plain = library_form(out)
    assert plain.download_button not in leaves(plain.widget)
    colab = library_form(out, colab=True)
    assert colab.download_button in leaves(colab.widget)
    colab.refresh()
    colab.download_button.click()  # google.colab is not installed here: the call itself is skipped
    assert "needs Google Colab" in text(colab.message) and "Traceback" not in text(colab.message)
    assert colab.selected().export_path("wav").is_file()  # the 16-bit WAV it would hand over


def leaves(widget) -> list:
    children = getattr(widget, "children", ())
    return [widget] + [leaf for child in children for leaf in leaves(child)]


def test_clear_results_empties_the_forms_results_and_keeps_the_files(out):
    form = demo_form(out, prompt="wind chimes", seed=2)
    form.steps.value = 2
    assert form.run() is not None
    assert len(form.shell.results) == 1
    view = library_form(out, form=form)
    view.refresh()
    view.clear_button.click()
    assert form.shell.results == [] and "cleared" in text(view.message)
    assert len(Library(out).scan().runs) == 1
