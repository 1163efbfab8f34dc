"""The generation form: tabs for text-to-audio, audio-to-audio, inpainting / continuation and LoRAs."""

from __future__ import annotations

import html

import ipywidgets as widgets

from .. import catalog, render
from ..generation import MODES, GenerationRequest
from ..render import message_html
from . import compat, parts
from .session import Session, shared_session
from .shell import FormShell, NotebookForm

COLLECTIONS = {  # model picker choices per notebook, from the catalog
    "standard": (*catalog.keys("standard"), "demo"),
    "base": (*catalog.keys("base"), "demo"),
    "all": ("demo", *catalog.keys("standard", "base")),
}
MODE_TITLES = ("Text to audio", "Audio to audio", "Inpaint / continue")
LORA_TITLE = "LoRA"
A2A_HELP = (
    "<small>The noise level works like a filter: about 0.1 keeps the clip close, 0.5 goes halfway, 0.9 keeps "
    "only its outline. The clip is cut or padded to the duration.</small>"
)
INPAINT_HELP = (
    "<small>The regions are regenerated and the rest is kept. To continue a clip, set the duration longer "
    "than the clip and a region from its end to the new duration, e.g. 8-12.</small>"
)
CFG_HINT = (
    "A negative prompt has no effect with CFG 1 (the post-trained models' default): raise CFG to use it "
    "(base models: 7)."
)


