"""Running the committed notebooks headless (papermill) and reading what they saved and showed."""

import json
from pathlib import Path

import papermill

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SWEEPS = "05_batch_sweeps.ipynb"  # its own parameters and headless runs
RADIO = "06_radio.ipynb"  # its own parameters and headless runs (tests/notebooks/test_radio_notebook.py)
SINGLE_RUN = [p for p in NOTEBOOKS if p.name not in (SWEEPS, RADIO)]
RADIO_PARAMETERS = {"SEGMENT_S": 1.0, "CONTEXT_S": 0.5, "SEGMENTS": 2}  # the demo makes at most 10 s
TRAINING = "04_train_lora.ipynb"  # trains base models only (the demo is post-trained)


def offline_model(name: str) -> dict:
    """The parameters that run notebook ``name`` with no download: the demo model, or for the training
    notebook a tiny base model from the test fixtures and a few steps."""
    if name != TRAINING:
        return {"MODEL": "demo"}
    from parity import MODELS

    return {
        "MODEL": str(MODELS / "small-music-base"),
        "STEPS": 2,
        "RANK": 4,
        "DURATION": 0.5,
        "PROMPT": "plucks",
    }


def run_notebook(name: str, tmp_path: Path, kernel_name: str = "python3", **parameters) -> dict:
    out = tmp_path / f"out-{name}"
    parameters = {
        "PROMPT": "warm analog synth arpeggio",
        "DURATION": 1.0,
        "SEED": 7,
        "OUTPUT_DIR": str(tmp_path / "outputs"),
        "RUN": True,
        **(RADIO_PARAMETERS if name == RADIO else {}),
        **parameters,
    }
    papermill.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(out),
        parameters=parameters,
        cwd=str(tmp_path),
        kernel_name=kernel_name,
        progress_bar=False,
        execution_timeout=600,
    )
    return json.loads(out.read_text())


def saved_runs(tmp_path: Path) -> list[tuple[Path, dict]]:
    """(wav path, sidecar metadata) of every saved result."""
    return [
        (p.with_suffix(".wav"), json.loads(p.read_text()))
        for p in sorted((tmp_path / "outputs").glob("*.json"))
    ]


def outputs(nb: dict) -> list[dict]:
    return [out for cell in nb["cells"] if cell["cell_type"] == "code" for out in cell.get("outputs", [])]
