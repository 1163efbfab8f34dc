"""Fixtures of the form tests. ``no_real_login`` is used by the files that need it (``pytestmark``)."""

import pytest
import soundfile as sf
from form_helpers import shared_lab

from sa3lab.audio_input import reference_chord
from sa3lab.forms.session import Session


@pytest.fixture
def no_real_login(monkeypatch, tmp_path):
    """No stored login or HF_TOKEN of this machine leaks into the tests."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture
def session():
    return Session(lab=shared_lab())


@pytest.fixture
def out(tmp_path):
    return str(tmp_path / "outputs")


@pytest.fixture
def chord_file(tmp_path):
    path = tmp_path / "chord.wav"
    sf.write(path, reference_chord(1.0).T.numpy(), 44100)
    return str(path)
