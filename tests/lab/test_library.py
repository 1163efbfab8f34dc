"""The results library over real demo-model runs: listing, pages, exporting (its form: tests/forms)."""

import functools
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import soundfile as sf
import torch
from library_helpers import demo_run, library_folder

from sa3lab import library, quality, render
from sa3lab.cache import ModelCache
from sa3lab.lab import Lab
from sa3lab.library import Library, export_formats

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def shared_lab() -> Lab:
    """One lab for the module: the demo model loads once."""
    return Lab(cache=ModelCache(max_models=2))


@pytest.fixture
def out(tmp_path, monkeypatch) -> Path:
    return library_folder(tmp_path, monkeypatch)


def generate(out: Path, seed: int, prompt: str = "rain on a tin roof", **kw):
    return demo_run(shared_lab(), out, seed, prompt, **kw)


def test_runs_are_listed_newest_first_with_player_title_settings_and_a_note_per_bad_record(out):
    first = generate(out, seed=3)
    batch = generate(out, seed=5, prompt="distant thunder", batch_size=2)
    (out / "broken.json").write_text("{not json")
    (out / "list.json").write_text("[1, 2]")
    (out / "orphan.json").write_text(json.dumps({"model_key": "demo"}))
    (out / "stray.wav").write_bytes(b"")  # audio without a record is not a run

    listing = Library(out).scan()
    assert [run.wav for run in listing.runs] == [Path(p) for p in batch.paths + first.paths]
    assert [(run.item, run.items) for run in listing.runs] == [(0, 2), (1, 2), (0, 1)]
    assert len(listing.notes) == 3
    assert any("broken.json is not a readable run record" in note for note in listing.notes)
    assert any("list.json is not a run record" in note for note in listing.notes)
    assert any("orphan.json has no audio file orphan.wav" in note for note in listing.notes)

    newest = listing.runs[0]
    assert "demo" in newest.title() and "seed 5" in newest.title() and "item 1 of 2" in newest.title()
    assert "“distant thunder”" in newest.title()
    rows = newest.rows()
    assert rows["seed"] == 5 and rows["steps"] == "2" and rows["prompt"] == "distant thunder"

    page = Library(out).page_html(listing, 0, page_runs=2)
    assert page.count("<audio") == 2 and page.count("class='sa3lab-run'") == 2
    assert "distant thunder" in page and "rain on a tin roof" not in page  # the older run is on page 2
    assert "broken.json" in page and "Traceback" not in page
    assert "1–2 of 3 (page 1 of 2)" in page
    second = Library(out).page_html(listing, 1, page_runs=2)
    assert second.count("<audio") == 1 and "rain on a tin roof" in second
    # each file has a download link relative to the working folder
    assert f"href='outputs/{newest.wav.name}' download=" in page
    assert f"href='outputs/{newest.sidecar.name}' download=" in page


def test_an_empty_or_missing_folder_says_so(out):
    listing = Library(out).scan()
    assert listing.runs == [] and listing.notes == []
    assert "No runs in" in Library(out).page_html(listing)


def test_16_bit_is_the_default_export_and_float32_is_the_saved_file(out):
    generate(out, seed=9)
    run = Library(out).scan().runs[0]
    default = Library(out).export(run)
    assert sf.info(str(default)).subtype == "PCM_16" and default.name.endswith(".pcm16.wav")
    assert Library(out).export(run, "wav-float32") == run.wav and sf.info(str(run.wav)).subtype == "FLOAT"
    with pytest.raises(ValueError, match="Export format must be one of"):
        Library(out).export(run, "aiff")


LONG_OGG = """
import sys
import numpy as np, soundfile as sf
from sa3lab.library import Library
folder = sys.argv[1]
noise = 0.3 * np.random.default_rng(0).standard_normal((44100 * 60, 2)).astype("float32")
sf.write(folder + "/20260101T000000Z-demo-1.wav", noise, 44100, subtype="FLOAT")
open(folder + "/20260101T000000Z-demo-1.json", "w").write('{"model_key": "demo", "seed": 1}')
(run,) = Library(folder).scan().runs
print(sf.info(str(Library(folder).export(run, "ogg"))).duration)
"""


def test_a_long_ogg_vorbis_export_is_written_in_blocks_and_does_not_crash(tmp_path):
    """One write of 60 s of stereo crashes libsndfile's Vorbis encoder (a segfault): hence the blocks."""
    if "ogg" not in export_formats():
        pytest.skip(library.missing_formats_note())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LONG_OGG), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout) == pytest.approx(60.0, abs=0.05)


def test_a_page_embeds_players_only_within_its_byte_share(out, monkeypatch):
    for seed in (1, 2, 3):
        generate(out, seed=seed)
    listing = Library(out).scan()
    one = len(Library(out).page_html(listing, 0, page_runs=1))
    monkeypatch.setattr(library, "PAGE_BYTES", int(2.5 * one))
    page = Library(out).page_html(listing, 0, page_runs=3)
    assert page.count("<audio") == 2 and page.count("class='sa3lab-run'") == 3
    assert "No player here" in page and len(page) < library.PAGE_BYTES + 3 * 5000


