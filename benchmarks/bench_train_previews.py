"""What previews cost a LoRA training run, and whether the live panel's times match the wall clock.

    .venv/bin/python benchmarks/bench_train_previews.py                          # the tiny test base model
    .venv/bin/python benchmarks/bench_train_previews.py --model small-music-base --duration 5 --steps 40

Loads the base model once (a warm-up run of one step), then trains ``--steps`` steps twice through
the lab (``Lab.train``, as the form does): without previews and with a preview every ``--every``
steps. For each run it prints the wall time of ``train`` (the model already loaded), the panel's
last "elapsed" (the step report's wall-clock time), its "elapsed + remaining" at the halfway step
(what the panel promised then) against the wall time the run took, and the form's estimate made
before Start (``sa3lab.training.estimate``). ``--model small-music-base`` builds the released size
with random weights (as bench_generate.py does).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_BASE = ROOT / "tests" / "fixtures" / "sa3-parity" / "models" / "small-music-base"


def one_run(lab, request) -> dict:
    from sa3lab import training

    values = {k: v for k, v in asdict(request).items() if k != "data_dir"}
    planned = training.estimate(lab.machine, {request.model}, **values)
    reports = []
    start = time.perf_counter()
    result = lab.train(request, on_step=reports.append)
    wall = time.perf_counter() - start
    half = reports[len(reports) // 2 - 1]
    promised = half.elapsed + half.remaining
    return {
        "previews_every": request.preview_every,
        "steps": result.step,
        "wall_s": round(wall, 2),
        "panel_elapsed_s": round(reports[-1].elapsed, 2),
        "panel_vs_wall": round(reports[-1].elapsed / wall, 3),
        "halfway_promise_s": round(promised, 2),
        "promise_vs_wall": round(promised / wall, 3),
        "estimate_s": round(sum(planned.values()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(TINY_BASE), help="a base model folder or small-music-base")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=10, help="a preview every N steps")
    parser.add_argument("--duration", type=float, default=2.0, help="clip length, s")
    parser.add_argument("--preview-duration", type=float, default=5.0)
    parser.add_argument("--preview-steps", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from sa3lab.lab import Lab
    from sa3lab.training import TrainingRequest, write_example_dataset

    model = args.model
    if model == "small-music-base":
        from bench_generate import ensure_model

        model = str(ensure_model("small-music-base"))
    folder = Path(tempfile.mkdtemp(prefix="bench-train-previews-"))
    data = write_example_dataset(folder / "clips", clips=4, seconds=args.duration)
    lab = Lab()

    def request(steps: int, every: int, name: str) -> TrainingRequest:
        return TrainingRequest(
            model=model,
            data_dir=str(data),
            name=name,
            steps=steps,
            duration=args.duration,
            preview_every=every,
            preview_duration=args.preview_duration,
            preview_steps=args.preview_steps,
            output_dir=str(folder / "out"),
        )

    lab.train(request(1, 0, "warm-up"))  # loads the model
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"{Path(model).name}, {device}, {torch.get_num_threads()} threads, clips of {args.duration:g} s")
    rows = []
    for every in (0, args.every):
        row = one_run(lab, request(args.steps, every, f"every-{every}"))
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(
        f"\n{args.steps} steps; previews of {args.preview_duration:g} s at {args.preview_steps} steps\n"
        "| previews every | wall (s) | panel elapsed (s) | panel / wall | halfway elapsed + remaining (s) "
        "| that / wall | estimate before Start (s) |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        keys = (
            "previews_every", "wall_s", "panel_elapsed_s", "panel_vs_wall",
            "halfway_promise_s", "promise_vs_wall", "estimate_s",
        )  # fmt: skip
        print("| " + " | ".join(str(r[k] or "none") for k in keys) + " |")


if __name__ == "__main__":
    main()
