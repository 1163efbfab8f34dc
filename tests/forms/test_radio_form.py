"""The radio form (sa3lab.forms.radio): widgets make the request, Start / Stop / Start resumes, warnings."""

import html
import io
import re

import numpy as np
import pytest
import soundfile as sf
from form_helpers import message_text

from sa3lab.forms.radio import RadioForm, parse_playlist
from sa3lab.forms.shell import StopRequested


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the demo model needs no network


def demo(session, out, **kw):
    form = RadioForm(
        "demo",
        [("calm piano", 2), ("drums", 1)],
        segment_s=1.0,
        context_s=0.5,
        output_dir=out,
        session=session,
        **kw,
    )
    form.advanced.steps.value = 2
    return form


class StopAfterSegments:
    """A form progress whose Stop is pressed once ``n`` segments were made (raises at the next step)."""

    def __init__(self, form, n):
        self.form, self.n = form, n

    def stage(self, text):
        pass

    def start(self, total, text):
        pass

    def step(self, done, total, text=None):
        if self.form.radio is not None and len(self.form.radio.state.segments) >= self.n:
            raise StopRequested


def buffers_of(content) -> bool:
    return content["kind"] == "stretch"


def text(value: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", value))


def test_the_playlist_lines_and_their_mistakes():
    assert parse_playlist("calm piano | 4\n\n drums \nrain|2") == [
        ("calm piano", 4),
        ("drums", 1),
        ("rain", 2),
    ]
    with pytest.raises(ValueError, match="Playlist line 2: after | give a whole number"):
        parse_playlist("calm\ndrums | many")
    with pytest.raises(ValueError, match="Add at least one prompt"):
        parse_playlist("\n  \n")


def test_the_form_makes_the_request_and_warns_before_start_when_the_machine_cannot_keep_up(session, out):
    form = demo(session, out, seed=5, seed_policy="fixed")
    request = form.request()
    assert request.playlist == [("calm piano", 2), ("drums", 1)] and request.seed_policy == "fixed"
    assert (request.segment_s, request.context_s, request.generation.seed) == (1.0, 0.5, 5)
    assert request.generation.steps == 2 and request.generation.model == "demo"
    assert "Estimated real-time factor" in form.plan.value
    form.picker.select("medium")
    form.segment_s.value = 10.0  # the medium model on this machine's CPU cores
    assert "This machine cannot keep up" in text(form.plan.value)
    form.advanced.steps.value = 300  # the plan follows the sampler settings too
    assert "confirm the long run" in text(form.plan.value)
    form.advanced.steps.value = 8
    form.segment_s.value = 0
    assert "The segment length must be a number of seconds, more than 0" in text(form.plan.value)


def test_headless_segments_then_stop_and_start_resume_the_stream_and_the_player_gets_it_all(session, out):
    form = demo(session, out, segments=2)
    sent = []
    send = form.player.send
    form.player.send = lambda content, buffers=None: (sent.append((content, buffers)), send(content, buffers))
    assert form.run() is form.radio and len(form.radio.state.segments) == 2
    assert "buffer:" in form.live.value and "real-time factor" in form.live.value
    block = form.shell.results[0]
    assert "<audio" in block and "2 segments · 2.0 s" in block and "calm piano" in block
    first = form.radio
    form.playlist.value = "rain | 3"  # only the playlist changed: Start goes on with the same stream
    form.segments = None
    result = form.execute(form.read(), StopAfterSegments(form, 3))
    assert result is first and len(first.state.segments) == 3
    assert first.state.segments[-1]["prompt"] == "rain"
    # the player got the stream's final samples once, in order, the pending crossfade held back; the
    # last 20 ms of each stretch wait for the next one (the stream's gain), and go out at a stop
    kinds = [content["kind"] for content, _ in sent]
    assert kinds == ["stretch"] * 3 + ["flush"] + ["stretch"] * 2 + ["flush"]
    assert [content["index"] for content, _ in sent if buffers_of(content)] == [0, 1, 2, 3, 4]
    assert [len(sf.read(io.BytesIO(b[0]))[0]) for c, b in sent if b][2] == round(0.02 * 44100)
    assert form.player.prebuffer_s == 1.0  # one segment
    played = np.concatenate([sf.read(io.BytesIO(b[0]), dtype="float32")[0] for _, b in sent if b])
    assert len(played) == first.final_length == first.state.length - round(0.05 * 44100)
    assert np.abs(played - first.read(0, len(played)).T).max() <= 1 / 32767  # 16-bit WAV stretches
    form.segment_s.value = 1.5  # another length: a new stream
    assert form.read() is not first


def test_skip_and_apply_playlist_take_effect_at_the_next_segment(session, out):
    form = demo(session, out, segments=1)
    form.run()
    form.skip_button.click()
    form.run()
    assert [s["prompt"] for s in form.radio.state.segments] == ["calm piano", "drums"]
    form.playlist.value = "wind | 1"
    form.apply_button.click()
    assert "takes effect at the next segment" in message_text(form)
    form.run()
    assert form.radio.state.segments[-1]["prompt"] == "wind"
    form.playlist.value = "wind | x"
    form.apply_button.click()
    assert "after | give a whole number" in message_text(form)


def test_a_stop_before_the_first_segment_says_nothing_was_made(session, out):
    form = demo(session, out)
    form.segments = None
    with pytest.raises(StopRequested):
        form.execute(form.read(), StopAfterSegments(form, 0))
    assert "nothing was made" in form.stopped_text()
