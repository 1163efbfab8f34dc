"""Time loading and generation at the real released sizes (random weights, no download).

    .venv/bin/python benchmarks/bench_generate.py --model small-music --durations 5 30 120 --repeats 3
    .venv/bin/python benchmarks/bench_generate.py --dtype bfloat16 --decode chunked  # docs/performance.md

Builds the model once in the official layout under benchmarks/results/models/ (a few GB for
small-music, about 8 GB for medium), then, for each duration, times on the current device: load from
disk (in a fresh subprocess, so peak RSS is per load), text encoding, sampling, decoding (plain and
chunked), total, and the process's CPU seconds during the generation (steadier than wall time when
other work shares the cores). Prints a table (min and median over the repeats) and writes a JSON
file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PROMPT = "warm analog synth arpeggio with deep sub bass, 120 BPM"


def ensure_model(name: str) -> Path:
    from stable_audio_3.random_models import write_model_repo

    folder = RESULTS / "models" / f"{name}-released"
    if not (folder / "model.safetensors").exists():
        print(f"building {name} at the released size in {folder} ...", flush=True)
        write_model_repo(folder, name, size="released")
    return folder


def run_one(
    folder: Path, duration: float, chunked: bool, steps: int, device: str | None, dtype: str, max_samples=None
) -> dict:
    """One load + one generation in this process; returns the stage timings and peak memory."""
    import torch

    from stable_audio_3 import StableAudioModel

    t0 = time.perf_counter()
    model = StableAudioModel.from_pretrained(str(folder), device=device, dtype=getattr(torch, dtype))
    load_s = time.perf_counter() - t0
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0, cpu0 = time.perf_counter(), time.process_time()
    info = model.generate(
        PROMPT,
        duration=duration,
        steps=steps,
        seed=1,
        chunked_decode=chunked,
        sample_size=max_samples,
        return_info=True,
    )
    total_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    out = {"load_s": load_s, "total_s": total_s, **{f"{k}_s": v for k, v in info.timings.items()}}
    out["cpu_s"] = cpu_s  # CPU seconds of all threads: on a shared machine, steadier than the wall time
    if model.device.type == "cuda":
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        import resource

        out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    out["device"] = str(model.device)
    return out


def measure(folder: Path, *args) -> dict:
    """Run :func:`run_one` in a fresh interpreter so load time and peak RSS are not shared."""
    args = (str(folder), *args)
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from bench_generate import run_one; from pathlib import Path; "
        f"print(json.dumps(run_one(Path({args[0]!r}), *{args[1:]!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    keys = [k for k in runs[0] if k != "device"]
    return {
        k: {"min": min(r[k] for r in runs), "median": statistics.median(r[k] for r in runs)} for k in keys
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small-music")
    parser.add_argument("--durations", type=float, nargs="+", default=[5, 30, 120])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16", "bfloat16"],
        help="bfloat16 on a CPU is a fast mode that leaves the parity tolerances",
    )
    parser.add_argument("--decode", default="both", choices=["both", "chunked", "plain"])
    parser.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="cap the generated length (upstream's generate caps every model at 5292032 samples; "
        "pass that for a same-work comparison with medium)",
    )
    args = parser.parse_args()

    folder = ensure_model(args.model)
    report = {
        "model": args.model,
        "steps": args.steps,
        "repeats": args.repeats,
        "dtype": args.dtype,
        "max_samples": args.max_samples,
        "results": [],
    }
    decodes = {"both": (False, True), "chunked": (True,), "plain": (False,)}[args.decode]
    header = f"{'duration':>8} {'decode':>8} {'stage':>16} {'min s':>8} {'median s':>9}"
    print(header)
    for duration in args.durations:
        for chunked in decodes:
            runs = [
                measure(folder, duration, chunked, args.steps, args.device, args.dtype, args.max_samples)
                for _ in range(args.repeats)
            ]
            summary = summarise(runs)
            report["results"].append(
                {
                    "duration": duration,
                    "chunked_decode": chunked,
                    "device": runs[0]["device"],
                    "stages": summary,
                }
            )
            for stage, fig in summary.items():
                label = "chunked" if chunked else "plain"
                print(
                    f"{duration:>8g} {label:>8} {stage:>16} {fig['min']:>8.2f} {fig['median']:>9.2f}",
                    flush=True,
                )
    RESULTS.mkdir(exist_ok=True)
    cap = "" if args.max_samples is None else f"_cap{args.max_samples}"
    out = RESULTS / f"bench_generate_{args.model}_{args.dtype}{cap}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
