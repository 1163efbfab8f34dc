"""The library form (sa3lab.library_form) over real demo-model runs: reloading a run into a form,
deleting, exporting, the Colab download button, clearing a form's results.

The library itself: tests/lab/test_library.py.
"""

import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from form_helpers import shared_lab
from library_helpers import demo_run, library_folder

from sa3lab import library, library_form, render
from sa3lab.audio_input import audio_info, read_audio
from sa3lab.forms import kernel
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
    original = result.audio[0].T.numpy()
    if EXPORTS[key].ffmpeg:  # m4a: read back through ffmpeg
        info = audio_info(path)
        assert (info.format, info.subtype) == ("ffmpeg:mov", "FLOAT")
        rate, audio = read_audio(path)
        data = audio.T.numpy()
    else:
        info = sf.info(str(path))
        assert (info.format, info.subtype) == (EXPORTS[key].format, EXPORTS[key].subtype)
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == result.sample_rate and data.shape[1] == original.shape[1]
    assert np.isfinite(data).all()
    if key in ("mp3", "ogg", "m4a"):
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


def test_download_all_zips_every_file_of_the_output_folder_and_links_it_first(out):
    view = library_form(out)
    view.all_button.click()
    assert f"There is nothing in {out} to download yet" in text(view.message)
    first, second = generate(out, seed=11), generate(out, seed=12)
    view.refresh()
    view.format.value = "flac"
    view.export_button.click()
    (out / "sweep").mkdir()
    (out / "sweep" / "item.wav").write_bytes(Path(first.paths[0]).read_bytes())
    (out / "my-lora.safetensors").write_bytes(b"lora")
    (out / ".tmp-half-written.wav").write_bytes(b"")
    view.all_button.click()
    [made] = out.glob("sa3lab-results-*.zip")
    assert f"Wrote {made.name}" in text(view.message) and "its link heads the list below" in text(
        view.message
    )
    names = zipfile.ZipFile(made).namelist()
    runs = [Path(p) for p in first.paths + second.paths]
    expected = [*(p.name for p in runs), *(p.with_suffix(".json").name for p in runs)]
    expected += [view.selected().export_path("flac").name, "sweep/item.wav", "my-lora.safetensors"]
    assert sorted(names) == sorted(f"outputs/{name}" for name in expected)
    with zipfile.ZipFile(made) as archive:
        assert archive.read(f"outputs/{runs[0].name}") == runs[0].read_bytes()
    head = view.html.split("<div class='sa3lab-entry", 1)[0]
    assert f"All runs as one zip: <a href='outputs/{made.name}' download='{made.name}'>" in head
    time.sleep(1.1)  # a new name (the time in it has seconds)
    view.all_button.click()
    [again] = out.glob("sa3lab-results-*.zip")  # the earlier zip is replaced, never zipped into the new one
    assert again != made and sorted(zipfile.ZipFile(again).namelist()) == sorted(names)


def test_keep_on_drive_links_the_output_folder_to_a_mounted_drive_folder(out, tmp_path):
    """The mount is a folder standing in for /content/drive (google.colab is not installed here)."""
    saved = generate(out, seed=13)
    view = library_form(out, colab=True)
    assert view.drive_button in leaves(view.widget) and view.drive_button not in leaves(
        library_form(out).widget
    )
    view.drive_root = tmp_path / "drive"
    view.drive_button.click()  # not mounted, and no google.colab to mount it with
    assert "needs Google Colab (google.colab.drive)" in text(view.message) and not out.is_symlink()
    (tmp_path / "drive" / "MyDrive").mkdir(parents=True)
    view.drive_button.click()
    kept = tmp_path / "drive" / "MyDrive" / "sa3lab" / "outputs"
    assert f"Results now go to Google Drive: {kept} (My Drive &gt; sa3lab &gt; outputs)" in text(view.message)
    assert "the 2 files already saved moved there" in text(view.message)
    assert out.is_symlink() and out.resolve() == kept.resolve()
    assert (kept / Path(saved.paths[0]).name).is_file() and len(view.listing.runs) == 1
    later = generate(out, seed=14)  # a later run (any notebook saving to outputs/) lands on Drive
    assert (kept / Path(later.paths[0]).name).is_file()
    view.drive_button.click()
    assert "Results already go to Google Drive" in text(view.message)


