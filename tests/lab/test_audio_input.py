"""The one reader of a person's audio files (sa3lab.audio_input), and every place that reads through it.

A NaN WAV, an infinite WAV, an empty WAV and a file that is not audio each give one sentence: in the
reader, a form's file field (its player), the sweep gallery, the caption editor of the training
form, the training data check and the library's pages and exports. No encoder sees a NaN sample: an
MP3 encoder fed one aborts the whole process (LAME's ``calc_energy: Assertion 'el >= 0'``).
"""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from sa3lab import render
from sa3lab.audio_input import audio_info, check_readable, read_audio
from sa3lab.forms.parts import AudioSource
from sa3lab.forms.sweeps import gallery_html
from sa3lab.forms.training import CaptionEditor
from sa3lab.library import Library, export_formats
from sa3lab.runs import RunResult, save_result
from sa3lab.training import check_dataset

RATE = 8000
BAD = {
    "nan": "holds NaN or infinite samples; export it again or choose another file.",
    "inf": "holds NaN or infinite samples; export it again or choose another file.",
    "empty": "contains no samples; choose another file.",
    "not-audio": "(FfmpegError); use a WAV, FLAC, OGG, MP3, M4A/AAC or another audio file ffmpeg reads.",
}


def tone(seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return np.stack([0.3 * np.sin(2 * np.pi * 220 * t)] * 2, 1).astype(np.float32)


def write(path: Path, kind: str) -> Path:
    """A float WAV of ``kind``: good, nan or inf (one bad sample late in the file), empty, or not-audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "not-audio":
        path.write_text("this is not audio\n")
        return path
    data = tone() if kind != "empty" else np.zeros((0, 2), np.float32)
    if kind in ("nan", "inf"):
        data[-10, 1] = np.nan if kind == "nan" else -np.inf
    sf.write(path, data, RATE, subtype="FLOAT")
    return path


def one_sentence(text: str, kind: str) -> bool:
    """``text`` holds the reader's sentence for ``kind`` (HTML-escaped or not), once."""
    plain = text.replace("&#x27;", "'").replace("&amp;", "&")
    return plain.count(BAD[kind]) == 1


@pytest.mark.parametrize("kind", BAD)
def test_the_reader_refuses_a_bad_file_in_one_sentence_whatever_is_asked(tmp_path, kind):
    path = write(tmp_path / f"{kind}.wav", kind)
    calls = [
        lambda: audio_info(path, "source audio"),
        lambda: check_readable(str(path), "source audio"),
        lambda: read_audio(path, what="source audio"),
    ]
    for call in calls:
        with pytest.raises(ValueError) as caught:
            call()
        message = str(caught.value)
        assert one_sentence(message, kind) and message.count(". ") == 0, message
        assert str(path) in message and (kind == "not-audio" or "The source audio file" in message)


def test_the_reader_gives_a_good_files_facts_and_any_part_of_it(tmp_path):
    path = write(tmp_path / "good.wav", "good")
    info = audio_info(str(path))
    assert (info.path, info.sample_rate, info.channels, info.frames) == (path, RATE, 2, 4000)
    assert info.duration == 0.5 and (info.format, info.subtype) == ("WAV", "FLOAT")
    rate, audio = read_audio(path)
    assert rate == RATE and audio.dtype == torch.float32 and audio.shape == (2, 4000)
    assert torch.equal(audio, torch.from_numpy(tone().T.copy()))
    assert read_audio(path, max_seconds=0.1)[1].shape == (2, 800)
    _, part = read_audio(path, start=1000, frames=300)
    assert torch.equal(part, audio[:, 1000:1300])
    assert read_audio(path, start=3900, frames=300)[1].shape == (2, 100)  # to the end


def test_a_part_read_is_checked_and_a_whole_file_check_reads_it_all(tmp_path):
    path = write(tmp_path / "nan.wav", "nan")  # the NaN is 10 frames before the end
    assert read_audio(path, max_seconds=0.1)[1].isfinite().all()  # the part read is finite
    with pytest.raises(ValueError, match="holds NaN"):
        read_audio(path, start=3980, frames=20)
    with pytest.raises(ValueError, match="holds NaN"):
        audio_info(path)


def test_a_nan_file_in_a_forms_file_field_is_one_sentence_and_the_process_lives(tmp_path):
    """The field's player encodes MP3; a NaN sample reaching LAME aborts the process (rc 134)."""
    path = write(tmp_path / "nan.wav", "nan")
    code = textwrap.dedent(
        f"""
        from sa3lab.forms.parts import AudioSource
        field = AudioSource()
        field.path.value = {str(path)!r}
        print(field.chosen.value)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert one_sentence(done.stdout, "nan") and "<audio" not in done.stdout


@pytest.mark.parametrize("kind", BAD)
def test_a_bad_file_in_a_forms_file_field_shows_one_sentence_and_no_player(tmp_path, kind):
    field = AudioSource()
    field.path.value = str(write(tmp_path / f"{kind}.wav", kind))
    assert one_sentence(field.chosen.value, kind) and "<audio" not in field.chosen.value
    field.path.value = str(write(tmp_path / "good.wav", "good"))
    assert "good.wav · 0.50 s" in field.chosen.value and "<audio" in field.chosen.value


def test_the_players_never_hand_non_finite_samples_to_an_encoder():
    """Issue 25 (upstream #90): NaN or infinite audio is refused in one sentence, not made silence or
    full scale and written (LAME would abort on the NaN)."""
    for bad in (float("nan"), float("inf"), -float("inf")):
        audio = torch.from_numpy(tone().T.copy())
        audio[1, 6] = bad
        for player in (render.audio_html, render.wav_bytes):
            with pytest.raises(ValueError, match="^The audio came out with NaN or infinite values; it is"):
                player(audio, RATE)


def test_a_result_with_non_finite_samples_is_not_saved(tmp_path):
    audio = torch.zeros(1, 2, 100)
    audio[0, 1, 5] = float("nan")
    result = RunResult(audio, RATE, 1, "demo", None, None, "cpu", "float32", {}, False, 0.0)
    with pytest.raises(ValueError, match="^The result holds NaN or infinite samples; nothing was saved.$"):
        save_result(result, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("kind", BAD)
def test_a_bad_sweep_item_shows_one_sentence_in_the_gallery(tmp_path, kind):
    write(tmp_path / "good.wav", "good")
    write(tmp_path / "bad.wav", kind)
    settings = {"model": "demo", "steps": 2, "cfg_scale": 1.0}
    records = [
        {"status": "done", "prompt": "rain", "file": name, "seed": 1, "settings": settings}
        for name in ("good.wav", "bad.wav")
    ]
    gallery = gallery_html(SimpleNamespace(output_dir=str(tmp_path), records=records))
    assert one_sentence(gallery, kind) and (kind == "not-audio" or "The sweep result file" in gallery)
    assert gallery.count("<audio") == 1 and "bad.wav" in gallery


@pytest.mark.parametrize("kind", BAD)
def test_a_bad_training_clip_is_one_sentence_in_the_caption_editor_and_the_data_check(tmp_path, kind):
    folder = tmp_path / "data"
    write(folder / "good.wav", "good")
    write(folder / "bad.wav", kind)
    for name in ("good", "bad"):
        (folder / f"{name}.txt").write_text(f"{name} clip\n")
    editor = CaptionEditor()
    editor.show(folder)
    rows = zip(editor.boxes, editor.rows.children, strict=True)
    players = {Path(clip).name: row.children[0].value for clip, row in rows}
    assert one_sentence(players["bad.wav"], kind) and "<audio" not in players["bad.wav"]
    assert "<audio" in players["good.wav"]
    expected = {
        "nan": "These clips hold NaN or infinite samples: bad.wav; export them again or remove them.",
        "inf": "These clips hold NaN or infinite samples: bad.wav; export them again or remove them.",
        "empty": "These clips are silent",
        "not-audio": "These files cannot be read as audio: bad.wav;",
    }[kind]
    with pytest.raises(ValueError, match=re.escape(expected)):
        check_dataset(folder)


@pytest.mark.parametrize("kind", BAD)
def test_a_bad_run_in_the_library_is_one_sentence_on_its_page_and_refused_by_every_export(tmp_path, kind):
    out = tmp_path / "outputs"
    write(out / "20240101T000000Z-demo-1.wav", kind)
    (out / "20240101T000000Z-demo-1.json").write_text(json.dumps({"model_key": "demo", "seed": 1}))
    library = Library(out)
    listing = library.scan()
    [run] = listing.runs
    page = library.page_html(listing)
    assert one_sentence(page, kind) and "<audio" not in page
    for fmt in export_formats():
        with pytest.raises(ValueError) as caught:
            library.export(run, fmt)
        assert one_sentence(str(caught.value), kind)
        assert not run.export_path(fmt).exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([run.wav.name, run.sidecar.name])  # no temporary


def test_a_late_nan_stops_an_export_before_the_encoder_sees_it(tmp_path, monkeypatch):
    """Exports are written in blocks; the file is checked whole before the first block is written."""
    out = tmp_path / "outputs"
    data = np.zeros((RATE * 3, 2), np.float32)
    data[-1, 0] = np.nan
    out.mkdir()
    sf.write(out / "20240101T000000Z-demo-1.wav", data, RATE, subtype="FLOAT")
    (out / "20240101T000000Z-demo-1.json").write_text(json.dumps({"model_key": "demo", "seed": 1}))
    monkeypatch.setattr("sa3lab.library.BLOCK_SECONDS", 1)
    library = Library(out)
    [run] = library.scan().runs
    with pytest.raises(ValueError, match="holds NaN or infinite samples"):
        library.export(run, "mp3" if render.mp3_available() else "flac")
    assert len(list(out.iterdir())) == 2


def hostile_family(folder: Path, *options: str, timeout: int = 300) -> tuple[list[dict], dict]:
    """The rows tests/hostile_audio.py prints in a child process (which must live), and its CASES."""
    script = Path(__file__).resolve().parents[1] / "hostile_audio.py"
    done = subprocess.run(
        [sys.executable, str(script), str(folder), *options], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0 and done.stdout.endswith("DONE\n"), (done.returncode, done.stderr[-3000:])
    sys.path.insert(0, str(script.parent))
    try:
        from hostile_audio import CASES
    finally:
        sys.path.remove(str(script.parent))
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")], CASES


def test_a_family_of_hostile_files_through_every_path_shows_the_file_or_one_sentence(tmp_path):
    """tests/hostile_audio.py runs each case (non-finite, 1e30, clipped, 1/3/6/8 channels, 8 kHz to
    192 kHz and 7 Hz, 1 and 10 frames, empty, garbage header, MP3 named .wav, text) through every form's
    path and upload field (then a good file: the field still works), the library's page and exports,
    the sweep gallery, the caption editor, the training data check and a training item, in one child
    process: a native abort there shows as its exit code."""
    rows, CASES = hostile_family(tmp_path)
    fields = ["generation.a2a_audio", "generation.inpaint_audio", "generation.continue_audio"]
    paths = [f"{how}:{field}" for field in [*fields, "autoencoder.audio"] for how in ("path", "upload")]
    paths += ["library:page", *(f"library:export-{fmt}" for fmt in export_formats()), "sweeps:gallery"]
    paths += ["training:caption-editor", "training:data-check", "training:dataset-item"]
    assert sorted((r["case"], r["path"]) for r in rows) == sorted((c, p) for c in CASES for p in paths)
    wrong = [r for r in rows if r["outcome"] == "wrong"]
    assert not wrong, json.dumps(wrong, indent=1)[:4000]
    for row in rows:
        refused = CASES[row["case"]][2]
        checks = row["path"].startswith("training:data") and row["case"] != "mp3-named-wav"
        allowed = {
            True: {"refused"} if checks else {"sentence"},
            False: {"shown", "refused"} if checks else {"shown"},
            None: {"shown", "sentence", "refused"},
        }[refused]
        assert row["outcome"] in allowed, row
    outcome = {(r["case"], r["path"]): r["outcome"] for r in rows}
    assert outcome["m4a-aac-5.1", "path:generation.a2a_audio"] == "shown"
    assert outcome["m4a-aac-5.1", "library:export-m4a"] == "shown"
    assert outcome["m4a-aac-5.1", "training:dataset-item"] == "shown"
    assert outcome["6-channels-8kHz", "path:generation.a2a_audio"] == "shown"  # issue 29's two files
    assert outcome["96000Hz-flac", "upload:autoencoder.audio"] == "shown"


@pytest.mark.slow
def test_generate_and_the_round_trip_with_each_hostile_file_give_a_result_or_one_sentence(tmp_path):
    """The same family through Run: Generate in the audio-to-audio, inpainting and continuation tabs and
    the SAME round trip, each with the file in its field (demo model), in one child process that must
    live; a refused file gets the reader's sentence, any other a finite result; afterwards each form
    still runs with a good file."""
    rows, CASES = hostile_family(tmp_path, "--runs", timeout=900)
    runs = [
        "generation.a2a_audio",
        "generation.inpaint_audio",
        "generation.continue_audio",
        "autoencoder.audio",
    ]
    afterwards = [("good", "run:generation.afterwards"), ("good", "run:autoencoder.afterwards")]
    expected = [(c, f"run:{name}") for c in CASES for name in runs] + afterwards
    assert sorted((r["case"], r["path"]) for r in rows) == sorted(expected)
    wrong = [r for r in rows if r["outcome"] == "wrong"]
    assert not wrong, json.dumps(wrong, indent=1)[:4000]
    for row in rows:
        refused = CASES[row["case"]][2] if row["case"] in CASES else False
        allowed = {True: {"sentence"}, False: {"shown"}, None: {"shown", "sentence"}}[refused]
        assert row["outcome"] in allowed, row
    assert {r["outcome"] for r in rows if r["case"] == "6-channels-8kHz"} == {"shown"}  # round trip too


def test_a_player_that_fails_unforeseen_is_one_sentence_in_the_field_the_editor_and_the_gallery(
    tmp_path, monkeypatch
):
    """Past the reader's checks nothing should fail; should an encoder still raise, the form says so."""
    write(tmp_path / "a.wav", "good")
    (tmp_path / "a.txt").write_text("a clip\n")

    def broken(*args, **kwargs):
        raise RuntimeError("the encoder broke")

    monkeypatch.setattr(render, "audio_html", broken)
    sentence = f"The file {tmp_path / 'a.wav'} could not be shown (RuntimeError); choose another file."
    field = AudioSource()
    field.path.value = str(tmp_path / "a.wav")
    editor = CaptionEditor()
    editor.show(tmp_path)
    settings = {"model": "demo", "steps": 2, "cfg_scale": 1.0}
    record = {"status": "done", "prompt": "rain", "file": "a.wav", "seed": 1, "settings": settings}
    gallery = gallery_html(SimpleNamespace(output_dir=str(tmp_path), records=[record]))
    for shown in (field.chosen.value, editor.rows.children[0].children[0].value, gallery):
        assert shown.replace("&#x27;", "'").count(sentence) == 1 and "<audio" not in shown
