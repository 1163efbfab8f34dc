"""The LoRA training form (notebook 04): base model, dataset with a caption editor, adapter settings.

While it trains, a live panel (a cell output with a display id, updated in place) shows the step,
the loss curve, elapsed and remaining time, memory and, every N steps, a preview made with the
adapter as it is (player + spectrogram). Stop ends the run after the current step and saves a file
that resumes. The result holds the LoRA file and its training card; "Try it" opens the file in a
generation form.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from pathlib import Path

import ipywidgets as widgets
from IPython.display import HTML, display

from .. import defaults, render
from ..audio_input import audio_info, read_audio
from ..generation import GenerationRequest
from ..render import message_html
from ..training import (
    ADAPTER_TYPES,
    AUDIO_EXTENSIONS,
    BASE_KEYS,
    TrainingRequest,
    TrainingResult,
    TrainingStopped,
    dataset_files,
    estimate,
    remaining_text,
    time_text,
)
from . import compat, parts
from .generation import GenerationForm
from .session import Session, shared_session
from .shell import NotebookForm, StopRequested

KEEP = "keep"  # the precision option that keeps the loaded dtype (a Dropdown shows None as no choice)
PRECISION_OPTIONS = [("keep (as loaded)", KEEP), ("bf16", "bf16"), ("fp16", "fp16"), ("fp32", "fp32")]
UPLOADS = "uploads"  # uploaded datasets go to <output folder>/uploads/dataset-<id>
LIVE_EVERY_S = 0.5  # the live panel is redrawn at most this often (and after the last step)
SHOWN_PREVIEWS = 3  # newest previews in the live panel and the result
SHOWN_CLIPS = 16  # clips listed in the caption editor
EDITOR_SECONDS, EDITOR_BYTES = 8, 40_000  # each editor player: the first 8 s at 40 kbit/s (widget state)
EDITOR_HELP = (
    "<small>Each clip needs a caption: a .txt file of the same name, describing it as you would prompt "
    "for it. Edit them here and press <b>Save captions</b>.</small>"
)
HELP = (
    "<small>Start trains the adapter on the base model; Stop ends after the current step and saves a "
    "file that resumes (it fills <b>Resume from</b>). Less memory: a lower batch size or clip length, "
    "base precision bf16, an -xs adapter type.</small>"
)


class _StopAfterStep:
    """The shell's progress, with Stop turned into "stop after this step" for the trainer."""

    def __init__(self, progress):
        self.progress = progress

    def stage(self, text: str) -> None:
        self.progress.stage(text)

    def start(self, total: int, text: str) -> None:
        self.progress.start(total, text)

    def step(self, done: int, total: int, text: str | None = None) -> None:
        try:
            self.progress.step(done, total, text)
        except StopRequested:
            raise TrainingStopped from None


