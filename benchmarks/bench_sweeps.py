"""Sweep throughput: items per minute, local backend against Ray with 2 actors, demo and small-music.

    .venv/bin/python benchmarks/bench_sweeps.py                      # 16 demo items, 4 small-music items
    .venv/bin/python benchmarks/bench_sweeps.py --small-items 16 --duration 5 --steps 8
    .venv/bin/python benchmarks/bench_sweeps.py --skip-small          # the demo rows only

The local rows also print the form's estimate made before the run (``SweepRequest.estimate``), to
check it against the measured seconds. Each row is one whole sweep into a fresh folder: loading
included (the local model once; each Ray actor loads its own), Ray's start-up not (printed apart).
small-music is the random-weight model at the released size (built once, as bench_generate.py
does). On the CPU the Ray actors share the machine's cores (each gets cores / actors torch
threads); with CUDA the local row runs on the GPU and Ray gets one actor per GPU (up to 2), so its
items per minute are per GPU when divided by the GPUs.
Needs ``sa3lab[cluster]`` for the Ray rows (they are skipped without it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "warm analog synth arpeggio with deep sub bass, 120 BPM",
    "rain on a tin roof with distant thunder",
    "lo-fi hip hop beat with dusty vinyl crackle and mellow piano chords",
    "a door creaks open in an empty hall",
]
RESULTS = Path(__file__).resolve().parent / "results"


def one_sweep(lab, model: str, items: int, backend: str, workers: int, args) -> dict:
    from sa3lab.sweep_plan import SweepRequest

    seeds = list(range(1, -(-items // len(PROMPTS)) + 1))
    folder = tempfile.mkdtemp(prefix=f"bench-sweep-{backend}-")
    request = SweepRequest(
        model=model,
        prompts=PROMPTS,
        seeds=seeds,
        duration=args.duration,
        steps=args.steps,
        output_dir=folder,
        backend=backend,
        workers=workers if backend == "ray" else None,
        max_batch=args.max_batch,
    )
    assert len(request.items()) == items, "items must be a multiple of 4 (the prompts)"
    loaded = {key.split("|")[0] for key in lab.cache.keys()}
    estimate = request.estimate(lab.machine, loaded).seconds if backend == "local" else None
    start = time.perf_counter()
    result = lab.sweep(request)
    seconds = time.perf_counter() - start
    assert result.progress.done == items and not result.failed(), result.failed()
    return {
        "model": Path(model).name,
        "backend": backend,
        "workers": workers if backend == "ray" else 1,
        "items": items,
        "seconds": round(seconds, 2),
        "items_per_min": round(60 * items / seconds, 2),
        "estimate_s": round(estimate, 2) if estimate is not None else "-",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demo-items", type=int, default=16)
    parser.add_argument("--small-items", type=int, default=4)
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from sa3lab.lab import Lab

    ray_there = importlib.util.find_spec("ray") is not None
    gpus = torch.cuda.device_count()
    workers = min(gpus, 2) if gpus else 2
    if ray_there:
        import ray

        start = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        print(
            f"ray {ray.__version__} started in {time.perf_counter() - start:.1f} s: {ray.cluster_resources()}"
        )
    else:
        print("ray is not installed (pip install 'sa3lab[cluster]'): local rows only")
    lab = Lab()
    device = torch.cuda.get_device_name(0) if gpus else f"CPU, {torch.get_num_threads()} threads"
    models = [("demo", args.demo_items)]
    if not args.skip_small:
        from bench_generate import ensure_model

        models.append((str(ensure_model("small-music")), args.small_items))
    rows = []
    for model, items in models:
        for backend in ("local", "ray") if ray_there else ("local",):
            row = {"device": device, **one_sweep(lab, model, items, backend, workers, args)}
            print(json.dumps(row), flush=True)
            rows.append(row)
        lab.cache.clear()  # the next model's rows start with free memory
    print(f"\n{args.duration:g} s of audio per item, {args.steps} steps; loading included")
    print("| model | backend | workers | items | seconds | items/min | estimate (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        keys = ("model", "backend", "workers", "items", "seconds", "items_per_min", "estimate_s")
        cells = [r[k] for k in keys]
        print("| " + " | ".join(map(str, cells)) + " |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_sweeps.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
