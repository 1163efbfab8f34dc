"""Our windowed-sinc resampler: torchaudio's numbers when it is there, and everything works without it."""

import ast
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stable_audio_3.resample import resample

ROOT = Path(__file__).resolve().parents[2]
RATE_PAIRS = [
    (48000, 44100),
    (44100, 48000),
    (22050, 44100),
    (16000, 44100),
    (8000, 44100),
    (96000, 44100),
    (32000, 44100),
    (88200, 44100),
    (44100, 16000),
    (12345, 44100),
]


@pytest.mark.parametrize("orig, new", RATE_PAIRS)
def test_same_numbers_as_torchaudio_resample(orig, new):
    torchaudio = pytest.importorskip("torchaudio")
    torch.manual_seed(orig + new)
    audio = torch.randn(2, 3, 997 + orig // 10)
    expected = torchaudio.transforms.Resample(orig, new)(audio)
    got = resample(audio, orig, new)
    assert got.shape == expected.shape and torch.equal(got, expected)


def test_length_rounding_follows_torchaudio_on_long_clips():
    """147 * 300123 / 160 = 275738.006: torchaudio's float32 ceiling gives 275738 samples, not 275739."""
    audio = torch.randn(1, 300123)
    got = resample(audio, 48000, 44100)
    assert got.shape == (1, 275738)
    torchaudio = pytest.importorskip("torchaudio")
    assert torch.equal(got, torchaudio.transforms.Resample(48000, 44100)(audio))


@pytest.mark.parametrize("orig, new", [(48000, 44100), (22050, 44100), (96000, 44100)])
def test_a_sine_keeps_its_frequency_and_level(orig, new):
    seconds, hz = 0.5, 1000.0
    before = torch.sin(2 * math.pi * hz * torch.arange(int(orig * seconds), dtype=torch.float64) / orig)
    after = resample(before.float(), orig, new).double()
    wanted = torch.sin(2 * math.pi * hz * torch.arange(after.shape[-1], dtype=torch.float64) / new)
    assert after.shape[-1] == math.ceil(new * seconds)
    inner = slice(new // 100, -new // 100)  # away from the zero-padded ends
    assert (after[inner] - wanted[inner]).abs().max() < 2e-3


def test_equal_rates_return_the_input_and_shapes_devices_dtypes_are_kept():
    audio = torch.randn(3, 1000)
    assert resample(audio, 44100, 44100) is audio
    out = resample(audio.double(), 48000, 44100)
    assert out.dtype == torch.float64 and out.shape == (3, 919)
    assert resample(audio[0], 48000, 44100).shape == (919,)


def test_nothing_imports_torchaudio():
    """Resampling is ours, so neither package names torchaudio in an import."""
    for path in [*(ROOT / "stable_audio_3").rglob("*.py"), *(ROOT / "sa3lab").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "torchaudio" for n in names), path


# The cases with resampled input, plus a text-encoder and a whole-generation case (transformers
# probes for torchaudio when it loads T5Gemma).
WITHOUT_TORCHAUDIO = [
    "tests/engine/test_audio.py::test_resampling_and_mono_to_stereo_match_the_encoder_fixture",
    "tests/engine/test_autoencoder.py::test_matches_upstream[ae_same_s_encode_resample_mono]",
    "tests/engine/test_autoencoder.py::test_matches_upstream[ae_same_l_encode_resample_mono]",
    "tests/engine/test_conditioning.py::test_prompt_embeddings_match_upstream[small-music]",
    "tests/engine/test_pipeline.py::test_generate_matches_upstream[t2a_1s]",
    "tests/engine/test_resample.py::test_a_sine_keeps_its_frequency_and_level",
    "tests/engine/test_resample.py::test_torchaudio_is_blocked_here",
]


def test_torchaudio_is_blocked_here():
    """Passes only under ``-p without_torchaudio``; the subprocess below runs it that way."""
    if "without_torchaudio" not in sys.modules:
        pytest.skip("runs in the subprocess of test_parity_cases_pass_without_torchaudio")
    with pytest.raises(ModuleNotFoundError):
        import torchaudio  # noqa: F401
    assert importlib.util.find_spec("torchaudio") is None  # as transformers sees it


def test_parity_cases_pass_without_torchaudio():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "without_torchaudio",
            "-p",
            "no:cacheprovider",
            *WITHOUT_TORCHAUDIO,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "skipped" not in summary, summary  # the parity cases ran, none skipped


@pytest.mark.parametrize("orig, new", [(44101, 44100), (44100, 47999), (191999, 48000)])
def test_rates_sharing_no_divisor_go_in_two_steps_within_memory(orig, new, monkeypatch):
    """44101 -> 44100 Hz in one step would build 44100 filters of 44115 taps (7.8 GB): the clip is
    interpolated to a multiple of the new rate (the new rate itself when upsampling), then filtered down;
    a sine keeps its frequency."""
    from stable_audio_3 import resample as module

    assert module.kernel_taps(orig, new) > module.KERNEL_LIMIT
    built = []
    real = module.sinc_kernel.__wrapped__
    monkeypatch.setattr(module, "sinc_kernel", lambda o, n: built.append((o, n)) or real(o, n))
    seconds, hz = 0.25, 1000.0
    before = torch.sin(2 * math.pi * hz * torch.arange(int(orig * seconds), dtype=torch.float64) / orig)
    after = module.resample(torch.stack([before, -before]).float(), orig, new).double()
    assert all(module.kernel_taps(o, n) <= module.KERNEL_LIMIT for o, n in built)
    assert abs(after.shape[-1] - new * seconds) <= 2
    wanted = torch.sin(2 * math.pi * hz * torch.arange(after.shape[-1], dtype=torch.float64) / new)
    inner = slice(new // 100, -new // 100)
    assert (after[0, inner] - wanted[inner]).abs().max() < 1e-2
    assert (after[1, inner] + wanted[inner]).abs().max() < 1e-2