class CaptionEditor:
    """Each clip of a dataset folder with a player and its caption in a text box; saves the .txt files."""

    def __init__(self):
        self.rows = widgets.VBox()
        self.note = widgets.HTML()
        self.save_button = widgets.Button(description="Save captions", icon="save")
        self.save_button.on_click(lambda _: self.save())
        self.boxes: dict[Path, widgets.Textarea] = {}
        self.widget = widgets.VBox([widgets.HTML(EDITOR_HELP), self.rows, self.save_button, self.note])

    def show(self, folder: Path) -> None:
        """The clips of ``folder`` (the first :data:`SHOWN_CLIPS`) with their captions, or empty boxes."""
        clips = dataset_files(folder, AUDIO_EXTENSIONS)  # the clips training reads, in its order
        self.boxes, rows = {}, []
        for clip in clips[:SHOWN_CLIPS]:
            caption = clip.with_suffix(".txt")
            box = widgets.Textarea(
                value=caption.read_text(encoding="utf-8").strip() if caption.is_file() else "",
                placeholder="no caption yet: describe this clip",
                layout={"width": "420px", "max_width": "100%", "height": "48px"},
            )
            self.boxes[clip] = box
            rows.append(widgets.HBox([widgets.HTML(self._player(clip, folder)), box], layout=parts.ROW))
        self.rows.children = rows
        more = f" (the first {SHOWN_CLIPS} shown)" if len(clips) > SHOWN_CLIPS else ""
        missing = sum(1 for box in self.boxes.values() if not box.value.strip())
        self.note.value = (
            f"<small>{len(clips)} clip(s){more}; {missing} without a caption.</small>" if clips else ""
        )

    @staticmethod
    def _player(clip: Path, folder: Path) -> str:
        """The clip's name and a player of its first seconds, or why it cannot be used (one sentence)."""
        name = f"<small><code>{html.escape(str(clip.relative_to(folder)))}</code></small>"
        try:
            audio_info(clip, "training clip")
            rate, audio = read_audio(clip, what="training clip", max_seconds=EDITOR_SECONDS)
            player = render.audio_html(audio, rate, budget=EDITOR_BYTES)
        except ValueError as exc:
            return f"<div style='width:260px'>{name}<br><small>{html.escape(str(exc))}</small></div>"
        except Exception as exc:  # noqa: BLE001 - the editor never raises into the kernel
            text = html.escape(parts.unshown_text(clip, exc))
            return f"<div style='width:260px'>{name}<br><small>{text}</small></div>"
        return f"<div style='width:260px'>{name}{player}</div>"

    def save(self) -> int:
        """Write each non-empty caption to its clip's .txt file; returns how many were written."""
        written = 0
        for clip, box in self.boxes.items():
            text = box.value.strip()
            if text:
                clip.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
                written += 1
        self.note.value = f"<small>Saved {written} caption(s).</small>"
        return written