class GenerationForm(NotebookForm):
    """Widgets -> :class:`GenerationRequest` -> ``Lab.generate`` -> a result view, newest first.

    The form of notebooks 01 (``collection="standard"``) and 02 (``"base"``). ``model`` is a catalog
    key or a local folder. ``simple=True`` shows only model, prompt, duration and seed (the
    start-here quick test).
    """

    def __init__(
        self,
        collection: str = "standard",
        model: str | None = None,
        prompt: str = "",
        duration: float = 10.0,
        seed: int = -1,
        output_dir: str = "outputs",
        *,
        session: Session | None = None,
        simple: bool = False,
    ):
        if collection not in COLLECTIONS:
            raise ValueError(f"collection must be one of {', '.join(COLLECTIONS)}; got {collection!r}.")
        self.session = session or shared_session()
        self.output_dir, self.simple = output_dir, simple
        self.picker = parts.ModelPicker(COLLECTIONS[collection], model)
        self.prompt = widgets.Textarea(
            value=prompt,
            description="Prompt",
            placeholder="describe the audio",
            style=parts.STYLE,
            layout={**parts.WIDE, "height": "64px"},
        )
        self.negative = parts.text_field("", "Negative prompt", "what to avoid (needs CFG > 1)")
        self.duration = widgets.FloatText(
            value=duration, description="Duration (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.steps = widgets.IntText(description="Steps", style=parts.STYLE, layout={"width": "260px"})
        self.cfg = widgets.FloatText(description="CFG scale", style=parts.STYLE, layout={"width": "260px"})
        self.seed = parts.SeedField(seed)
        self.batch = widgets.IntText(
            value=1, description="Batch size", style=parts.STYLE, layout={"width": "260px"}
        )
        self.hint = widgets.HTML()

        self.a2a_audio = parts.AudioSource("Audio to transform")
        self.noise = widgets.FloatSlider(
            value=0.7,
            min=0.01,
            max=1.0,
            step=0.01,
            description="Noise level",
            style=parts.STYLE,
            layout={"width": "480px"},
        )
        self.inpaint_audio = parts.AudioSource("Audio to edit")
        self.regions = parts.text_field("", "Regions (s)", "2-4, 6-7.5")
        self.lora_files = widgets.Textarea(
            description="LoRA files",
            placeholder="one .safetensors path per line",
            style=parts.STYLE,
            layout={**parts.WIDE, "height": "52px"},
        )
        self.lora_upload = widgets.FileUpload(accept=".safetensors", multiple=True, description="Upload LoRA")
        self.lora_strengths = parts.text_field("", "Strengths", "one per file, or one for all (default 1)")
        self.lora_upload.observe(self._lora_uploaded, "value")
        self.lora_note = widgets.HTML()
        self.tabs = compat.titled(
            widgets.Tab,
            [
                widgets.HTML("<small>Generate from the prompt alone.</small>"),
                widgets.VBox([self.a2a_audio.widget, self.noise, widgets.HTML(A2A_HELP)]),
                widgets.VBox([self.inpaint_audio.widget, self.regions, widgets.HTML(INPAINT_HELP)]),
                widgets.VBox(
                    [widgets.HBox([self.lora_files, self.lora_upload]), self.lora_strengths, self.lora_note]
                ),
            ],
            (*MODE_TITLES, LORA_TITLE),
        )
        self._mode_index = 0  # the LoRA tab is not a mode: Generate runs the mode tab picked last
        self.tabs.observe(self._tab_changed, "selected_index")
        self._tab_changed()

        self.picker.observe(self._model_changed)
        self.negative.observe(self._update_hint, "value")
        self.cfg.observe(self._update_hint, "value")
        self._model_changed()
        self._count = 0
        self.shell = FormShell(
            self._inputs(),
            self.read,
            self.execute,
            self.render,
            run_label="Generate",
            secrets=self.session.secrets,
            title="Generation form",
        )
        self.widget = self.shell.widget

    def _inputs(self) -> widgets.Widget:
        if self.simple:
            return widgets.VBox([self.picker.widget, self.prompt, self.duration, self.seed.widget])
        settings = widgets.HBox(
            [
                widgets.VBox([self.duration, self.steps, self.cfg]),
                widgets.VBox([self.seed.widget, self.batch]),
            ]
        )
        return widgets.VBox([self.picker.widget, self.prompt, self.negative, settings, self.hint, self.tabs])

    # ------------------------------------------------------------------ reactions

    def _model_changed(self) -> None:
        defaults = self.picker.defaults()
        self.steps.value, self.cfg.value = defaults["steps"], defaults["cfg_scale"]
        self._update_hint()

    def _update_hint(self, change=None) -> None:
        useless = bool(self.negative.value.strip()) and self.cfg.value == 1
        self.hint.value = message_html(CFG_HINT, "warning") if useless else ""

    def _tab_changed(self, change=None) -> None:
        if (self.tabs.selected_index or 0) < len(MODES):
            self._mode_index = self.tabs.selected_index or 0
        self.lora_note.value = (
            "<small>LoRA adapters (optional) apply to whichever mode you generate in; Generate now runs "
            f"<b>{MODE_TITLES[self._mode_index]}</b> (the mode tab picked last).</small>"
        )

    def _lora_uploaded(self, change) -> None:
        saved = parts.take_uploads(self.lora_upload, change["new"])
        if saved:
            self.lora_files.value = "\n".join([*self._lora_lines(), *map(str, saved)])

    def _lora_lines(self) -> list[str]:
        return [line.strip() for line in self.lora_files.value.splitlines() if line.strip()]

    # ------------------------------------------------------------------ shell callbacks

    @property
    def mode(self) -> str:
        return "text-to-audio" if self.simple else MODES[self._mode_index]

    def read(self) -> GenerationRequest:
        """The request the widgets describe, checked (ValueError with one sentence otherwise)."""
        mode, source, regions = self.mode, None, []
        if mode == "audio-to-audio":
            source = self.a2a_audio.read("audio to transform")
        elif mode == "inpaint":
            source = self.inpaint_audio.read("audio to edit")
            regions = parts.parse_regions(self.regions.value)
        files = [] if self.simple else self._lora_lines()
        strengths = [] if self.simple else parts.parse_numbers(self.lora_strengths.value, "LoRA strengths")
        request = GenerationRequest(
            model=self.picker.value,
            prompt=self.prompt.value.strip(),
            duration=float(self.duration.value),
            negative_prompt="" if self.simple else self.negative.value.strip(),
            steps=int(self.steps.value),
            cfg_scale=float(self.cfg.value),
            seed=self.seed.value,
            batch_size=1 if self.simple else int(self.batch.value),
            mode=mode,
            source_audio=source,
            init_noise_level=float(self.noise.value),
            regions=regions,
            lora_files=files,
            lora_strengths=strengths,
            output_dir=self.output_dir,
        )
        request.check()
        return request

    def fill(self, request: GenerationRequest) -> None:
        """Set the widgets to ``request`` (a past run's, or a result sent on to another mode)."""
        self.picker.select(request.model)
        self.prompt.value, self.negative.value = request.prompt, request.negative_prompt
        self.duration.value, self.batch.value = request.duration, request.batch_size
        defaults = self.picker.defaults()
        self.steps.value = request.steps or defaults["steps"]
        self.cfg.value = defaults["cfg_scale"] if request.cfg_scale is None else request.cfg_scale
        self.seed.box.value = request.seed
        self.noise.value = request.init_noise_level
        self.a2a_audio.path.value = self.inpaint_audio.path.value = request.source_audio or ""
        self.regions.value = ", ".join(f"{start:g}-{end:g}" for start, end in request.regions)
        self.lora_files.value = "\n".join(request.lora_files)
        self.lora_strengths.value = ", ".join(f"{x:g}" for x in request.lora_strengths)
        self.tabs.selected_index = MODES.index(request.mode)

    def execute(self, request: GenerationRequest, progress):
        return self.session.lab.generate(request, pasted_token=self.session.token, progress=progress)

    def render(self, result) -> str:
        self._count += 1
        settings = result.settings
        mode = html.escape(settings.get("mode", ""))
        header = (
            f"<b>#{self._count}</b> {html.escape(result.model_key)} · {mode} · "
            f"seed {result.seed} · “{html.escape(settings.get('prompt', ''))}”"
        )
        clips = [
            render.clip_html(
                audio,
                result.sample_rate,
                title=f"item {i + 1}" if len(result.audio) > 1 else "",
                quality=result.quality[i],
                saved=result.paths[i] if i < len(result.paths) else None,
                regions=settings.get("regions", ()),
            )
            for i, audio in enumerate(result.audio)
        ]
        return render.result_html(header, clips, parts.run_rows(result), self.shell.notes)


generation_form = GenerationForm  # the notebooks' name: 01 (collection="standard") and 02 ("base")