def test_the_library_follows_new_results_and_says_it_is_working_while_a_button_works(out):
    form = demo_form(out, prompt="rain", seed=1, duration=1.0)
    form.steps.value = 2
    view = library_form(out, form=form, page_runs=1)
    view.display()
    assert "No runs" in view.html
    first = form.run()
    assert Path(first.paths[0]).name in view.html and "1 run" in view.page_label.value  # no Refresh
    form.run()
    assert "2 runs" in view.page_label.value and not view.older.disabled
    seen = []
    view.message.observe(lambda change: seen.append((change.new, view.load_button.disabled)), "value")
    view.older.click()
    assert "Turning the page…" in seen[0][0] and seen[0][1]  # said at once; the buttons wait meanwhile
    assert view.page == 1 and Path(first.paths[0]).name in view.html
    assert not view.load_button.disabled and view.older.disabled and not view.newer.disabled


@pytest.fixture
def rendered(monkeypatch) -> list:
    """One entry per player rendered (render.clip_html runs as ever)."""
    calls, clip_html = [], render.clip_html
    monkeypatch.setattr(render, "clip_html", lambda *a, **kw: calls.append(1) or clip_html(*a, **kw))
    return calls


def test_the_next_older_page_is_drawn_ahead_so_older_renders_no_player(out, rendered):
    """Outside a kernel, what a page schedules after its request runs at once."""
    runs = [Path(generate(out, seed=seed).paths[0]) for seed in range(5)][::-1]  # newest first
    view = library_form(out, page_runs=2)
    view.refresh()
    assert len(rendered) == 4  # page 1, then page 2 drawn ahead
    assert runs[2].name not in view.html  # what is on show stays page 1
    view.older.click()
    assert view.page == 1 and view.html.count("<audio") == 2 and runs[2].name in view.html
    assert len(rendered) == 5  # none for page 2; page 3's one run drawn ahead
    view.older.click()
    assert len(rendered) == 5 and view.older.disabled  # the last page: nothing further to draw
    assert len(view.library._clips) <= library.CACHED_PAGES * 2


def test_drawing_ahead_waits_out_a_forms_job_skips_deleted_runs_and_stops_for_a_newer_page(
    out, rendered, monkeypatch
):
    """The kernel's event loop stood in for by a list: its callbacks run when the test lets them."""
    runs = [Path(generate(out, seed=seed).paths[0]) for seed in range(7)][::-1]  # newest first
    form = demo_form(out, prompt="rain", seed=1, duration=1.0)
    view = library_form(out, form=form, page_runs=2)
    loop = []
    monkeypatch.setattr(kernel, "after_this_request", loop.append)

    def turn():  # the event loop's turn: every callback due, and those they schedule
        while loop:
            loop.pop(0)()

    view.refresh()
    assert len(rendered) == 2 and len(loop) == 1  # page 1 shown; page 2 waits for the request's end
    form.shell.run_task(lambda _: turn())  # a form's job is going: no drawing ahead
    assert len(rendered) == 2 and loop == []
    view.refresh_button.click()  # page 1 shown again (from the cache): page 2 is due again
    assert len(rendered) == 2 and len(loop) == 1
    loop.pop(0)()  # one player of page 2; then a click comes first
    assert len(rendered) == 3
    view.older.click()
    assert len(rendered) == 4  # page 2's other player only
    view.newer.click()  # back to page 1 before page 3 is drawn: drawing page 3 stops
    turn()
    assert len(rendered) == 4 and view.page == 0
    view.older.click()  # page 2 from the cache; page 3 due
    shown, said = view.html, view.message.value
    Library(out).delete(view.listing.runs[4], confirm=True)  # page 3's first run, meanwhile
    turn()
    assert len(rendered) == 5  # the deleted run was skipped
    assert (view.html, view.message.value) == (shown, said)  # nothing on screen changed
    view.older.click()  # page 3 is now runs[5] (drawn ahead) and runs[6]
    assert len(rendered) == 6 and runs[5].name in view.html and runs[4].name not in view.html
    assert "error" not in view.message.value.lower() and "Traceback" not in view.html
