"""Time LoRA training steps at the real released size (random weights, no download).

    .venv/bin/python benchmarks/bench_train.py --model small-music-base --durations 10 30 --steps 3
    .venv/bin/python benchmarks/bench_train.py --base-precision bf16 --adapter-type lora-xs   # low memory

Builds the model once in the official layout under benchmarks/results/models/ (as bench_generate.py
does), writes a dataset of generated clips with captions, then for each training length runs, in a
fresh interpreter (so peak memory is per configuration), one warm-up step and ``--steps`` timed
optimiser steps of :class:`stable_audio_3.training.LoraTrainer` on the current device (CUDA when
present). Prints steps/s and peak memory (CUDA: peak allocated; CPU: peak resident set, model
included) and writes a JSON file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_generate import RESULTS, ensure_model


def write_dataset(folder: Path, clips: int, seconds: float) -> Path:
    """``clips`` stereo tone-plus-noise clips of ``seconds`` with a caption each."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(clips):
        t = np.arange(int(44100 * seconds)) / 44100
        x = 0.3 * np.sin(2 * np.pi * 110 * (i + 2) * t) + 0.05 * rng.standard_normal(t.shape)
        sf.write(folder / f"clip{i}.wav", np.stack([x, 0.8 * x], 1).astype(np.float32), 44100)
        (folder / f"clip{i}.txt").write_text(f"a droning tone with hiss, number {i}")
    return folder


def run_one(folder: str, data: str, duration: float, steps: int, options: dict) -> dict:
    """Load, build the trainer, one warm-up step, then ``steps`` timed steps in this process."""
    import resource

    import torch

    from stable_audio_3 import StableAudioModel
    from stable_audio_3.training import AdapterConfig, LoraTrainer, TrainingSettings

    model = StableAudioModel.from_pretrained(folder, device=options["device"], dtype=torch.float32)
    adapter = AdapterConfig(rank=options["rank"], adapter_type=options["adapter_type"])
    settings = TrainingSettings(
        steps=steps + 1,
        duration=duration,
        batch_size=options["batch_size"],
        base_precision=options["base_precision"],
        gradient_checkpointing=options["checkpointing"],
        adapter=adapter,
    )
    trainer = LoraTrainer(model, data, settings)
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train_step()  # warm-up (allocator, kernels)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    reports = [trainer.train_step() for _ in range(steps)]
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    out = {
        "device": str(model.device),
        "steps_per_s": steps / seconds,
        "s_per_step": seconds / steps,
        "losses": [r.loss for r in reports],
        "trainable_parameters": trainer.trainable_parameters,
        "latent_frames": trainer.sample_size // model.model.downsampling_ratio,
    }
    if model.device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        out["peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def measure(*args) -> dict:
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from bench_train import run_one; "
        f"print(json.dumps(run_one(*{args!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small-music-base")
    parser.add_argument("--durations", type=float, nargs="+", default=[10, 30], help="training lengths, s")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--adapter-type", default="dora-rows")
    parser.add_argument("--base-precision", default=None, choices=[None, "bf16", "fp16", "fp32"])
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    folder = ensure_model(args.model)
    data = write_dataset(RESULTS / "train-data", clips=max(4, args.batch_size), seconds=max(args.durations))
    options = {
        "device": args.device,
        "rank": args.rank,
        "adapter_type": args.adapter_type,
        "batch_size": args.batch_size,
        "base_precision": args.base_precision,
        "checkpointing": not args.no_checkpointing,
    }
    report = {"model": args.model, "steps": args.steps, **options, "results": []}
    print(f"{'duration s':>10} {'frames':>7} {'device':>7} {'steps/s':>8} {'s/step':>8} {'peak GiB':>9}")
    for duration in args.durations:
        result = measure(str(folder), str(data), duration, args.steps, options)
        report["results"].append({"duration": duration, **result})
        if "error" in result:
            print(f"{duration:>10g} failed: {result['error']}", flush=True)
            continue
        figures = f"{result['steps_per_s']:>8.3f} {result['s_per_step']:>8.2f} {result['peak_gib']:>9.2f}"
        print(f"{duration:>10g} {result['latent_frames']:>7} {result['device']:>7} {figures}", flush=True)
    precision = args.base_precision or "fp32"
    out = RESULTS / f"bench_train_{args.model}_{args.adapter_type}_{precision}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
