"""Access to the golden upstream fixtures in tests/fixtures/sa3-parity."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).parent / "fixtures" / "sa3-parity"
MODELS = FIXTURES / "models"
INPUTS = FIXTURES / "inputs"


@dataclass
class Case:
    """One recorded upstream call: its JSON description and its tensors."""

    name: str
    meta: dict
    tensors: dict[str, torch.Tensor]

    def atol(self, output: str) -> float:
        return self.meta["outputs"][output]["tolerance"]["atol"]

    def assert_output(self, output: str, actual: torch.Tensor) -> None:
        """Compare ``actual`` with the recorded output at the case's own tolerance."""
        expected = self.tensors[output]
        torch.testing.assert_close(
            actual.detach().to("cpu", torch.float32), expected, rtol=0, atol=self.atol(output)
        )


def load_case(name: str) -> Case:
    meta = json.loads((FIXTURES / "cases" / f"{name}.json").read_text())
    tensors = load_file(str(FIXTURES / "cases" / f"{name}.safetensors"))
    return Case(name, meta, tensors)


def case_names(prefix: str = "") -> list[str]:
    return sorted(p.stem for p in (FIXTURES / "cases").glob(f"{prefix}*.json"))


def input_audio(clip: str) -> torch.Tensor:
    """(channels, samples) float32 of ``inputs/<clip>.safetensors``."""
    return load_file(str(INPUTS / f"{clip}.safetensors"))["audio"]
