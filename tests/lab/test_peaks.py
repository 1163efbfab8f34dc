"""Peak protection (issue 25, after upstream #78 / PR #90): one gain over the ceiling, never a clip or a
boost, in every fixed-point or lossy output; recorded in the run record and flagged on the card."""

import base64
import functools
import html
import io
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from library_helpers import library_folder
from loud_model import make_loud

from sa3lab import peaks, quality, render
from sa3lab.cache import ModelCache
from sa3lab.forms.sweeps import gallery_html
from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab
from sa3lab.library import EXPORTS, Library, export_formats
from sa3lab.runs import new_result, save_result
from sa3lab.sweep_plan import SweepRequest

SR = 44100
PCM_STEP = {"PCM_16": 2.0**-15, "PCM_24": 2.0**-23}  # one quantisation step of each subtype


@functools.cache
def shared_lab() -> Lab:
    return Lab(cache=ModelCache(max_models=1))


@functools.cache
def loud_lab() -> Lab:
    """A lab whose demo model's decoder peaks near +6 dBFS (tests/loud_model.py)."""
    lab = Lab(cache=ModelCache(max_models=1))
    make_loud(lab.core.load("demo").model)
    return lab


@pytest.fixture
def out(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return library_folder(tmp_path, monkeypatch)


def chord(peak_dbfs: float, seconds: float = 1.0) -> torch.Tensor:
    """A stereo C major chord (the channels differ) whose loudest sample is ``peak_dbfs``."""
    t = torch.arange(int(SR * seconds), dtype=torch.float64) / SR
    notes = (261.63, 329.63, 392.0)
    left = sum(torch.sin(2 * math.pi * f * t) for f in notes)
    right = sum(0.6 * torch.sin(2 * math.pi * f * t + 0.7 * i) for i, f in enumerate(notes))
    stereo = torch.stack([left, right])
    return (stereo * 10 ** (peak_dbfs / 20) / stereo.abs().max()).float()


def saved_result(folder: Path, peak_dbfs: float, **policy):
    """A result of ``chord(peak_dbfs)`` made into a run record and saved as a run is."""
    model = SimpleNamespace(source=None, sample_rate=SR, device="cpu", dtype=torch.float32)
    result = new_result(
        model,
        chord(peak_dbfs)[None],
        seed=1,
        model_key="demo",
        timings={},
        cache_hit=False,
        settings={"prompt": "a chord"},
        **policy,
    )
    save_result(result, folder)
    return result


def decoded(path: Path) -> np.ndarray:
    """(channels, samples) float64 of a written file, as a player decodes it (M4A through ffmpeg)."""
    if path.suffix == ".m4a":
        from sa3lab.audio_input import read_audio

        return read_audio(path)[1].double().numpy()
    data, _ = sf.read(str(path), dtype="float64", always_2d=True)
    return data.T


def test_one_gain_only_over_the_ceiling_and_never_a_boost():
    loud = chord(6.0)
    protected, peak = peaks.protect(loud)
    gain = 10 ** (-6 / 20)
    assert peak.attenuated_db == pytest.approx(6.0, abs=1e-4) and peak.gain == pytest.approx(gain, rel=1e-5)
    assert protected.abs().max() <= 1.0 and protected.abs().max() > 0.99999
    assert torch.allclose(protected, loud * gain, rtol=0, atol=1e-6)  # every sample by the same gain
    for level in (-12.0, 0.0):  # quiet, and exactly at the ceiling: the same tensor back
        audio = chord(level)
        same, peak = peaks.protect(audio)
        assert same is audio and peak.gain == 1.0 and peak.attenuated_db == 0.0
    lower, peak = peaks.protect(chord(-1.0), -3.0)
    assert peak.attenuated_db == pytest.approx(2.0, abs=1e-4) and lower.abs().max() <= 10 ** (-3 / 20)
    _, lossy = peaks.protect(chord(-0.5), lossy=True)  # lossy outputs keep 1 dB of headroom
    assert lossy.attenuated_db == pytest.approx(0.5, abs=1e-4)
    huge, _ = peaks.protect(chord(0.0) * 1e38)  # a gain float32 cannot hold still works
    assert torch.isfinite(huge).all() and huge.abs().max() == pytest.approx(1.0, abs=1e-6)


def test_non_finite_audio_is_refused_and_never_written(out):
    audio = chord(-6.0)
    audio[1, 100] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        peaks.protect(audio)
    with pytest.raises(ValueError, match="NaN or infinite"):
        render.encodable(audio, SR)
    with pytest.raises(ValueError, match="NaN or infinite"):
        quality.assess(audio, SR)
    for bad in (-41, 0.5, "0", float("nan")):
        with pytest.raises(ValueError, match="^The peak ceiling must be a level in dBFS from -40 to 0"):
            GenerationRequest(model="demo", prompt="rain", peak_ceiling_dbfs=bad)
    with pytest.raises(ValueError, match="^The float WAV must be raw or protected; got the text 'clip'"):
        GenerationRequest(model="demo", prompt="rain", float_wav="clip")


def test_an_export_of_a_result_at_plus_6_dbfs_is_attenuated_by_one_gain_with_no_clipped_sample(out):
    result = saved_result(out, 6.0)
    record = json.loads(Path(result.paths[0]).with_suffix(".json").read_text())
    (item,) = record["quality"]
    assert item["ceiling_dbfs"] == 0.0 and record["float_wav"] == "raw"
    assert item["attenuated_db"] == pytest.approx(6.0, abs=0.01)
    assert item["lossy_attenuated_db"] == pytest.approx(7.0, abs=0.01)
    assert item["flags"]["attenuated"].startswith(
        "Attenuated 6.0 dB to avoid clipping: the peak is +6.0 dBFS"
    )
    assert "clipped" not in item["flags"]  # overs are not clipping: nothing is held flat

    original = decoded(Path(result.paths[0]))  # the float WAV keeps the raw level
    assert np.abs(original).max() == pytest.approx(10 ** (6 / 20), rel=1e-6)
    run = Library(out).scan().runs[0]
    assert run.ceiling_dbfs == 0.0
    formats = [key for key in export_formats() if key != "wav-float32"]
    assert {"wav", "flac"} <= set(formats)
    for key in formats:
        target = EXPORTS[key]
        data = decoded(Library(out).export(run, key))
        assert np.abs(data).max() <= 1.0, key
        gain = 10 ** (-(item["lossy_attenuated_db"] if target.lossy else item["attenuated_db"]) / 20)
        if target.subtype in PCM_STEP:  # sample for sample the original times one gain
            assert np.abs(data - original * gain).max() <= 2 * PCM_STEP[target.subtype], key
        else:  # MP3 / Vorbis: delayed and filtered, but the energy is the original's times gain squared
            energy_db = 10 * math.log10((data**2).sum() / (original**2).sum())
            assert energy_db == pytest.approx(20 * math.log10(gain), abs=0.3), key
            assert np.abs(data).max() > 10 ** (-2.5 / 20), key  # turned down once, not squashed
    with pytest.raises(ValueError, match="^The peak ceiling must be a level in dBFS"):
        Library(out).export(run, "wav", ceiling_dbfs=3)
    lower = decoded(Library(out).export(run, "wav", ceiling_dbfs=-6))
    assert np.abs(lower - original * 10 ** (-12 / 20)).max() <= 2 * PCM_STEP["PCM_16"]


def test_a_generation_peaking_at_plus_6_dbfs_keeps_its_overs_in_the_float_wav_and_exports_one_gain(out):
    """Through the run core: the engine returns the decoder's samples unclipped (``clamp_output=False``),
    the record says how far outputs are turned down, and the 16-bit WAV and MP3 are that much lower."""
    request = GenerationRequest(
        model="demo", prompt="rain", duration=1.0, steps=2, seed=0, output_dir=str(out)
    )
    result = loud_lab().generate(request)
    peak = float(result.audio.abs().max())
    assert 20 * math.log10(peak) == pytest.approx(6.0, abs=0.1)  # the engine did not clip it
    (item,) = json.loads(Path(result.paths[0]).with_suffix(".json").read_text())["quality"]
    assert item["attenuated_db"] == pytest.approx(20 * math.log10(peak), abs=1e-3)
    assert item["flags"]["attenuated"].startswith("Attenuated 6.0 dB to avoid clipping")
    original = decoded(Path(result.paths[0]))
    assert np.array_equal(original, result.audio[0].double().numpy())  # raw by default
    run = Library(out).scan().runs[0]
    pcm = decoded(Library(out).export(run, "wav"))
    assert np.abs(pcm).max() <= 1.0
    assert np.abs(pcm - original / peak).max() <= 2 * PCM_STEP["PCM_16"]  # one gain, nothing clipped
    if "mp3" in export_formats():
        assert np.abs(decoded(Library(out).export(run, "mp3"))).max() <= 1.0


def test_the_result_card_flags_the_attenuation_and_its_players_are_under_the_ceiling(out):
    result = saved_result(out, 6.0)
    card = render.clip_html(result.audio[0], SR, quality=result.quality[0])
    assert html.escape("Attenuated 6.0 dB to avoid clipping") in card
    assert html.escape("(the 32-bit float WAV keeps the raw level)") in card
    (uri,) = re.findall(r"src='data:audio/[a-z]+;base64,([^']+)'", card)
    preview = sf.read(io.BytesIO(base64.b64decode(uri)), dtype="float64", always_2d=True)[0]
    assert 10 ** (-2.5 / 20) < np.abs(preview).max() <= 1.0
    live = sf.read(io.BytesIO(render.wav_bytes(result.audio[0], SR)), always_2d=True)[0].T
    assert np.abs(live - chord(6.0).double().numpy() * 10 ** (-6 / 20)).max() <= 2 * PCM_STEP["PCM_16"]
    page = Library(out).page_html(Library(out).scan())
    assert html.escape("Attenuated 6.0 dB to avoid clipping") in page


def test_quiet_audio_is_not_boosted(out):
    result = saved_result(out, -12.0)
    (item,) = result.quality
    assert item["attenuated_db"] == 0.0 and "attenuated" not in item["flags"]
    assert item["lossy_attenuated_db"] == 0.0
    run = Library(out).scan().runs[0]
    original = decoded(Path(result.paths[0]))
    for key in ("wav", "flac"):
        data = decoded(Library(out).export(run, key))
        assert np.abs(data - original).max() <= PCM_STEP[EXPORTS[key].subtype], key
    assert np.abs(decoded(Library(out).export(run, "wav"))).max() < 10 ** (-11.9 / 20)


def test_the_float32_wav_is_raw_by_default_and_under_the_ceiling_when_the_setting_is_on(out):
    raw = saved_result(out / "raw", 6.0)
    assert np.abs(decoded(Path(raw.paths[0]))).max() == pytest.approx(10 ** (6 / 20), rel=1e-6)
    protected = saved_result(out / "protected", 6.0, float_wav="protected", ceiling_dbfs=-1.0)
    wav = decoded(Path(protected.paths[0]))
    assert np.abs(wav).max() == pytest.approx(10 ** (-1 / 20), rel=1e-6)
    assert np.allclose(wav, chord(6.0).double().numpy() * 10 ** (-7 / 20), rtol=0, atol=1e-6)
    record = json.loads(Path(protected.paths[0]).with_suffix(".json").read_text())
    assert record["float_wav"] == "protected" and record["quality"][0]["ceiling_dbfs"] == -1.0
    assert record["quality"][0]["attenuated_db"] == pytest.approx(7.0, abs=0.01)
    assert "(the 32-bit float WAV is attenuated too)" in record["quality"][0]["flags"]["attenuated"]
    # the library shows the recorded flag although the saved file is now under the ceiling
    page = Library(out / "protected").page_html(Library(out / "protected").scan())
    assert html.escape("Attenuated 7.0 dB to avoid clipping") in page


def test_a_generation_records_its_policy_and_measures_the_peak_after_the_padding_is_trimmed(out):
    """The engine trims the decoded headroom before the run core sees the audio; the demo model's
    headroom (seed 0) peaks louder than the kept second, so a ceiling between the two attenuates
    nothing. Below the kept peak, the float WAV is turned down when asked, by the recorded gain."""
    lab = shared_lab()
    request = GenerationRequest(
        model="demo", prompt="rain", duration=1.0, steps=2, seed=0, output_dir=str(out)
    )
    model = lab.core.load("demo").model
    arguments = lab.core.engine_arguments(request)
    padded = model.generate(**arguments, truncate_output_to_duration=False, disable_tqdm=True)
    kept = model.generate(**arguments, disable_tqdm=True)
    assert kept.shape[-1] == SR and padded.shape[-1] > SR
    kept_peak, padded_peak = float(kept.abs().max()), float(padded.abs().max())
    assert kept_peak < padded_peak  # else this seed shows nothing
    between = 10 * math.log10(kept_peak * padded_peak)  # dBFS midway between the two peaks
    result = lab.generate(GenerationRequest(**{**request.__dict__, "peak_ceiling_dbfs": between}))
    assert torch.equal(result.audio, kept) and result.quality[0]["attenuated_db"] == 0.0

    ceiling = round(20 * math.log10(kept_peak) - 3.0, 2)
    for float_wav in ("raw", "protected"):
        asked = GenerationRequest(
            **{**request.__dict__, "peak_ceiling_dbfs": ceiling, "float_wav": float_wav}
        )
        result = lab.generate(asked)
        (item,) = result.quality
        assert item["attenuated_db"] == pytest.approx(20 * math.log10(kept_peak) - ceiling, abs=1e-3)
        assert result.request["peak_ceiling_dbfs"] == ceiling and result.request["float_wav"] == float_wav
        wav = torch.from_numpy(decoded(Path(result.paths[0]))).float()
        gain = 10 ** (ceiling / 20) / kept_peak if float_wav == "protected" else 1.0
        assert torch.allclose(wav, result.audio[0] * gain, rtol=0, atol=1e-6), float_wav
        run = Library(out).scan().runs[0]
        pcm = decoded(Library(out).export(run, "wav"))
        assert np.abs(pcm).max() <= 10 ** (ceiling / 20) + PCM_STEP["PCM_16"]
        assert GenerationRequest.from_record(json.loads(run.sidecar.read_text())).float_wav == float_wav


def test_a_sweeps_files_and_gallery_follow_the_policy_its_settings_name(out):
    for float_wav in ("protected", "raw"):
        request = SweepRequest(
            model="demo",
            prompts=["rain"],
            seeds=[0],
            duration=1.0,
            steps=2,
            settings={"peak_ceiling_dbfs": -30.0, "float_wav": float_wav},
            output_dir=str(out / float_wav),
        )
        result = shared_lab().sweep(request)
        (record,) = result.records
        assert record["status"] == "done" and record["settings"]["float_wav"] == float_wav
        wav = decoded(out / float_wav / record["file"])
        sidecar = json.loads((out / float_wav / record["file"]).with_suffix(".json").read_text())
        assert sidecar["float_wav"] == float_wav and sidecar["quality"][0]["attenuated_db"] > 0
        if float_wav == "protected":
            assert np.abs(wav).max() == pytest.approx(10 ** (-30 / 20), rel=1e-5)
        else:  # the file keeps the demo's level; the gallery's player is under the sweep's ceiling
            assert np.abs(wav).max() > 10 ** (-20 / 20)
            (uri,) = re.findall(r"src='data:audio/[a-z]+;base64,([^']+)'", gallery_html(result))
            preview = sf.read(io.BytesIO(base64.b64decode(uri)), dtype="float64", always_2d=True)[0]
            assert 10 ** (-33 / 20) < np.abs(preview).max() <= 10 ** (-30 / 20)


RATE = 44100
TONE_HZ = 200.25


def _stream(seconds: float, loud_from: float, loud: float) -> np.ndarray:
    """A 2-channel tone (at its peak on each whole second) at 0.5 that rises to ``loud`` over the 10 ms
    from ``loud_from`` s."""
    t = np.arange(round(seconds * RATE)) / RATE
    level = 0.5 + (loud - 0.5) * np.clip((t - loud_from) / 0.01, 0.0, 1.0)
    tone = np.sin(2 * np.pi * TONE_HZ * t) * level
    return np.stack([tone, -tone]).astype(np.float32)


def _through(gain: peaks.StreamGain, stream: np.ndarray, sizes: list[int]) -> np.ndarray:
    pieces, start = [], 0
    for size in sizes:
        pieces.append(gain.push(stream[:, start : start + size]))
        start += size
    pieces.append(gain.push(stream[:, start:]))
    return np.concatenate([*pieces, gain.flush()], axis=1)


def test_a_stream_in_pieces_stays_under_the_ceiling_with_one_falling_gain_and_no_step_at_a_join():
    stream = _stream(3.0, loud_from=1.25, loud=2.0)  # the louder part starts inside the second piece
    out = _through(peaks.StreamGain(RATE), stream, [RATE, RATE // 3, 7])
    assert out.shape == stream.shape
    assert np.abs(out).max() <= 1.0 + 1e-6  # never over, never clipped: ...
    ratio = out[0][np.abs(stream[0]) > 0.1] / stream[0][np.abs(stream[0]) > 0.1]
    assert np.all(np.diff(ratio) <= 1e-6) and ratio[0] == pytest.approx(1.0)  # ... one gain, only falling
    assert ratio[-1] == pytest.approx(0.5, abs=1e-3)
    # the fall is a ramp: no sample-to-sample change beyond the tone's own at the loudest it comes out
    tone_step = 2 * np.pi * TONE_HZ / RATE * np.abs(out).max()
    assert np.abs(np.diff(out[0])).max() <= 1.05 * tone_step
    # a gain per piece (what the player did) steps at the join where the loud part begins
    pieces = (stream[:, :RATE], stream[:, RATE:])
    per_piece = np.concatenate(
        [render.encodable(torch.from_numpy(p.copy()), RATE, render.WAV_RATES)[0].T for p in pieces], axis=1
    )
    assert np.abs(np.diff(per_piece[0])).max() > 5 * tone_step


def test_a_stream_within_the_ceiling_comes_out_as_it_went_in_however_it_is_cut():
    stream = _stream(1.0, loud_from=2.0, loud=1.0)
    assert np.array_equal(_through(peaks.StreamGain(RATE), stream, [100, 5000, 3]), stream)
    loud = _stream(1.0, loud_from=0.3, loud=3.0)
    whole = _through(peaks.StreamGain(RATE), loud, [])
    cut = _through(peaks.StreamGain(RATE), loud, [1, 881, 882, 4000])
    np.testing.assert_allclose(cut, whole, atol=1e-6)
