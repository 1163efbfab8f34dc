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


def run_in_runtime(name: str, tmp_path: Path, kernel_name: str, pins: dict[str, str]) -> None:
    """Run notebook ``name`` offline in another runtime's kernel; its results must exist and say they
    were made with that runtime's transformers and huggingface_hub (not the test environment's)."""
    import soundfile as sf

    run_notebook(name, tmp_path, kernel_name=kernel_name, **offline_model(name))
    runs = saved_runs(tmp_path)
    assert runs, "the notebook saved no result"
    for wav, meta in runs:
        data, rate = sf.read(str(wav))
        assert rate == 44100 and len(data) > 0
        assert meta["versions"]["transformers"] == pins["transformers"]
        assert meta["versions"]["huggingface_hub"] == pins["huggingface-hub"]


def saved_runs(tmp_path: Path) -> list[tuple[Path, dict]]:
    """(wav path, sidecar metadata) of every saved result."""
    return [
        (p.with_suffix(".wav"), json.loads(p.read_text()))
        for p in sorted((tmp_path / "outputs").glob("*.json"))
    ]


def outputs(nb: dict) -> list[dict]:
    return [out for cell in nb["cells"] if cell["cell_type"] == "code" for out in cell.get("outputs", [])]
