"""benchmarks/gpu_check.py: its CPU fallback runs end to end, and without CUDA it stops with one sentence."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stable_audio_3.parity import ONE_OF_EACH_KIND

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
def test_the_quick_cpu_check_passes_and_reports_every_section(tmp_path):
    report_path = tmp_path / "report.json"
    proc = run_check("--device", "cpu", "--quick", "--json", str(report_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "every check passed" in proc.stdout
    report = json.loads(report_path.read_text())
    assert report["failures"] == []
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    assert env["policy"]["dit_dtype"] == "float32"  # the CPU default; the fast mode is reported beside it

    rows = report["fidelity"]["cases"]
    assert sorted({row["case"] for row in rows}) == sorted(ONE_OF_EACH_KIND)
    for row in rows:
        assert row["ok"] and row["float32_max_error"] <= row["atol"]
        for dtype in ("bfloat16", "float16"):
            assert row[dtype]["finite"] and row[dtype]["snr_db"] >= row[dtype]["min_snr_db"]
        if row["kind"] == "generate":
            assert row["exclude_cpu_vs_device_max_error"] <= row["atol"]

    speed = report["speed"]["rows"]
    seen = {(r["model"], r["dtype"], r["chunked_decode"]) for r in speed}
    assert seen == {
        (model, dtype, chunked)
        for model in ("small-music", "medium")
        for dtype in ("bfloat16", "float16")
        for chunked in (True, False)
    }
    for row in speed:
        assert row["load_s"] > 0 and row["sampling_s"] > 0 and row["decoding_s"] > 0 and row["finite"]
        assert row["rtf"] == pytest.approx(row["total_s"] / row["duration_s"])

    cache = report["cache"]
    assert cache["ok"] and cache["medium_evicted_and_collected"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_the_check_stops_with_one_actionable_sentence():
    proc = run_check()
    assert proc.returncode == 2 and proc.stdout == ""
    message = proc.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "CUDA is not available" in message and "--device cpu --quick" in message
