"""Prompt Assistant expansion time: the tiny test model, and a model of Qwen3.5-2B's size on this CPU.

    .venv/bin/python benchmarks/bench_prompt_assistant.py [--full-size] [--new-tokens 12]

1. The tests' tiny random-weight Qwen3.5 (built in a temporary folder, loaded from it): load time and
   a greedy expansion per preset (128 new tokens: random weights never stop early).
2. ``--full-size``: a random-weight language model of Qwen3.5-2B's sizes (1.88 B parameters, float32
   as the lab runs it on the CPU; needs about 8 GB free). Measured: the prefill of the Music
   instructions (as many tokens as the assistant's estimate counts) and the seconds per new token;
   composed into an expansion of 70 (typical) and 128 (longest) new tokens, printed beside
   ``PromptAssistant.cpu_estimate()`` for the same preset. Random weights cost what the real ones do.

Writes benchmarks/results/bench_prompt_assistant.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from tiny_qwen import QWEN3_5_2B_TEXT, write_tiny_qwen  # noqa: E402

from sa3lab import prompt_assistant, prompt_style  # noqa: E402
from sa3lab.prompt_assistant import PromptAssistant  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def tiny_figures() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        assistant = PromptAssistant(str(write_tiny_qwen(Path(tmp))))
        out = {"load_s": assistant.load(), "expansions": {}}
        for preset in prompt_style.PRESETS:
            expansion = assistant.expand("rain on a tin roof", preset, greedy=True)
            out["expansions"][preset] = {
                "seconds": expansion.seconds,
                "new_tokens": expansion.new_tokens,
                "tokens_per_s": expansion.new_tokens / expansion.seconds,
            }
    return out


def full_size_figures(new_tokens: int) -> dict:
    from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig

    estimate = PromptAssistant().cpu_estimate("Music")
    prompt = torch.randint(1000, 200000, (1, estimate.prompt_tokens))
    start = time.perf_counter()
    model = Qwen3_5ForCausalLM(Qwen3_5TextConfig(**QWEN3_5_2B_TEXT)).eval()
    build_s = time.perf_counter() - start
    with torch.inference_mode():
        model(prompt[:, :32], logits_to_keep=1)  # warm-up
        start, cpu_start = time.perf_counter(), time.process_time()
        model(prompt, logits_to_keep=1)
        prefill_s = time.perf_counter() - start
        start = time.perf_counter()
        model.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        generate_s = time.perf_counter() - start
        per_token_s = (generate_s - prefill_s) / (new_tokens - 1)
        # the share of its threads' time the process had: below 1 when other work shares the CPU
        cpu_share = (time.process_time() - cpu_start) / ((prefill_s + generate_s) * torch.get_num_threads())
    return {
        "cpu_share": cpu_share,
        "parameters": sum(p.numel() for p in model.parameters()),
        "build_s": build_s,
        "prompt_tokens": estimate.prompt_tokens,
        "prefill_s": prefill_s,
        "per_token_s": per_token_s,
        "measured_typical_s": prefill_s + prompt_assistant.TYPICAL_NEW_TOKENS * per_token_s,
        "measured_longest_s": prefill_s + prompt_assistant.MAX_NEW_TOKENS * per_token_s,
        "estimate_typical_s": estimate.typical_s,
        "estimate_longest_s": estimate.longest_s,
        "cpu_gflops": estimate.gflops,
        "cpu_gbytes_per_s": estimate.gbytes_per_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-size", action="store_true")
    parser.add_argument("--new-tokens", type=int, default=12)
    args = parser.parse_args()
    results = {"threads": torch.get_num_threads(), "tiny": tiny_figures()}
    tiny = results["tiny"]
    print(f"tiny Qwen3.5, {results['threads']} threads: load {tiny['load_s']:.2f} s")
    for preset, row in tiny["expansions"].items():
        rate = row["tokens_per_s"]
        print(f"  {preset:<10} {row['seconds']:6.2f} s  {row['new_tokens']} tokens  {rate:.1f}/s")
    if args.full_size:
        full = results["full_size"] = full_size_figures(args.new_tokens)
        print(
            f"Qwen3.5-2B size ({full['parameters'] / 1e9:.2f} B, float32, built in {full['build_s']:.0f} s): "
            f"prefill of {full['prompt_tokens']} tokens {full['prefill_s']:.1f} s, "
            f"{full['per_token_s']:.2f} s per new token (the process had {full['cpu_share']:.0%} of its "
            "threads' time)"
        )
        print(
            f"  Music expansion, measured: {full['measured_typical_s']:.0f} s typical, "
            f"{full['measured_longest_s']:.0f} s longest; "
            f"cpu_estimate(): {full['estimate_typical_s']:.0f} s, "
            f"{full['estimate_longest_s']:.0f} s (CPU measured at {full['cpu_gflops']:.0f} GFLOP/s, "
            f"{full['cpu_gbytes_per_s']:.0f} GB/s)"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_prompt_assistant.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
