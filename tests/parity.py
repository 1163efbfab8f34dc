"""Access to the golden upstream fixtures in tests/fixtures/sa3-parity (see stable_audio_3.parity)."""

from __future__ import annotations

import json
from pathlib import Path

from stable_audio_3.lengths import plan_lengths
from stable_audio_3.parity import Case, CaseRunner, Fixtures

FIXTURES = Path(__file__).parent / "fixtures" / "sa3-parity"
MODELS = FIXTURES / "models"
INPUTS = FIXTURES / "inputs"

fixtures = Fixtures(FIXTURES)
load_case = fixtures.case
case_names = fixtures.names
input_audio = fixtures.input_audio


def case_meta(name: str) -> dict:
    return json.loads((FIXTURES / "cases" / f"{name}.json").read_text())


def generate_cases(with_tensor: str = "output.latents") -> list[str]:
    """Names of the recorded generate calls that hold ``with_tensor``."""
    return [
        n
        for n in case_names()
        if case_meta(n)["kind"] == "generate" and with_tensor in case_meta(n)["tensors"]
    ]


def model_lengths(model: str) -> dict:
    """The length parameters a model config implies (sample rate, ratio, cap, latent alignment)."""
    config = json.loads((MODELS / model / "model_config.json").read_text())
    ae = config["model"]["pretransform"]["config"]
    encoder = ae["encoder"]["config"]
    return dict(
        sample_rate=config["sample_rate"],
        downsampling_ratio=ae["downsampling_ratio"],
        max_samples=config["sample_size"],
        latent_align=encoder.get("chunk_size", 32) // encoder["strides"][0],
    )


def plan_for_case(case):
    args = case.meta["args"]
    return plan_lengths(
        args["duration"],
        batch_size=args.get("batch_size", 1),
        padding_sec=args.get("duration_padding_sec", 6.0),
        **model_lengths(case.meta["model"]),
    )


__all__ = [
    "Case",
    "CaseRunner",
    "FIXTURES",
    "INPUTS",
    "MODELS",
    "case_meta",
    "case_names",
    "fixtures",
    "generate_cases",
    "input_audio",
    "load_case",
    "model_lengths",
    "plan_for_case",
]