def test_one_30_s_result_stays_within_its_share_of_the_display_budget():
    """20 form results of 30 s and one library page must fit Colab's ~10 MB of display data."""
    sr, seconds = 44100, 30
    t = torch.arange(sr * seconds) / sr
    noise = torch.randn(2, sr * seconds, generator=torch.Generator().manual_seed(0))
    audio = (0.3 * torch.sin(2 * math.pi * 220 * t) + 0.1 * noise).clamp(-1, 1)
    levels = quality.assess(audio, sr)
    clip = render.clip_html(audio, sr, quality=levels, saved="outputs/20260101T000000Z-demo-1.wav")
    block = render.result_html("<b>#1</b> demo", [clip], {"model": "demo", "seed": 1})
    assert len(block.encode()) < library.RESULT_SHARE_BYTES
    total = 20 * library.RESULT_SHARE_BYTES + library.PAGE_BYTES
    assert total < library.DISPLAY_BUDGET_BYTES


def test_the_library_uses_the_forms_words_and_units_as_the_result_cards_do(out, tmp_path):
    from sa3lab.forms import parts
    from sa3lab.roundtrip import RoundTripRequest

    clip = tmp_path / "my clip.wav"
    sf.write(clip, 0.1 * torch.randn(44100, 2).numpy(), 44100)
    result = generate(
        out, seed=4, mode="inpaint", source_audio=str(clip), regions=[(0.1, 0.3), (0.65, 0.8)], scale_phi=0.5
    )
    shared_lab().roundtrip(RoundTripRequest("demo", duration=0.5, seed=1, output_dir=str(out)))
    trip, run = Library(out).scan().runs
    rows, card = run.rows(), parts.run_rows(result)
    assert rows["regions"] == card["regions"] == "0.1–0.3 s, 0.65–0.8 s"
    assert (
        rows["source"] == card["source"] == f"my clip.wav (sha256 {result.settings['source']['sha256'][:12]})"
    )
    assert rows["CFG rescale"] == "0.5" and "CFG rescale 0.5" in card["sampler"]
    assert rows["CFG interval"] == "0–1" and "CFG interval 0–1" in card["sampler"]
    assert rows["duration"] == "1 s" and rows["mode"] == "inpaint"
    assert not [label for label in rows if "_" in label or label in ("scale phi", "cfg norm threshold")]
    trip_rows = trip.rows()
    assert trip_rows["SNR"].endswith(" dB") and trip_rows["latent frame rate"].endswith(" frames/s")
    assert trip_rows["source"] == "test chord (0.5 s)" and "snr db" not in trip_rows
    table = render.table_html(rows)
    assert table.count("<td style='text-align:left'>") == len(
        rows
    )  # beside their labels, whatever the page's CSS


def counted_library(out, runs: int, monkeypatch):
    """(a Library of ``runs`` demo runs, their listing, a list that grows by one per player rendered)."""
    for seed in range(runs):
        generate(out, seed=seed)
    rendered = []
    clip_html = render.clip_html
    monkeypatch.setattr(render, "clip_html", lambda *a, **kw: rendered.append(1) or clip_html(*a, **kw))
    return Library(out), Library(out).scan(), rendered


def test_a_page_seen_before_is_shown_again_without_rendering_its_players_again(out, monkeypatch):
    view, listing, rendered = counted_library(out, 4, monkeypatch)
    first = view.page_html(listing, 0, page_runs=2)
    view.page_html(listing, 1, page_runs=2)
    assert len(rendered) == 4
    assert view.page_html(listing, 0, page_runs=2) == first and len(rendered) == 4  # turning back: at once


def test_a_page_drawn_ahead_shows_without_rendering_and_the_cache_keeps_four_pages(out, monkeypatch):
    view, listing, rendered = counted_library(out, 6, monkeypatch)
    for page in range(4):
        view.page_html(listing, page, page_runs=1)
    assert len(rendered) == 4
    gone = listing.page(5, page_runs=1)[0]
    view.delete(gone, confirm=True)
    assert view.prepare(gone) is False and len(rendered) == 4  # a run deleted meanwhile: skipped
    assert view.prepare(listing.page(4, page_runs=1)[0]) is True and len(rendered) == 5
    assert "<audio" in view.page_html(listing, 4, page_runs=1) and len(rendered) == 5  # drawn ahead
    assert len(view._clips) <= library.CACHED_PAGES
    for page in (3, 2):  # the two pages shown before it are kept
        view.page_html(listing, page, page_runs=1)
    assert len(rendered) == 5
    view.page_html(listing, 0, page_runs=1)  # the least recent one went
    assert len(rendered) == 6 and len(view._clips) <= library.CACHED_PAGES


def test_a_page_drawn_ahead_but_not_shown_goes_before_the_pages_shown(out, monkeypatch):
    view, listing, rendered = counted_library(out, 4, monkeypatch)
    for page in range(3):
        view.page_html(listing, page, page_runs=1)
    view.prepare(listing.page(3, page_runs=1)[0])
    assert len(rendered) == 4
    for page in (1, 0):  # back: the pages shown last are still kept, the one drawn ahead goes first
        view.page_html(listing, page, page_runs=1)
    assert len(rendered) == 4
