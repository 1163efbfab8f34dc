"""The radio job (sa3lab.radio): segments that continue the stream, seamless joins, resume, records."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab
from sa3lab.library import Library
from sa3lab.radio import Radio, RadioRequest, crossfade, join, join_jumps

PLAYLIST = [("calm piano", 2), ("drums", 1)]


def request(folder, **changes):
    settings = {"segment_s": 1.0, "context_s": 0.5, "seed": 7, "steps": 2, "output_dir": str(folder)}
    return RadioRequest.make("demo", PLAYLIST, **{**settings, **changes})


def stream(radio):
    audio, rate = sf.read(str(radio.joined_path), dtype="float32", always_2d=True)
    return audio.T, rate


@pytest.fixture(scope="module")
def lab():
    return Lab()


@pytest.fixture(scope="module")
def four(lab, tmp_path_factory):
    """Four segments made in one go."""
    return lab.radio(request(tmp_path_factory.mktemp("four")), segments=4)


def test_segments_joined_file_and_sidecar(four):
    audio, rate = stream(four)
    segments = four.state.segments
    assert len(segments) == 4 and rate == 44100
    assert audio.shape == (2, 4 * rate) == (2, four.state.length)
    assert [s["start"] for s in segments] == [0, rate, 2 * rate, 3 * rate]
    assert [s["prompt"] for s in segments] == ["calm piano", "calm piano", "drums", "calm piano"]
    assert [s["seed"] for s in segments] == [7, 8, 9, 10]  # increment policy
    sidecar = json.loads(four.sidecar_path.read_text())
    assert sidecar["state"]["segments"] == segments
    for segment in segments:
        record = json.loads((four.folder / segment["record"]).read_text())
        assert record["settings"]["prompt"] == segment["prompt"] and record["seed"] == segment["seed"]
        assert (four.folder / segment["run"]).is_file()
    for segment in segments[1:]:
        record = json.loads((four.folder / segment["record"]).read_text())
        assert record["settings"]["mode"] == "continuation"
        assert record["settings"]["source"]["name"] == segment["context"]["file"]
        assert record["settings"]["kept_s"] == pytest.approx(0.5)
        context, _ = sf.read(str(four.folder / segment["context"]["file"]), dtype="float32", always_2d=True)
        # the context is the stream's stretch before the segment, as it stood then (its last
        # crossfade samples were then the previous run's own; they are faded since)
        start, end = segment["context"]["start"], segment["context"]["end"]
        fade_start = segment["crossfade"][0]
        assert end == segment["start"] and end - start == rate // 2
        assert np.array_equal(context.T[:, : fade_start - start], audio[:, start:fade_start])


def test_every_join_is_seamless(four):
    audio, _ = stream(four)
    joins = four.joins()
    assert len(joins) == 6  # each crossfade's two edges
    for found in join_jumps(audio, joins):
        assert found["jump"] <= found["local"], found


def test_the_check_fails_on_a_misaligned_join():
    """A tone continued by a 'model' whose regenerated context is a little off: joined as
    :func:`join` joins it, seamless; with the new part placed 20 samples late or early, not."""
    rate, context, fade = 44100, 22050, 2205
    t = np.arange(3 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None].repeat(2, 0)
    so_far = tone[:, : 2 * rate]
    output = tone[:, 2 * rate - context :].copy()
    output[:, :context] *= 0.9  # the regenerated context is not the stream's own
    faded = crossfade(so_far[:, -fade:], output[:, context - fade : context])
    assert np.array_equal(
        join(so_far[:, -fade:], output, context, fade), np.concatenate([faded, output[:, context:]], 1)
    )
    for offset, seamless in ((0, True), (20, False), (-20, False)):
        joined = np.concatenate([so_far[:, :-fade], faded, output[:, context + offset :]], axis=1)
        found = join_jumps(joined, [2 * rate - fade, 2 * rate])
        assert all(f["jump"] <= f["local"] for f in found) is seamless, (offset, found)


def test_stop_then_start_resumes_the_same_stream(lab, four, tmp_path):
    radio = Radio.new(request(tmp_path))
    radio.run(lab.core, on_segment=lambda segment: segment.index == 1 and radio.stop())
    assert len(radio.state.segments) == 2  # stopped after the segment in progress
    radio.run(lab.core, segments=1)  # Start again, same object
    reopened = Radio.open(radio.joined_path)  # a new kernel: from the sidecar
    reopened.run(lab.core, segments=1)
    assert [s["seed"] for s in reopened.state.segments] == [7, 8, 9, 10]
    assert [s["prompt"] for s in reopened.state.segments] == [s["prompt"] for s in four.state.segments]
    assert np.array_equal(stream(reopened)[0], stream(four)[0])


def test_a_prompt_change_shows_in_the_next_segments_record(lab, tmp_path):
    radio = Radio.new(request(tmp_path, seed_policy="fixed"))
    radio.run(lab.core, segments=3, on_segment=lambda s: s.index == 0 and radio.change_playlist(["rain"]))
    prompts = [
        json.loads((radio.folder / s["record"]).read_text())["settings"]["prompt"]
        for s in radio.state.segments
    ]
    assert prompts == ["calm piano", "rain", "rain"]
    assert {s["seed"] for s in radio.state.segments} == {7}
    radio.skip()
    radio.change_playlist([("a", 1), ("b", 1)])  # a change clears a pending skip
    radio.skip()
    radio.run(lab.core, segments=1)
    assert radio.state.segments[-1]["prompt"] == "b"


def test_a_segments_record_regenerates_it_bit_for_bit(lab, four, tmp_path):
    audio, _ = stream(four)
    segments = four.state.segments
    for segment, after in ((segments[0], segments[1]), (segments[2], segments[3])):
        meta = json.loads((four.folder / segment["record"]).read_text())
        again = lab.generate(
            GenerationRequest.from_record(
                {**meta, "request": {**meta["request"], "output_dir": str(tmp_path)}}
            )
        )
        saved, _ = sf.read(str(four.folder / segment["run"]), dtype="float32", always_2d=True)
        assert torch.equal(again.audio[0], torch.from_numpy(saved.T))
        # the stream holds the run's new part as it came, up to the next join's crossfade
        kept = after["crossfade"][0] - segment["start"]
        offset = segment["output_offset"]
        assert np.array_equal(
            audio[:, segment["start"] : after["crossfade"][0]], saved.T[:, offset : offset + kept]
        )


def test_the_stream_is_in_the_library(four):
    runs = Library(four.folder.parent).scan().runs
    (run,) = [r for r in runs if r.wav == four.joined_path]
    assert run.kind == "radio" and "4 segments" in run.title() and "calm piano → drums" in run.title()
    with pytest.raises(ValueError, match="radio stream"):
        run.request()
    assert all(r.wav.parent == four.folder.parent for r in runs)  # the segments stay in their folder


def test_deleting_a_stream_in_the_library_removes_its_segments_too(lab, tmp_path):
    radio = lab.radio(request(tmp_path), segments=1)
    (run,) = Library(tmp_path).scan().runs
    assert radio.sidecar_path in run.files()
    Library(tmp_path).delete(run, confirm=True)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"segment_s": 0}, "segment length must be a number of seconds, more than 0"),
        ({"context_s": float("nan")}, "context length must be a number"),
        ({"crossfade_s": 0.8}, r"crossfade \(0.8 s\) must be at most"),
        ({"seed_policy": "sometimes"}, "seed policy must be one of increment, fixed, random"),
        ({"steps": 0}, "Steps must be a whole number from 1"),
        ({"segment_s": 200}, "Duration must be more than 0 and at most"),
    ],
)
def test_bad_requests_say_what_to_fix(tmp_path, changes, words):
    with pytest.raises(ValueError, match=words):
        Radio.new(request(tmp_path, **changes))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "playlist, words",
    [
        ([], "Add at least one prompt"),
        ([("rain", 0)], "whole number of segments"),
        ([(" ", 2)], "needs a prompt"),
        ([("rain",)], "list of .prompt, segments. pairs"),
    ],
)
def test_bad_playlists_say_what_to_fix(playlist, words):
    with pytest.raises(ValueError, match=words):
        RadioRequest.make("demo", playlist)


class StopAtSegment:
    """A progress that raises (as a form's Stop does) once its n-th segment reports progress."""

    def __init__(self, n):
        self.n = n

    def step(self, done, total, text=None):
        if text and text.startswith(f"segment ({self.n}/"):
            raise KeyboardInterrupt


def test_a_segment_stopped_midway_leaves_the_stream_as_it_was(lab, four, tmp_path):
    radio = Radio.new(request(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        radio.run(lab.core, segments=3, progress=StopAtSegment(2))
    assert len(radio.state.segments) == 1 and (radio.state.entry, radio.state.held) == (0, 1)
    radio.run(lab.core, segments=3)
    assert np.array_equal(stream(radio)[0], stream(four)[0][:, : radio.state.length])
