"""The SAME round-trip form (sa3lab.autoencoder_form), driven through its widgets with the demo model."""

import html

import pytest
from form_helpers import message_text, result_blocks, upload_item

from sa3lab import autoencoder_form
from sa3lab.forms.parts import LOCAL

pytestmark = pytest.mark.usefixtures("no_real_login")


def test_the_autoencoder_form_rejects_bad_input_in_one_sentence(session, out, tmp_path):
    form = autoencoder_form(model="same-s", duration=200.0, output_dir=out, session=session)
    form.run()
    assert "at most 120 s for same-s" in message_text(form)
    form.duration.value = 1.0
    form.picker.dropdown.value = LOCAL
    form.picker.path.value = str(tmp_path)
    garbage = tmp_path / "x.flac"
    garbage.write_bytes(b"nope")
    form.audio.path.value = str(garbage)
    form.run()
    assert "Could not read" in message_text(form)


def test_autoencoder_round_trip_of_the_test_chord_and_of_an_upload(session, out, chord_file):
    form = autoencoder_form(model="demo", duration=1.0, seed=0, output_dir=out, session=session)
    result = form.run()
    assert result is not None, message_text(form)
    assert result.source == "test chord (1 s)" and result.before.shape == result.after.shape == (2, 44100)
    assert result.latent_shape[:2] == (1, 32) and abs(result.latent_rate_hz - 44100 / 4096) < 1e-6
    assert result.snr_db == result.snr_db and result.stft_distance > 0  # finite numbers from a random model
    assert set(result.run.timings) >= {"load", "encoding", "decoding", "total"}
    text = result_blocks(form)[0]
    assert "Before (input)" in text and "After (decoded)" in text and "SNR" in text and "frames/s" in text
    assert result.snr_db < 0 and "below 0 dB the difference is louder than the input" in html.unescape(text)
    form.audio.upload.value = (upload_item("chord.wav", open(chord_file, "rb").read()),)
    form.chunked.value = True
    result = form.run()
    assert result is not None and result.source.endswith("chord.wav") and result.run.settings["chunked"]
    assert len(result_blocks(form)) == 2
