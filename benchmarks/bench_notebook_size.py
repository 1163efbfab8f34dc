"""Saved notebook size: 20 results of 30 s as the form writes them, plus one library page.

    .venv/bin/python benchmarks/bench_notebook_size.py [--results 20 --seconds 30]

Builds an .ipynb with nbformat: the form's cell holds the widget reference and one ``text/html``
output with every result (``render.result_html`` around ``render.clip_html`` of music-like
synthetic stereo audio, a different seed each), as :class:`sa3lab.forms.shell.FormShell` writes it;
a second cell holds the first page of the results library over the same runs saved as WAV +
sidecar. Prints the bytes per result, per output and of the saved file, against Colab's display
budget (:data:`sa3lab.library.DISPLAY_BUDGET_BYTES`); exits 1 when the notebook is over it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import soundfile as sf
import torch

from sa3lab import library, quality, render

SAMPLE_RATE = 44100


def music_like(seconds: float, seed: int) -> torch.Tensor:
    """(2, samples): a chord with a slow swell, a pulse and a little noise (a realistic preview load)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    root = 110 * 2 ** (int(torch.randint(0, 12, (1,), generator=g)) / 12)
    chord = sum(torch.sin(2 * math.pi * root * ratio * t) for ratio in (1, 1.25, 1.5, 2))
    swell = 0.6 + 0.4 * torch.sin(2 * math.pi * 0.1 * t)
    pulse = (torch.sin(2 * math.pi * 2 * t) > 0.95).float() * torch.sin(2 * math.pi * 60 * t)
    mono = 0.12 * chord * swell + 0.3 * pulse
    return torch.stack([mono, mono.roll(200)]) + 0.02 * torch.randn(2, t.numel(), generator=g)


def result_block(audio: torch.Tensor, index: int, saved: str) -> str:
    clip = render.clip_html(audio, SAMPLE_RATE, quality=quality.assess(audio, SAMPLE_RATE), saved=saved)
    rows = {"model": "small-music", "seed": index, "settings": "text-to-audio · 8 steps · CFG 1 · 30 s"}
    return render.result_html(f"<b>#{index}</b> small-music · text-to-audio · seed {index}", [clip], rows)


def save_run(folder: Path, audio: torch.Tensor, index: int) -> str:
    stem = f"20260101T0000{index:02d}Z-small-music-{index}"
    wav = folder / f"{stem}.wav"
    sf.write(wav, audio.T.numpy(), SAMPLE_RATE, subtype="FLOAT")
    meta = {
        "model_key": "small-music",
        "seed": index,
        "settings": {"prompt": f"test {index}", "duration": 30},
    }
    (folder / f"{stem}.json").write_text(json.dumps({**meta, "paths": [str(wav)]}))
    return str(wav)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "outputs"
        folder.mkdir()
        blocks, start = [], time.perf_counter()
        for index in range(1, args.results + 1):
            audio = music_like(args.seconds, index).clamp(-1, 1)
            blocks.insert(0, result_block(audio, index, save_run(folder, audio, index)))
        render_s = time.perf_counter() - start
        lib = library.Library(folder)
        page = lib.page_html(lib.scan(), 0)

        widget = {"version_major": 2, "version_minor": 0, "model_id": "0" * 32}
        form_cell = nbformat.v4.new_code_cell(
            "form = sa3lab.generation_form()\nform.display()",
            outputs=[
                nbformat.v4.new_output(
                    "display_data",
                    {"application/vnd.jupyter.widget-view+json": widget, "text/plain": "Generation form"},
                ),
                nbformat.v4.new_output("display_data", {"text/html": "".join(blocks)}),
            ],
        )
        library_cell = nbformat.v4.new_code_cell(
            "sa3lab.library_form(OUTPUT_DIR, form=form).display()",
            outputs=[nbformat.v4.new_output("display_data", {"text/html": page})],
        )
        notebook = nbformat.v4.new_notebook(cells=[form_cell, library_cell])
        path = Path(tmp) / "twenty_results.ipynb"
        nbformat.write(notebook, path)
        saved = path.stat().st_size

    sizes = [len(block.encode()) for block in blocks]
    budget = library.DISPLAY_BUDGET_BYTES
    print(f"{args.results} results of {args.seconds:g} s, rendered in {render_s:.1f} s")
    print(
        f"one result block: {min(sizes) / 1e3:.0f}-{max(sizes) / 1e3:.0f} kB "
        f"(share per result {library.RESULT_SHARE_BYTES / 1e3:.0f} kB; MP3 preview budget "
        f"{render.PREVIEW_BYTES / 1e3:.0f} kB before base64)"
    )
    print(f"form results output: {sum(sizes) / 1e6:.2f} MB")
    print(
        f"library page ({library.PAGE_RUNS} runs): {len(page.encode()) / 1e6:.2f} MB "
        f"(bound {library.PAGE_BYTES / 1e6:.1f} MB of players)"
    )
    print(
        f"saved notebook: {saved / 1e6:.2f} MB (budget {budget / 1e6:.0f} MB): "
        f"{'under' if saved < budget else 'OVER'}"
    )
    sys.exit(0 if saved < budget else 1)


if __name__ == "__main__":
    main()
