"""Exact batching at a real size: a batch with one seed per item against each item generated alone.

    .venv/bin/python benchmarks/bench_batching.py --model small-music --duration 5 --batch 2 --steps 2
    .venv/bin/python benchmarks/bench_batching.py --model-dir path/to/model --cfg 4

Builds (or reuses) the random-weight model at the released size, as bench_generate.py does, then
generates ``--batch`` prompts in one call with ``seed=[...]`` and each prompt alone with its seed,
and prints, per item, whether the audio is bit-for-bit the same, plus both wall times and the
memory estimate of :func:`stable_audio_3.batching.item_bytes`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

PROMPTS = [
    "warm analog synth arpeggio with deep sub bass, 120 BPM",
    "rain on a tin roof with distant thunder",
    "lo-fi hip hop beat with dusty vinyl crackle and mellow piano chords",
    "a door creaks open in an empty hall",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="small-music")
    parser.add_argument("--model-dir", type=Path, help="use this model folder instead of building one")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--cfg", type=float, default=1.0)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import torch

    from stable_audio_3 import StableAudioModel
    from stable_audio_3.batching import item_bytes

    if args.model_dir is None:
        from bench_generate import ensure_model

        args.model_dir = ensure_model(args.model)
    model = StableAudioModel.from_pretrained(str(args.model_dir), device=args.device)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.batch)]
    seeds = list(range(101, 101 + args.batch))
    settings = dict(duration=args.duration, steps=args.steps, cfg_scale=args.cfg, disable_tqdm=True)

    t0 = time.perf_counter()
    batch = model.generate(prompt=prompts, seed=seeds, batch_size=args.batch, **settings)
    batched_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    alone = [model.generate(prompt=p, seed=s, **settings) for p, s in zip(prompts, seeds, strict=True)]
    alone_s = time.perf_counter() - t0

    where = f"model {args.model_dir.name} on {model.device}"
    print(f"{where}: {args.duration} s, {args.steps} steps, cfg {args.cfg}")
    for i, audio in enumerate(alone):
        diff = (batch[i : i + 1] - audio).abs().max().item()
        print(f"item {i}: bitwise equal {torch.equal(batch[i : i + 1], audio)} (max |diff| {diff:.3g})")
    print(f"batched: {batched_s:.1f} s; one by one: {alone_s:.1f} s; ratio {batched_s / alone_s:.2f}")
    estimate = item_bytes(model, duration=args.duration, cfg_scale=args.cfg)
    print(f"estimated memory per batch item: {estimate / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
