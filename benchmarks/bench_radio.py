"""The radio's real-time factor at a released size on this machine (random weights, no download).

    .venv/bin/python benchmarks/bench_radio.py --model small-music --segment 10 --context 5 --segments 3

Builds the model once in the official layout under benchmarks/results/models/ (as bench_generate.py
does), then, through the lab and the run core as notebook 06 runs it: a warm-up generation, the
radio's segments (the first is text-to-audio of ``segment`` seconds, each later one a continuation
that regenerates ``context`` seconds and adds ``segment`` new ones), and text-to-audio runs of
``segment`` seconds alone. Prints each segment's wall and CPU time, the real-time factor of the
stream (seconds of new audio per second of wall time; below 1 a listener waits) and the extra cost
of the context per segment (a continuation's time minus a text-to-audio run of the same new length).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_generate import RESULTS, ensure_model  # noqa: E402

PROMPT = "warm analog synth arpeggio with deep sub bass, 120 BPM"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small-music")
    parser.add_argument("--segment", type=float, default=10.0, help="seconds of new audio per segment")
    parser.add_argument("--context", type=float, default=5.0, help="seconds each segment continues from")
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="text-to-audio runs of one segment alone")
    args = parser.parse_args()

    import torch

    from sa3lab.generation import GenerationRequest
    from sa3lab.lab import Lab
    from sa3lab.radio import RadioRequest

    folder = str(ensure_model(args.model))
    lab = Lab()
    out = tempfile.mkdtemp(prefix="bench-radio-")
    lab.generate(GenerationRequest(folder, PROMPT, duration=1.0, seed=1, output_dir=out))  # load, warm up

    def timed(run):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        return time.perf_counter() - wall, time.process_time() - cpu

    alone = [
        timed(
            lambda: lab.generate(
                GenerationRequest(folder, PROMPT, duration=args.segment, seed=2, output_dir=out)
            )
        )
        for _ in range(args.repeats)
    ]
    segments = []
    marks = [time.perf_counter(), time.process_time()]

    def on_segment(segment):
        now = [time.perf_counter(), time.process_time()]
        segments.append({"index": segment.index, "wall_s": now[0] - marks[0], "cpu_s": now[1] - marks[1]})
        marks[:] = now

    request = RadioRequest.make(
        folder,
        [(PROMPT, args.segments)],
        segment_s=args.segment,
        context_s=args.context,
        seed=3,
        output_dir=out,
    )
    start = time.perf_counter()
    radio = lab.radio(request, segments=args.segments, on_segment=on_segment)
    stream_wall = time.perf_counter() - start

    # text-to-audio of one segment: the runs alone and the stream's first segment
    t2a_wall = min([wall for wall, _ in alone] + [segments[0]["wall_s"]])
    t2a_cpu = min([cpu for _, cpu in alone] + [segments[0]["cpu_s"]])
    continued = segments[1:]
    report = {
        "model": args.model,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "segment_s": args.segment,
        "context_s": args.context,
        "text_to_audio_segment": [{"wall_s": wall, "cpu_s": cpu} for wall, cpu in alone],
        "segments": segments,
        "stream_s": radio.seconds,
        "stream_wall_s": stream_wall,
        "realtime_factor_stream": radio.seconds / stream_wall,
    }
    if continued:
        wall = min(s["wall_s"] for s in continued)
        cpu = min(s["cpu_s"] for s in continued)
        report |= {
            "realtime_factor_continuing_best": args.segment / wall,
            "context_extra_wall_s": wall - t2a_wall,
            "context_extra_cpu_s": cpu - t2a_cpu,
            "context_extra_share": (cpu - t2a_cpu) / t2a_cpu,
        }
    print(
        f"{args.model} at the released size, {report['threads']} threads, {args.segment:g} s segments, "
        f"{args.context:g} s context, the model's default steps; load average "
        f"{' '.join(f'{x:.1f}' for x in report['load_average'])} (other work on the cores slows every "
        "figure: compare the best ones, and rerun on an idle machine)"
    )
    for wall, cpu in alone:
        print(f"text-to-audio of one segment alone: {wall:.2f} s wall, {cpu:.2f} s CPU")
    for s in segments:
        kind = "text-to-audio" if s["index"] == 0 else "continuation"
        print(
            f"segment {s['index']} ({kind}): {s['wall_s']:.2f} s wall, {s['cpu_s']:.2f} s CPU, "
            f"real-time factor {args.segment / s['wall_s']:.2f}"
        )
    print(
        f"stream: {radio.seconds:.1f} s of audio in {stream_wall:.1f} s: real-time factor "
        f"{report['realtime_factor_stream']:.2f}"
    )
    if continued:
        print(
            f"continuing segments: best real-time factor {report['realtime_factor_continuing_best']:.2f}; "
            f"the {args.context:g} s context costs {report['context_extra_cpu_s']:.2f} CPU s per segment "
            f"({report['context_extra_share']:.0%} more than text-to-audio of the segment alone; "
            f"wall: {report['context_extra_wall_s']:.2f} s; best against best)"
        )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"radio-{args.model}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
