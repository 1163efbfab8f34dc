"""A family of hostile audio files run through every path that reads, previews, encodes or exports audio.

Run as a script (``python tests/hostile_audio.py FOLDER [--runs] [CASE ...]``) by
tests/lab/test_audio_input.py, so that a native abort (LAME, libvorbis, libsndfile) kills this
process, not the test run. It prints one JSON
line per case and path: ``{"case", "path", "outcome", "detail"}`` where outcome is ``shown`` (a player
of the file, or an export written), ``sentence`` (the reader's one sentence, once, and no player),
``refused`` (a data check's or a run's one sentence) or ``wrong`` (anything else, with what was seen).
With ``--runs`` the paths are presses of Run instead (Generate in the file's tab, and the round trip),
and after the family a run of each form with a good file.
"""

import html
import io
import json
import re
import shutil
import subprocess
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soundfile as sf

RATE = 44100


def tone(frames: int, channels: int, rate: int, level: float = 0.3) -> np.ndarray:
    t = np.arange(frames) / rate
    return np.stack([level * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)], 1).astype(
        np.float32
    )


def _float_wav(path, data, rate=RATE):
    sf.write(path, data, rate, subtype="FLOAT")


def _nonfinite(value):
    def write(path):
        data = tone(RATE // 2, 2, RATE)
        data[-10, 1] = value
        _float_wav(path, data)

    return write


def _extreme(path):
    data = tone(RATE // 2, 2, RATE) * np.float32(1e31)  # peaks near 1e30
    _float_wav(path, data)


def _clipped(path):
    sf.write(path, np.sign(tone(RATE // 2, 2, RATE)), RATE, subtype="PCM_16")  # full-scale square


def _channels(n, rate=RATE):
    return lambda path: sf.write(path, tone(rate // 2, n, rate), rate, subtype="PCM_16")


def _rate(rate, fmt="WAV"):
    return lambda path: sf.write(path, tone(max(1, rate // 2), 2, rate), rate, format=fmt, subtype="PCM_16")


def _frames(n):
    return lambda path: sf.write(path, tone(n, 2, RATE), RATE, subtype="PCM_16")


def _empty(path):
    sf.write(path, np.zeros((0, 2), np.float32), RATE, subtype="PCM_16")


def _garbage_wav(path):
    rng = np.random.default_rng(0)
    path.write_bytes(b"RIFF\x24\x80\x00\x00WAVEfmt " + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())


def _mp3_named_wav(path):
    buf = io.BytesIO()
    sf.write(buf, tone(RATE // 2, 2, RATE), RATE, format="MP3")
    path.write_bytes(buf.getvalue())


def _text(path):
    path.write_text("this is not audio\n")


def _ffmpeg(*arguments):
    """A writer running the ffmpeg program (required: .ci/run installs it) with ``arguments`` + the path."""
    return lambda path: subprocess.run(
        [shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-y", *arguments, str(path)], check=True
    )


def _truncated_m4a(path):
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", "-f", "ipod")(path)
    path.write_bytes(path.read_bytes()[:2000])


# case: (writer, suffix, the reader refuses it with one sentence)
CASES = {
    "nan": (_nonfinite(np.nan), ".wav", True),
    "inf": (_nonfinite(np.inf), ".wav", True),
    "extreme-1e30": (_extreme, ".wav", False),
    "full-scale-clipped": (_clipped, ".wav", False),
    "1-channel": (_channels(1), ".wav", False),
    "3-channels": (_channels(3), ".wav", False),
    "6-channels-8kHz": (_channels(6, 8000), ".wav", False),
    "8-channels": (_channels(8), ".wav", False),
    "8000Hz": (_rate(8000), ".wav", False),
    "11025Hz": (_rate(11025), ".wav", False),
    "22050Hz": (_rate(22050), ".wav", False),
    "44101Hz": (_rate(44101), ".wav", False),
    "96000Hz-flac": (_rate(96000, "FLAC"), ".flac", False),
    "192000Hz": (_rate(192000), ".wav", False),
    "7Hz": (_rate(7), ".wav", True),
    "1-frame": (_frames(1), ".wav", False),
    "10-frames": (_frames(10), ".wav", False),
    "empty": (_empty, ".wav", True),
    "garbage-wav-header": (_garbage_wav, ".wav", True),
    "mp3-named-wav": (_mp3_named_wav, ".wav", None),  # None: shown or one sentence, as libsndfile decodes
    "text-file": (_text, ".wav", True),
    "m4a-aac-5.1": (
        _ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-ac", "6", "-c:a", "aac"),
        ".m4a",
        False,
    ),
    "truncated-m4a": (_truncated_m4a, ".m4a", True),
    "ogg-named-m4a": (
        _ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "libvorbis", "-f", "ogg"),
        ".m4a",
        False,
    ),
    "video-named-m4a": (
        _ffmpeg("-f", "lavfi", "-i", "testsrc=duration=0.2:size=32x32", "-f", "mp4"),
        ".m4a",
        True,
    ),
    "text-named-m4a": (_text, ".m4a", True),
}


def reader_sentence(path, what: str) -> str | None:
    """The reader's sentence for ``path`` (None when it reads the file)."""
    from sa3lab.audio_input import audio_info

    try:
        audio_info(path, what)
    except ValueError as exc:
        return str(exc)
    return None


def judge(markup: str, sentence: str | None, name: str = "") -> tuple[str, str]:
    text = html.unescape(markup)
    if sentence is None:
        if "<audio" in markup and name in text:
            return "shown", ""
        return "wrong", f"no player: {re.sub(r'<[^>]+>', ' ', text)[:300]}"
    if text.count(sentence) == 1 and "<audio" not in markup and sentence.count(". ") == 0:
        return "sentence", sentence
    return "wrong", f"expected {sentence!r}, saw {re.sub(r'<[^>]+>', ' ', text)[:300]}"


def report(case: str, path: str, outcome: str, detail: str = "") -> None:
    print(json.dumps({"case": case, "path": path, "outcome": outcome, "detail": detail}), flush=True)


def guarded(case: str, path: str, call) -> None:
    """Run one path; any exception but the expected is 'wrong' (an uncaught error in the notebook)."""
    try:
        outcome, detail = call()
    except Exception:  # noqa: BLE001 - every escape is reported
        outcome, detail = "wrong", traceback.format_exc(limit=3)[-600:]
    report(case, path, outcome, detail)


def forms(session, out):
    """The generation form and the round-trip form, on the demo model, set for short runs."""
    from sa3lab.forms.autoencoder import AutoencoderForm
    from sa3lab.forms.generation import GenerationForm

    generation = GenerationForm(model="demo", duration=1.0, seed=1, output_dir=out, session=session)
    generation.steps.value, generation.prompt.value, generation.regions.value = 2, "rain", "0.1-0.3"
    return generation, AutoencoderForm(model="demo", duration=1.0, seed=1, output_dir=out, session=session)


def fields(generation, autoencoder):
    """Every form's file fields by name."""
    return {
        "generation.a2a_audio": generation.a2a_audio,
        "generation.inpaint_audio": generation.inpaint_audio,
        "generation.continue_audio": generation.continue_audio,
        "autoencoder.audio": autoencoder.audio,
    }


# the Generate tab of each generation file field (its index in the form's tabs)
GENERATE_TABS = {"generation.a2a_audio": 1, "generation.inpaint_audio": 2, "generation.continue_audio": 3}
# what a run's sentence calls each field's file
RUN_WHAT = {
    "generation.a2a_audio": "audio to transform",
    "generation.inpaint_audio": "audio to edit",
    "generation.continue_audio": "audio to continue",
    "autoencoder.audio": "audio",
}


def ran(form, sentence: str | None) -> tuple[str, str]:
    """A press of Run: a finite result, or the form's one sentence (the reader's, for a refused file)."""
    result = form.run()
    message = html.unescape(re.sub(r"<[^>]+>", " ", form.shell.message.value)).strip()
    if result is not None:
        audio = result.after if hasattr(result, "after") else result.audio  # a round trip's, a generation's
        finite = np.isfinite(np.asarray(audio)).all()
        if sentence is None and finite:
            return "shown", ""
        return "wrong", f"a result although {sentence!r}" if finite else "a non-finite result"
    if not message or "Traceback" in message or message.count(". ") > 0:
        return "wrong", f"no result and not one sentence: {message[:300]!r}"
    if sentence is not None and sentence not in message:
        return "wrong", f"expected {sentence!r}, saw {message[:300]!r}"
    return ("sentence" if sentence is not None else "refused"), message


def upload_item(name: str, data: bytes) -> dict:
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    return {"name": name, "type": "", "size": len(data), "content": memoryview(data), "last_modified": now}


def main(root: Path, only=None, presses: bool = False) -> None:
    from sa3lab.forms.session import Session

    good = root / "good.wav"
    sf.write(good, tone(RATE // 2, 2, RATE), RATE, subtype="PCM_16")
    generation, autoencoder = forms(Session(), str(root / "forms-out"))
    for case in CASES:
        if only and case not in only:
            continue
        if presses:
            press_run(case, hostile_file(root, case), good, generation, autoencoder)
        else:
            run_case(root, case, good, generation, autoencoder)
    if presses:  # after the whole family, each form still runs with a good file
        guarded("good", "run:generation.afterwards", lambda: ran(generation, None))
        guarded("good", "run:autoencoder.afterwards", lambda: ran(autoencoder, None))
    print("DONE", flush=True)


def hostile_file(root: Path, case: str) -> Path:
    writer, suffix, _ = CASES[case]
    folder = root / case
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"clip{suffix}"
    writer(file)
    return file


def press_run(case: str, file: Path, good: Path, generation, autoencoder) -> None:
    """Run (Generate in each file's tab, and the round trip) with the hostile file in each field."""
    for name, field in fields(generation, autoencoder).items():

        def run(field=field, name=name):
            form = generation if name in GENERATE_TABS else autoencoder
            if name in GENERATE_TABS:
                form.tabs.selected_index = GENERATE_TABS[name]
            field.set(file)
            try:
                return ran(form, reader_sentence(file, RUN_WHAT[name]))
            finally:
                field.set(good)

        guarded(case, f"run:{name}", run)


def run_case(root: Path, case: str, good: Path, generation, autoencoder) -> None:
    """One hostile file through every path but the runs; a line per path."""
    from sa3lab.audio_input import audio_info
    from sa3lab.forms.sweeps import gallery_html
    from sa3lab.forms.training import CaptionEditor
    from sa3lab.library import Library, export_formats
    from sa3lab.training import check_dataset

    file = hostile_file(root, case)
    folder, suffix, data = file.parent, file.suffix, file.read_bytes()

    for name, field in fields(generation, autoencoder).items():

        def typed(field=field):
            field.set(file)
            outcome = judge(field.chosen.value, reader_sentence(file, "audio"), file.name)
            field.set(good)  # the field still works
            if judge(field.chosen.value, None, good.name)[0] != "shown":
                return "wrong", "the field no longer shows a good file"
            return outcome

        def uploaded(field=field):
            field.upload.value = (upload_item(f"upload {case}{suffix}", data),)
            outcome = judge(field.chosen.value, reader_sentence(field.value, "audio"), f"upload {case}")
            field.upload.value = (upload_item("good.wav", good.read_bytes()),)
            if judge(field.chosen.value, None, "good.wav")[0] != "shown":
                return "wrong", "the field no longer shows a good upload"
            return outcome

        guarded(case, f"path:{name}", typed)
        guarded(case, f"upload:{name}", uploaded)

    outputs = folder / "outputs"
    outputs.mkdir()
    wav = outputs / "20240101T000000Z-demo-1.wav"
    wav.write_bytes(data)
    (outputs / "20240101T000000Z-demo-1.json").write_text(json.dumps({"model_key": "demo", "seed": 1}))
    library = Library(outputs)

    def page():
        listing = library.scan()
        return judge(library.page_html(listing), reader_sentence(wav, "run's audio"))

    guarded(case, "library:page", page)
    for fmt in export_formats():

        def export(fmt=fmt):
            [run] = library.scan().runs
            sentence = reader_sentence(wav, "run's audio")
            try:
                written = library.export(run, fmt)
            except ValueError as exc:
                ok = sentence is not None and str(exc) == sentence
                return ("sentence", str(exc)) if ok else ("wrong", str(exc))
            if sentence is not None:
                return "wrong", f"exported a file the reader refuses: {sentence}"
            info = audio_info(written)  # the reader's checks: an export of m4a is read back through ffmpeg
            return "shown", f"{written.name}: {info.sample_rate} Hz, {info.channels} ch, {info.frames} frames"

        guarded(case, f"library:export-{fmt}", export)

    def sweep():
        settings = {"model": "demo", "steps": 2, "cfg_scale": 1.0}
        record = {"status": "done", "prompt": "rain", "file": file.name, "seed": 1, "settings": settings}
        gallery = gallery_html(SimpleNamespace(output_dir=str(folder), records=[record]))
        return judge(gallery, reader_sentence(file, "sweep result"))

    guarded(case, "sweeps:gallery", sweep)

    dataset = folder / "dataset"
    dataset.mkdir()
    clip = dataset / f"clip{suffix}"
    clip.write_bytes(data)
    clip.with_suffix(".txt").write_text("a clip\n")

    def editor():
        shown = CaptionEditor()
        shown.show(dataset)
        return judge(shown.rows.children[0].children[0].value, reader_sentence(clip, "training clip"))

    def data_check():
        try:
            check_dataset(dataset)
        except ValueError as exc:
            text = str(exc)
            return ("refused", text) if text.count(". ") == 0 else ("wrong", text)
        return "shown", ""

    def data_item():
        import random

        from sa3lab.training import CLIP_READER
        from stable_audio_3.training.data import AudioCaptionDataset

        try:
            loaded = AudioCaptionDataset(dataset, sample_rate=RATE, sample_size=4096, reader=CLIP_READER)
        except ValueError as exc:
            return "refused", str(exc)
        audio, *_ = loaded.item(0, random.Random(0))
        return ("shown", "") if audio.isfinite().all() and audio.abs().max() <= 1 else ("wrong", "bad item")

    guarded(case, "training:caption-editor", editor)
    guarded(case, "training:data-check", data_check)
    guarded(case, "training:dataset-item", data_item)


if __name__ == "__main__":
    presses = "--runs" in sys.argv
    names = [a for a in sys.argv[2:] if a != "--runs"]
    main(Path(sys.argv[1]), set(names) or None, presses)
