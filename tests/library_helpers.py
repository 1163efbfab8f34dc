"""Pieces shared by the library tests (tests/lab/test_library.py and tests/forms/test_library_form.py)."""

from pathlib import Path

from sa3lab.generation import GenerationRequest


def library_folder(tmp_path: Path, monkeypatch) -> Path:
    """The output folder below the working folder (links are relative to it); no login of this machine."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return tmp_path / "outputs"


def demo_run(lab, out: Path, seed: int, prompt: str = "rain on a tin roof", **kw):
    """A 1 s, 2-step demo generation saved in ``out``."""
    request = GenerationRequest(
        model="demo", prompt=prompt, duration=1.0, steps=2, seed=seed, output_dir=str(out), **kw
    )
    return lab.generate(request)
