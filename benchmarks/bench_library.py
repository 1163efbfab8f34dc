"""How long the results library takes to answer a click, in the kernel (the page's part is not timed).

    .venv/bin/python benchmarks/bench_library.py --runs 24 --duration 10 --repeats 3

Fills a folder with demo runs of ``--duration`` seconds (the player and spectrogram of a run cost
with its length), then, through the library form's own button paths (``LibraryForm._do``, what a
click runs): the first display, a turn to the next older page (drawn ahead after the page before it
showed), a turn to a page not drawn yet (a click that comes before the drawing ahead), a turn back
to a page seen before, Refresh, and "Load into the form". What a page schedules after its request
(:func:`sa3lab.forms.kernel.after_this_request`, drawing the next older page ahead) is held back as
the kernel's event loop would and timed on its own. Prints the minimum and the maximum over the
repeats of each, and the time until the form says it is working (the message line is set before the
work). Writes benchmarks/results/library.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import sa3lab
    from sa3lab.generation import GenerationRequest
    from sa3lab.lab import Lab

    folder = Path(tempfile.mkdtemp(prefix="bench-library-"))
    lab = Lab()
    for seed in range(args.runs):
        lab.generate(
            GenerationRequest(
                model="demo",
                prompt=f"run {seed}",
                duration=args.duration,
                steps=2,
                seed=seed,
                output_dir=str(folder),
            )
        )
    from sa3lab.forms import kernel

    later: list = []  # what a click schedules after its request, as the kernel's event loop holds it
    kernel.after_this_request = later.append

    def after_the_click() -> None:
        while later:
            later.pop(0)()

    form = sa3lab.generation_form(model="demo", output_dir=str(folder))
    figures: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        library = sa3lab.library_form(str(folder), form=form)
        said_at: list[float] = []
        start = [0.0]

        def said(change, _said_at=said_at, _start=start):
            if "…" in change.new:
                _said_at.append(time.perf_counter() - _start[0])

        library.message.observe(said, "value")

        def click(action, working, _library=library, _start=start):
            _start[0] = time.perf_counter()
            _library._do(action, working)

        steps = {
            "first display (page 1)": lambda lib=library: lib.refresh(),
            "drawing the next page ahead": after_the_click,
            "turn to the next page (drawn)": lambda lib=library: click(
                lambda: lib._turn(1), "Turning the page"
            ),
            "turn to a page not drawn yet": lambda lib=library: click(
                lambda: lib._turn(1), "Turning the page"
            ),
            "turn back to a seen page": lambda lib=library: click(lambda: lib._turn(-1), "Turning the page"),
            "refresh": lambda lib=library: click(lib._refresh_said, "Reading the output folder"),
            "load into the form": lambda lib=library: click(
                lib.load, "Loading the run's settings into the form"
            ),
        }
        for name, step in steps.items():
            figures.setdefault(name, []).append(timed(step))
            if name == "turn to the next page (drawn)":
                later.clear()  # the next click comes before any drawing ahead
            elif name != "first display (page 1)":  # the drawing ahead that follows it is timed next
                after_the_click()
        figures.setdefault("until it says it is working", []).extend(said_at)
    print(f"{args.runs} demo runs of {args.duration:g} s, {args.repeats} repeats (seconds, in the kernel):")
    for name, values in figures.items():
        print(f"  {name:32s} min {min(values):6.3f}  max {max(values):6.3f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "library.json"
    out.write_text(json.dumps({"runs": args.runs, "duration": args.duration, "seconds": figures}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
