"""Soak: many demo generations through the generation form in one process, and where memory goes.

    .venv/bin/python benchmarks/bench_soak.py --runs 200 --every 20

Runs the notebook form's own path (``form.run()``, what the button does) with the offline ``demo``
model, 1 s of audio and 2 steps, and prints the process RSS every ``--every`` runs, the growth after
the first 10 runs (the warm-up: model load, first allocations), and what the form holds: the result
HTML it keeps for the notebook (bounded by ``RESULTS_BUDGET``) and how many results left the view.
Writes benchmarks/results/bench_soak.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import psutil

import sa3lab
from sa3lab.forms import shell

RESULTS = Path(__file__).parent / "results"


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--every", type=int, default=20)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        form = sa3lab.generation_form(
            model="demo", prompt="a soak test", duration=1.0, seed=-1, output_dir=tmp
        )
        form.steps.value = 2
        start = time.perf_counter()
        for run in range(1, args.runs + 1):
            if form.run() is None:
                raise SystemExit(f"run {run} failed: {form.shell.message.value}")
            if run == 10 or run % args.every == 0:
                rows.append(
                    {
                        "run": run,
                        "rss_mib": rss_mib(),
                        "kept_results": len(form.shell.results),
                        "kept_html_mib": sum(map(len, form.shell.results)) / 2**20,
                        "dropped": form.shell.dropped,
                        "seconds": time.perf_counter() - start,
                    }
                )
                row = rows[-1]
                print(
                    f"run {run:4d}  RSS {row['rss_mib']:8.1f} MiB  results kept {row['kept_results']:3d} "
                    f"({row['kept_html_mib']:.1f} MiB of HTML)  left the view {row['dropped']:3d}"
                )
    warm = next(r for r in rows if r["run"] == 10)["rss_mib"]
    growth = (rows[-1]["rss_mib"] - warm) / warm
    print(
        f"growth after the first 10 runs: {100 * growth:.2f} % (budget of kept result HTML: "
        f"{shell.RESULTS_BUDGET / 2**20:.1f} MiB)"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_soak.json"
    out.write_text(json.dumps({"rows": rows, "growth_after_10": growth}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
