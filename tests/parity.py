"""Access to the golden upstream fixtures in tests/fixtures/sa3-parity (see stable_audio_3.parity)."""

from __future__ import annotations

from pathlib import Path

from stable_audio_3.parity import Case, CaseRunner, Fixtures

FIXTURES = Path(__file__).parent / "fixtures" / "sa3-parity"
MODELS = FIXTURES / "models"
INPUTS = FIXTURES / "inputs"

fixtures = Fixtures(FIXTURES)
load_case = fixtures.case
case_names = fixtures.names
input_audio = fixtures.input_audio

__all__ = [
    "Case",
    "CaseRunner",
    "FIXTURES",
    "INPUTS",
    "MODELS",
    "case_names",
    "fixtures",
    "input_audio",
    "load_case",
]
