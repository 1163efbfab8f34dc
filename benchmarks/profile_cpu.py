"""Where a CPU generation spends its time, by stage and by kind of work (matmuls, attention, norms, ...).

    .venv/bin/python benchmarks/profile_cpu.py                        # small-music, 30 s, 8 steps, bfloat16
    .venv/bin/python benchmarks/profile_cpu.py --dtype float32 --threads 2

Builds (once) and loads the released-size random-weight model as ``bench_generate.py`` does, runs
one warm-up generation, then one generation under a dispatch mode that charges every ATen/oneDNN
operation's CPU time (``time.thread_time``) to a stage (text encoding, sampling, decoding) and a
kind of work, from the innermost engine module it runs in. With ``--threads 1`` (the default) all
work happens on the measuring thread, so the figures are CPU seconds that other processes on the
machine barely disturb; divide by the thread count for an ideal wall time. ``--no-prepack`` runs
the same generation with bfloat16 weights reordered on every call (as before prepacking), to show
what prepacking saves. Prints a table and writes ``benchmarks/results/profile_cpu_<dtype>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import torch
from bench_generate import PROMPT, RESULTS, ensure_model
from torch.utils._python_dispatch import TorchDispatchMode

from stable_audio_3 import StableAudioModel, layers

KINDS = (  # (module class, kind of work inside it); the innermost match wins
    (layers.Linear, "matmul (oneDNN linear)"),
    (layers.RMSNorm, "norms"),
    (layers.DynamicTanh, "norms"),
    (layers.Attention, "attention: RoPE, heads, differential"),
    (layers.FeedForward, "feed-forward gate (GLU)"),
    (layers.TransformerBlock, "block: adaLN, gates, residuals"),
)


class _Charge(TorchDispatchMode):
    """Adds each operation's thread CPU time to ``totals[(stage, kind, op)]``."""

    def __init__(self, context: list[tuple[str, str]]):
        super().__init__()
        self.context = context
        self.totals: dict[tuple[str, str, str], float] = defaultdict(float)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = time.thread_time()
        out = func(*args, **(kwargs or {}))
        stage, kind = self.context[-1]
        op = func.overloadpacket.__name__
        if "attention" in op:
            kind = "attention kernel (SDPA)"
        elif op.startswith("normal"):
            kind = "random numbers"
        elif "convolution" in op:
            kind = "convolutions"
        elif op in ("mm", "addmm", "bmm", "baddbmm") and kind == "other":
            kind = "matmul (other)"
        self.totals[(stage, kind, op)] += time.thread_time() - start
        return out


def _track(model: StableAudioModel, context: list[tuple[str, str]]) -> None:
    """Hooks that keep ``context`` at the (stage, kind) of the innermost running module."""
    stages = [(encoder.model, "text encoding") for encoder in model.model.conditioner.text_encoders()] + [
        (model.model.dit, "sampling (DiT)"),
        (model.model.autoencoder, "decoding (SAME)"),
    ]

    def enter(module, stage=None, kind=None):
        current_stage, current_kind = context[-1]
        context.append((stage or current_stage, kind or current_kind))

    def leave(*_):
        context.pop()

    for root, stage in stages:
        root.register_forward_pre_hook(lambda m, a, s=stage: enter(m, stage=s, kind="other"))
        root.register_forward_hook(leave)
        for module in root.modules():
            kind = next((k for cls, k in KINDS if isinstance(module, cls)), None)
            if kind is not None:
                module.register_forward_pre_hook(lambda m, a, k=kind: enter(m, kind=k))
                module.register_forward_hook(leave)
    # SAME's decode_once is a method, not a forward: charge the autoencoder's calls to decoding
    decode = model.model.autoencoder.decode

    def decode_in_stage(*args, **kwargs):
        enter(None, stage="decoding (SAME)", kind="other")
        try:
            return decode(*args, **kwargs)
        finally:
            leave()

    model.model.autoencoder.decode = decode_in_stage


def profile(model, duration: float, steps: int) -> tuple[dict, float, dict]:
    context = [("outside the engine modules", "other")]
    _track(model, context)
    mode = _Charge(context)
    start = time.thread_time()
    with mode:  # another prompt than the warm-up's: the text encoder keeps its last results
        model.generate(PROMPT + ", profiled", duration=duration, steps=steps, seed=1, disable_tqdm=True)
    return dict(mode.totals), time.thread_time() - start, dict(model.last_timings)


def summarise(totals: dict) -> tuple[dict, dict]:
    by_stage_kind: dict[tuple[str, str], float] = defaultdict(float)
    by_op: dict[tuple[str, str], float] = defaultdict(float)
    for (stage, kind, op), seconds in totals.items():
        by_stage_kind[(stage, kind)] += seconds
        by_op[(kind, op)] += seconds
    return dict(by_stage_kind), dict(by_op)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small-music")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-prepack", action="store_true", help="reorder bfloat16 weights on every call")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.no_prepack:
        layers.Linear._prepacked = lambda self, weight, rows: weight
    model = StableAudioModel.from_pretrained(
        str(ensure_model(args.model)), device="cpu", dtype=getattr(torch, args.dtype)
    )
    model.generate(PROMPT, duration=args.duration, steps=args.steps, seed=1, disable_tqdm=True)  # warm-up
    totals, elapsed, stages = profile(model, args.duration, args.steps)
    by_stage_kind, by_op = summarise(totals)
    counted = sum(totals.values())
    print(
        f"{args.model}, {args.duration:g} s, {args.steps} steps, {args.dtype}, {args.threads} thread(s)"
        f"{', weights reordered per call' if args.no_prepack else ''}: {elapsed:.2f} CPU s on this thread "
        f"({counted:.2f} s inside operations, the rest Python and profiling)"
    )
    print(f"\n{'stage':<28} {'kind of work':<40} {'CPU s':>7} {'share':>6}")
    for (stage, kind), seconds in sorted(by_stage_kind.items(), key=lambda item: -item[1]):
        if seconds >= 0.005 * counted:
            print(f"{stage:<28} {kind:<40} {seconds:>7.2f} {seconds / counted:>6.1%}")
    print(f"\n{'kind of work':<40} {'operation':<36} {'CPU s':>7}")
    for (kind, op), seconds in sorted(by_op.items(), key=lambda item: -item[1])[:15]:
        print(f"{kind:<40} {op:<36} {seconds:>7.2f}")
    report = {
        "args": vars(args),
        "thread_cpu_s": elapsed,
        "stage_wall_s": stages,
        "by_stage_and_kind": [{"stage": s, "kind": k, "cpu_s": v} for (s, k), v in by_stage_kind.items()],
        "by_operation": [{"kind": k, "op": o, "cpu_s": v} for (k, o), v in by_op.items()],
    }
    RESULTS.mkdir(exist_ok=True)
    out = Path(RESULTS) / f"profile_cpu_{args.dtype}{'_no_prepack' if args.no_prepack else ''}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
