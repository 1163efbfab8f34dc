"""The sweep form: prompts x seeds x a grid of steps / CFG, on this kernel or on Ray; a gallery of results."""

from __future__ import annotations

import html
import time
from pathlib import Path

import ipywidgets as widgets

from .. import catalog, defaults, peaks, render, sweeps
from ..audio_input import read_audio
from ..sweep_plan import BACKENDS, SweepRequest
from ..sweeps import SweepResult
from . import parts
from .session import Session, shared_session
from .shell import NotebookForm, StopRequested

MODELS = ("demo", *catalog.keys("standard", "base"))
GALLERY_ITEMS = 48  # items shown with a player; the rest are listed by file
PREVIEW_BYTES = 60_000  # per gallery clip: a small player preview (the WAV keeps full quality)
SPECTROGRAM_SIZE = (4, 1.4)
RANDOM_WORD = "random"
STOPPED_TEXT = (
    "Stopped: {saved} of {total} items are saved in {folder}; run the sweep again to make the others."
)


def stopped_text(saved: int, total: int, folder) -> str:
    """What a stopped sweep says: how many of its items are saved, and where."""
    return STOPPED_TEXT.format(saved=saved, total=total, folder=folder)


class SweepForm(NotebookForm):
    """Widgets -> :class:`SweepRequest` -> ``Lab.sweep`` -> progress table and gallery (notebook 05).

    ``prompts``: a list of prompts, or the path of a .txt / .csv file of them. ``seeds``: a list, or a
    number N of random seeds. ``steps`` / ``cfg_scale``: one value or a list (the grid; empty: the
    model's default).
    """

    def __init__(
        self,
        model: str = "small-music",
        prompts: list | str = (),
        seeds: list[int] | int = (0,),
        backend: str = "local",
        output_dir: str = defaults.SWEEP_OUTPUT_DIR,
        *,
        duration: float = defaults.DURATION,
        steps=(),
        cfg_scale=(),
        address: str = "",
        workers: int = 0,
        session: Session | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"The backend must be one of {', '.join(BACKENDS)}; got {backend!r}.")
        self.session = session or shared_session()
        self._started: SweepRequest | None = None  # the request of the run under way (its folder counts)
        self.picker = parts.ModelPicker(MODELS, model)
        from_file = isinstance(prompts, (str, Path))
        self.prompts = widgets.Textarea(
            value="" if from_file else "\n".join(map(str, prompts)),
            description="Prompts",
            placeholder="one prompt per line",
            style=parts.STYLE,
            layout={**parts.WIDE, "height": "96px"},
        )
        self.prompt_file = parts.text_field(
            str(prompts) if from_file else "",
            "or prompts file",
            ".txt (one per line) or .csv (prompt, duration, negative_prompt, seed)",
        )
        seed_text = f"{RANDOM_WORD} {seeds}" if isinstance(seeds, int) else ", ".join(map(str, seeds))
        self.seeds = parts.text_field(seed_text, "Seeds", "42, 7, 9   or   random 8")
        self.duration = widgets.FloatText(
            value=duration, description="Duration (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.negative = parts.text_field("", "Negative prompt", "for every prompt (needs CFG > 1)")
        self.steps = parts.text_field(_listed(steps), "Steps", "empty: the model's; 8, 16 sweeps both")
        self.cfg = parts.text_field(_listed(cfg_scale), "CFG scale", "empty: the model's; 1, 3 sweeps both")
        self.backend = widgets.ToggleButtons(options=BACKENDS, value=backend, description="Backend")
        self.address = parts.text_field(address, "Ray address", "empty: a local Ray on this machine")
        self.workers = widgets.IntText(
            value=workers, description="Ray workers", style=parts.STYLE, layout={"width": "260px"}
        )
        self.workers_note = widgets.HTML()
        self.output = parts.text_field(output_dir, "Output folder")
        self.summary = widgets.HTML()
        self.live = widgets.HTML()
        for field in (self.prompts, self.prompt_file, self.seeds, self.steps, self.cfg, self.output):
            field.continuous_update = False
            field.observe(self._update_summary, "value")
        for field in (self.duration, self.backend):
            field.observe(self._update_summary, "value")
        self.workers.observe(self._show_ray_fields, "value")
        self.picker.observe(self._update_summary)
        self.backend.observe(self._show_ray_fields, "value")
        self._show_ray_fields()
        self._update_summary()
        inputs = widgets.VBox(
            [
                self.picker.widget,
                self.prompts,
                self.prompt_file,
                self.seeds,
                widgets.HBox([self.duration]),
                self.negative,
                self.steps,
                self.cfg,
                self.backend,
                self.address,
                widgets.HBox([self.workers, self.workers_note]),
                self.output,
                self.summary,
                self.live,
            ]
        )
        self._make_shell(inputs, "Run sweep", "Sweep form", output_dir)
        self.widget = self.shell.widget

    # ------------------------------------------------------------------ reactions

    def _show_ray_fields(self, change=None) -> None:
        hidden = None if self.backend.value == "ray" else "none"
        self.address.layout.display = self.workers.layout.display = hidden
        self.workers_note.layout.display = hidden
        self.workers_note.value = f"<small>{html.escape(workers_text(self.workers.value))}</small>"

    def _update_summary(self, change=None) -> None:
        """The item count and estimate, or each problem in its own line, before anything runs."""
        try:
            request = self.request()
            problems = request.problems()
        except ValueError as exc:
            problems = [str(exc)]
        if problems:
            self.summary.value = "".join(render.message_html(p, "warning") for p in problems)
        else:
            sentence = request.estimate(self.session.lab.machine, self._loaded_models()).sentence()
            self.summary.value = render.message_html(sentence, "info")

    def _loaded_models(self) -> set[str]:
        """The models in the kernel's cache (the cache's keys start with the model's name or folder)."""
        return {key.split("|")[0] for key in self.session.lab.core.cache.keys()}

    # ------------------------------------------------------------------ shell callbacks

    def request(self) -> SweepRequest:
        """The sweep the widgets describe (unchecked)."""
        steps = [
            int(x) if x == int(x) else x for x in parts.parse_numbers(self.steps.value, "steps", "8, 16")
        ]
        cfgs = parts.parse_numbers(self.cfg.value, "CFG scales", "1, 3")
        grid = {key: values for key, values in (("steps", steps), ("cfg_scale", cfgs)) if len(values) > 1}
        file = self.prompt_file.value.strip()
        return SweepRequest(
            model=self.picker.value,
            prompts=file or [line.strip() for line in self.prompts.value.splitlines() if line.strip()],
            seeds=_seeds(self.seeds.value),
            grid=grid,
            duration=float(self.duration.value),
            negative_prompt=self.negative.value.strip(),
            steps=steps[0] if len(steps) == 1 else None,
            cfg_scale=cfgs[0] if len(cfgs) == 1 else None,
            output_dir=self.output.value.strip(),
            backend=self.backend.value,
            address=self.address.value.strip() or None,
            workers=self.workers.value or None,
        )

    def read(self) -> SweepRequest:
        self._started = None
        self._update_summary()  # a prompts file edited on disk since is read again
        return self.request()  # checked once, when the sweep starts

    def stopped_text(self) -> str:
        """After Stop or an interrupt that ends the run outright (before its first count, or while the
        gallery is drawn): how many of the sweep's items its folder holds, as the manifest says."""
        request = self._started
        if request is None:
            return super().stopped_text()
        result = sweeps.collect(request, sweeps.SweepProgress(total=len(request.items())), 0.0, stopped=True)
        saved = sum(1 for record in result.records if record.get("status") == "done")
        if not saved:
            return super().stopped_text()
        return stopped_text(saved, result.progress.total, result.output_dir)

    def execute(self, request: SweepRequest, progress) -> SweepResult:
        """The sweep's result; after Stop (or an interrupt) the result of the items finished so far."""
        self._started = request
        seen = []

        def show(counts) -> None:
            seen[:] = [counts]
            self.live.value = render.table_html(counts.rows())

        start = time.perf_counter()
        try:
            return self.session.lab.sweep(request, self.session.token, progress, on_update=show)
        except (StopRequested, KeyboardInterrupt):
            if not seen:
                raise
            counts = seen[0]
            counts.running, counts.stopped = 0, True
            self.live.value = render.table_html(counts.rows())
            return sweeps.collect(request, counts, time.perf_counter() - start, stopped=True)

    def render(self, result: SweepResult) -> str:
        rows = {
            **result.progress.rows(),
            "backend": result.backend,
            "seconds": round(result.seconds, 2),
            "folder": result.output_dir,
            "manifest": result.manifest,
        }
        failures = [
            render.message_html(f"“{r['prompt']}”, seed {r['seed']}: {r.get('error')}", "error")
            for r in result.failed()
        ]
        header = f"<b>Sweep</b> · {len(result.records)} items · {html.escape(result.backend)}"
        if result.stopped:
            saved = sum(1 for record in result.records if record.get("status") == "done")
            text = stopped_text(saved, result.progress.total, result.output_dir)
            failures.insert(0, render.message_html(text, "info"))
        return (
            "<div class='sa3lab-result sa3lab-sweep' style='border:1px solid #ddd;padding:6px;margin:6px 0'>"
            f"<div>{header}</div>{render.table_html(rows)}{''.join(failures)}"
            f"{gallery_html(result)}</div>"
        )


def workers_text(workers: int) -> str:
    """What the Ray workers field means: the actors the sweep starts at Run."""
    if workers and workers > 0:
        return f"Ray starts {workers} worker(s) at Run, each with its own copy of the model."
    return (
        "0: Ray starts one worker per GPU at Run (2 on a machine without GPUs), each with its own copy "
        "of the model."
    )


def gallery_html(result: SweepResult) -> str:
    """The finished items grouped by prompt: a small player and spectrogram each (the first items)."""
    done = [r for r in result.records if r.get("status") == "done"]
    by_prompt: dict[str, list[dict]] = {}
    for record in done:
        by_prompt.setdefault(record["prompt"], []).append(record)
    shown, blocks = 0, []
    for prompt, records in by_prompt.items():
        clips = []
        for record in records:
            path = Path(result.output_dir) / record["file"]
            if shown >= GALLERY_ITEMS:
                clips.append(f"<div><small><code>{html.escape(path.name)}</code></small></div>")
                continue
            shown += 1
            clips.append(_clip(path, record))
        blocks.append(
            f"<div class='sa3lab-sweep-prompt'><b>“{html.escape(prompt)}”</b>"
            f"<div style='display:flex;flex-flow:row wrap'>{''.join(clips)}</div></div>"
        )
    return "".join(blocks)


def _clip(path: Path, record: dict) -> str:
    settings = record["settings"]
    label = (
        f"{settings['model']} · seed {record['seed']} · {settings['steps']} steps · "
        f"CFG {settings['cfg_scale']:g}"
    )
    try:
        rate, audio = read_audio(path, what="sweep result")
        image = render.spectrogram_jpeg(audio, rate, size=SPECTROGRAM_SIZE)
        ceiling = settings.get("peak_ceiling_dbfs")  # the sweep's own peak ceiling, when it set one
        ceiling = None if ceiling is None else peaks.checked_ceiling(ceiling)
        player = render.audio_html(audio, rate, budget=PREVIEW_BYTES, ceiling_dbfs=ceiling)
    except Exception as exc:  # noqa: BLE001 - the reader's sentence, or one for a clip not drawn
        text = str(exc) if isinstance(exc, ValueError) else parts.unshown_text(path, exc)
        return (
            "<div class='sa3lab-clip' style='flex:0 1 300px;margin:0 8px 8px 0'>"
            f"<small>{html.escape(label)}</small>{render.message_html(text, 'warning')}</div>"
        )
    return (
        "<div class='sa3lab-clip' style='flex:0 1 300px;margin:0 8px 8px 0'>"
        f"<small>{html.escape(label)}</small>"
        f"{player}"
        f"{render.image_html(image, 'image/jpeg', 'spectrogram')}"
        f"<div><small><code>{html.escape(path.name)}</code></small></div></div>"
    )


def _listed(value) -> str:
    values = value if isinstance(value, (list, tuple)) else [value]
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _seeds(text: str) -> list[int] | int:
    """``"42, 7"`` -> [42, 7]; ``"random 8"`` -> 8 (random seeds, drawn by the sweep)."""
    words = text.split()
    if words[:1] == [RANDOM_WORD]:
        if len(words) != 2 or not words[1].isdigit():
            raise ValueError(f"Write random seeds as '{RANDOM_WORD} N', e.g. '{RANDOM_WORD} 8'.")
        return int(words[1])
    values = parts.parse_numbers(text, "seeds", "42, 7")
    if not values or any(v != int(v) or v < 0 for v in values):
        raise ValueError("Seeds must be whole numbers of 0 or more, e.g. 42, 7 (or 'random 8').")
    return [int(v) for v in values]


sweep_form = SweepForm  # the notebook's name (05)
