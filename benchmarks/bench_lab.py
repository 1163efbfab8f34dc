"""The lab's own overhead: a cache-hit run's load time and the time to render a result.

    .venv/bin/python benchmarks/bench_lab.py --durations 5 30 120 --repeats 3

Uses the offline ``demo`` model (tiny random weights) so the figures are the lab's, not the engine's:
a first run (cache miss) and a second run of the same model (cache hit), then a whole result block
(MP3 preview player, spectrogram, waveform, table) for synthetic stereo audio of each duration.
Prints a table (min and median) and writes benchmarks/results/bench_lab.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sa3lab import render
from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab

RESULTS = Path(__file__).parent / "results"
SAMPLE_RATE = 44100


def cache_figures(repeats: int) -> dict[str, list[float]]:
    out = {"load_miss_s": [], "load_hit_s": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            lab = Lab()
            request = GenerationRequest(
                model="demo", prompt="a test tone", duration=1.0, steps=2, seed=1, output_dir=tmp
            )
            out["load_miss_s"].append(lab.generate(request).load_elapsed_s)
            hit = lab.generate(request)
            assert hit.cache_hit
            out["load_hit_s"].append(hit.load_elapsed_s)
    return out


def render_seconds(duration: float) -> float:
    t = torch.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
    audio = 0.3 * torch.stack([torch.sin(2 * torch.pi * 220 * t), torch.sin(2 * torch.pi * 330 * t)])
    start = time.perf_counter()
    render.result_html(
        "a test tone", [render.clip_html(audio, SAMPLE_RATE)], {"duration": duration, "seed": 1}
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[5, 30, 120])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    figures = cache_figures(args.repeats)
    for duration in args.durations:
        figures[f"render_{duration:g}s_s"] = [render_seconds(duration) for _ in range(args.repeats)]
    summary = {k: {"min": min(v), "median": statistics.median(v)} for k, v in figures.items()}
    print(f"{'measure':>20} {'min s':>9} {'median s':>9}")
    for name, fig in summary.items():
        print(f"{name:>20} {fig['min']:>9.4f} {fig['median']:>9.4f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_lab.json"
    out.write_text(json.dumps({"repeats": args.repeats, "figures": summary}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