class TrainingForm(NotebookForm):
    """Widgets -> :class:`TrainingRequest` -> ``Lab.train`` -> the LoRA file, its card and a "Try it" button.

    ``model`` is a base catalog key or a local base-model folder; ``data_dir`` a folder of clips with
    same-named .txt captions (or pre-encoded latents).
    """

    def __init__(
        self,
        model: str | None = "small-music-base",
        data_dir: str = "",
        steps: int = 1000,
        output_dir: str = defaults.OUTPUT_DIR,
        *,
        name: str = "my-lora",
        learning_rate: float = 1e-4,
        rank: int = 16,
        duration: float = 30.0,
        preview_prompt: str = "",
        preview_every: int = 0,
        seed: int = 42,
        session: Session | None = None,
    ):
        self.session = session or shared_session()
        self.output_dir = output_dir
        self.picker = parts.ModelPicker(BASE_KEYS, model)
        self.data_dir = parts.text_field(
            data_dir, "Dataset folder", "clips with same-named .txt captions", continuous_update=False
        )
        self.upload = widgets.FileUpload(
            accept=",".join((*AUDIO_EXTENSIONS, ".txt")), multiple=True, description="Upload clips"
        )
        self.upload.observe(self._uploaded, "value")
        self.editor = CaptionEditor()
        self.show_clips = widgets.Button(description="Show clips", icon="list")
        self.show_clips.on_click(lambda _: self._show_clips())
        self.adapter_type = widgets.Dropdown(
            options=ADAPTER_TYPES, value="dora-rows", description="Adapter type", style=parts.STYLE
        )
        self.rank = _int_box(rank, "Rank")
        self.alpha = parts.text_field("", "Alpha", "empty: the rank", wide=False)
        self.include = parts.text_field("", "Include", "e.g. transformer.layers.[0-7]. (empty: all layers)")
        self.exclude = parts.text_field("", "Exclude", "e.g. cross_attn")
        self.steps = _int_box(steps, "Steps")
        self.learning_rate = widgets.FloatText(
            value=learning_rate, description="Learning rate", style=parts.STYLE, layout={"width": "260px"}
        )
        self.batch = _int_box(1, "Batch size")
        self.duration = widgets.FloatText(
            value=duration, description="Clip length (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.precision = widgets.Dropdown(
            options=PRECISION_OPTIONS, value=KEEP, description="Base precision", style=parts.STYLE
        )
        self.seed = _int_box(seed, "Seed")
        self.name = parts.text_field(
            name, "Name", "the file is <output folder>/<name>.safetensors", wide=False
        )
        self.resume = parts.text_field("", "Resume from", "a LoRA .safetensors to continue (optional)")
        self.preview_prompt = parts.text_field(preview_prompt, "Preview prompt", "empty: the first caption")
        self.preview_every = _int_box(preview_every, "Preview every")
        self.preview_duration = widgets.FloatText(
            value=5.0, description="Preview length (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.preview_steps = _int_box(50, "Preview steps")
        self.estimate_note = widgets.HTML()  # before Start: about how long the run takes here
        for field in (
            self.steps,
            self.batch,
            self.duration,
            self.preview_every,
            self.preview_duration,
            self.preview_steps,
            self.resume,
        ):
            field.observe(self._update_estimate, "value")
        self.picker.observe(self._update_estimate)
        self.live_html = ""  # the live panel: an output below the form, rewritten in place (display id)
        self.try_button = widgets.Button(description="Try it", icon="play", disabled=True)
        self.try_button.tooltip = "Open the newest LoRA file in a generation form"
        self.try_button.on_click(lambda _: self._open_try_form())
        self.try_box = widgets.VBox()  # the try-it form, its results inside it (no cell of its own)
        self.try_form: GenerationForm | None = None
        self._live_handle = None
        self.live_panel: _LivePanel | None = None  # the latest run's
        self._count = 0
        self._make_shell(self._inputs(), "Start training", "LoRA training form", output_dir)
        self._update_estimate()
        self.widget = widgets.VBox([self.shell.widget, self.try_button, self.try_box])

    def _inputs(self) -> widgets.Widget:
        dataset = widgets.HBox([self.data_dir, self.upload], layout=parts.ROW)
        data = widgets.VBox([dataset, self.show_clips, self.editor.widget])
        adapter = widgets.VBox(
            [
                widgets.HBox([self.adapter_type, self.rank, self.alpha], layout=parts.ROW),
                self.include,
                self.exclude,
            ]
        )
        run = widgets.HBox(
            [
                widgets.VBox([self.steps, self.learning_rate, self.batch, self.duration]),
                widgets.VBox(
                    [self.precision, self.seed, self.preview_every, self.preview_duration, self.preview_steps]
                ),
            ],
            layout=parts.ROW,
        )
        files = widgets.VBox([self.name, self.resume, self.preview_prompt])
        return widgets.VBox(
            [self.picker.widget, data, adapter, run, files, self.estimate_note, widgets.HTML(HELP)]
        )

    # ------------------------------------------------------------------ showing

    def display(self) -> None:
        """The form, its results and the live training panel (an output updated in place)."""
        super().display()
        self._live_handle = display(HTML(self.live_html), display_id=True)

    def _set_live(self, block: str) -> None:
        self.live_html = block
        if self._live_handle is not None:
            self._live_handle.update(HTML(block))

    def _update_estimate(self, change=None) -> None:
        """About how long the run takes on this machine, by part (empty while a value cannot be used)."""
        values = {
            "model": self.picker.value or "",
            "steps": self.steps.value,
            "batch_size": self.batch.value,
            "duration": self.duration.value,
            "resume_from": self.resume.value.strip(),
            "preview_every": self.preview_every.value,
            "preview_duration": self.preview_duration.value,
            "preview_steps": self.preview_steps.value,
        }
        try:
            lab = self.session.lab
            loaded = {key.split("|")[0] for key in lab.core.cache.keys()}
            parts_s = estimate(lab.machine, loaded, **values)
        except (ValueError, TypeError):
            self.estimate_note.value = ""
            return
        self.estimate_note.value = f"<small>{html.escape(estimate_text(parts_s, lab.machine))}</small>"

    # ------------------------------------------------------------------ dataset

    def _uploaded(self, change) -> None:
        """Uploaded clips and captions go into one new folder (names kept, so captions pair with clips)."""
        files = compat.uploaded_files(change["new"])
        if not files:
            return
        current = self.data_dir.value.strip()
        uploads = Path(self.output_dir).expanduser() / UPLOADS
        folder = Path(current) if current and Path(current).parent == uploads else None
        if folder is None or not folder.is_dir():
            folder = uploads / f"dataset-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(name)).name) or "clip"
            (folder / safe).write_bytes(data)
        compat.clear_upload(self.upload)
        self.data_dir.value = str(folder)
        self._show_clips()
        self.editor.note.value += (
            f"<br><small>{len(files)} uploaded file(s) saved in {html.escape(str(folder))}.</small>"
        )

    def _show_clips(self) -> None:
        folder = Path(self.data_dir.value.strip()).expanduser()
        if not self.data_dir.value.strip() or not folder.is_dir():
            self.editor.rows.children = []
            self.editor.note.value = message_html(
                "Type a dataset folder that exists, or upload clips.", "info"
            )
            return
        self.editor.show(folder)

    # ------------------------------------------------------------------ shell callbacks

    def read(self) -> TrainingRequest:
        """The request the widgets describe, checked (ValueError with one sentence otherwise)."""
        alpha = parts.parse_numbers(self.alpha.value, "alpha", "16")
        if len(alpha) > 1:
            raise ValueError("Give one alpha (or leave it empty for the rank).")
        if not self.data_dir.value.strip():
            raise ValueError(
                "Type the dataset folder (clips with same-named .txt captions), or upload clips."
            )
        request = TrainingRequest(
            model=self.picker.value,
            data_dir=self.data_dir.value.strip(),
            name=self.name.value.strip(),
            steps=int(self.steps.value),
            learning_rate=float(self.learning_rate.value),
            batch_size=int(self.batch.value),
            adapter_type=self.adapter_type.value,
            rank=int(self.rank.value),
            alpha=alpha[0] if alpha else None,
            include=self.include.value.strip(),
            exclude=self.exclude.value.strip(),
            base_precision=None if self.precision.value == KEEP else self.precision.value,
            duration=float(self.duration.value),
            seed=int(self.seed.value),
            resume_from=self.resume.value.strip(),
            preview_every=int(self.preview_every.value),
            preview_prompt=self.preview_prompt.value.strip(),
            preview_duration=float(self.preview_duration.value),
            preview_steps=int(self.preview_steps.value),
            output_dir=self.output_dir,
        )
        return request

    def execute(self, request: TrainingRequest, progress) -> TrainingResult:
        live = self.live_panel = _LivePanel(self._set_live)
        try:
            result = self.session.lab.train(
                request,
                pasted_token=self.session.token,
                progress=_StopAfterStep(progress),
                on_step=live.step,
                on_preview=live.preview,
            )
        except BaseException:
            live.draw()  # the last state stays in view beside the message
            raise
        live.finish()  # one line: the result shows the loss curve and the previews
        return result

    def render(self, result: TrainingResult) -> str:
        self._count += 1
        if result.stopped:
            self.resume.value = result.lora_path  # Start again continues from here
        self.try_button.disabled = False
        state = (
            f"stopped at step {result.step} of {result.steps}; the file resumes (Resume from is filled in)"
            if result.stopped
            else f"{result.step} steps"
        )
        header = f"<b>#{self._count}</b> {html.escape(result.model_key)} · LoRA training · {state}"
        plot = render.image_html(render.loss_png(result.losses), "image/png", "loss curve")
        clips = [
            render.clip_html(audio, result.sample_rate, title=f"preview at step {step}")
            for step, audio in result.previews[-SHOWN_PREVIEWS:]
        ]
        config = result.card["settings"]["lora_config"]
        rows = {
            "LoRA file": result.lora_path,
            "training card": f"{result.card_path} · {result.plot_path}",
            "adapter": f"{config['adapter_type']} · rank {config['rank']} · alpha {config['alpha']:g}",
            "dataset": f"{result.clips} clip(s) · sha256 {result.dataset_hash[:16]}…",
            "loss": f"{result.losses[0]:.4f} (step 1) → {result.losses[-1]:.4f} (step {result.step})",
            "time": f"{time_text(result)} · peak memory {_gib(result.peak_memory_bytes)}",
        }
        return render.result_html(header, [f"<div style='flex:1 1 360px'>{plot}</div>", *clips], rows)

    # ------------------------------------------------------------------ try it

    def try_it(self, prompt: str = "", lora_file: str | None = None, **fields) -> GenerationForm:
        """A generation form on the same base model with ``lora_file`` (default: the newest result's).

        ``fields``: more :class:`~sa3lab.generation.GenerationRequest` values (duration, seed, steps, ...).
        """
        result = self.shell.last_result
        lora = lora_file or (result.lora_path if result is not None else None)
        model = result.model_key if result is not None else self.picker.value
        form = GenerationForm(
            collection="base", model=model, output_dir=self.output_dir, session=self.session
        )
        form.fill(
            GenerationRequest(
                model=model,
                prompt=prompt or (result.prompt if result is not None else ""),
                lora_files=[lora] if lora else [],
                output_dir=self.output_dir,
                **fields,
            )
        )
        return form

    def _open_try_form(self) -> None:
        self.try_form = self.try_it(
            prompt=self.preview_prompt.value.strip(),
            duration=float(self.duration.value),
            seed=int(self.seed.value),
        )
        # Shown inside this form's widget: its results go into the form itself, since an output
        # displayed from a button's callback is one that later display updates cannot reach.
        self.try_form.shell.output.inside = True
        self.try_box.children = [self.try_form.widget]


class _LivePanel:
    """Step, loss curve, elapsed / remaining time, memory and the newest previews, redrawn in place.

    Each preview's player and spectrogram are made once, when it arrives; a redraw reuses them.
    """

    def __init__(self, show):
        self.show, self.report, self.previews = show, None, []
        self.losses: list[float] = []
        self.first_step = 1  # the step of the first loss (after a resume, where it goes on)
        self._drawn = 0.0

    def step(self, report) -> None:
        if not self.losses:
            self.first_step = report.step
        self.report = report
        self.losses.append(report.loss)
        if time.perf_counter() - self._drawn >= LIVE_EVERY_S or report.step == report.steps:
            self.draw()

    def preview(self, step: int, audio, sample_rate: int) -> None:
        block = (
            "<div style='flex:1 1 320px;margin-right:8px'>"
            f"<small>preview at step {step}</small>{render.audio_html(audio, sample_rate)}"
            f"{render.image_html(render.spectrogram_jpeg(audio, sample_rate), 'image/jpeg', 'spectrogram')}"
            "</div>"
        )
        self.previews = [*self.previews, block][-SHOWN_PREVIEWS:]
        self.draw()

    def _line(self) -> str:
        r = self.report
        return (
            f"step {r.step}/{r.steps} · loss {r.loss:.4f} · elapsed {remaining_text(r.elapsed)} · "
            f"remaining about {remaining_text(r.remaining)} · memory {_gib(r.memory_bytes)}"
        )

    def finish(self) -> None:
        """After the run: its last line only (the result shows the loss curve and the previews)."""
        if self.report is not None:
            self.show(
                "<div class='sa3lab-training-live'><b>Training ended</b> · "
                f"{html.escape(self._line())} (the loss curve and previews are in the result)</div>"
            )

    def draw(self) -> None:
        self._drawn = time.perf_counter()
        if self.report is None:
            return
        loss = render.loss_png(self.losses, title="loss (this run)", first_step=self.first_step)
        plot = render.image_html(loss, "image/png", "loss")
        self.show(
            "<div class='sa3lab-training-live'>"
            f"<div><b>Training</b> · {html.escape(self._line())}</div>{plot}"
            f"<div style='display:flex;flex-flow:row wrap'>{''.join(self.previews)}</div></div>"
        )


def estimate_text(parts_s: dict[str, float], machine) -> str:
    """ "About 2 min 10 s on this machine (loading 4 s, steps 1 min 30 s, previews 36 s) ..."."""
    shown = [f"{name} {remaining_text(seconds)}" for name, seconds in parts_s.items() if seconds > 0]
    where = "the GPU" if machine.cuda or machine.mps else "this machine's CPU"
    return (
        f"About {remaining_text(sum(parts_s.values()))} on {where} ({', '.join(shown)}): a rough "
        "estimate from the model's size; the live panel shows the measured times."
    )


def _int_box(value: int, description: str) -> widgets.IntText:
    return widgets.IntText(value=value, description=description, style=parts.STYLE, layout={"width": "260px"})


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


training_form = TrainingForm  # notebook 04
