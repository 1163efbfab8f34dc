"""m4a/AAC (and whatever ffmpeg reads) in and out: the reader's ffmpeg fallback and the M4A export.

ffmpeg is required here (.ci/run installs it; Colab and Kaggle have it): the files are made by the real
ffmpeg program and read back through sa3lab.audio_input, and one run goes through Lab.generate.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from sa3lab import audio_input
from sa3lab.audio_input import audio_info, read_audio
from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab
from sa3lab.library import Library, export_formats, missing_formats_note

FFMPEG = shutil.which("ffmpeg")
assert FFMPEG, "these tests need ffmpeg on PATH (apt-get install ffmpeg; .ci/run installs it)"
UNREADABLE = "use a WAV, FLAC, OGG, MP3, M4A/AAC or another audio file ffmpeg reads."


def ffmpeg(*arguments):
    subprocess.run([FFMPEG, "-v", "error", "-y", *map(str, arguments)], check=True)


def m4a(path, seconds=1.0, rate=48000, channels=2):
    """An AAC tone in an m4a container, written by ffmpeg."""
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate={rate}",
           "-ac", channels, "-c:a", "aac", "-b:a", "128k", path)  # fmt: skip
    return path


def test_an_m4a_file_is_read_with_its_rate_channels_and_length(tmp_path):
    file = m4a(tmp_path / "phone clip.m4a", seconds=1.5)
    info = audio_info(file, "source audio")
    assert (info.path, info.sample_rate, info.channels, info.format) == (file, 48000, 2, "ffmpeg:mov")
    assert 1.5 <= info.duration < 1.6  # AAC adds a frame of padding
    rate, audio = read_audio(file, max_seconds=1.0)
    assert rate == 48000 and audio.shape == (2, 48000) and audio.isfinite().all()
    spectrum = np.abs(np.fft.rfft(audio[0, 4800:].numpy()))
    assert abs(np.argmax(spectrum) * rate / (2 * spectrum.size - 2) - 440) < 5  # the tone, not noise
    part_rate, part = read_audio(file, start=24000, frames=100)
    assert part_rate == 48000 and np.allclose(part.numpy(), audio[:, 24000:24100].numpy())


@pytest.mark.parametrize("case", ["truncated", "text", "video-only", "empty-audio"])
def test_a_broken_or_wrong_m4a_is_one_sentence(tmp_path, case):
    file = tmp_path / "clip.m4a"
    if case == "truncated":
        file.write_bytes(m4a(tmp_path / "whole.m4a").read_bytes()[:3000])
    elif case == "text":
        file.write_text("this is not audio\n")
    elif case == "video-only":
        ffmpeg("-f", "lavfi", "-i", "testsrc=duration=0.2:size=64x64", "-c:v", "mpeg4", "-f", "mp4", file)
    else:
        ffmpeg("-f", "lavfi", "-i", "sine=duration=0.1", "-t", 0, "-c:a", "aac", file)
    with pytest.raises(ValueError) as caught:
        audio_info(file, "source audio")
    text = str(caught.value)
    assert text.startswith(f"Could not read {file} as audio") or "contains no samples" in text, text
    assert text.count(". ") == 0 and "Traceback" not in text


def test_an_ogg_named_m4a_is_read_by_what_it_is(tmp_path):
    file = tmp_path / "clip.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5:sample_rate=22050", "-c:a", "libvorbis", "-f", "ogg", file)
    info = audio_info(file)
    assert info.sample_rate == 22050 and info.frames > 10000


def test_without_ffmpeg_the_sentence_says_what_to_install(tmp_path, monkeypatch):
    file = m4a(tmp_path / "clip.m4a")
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # nor imageio-ffmpeg's bundled one
    assert audio_input.ffmpeg_exe() is None
    with pytest.raises(ValueError) as caught:
        audio_info(file)
    assert str(caught.value) == (
        f"Could not read {file} as audio (LibsndfileError); use a WAV, FLAC, OGG or MP3 file (m4a/AAC and "
        "the other formats libsndfile does not read need ffmpeg, which is not installed here "
        "(apt-get install ffmpeg, or pip install imageio-ffmpeg))."
    )
    assert "m4a" not in export_formats()
    assert "M4A/AAC export is not offered: it needs ffmpeg" in missing_formats_note()


def saved_run(folder, data, rate):
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / "20240101T000000Z-demo-1.wav"
    sf.write(wav, data, rate, subtype="FLOAT")
    wav.with_suffix(".json").write_text(json.dumps({"model_key": "demo", "seed": 1}))
    return wav


@pytest.mark.parametrize("rate,channels", [(44100, 2), (44101, 3), (8000, 1)])
def test_the_library_exports_m4a_that_reads_back_as_the_same_sound(tmp_path, rate, channels):
    t = np.arange(rate) / rate
    data = np.stack([0.4 * np.sin(2 * np.pi * 330 * t)] * channels, 1).astype(np.float32)
    data[100, 0] = 1e30  # out of range: clipped before ffmpeg sees it
    library = Library(saved_run(tmp_path / "out", data, rate).parent)
    [run] = library.scan().runs
    written = library.export(run, "m4a")
    assert written == run.export_path("m4a") and written.name.endswith(".m4a") and written in run.files()
    info = audio_info(written)
    assert info.format == "ffmpeg:mov" and info.channels == min(channels, 2)
    assert info.sample_rate == (48000 if rate == 44101 else rate)  # AAC's rates: the next one above
    _, back = read_audio(written)
    assert back.isfinite().all() and 0.3 < float(back.abs().max()) <= 1.0
    assert sorted(p.name for p in tmp_path.joinpath("out").iterdir() if p.name.startswith(".")) == []


def test_an_m4a_file_is_an_audio_to_audio_source_of_the_demo_model(tmp_path):
    source = m4a(tmp_path / "voice memo.m4a", seconds=1.0, rate=44100)
    request = GenerationRequest(
        model="demo", prompt="rain", duration=1.0, seed=3, output_dir=str(tmp_path / "out"),
        mode="audio-to-audio", source_audio=str(source), init_noise_level=0.6,
    )  # fmt: skip
    result = Lab().generate(request)
    data, rate = sf.read(result.paths[0], dtype="float32")
    assert rate == 44100 and len(data) > 0 and np.isfinite(data).all()
    record = json.loads(open(result.paths[0].replace(".wav", ".json")).read())
    assert record["settings"]["source"]["name"] == "voice memo.m4a"


def test_an_m4a_clip_is_a_training_clip(tmp_path):
    import random

    from sa3lab.training import CLIP_READER, check_dataset
    from stable_audio_3.training.data import AudioCaptionDataset

    m4a(tmp_path / "clip.m4a", seconds=0.5, rate=22050, channels=1)
    (tmp_path / "clip.txt").write_text("a sine tone\n")
    check_dataset(tmp_path)
    dataset = AudioCaptionDataset(tmp_path, sample_rate=44100, sample_size=8192, reader=CLIP_READER)
    audio, valid, caption, seconds = dataset.item(0, random.Random(0))
    assert audio.shape == (2, 8192) and valid == 8192 and caption == "a sine tone" and seconds == 1.0
    assert 0.1 < float(audio.abs().max()) <= 1.0
    with pytest.raises(ValueError, match="holds no audio files"):  # the engine alone reads no m4a
        AudioCaptionDataset(tmp_path, sample_rate=44100, sample_size=8192)


def test_a_sweep_csv_takes_m4a_sources(tmp_path, monkeypatch):
    from sa3lab.sweep_plan import SweepRequest

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sources = [m4a(tmp_path / f"take {i}.m4a", seconds=1.0, rate=44100) for i in (1, 2)]
    plan = tmp_path / "plan.csv"
    plan.write_text("prompt,mode,source_audio\n" + "".join(f"rain,audio-to-audio,{s}\n" for s in sources))
    request = SweepRequest(
        model="demo", prompts=str(plan), seeds=[1], duration=1.0, output_dir=str(tmp_path / "out")
    )
    assert request.problems() == []
    result = Lab().sweep(request)
    wavs = sorted((tmp_path / "out").glob("*.wav"))
    assert len(wavs) == 2 and result.progress.total == 2
    records = [json.loads(w.with_suffix(".json").read_text()) for w in wavs]
    assert sorted(r["settings"]["source"]["name"] for r in records) == ["take 1.m4a", "take 2.m4a"]
    assert all(np.isfinite(sf.read(str(w))[0]).all() for w in wavs)
