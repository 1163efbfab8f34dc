"""What step previews cost a generation: sampling with and without them, at the released size.

    .venv/bin/python benchmarks/bench_previews.py --durations 5 30 --repeats 2
    .venv/bin/python benchmarks/bench_previews.py --folder path/to/small-music   # a real checkpoint

Random weights at small-music's released size (built once under benchmarks/results/models/, see
bench_generate.py), or any model folder. One process, one load; the fit that turns latents into a
spectrogram estimate is taught by a first run, as in a kernel after its first result. Then, per
duration and repeat, interleaved: sampling without previews, with previews every N steps
(spectrogram estimate), and with previews that also decode an excerpt to listen to. Prints, per
variant, the sampling time (minimum over the repeats) and the time spent inside the previews as a
share of the plain sampling time; the second is the cost itself, the first also carries the
machine's noise. Writes benchmarks/results/previews.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
PROMPT = "warm analog synth arpeggio with deep sub bass, 120 BPM"
VARIANTS = ("off", "spectrogram", "spectrogram + listen")


def generate(model, duration: float, steps: int, previews) -> dict:
    from sa3lab.previews import StepPreviews

    watcher = None if previews is None else StepPreviews(lambda preview: None, **previews)
    callback = None if watcher is None else watcher.watch(model, duration)
    audio = model.generate(
        PROMPT, duration=duration, steps=steps, seed=1, callback=callback, disable_tqdm=True
    )
    if watcher is not None:
        watcher.learn(model, audio)
    return {
        "sampling_s": model.last_timings["sampling"],
        "previews_s": 0.0 if watcher is None else watcher.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", help="a model folder (default: small-music at the released size)")
    parser.add_argument("--durations", type=float, nargs="+", default=[5.0, 30.0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from stable_audio_3 import StableAudioModel

    if args.folder:
        folder = Path(args.folder)
    else:
        from bench_generate import ensure_model

        folder = ensure_model("small-music")
    model = StableAudioModel.from_pretrained(str(folder))
    threads = torch.get_num_threads()
    print(f"{folder}: {model.device}, {threads} threads; {args.steps} steps, previews every {args.every}")
    options = {
        "off": None,
        "spectrogram": {"every": args.every},
        "spectrogram + listen": {"every": args.every, "listen": True},
    }
    generate(model, min(args.durations), args.steps, options["spectrogram"])  # teaches the fit, warms up
    report = {"folder": str(folder), "steps": args.steps, "every": args.every, "runs": {}}
    for duration in args.durations:
        runs = {variant: [] for variant in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:
                runs[variant].append(generate(model, duration, args.steps, options[variant]))
        plain = min(r["sampling_s"] for r in runs["off"])
        print(f"\n{duration:g} s of audio")
        print(f"{'variant':<22}{'sampling (min)':>16}{'vs off':>9}{'in previews':>13}{'share':>8}")
        for variant in VARIANTS:
            sampling = min(r["sampling_s"] for r in runs[variant])
            inside = min(r["previews_s"] for r in runs[variant])
            change, share = sampling / plain - 1, inside / plain
            print(f"{variant:<22}{sampling:>14.2f} s{change:>+8.1%}{inside:>11.2f} s{share:>8.1%}")
        report["runs"][str(duration)] = runs
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "previews.json").write_text(json.dumps(report, indent=2))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}: wrote {RESULTS / 'previews.json'}")


if __name__ == "__main__":
    main()
