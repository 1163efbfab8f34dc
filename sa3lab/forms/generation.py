"""The generation form: model, prompt (with the Prompt Assistant), the modes, LoRA, advanced settings.

The mode tabs are text-to-audio, audio-to-audio, inpainting and continuation; LoRA files modify
whichever runs. While sampling the form can show previews of the denoised estimate
(:mod:`sa3lab.previews`); results are cell outputs, and each can be sent on as the source of another
mode (or, through :attr:`GenerationForm.send_to_roundtrip`, of a SAME round trip).
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets

from .. import catalog, defaults, prompt_assistant, prompt_style, render
from ..generation import MODES, GenerationRequest, continuation_duration, continuation_text, noise_levels
from ..previews import Preview
from ..render import message_html
from . import compat, parts
from .advanced import SamplerSettings
from .loras import LoraList
from .session import Session, shared_session
from .shell import NotebookForm

COLLECTIONS = {  # model picker choices per notebook, from the catalog
    "standard": (*catalog.keys("standard"), "demo"),
    "base": (*catalog.keys("base"), "demo"),
    "all": ("demo", *catalog.keys("standard", "base")),
}
MODE_TITLES = ("Text to audio", "Audio to audio", "Inpaint", "Continue")
A2A_HELP = (
    "<small>The noise level works like a filter: about 0.1 keeps the clip close, 0.5 goes halfway, 0.9 keeps "
    "only its outline. The clip is cut or padded to the duration.</small>"
)
INPAINT_HELP = "<small>The regions are regenerated and the rest of the clip is kept.</small>"
CONTINUE_HELP = (
    "<small>Keeps the clip and generates what comes after it: the duration becomes the clip's length plus "
    "the seconds to add, at most the model's limit (a longer clip is cut to duration minus the seconds "
    "to add).</small>"
)
CFG_HINT = (
    "A negative prompt has no effect with CFG 1 (the post-trained models' default): raise CFG in the "
    "advanced settings to use it (base models: 7)."
)
ASSIST_HELP = (
    "<small>The Prompt Assistant writes an SA3-style prompt from a short idea (Qwen3.5-2B, downloaded on "
    f"first use: about {prompt_assistant.DOWNLOAD_GB:g} GB; seconds on a GPU, about a minute on a CPU). "
    "The prompt stays editable.</small>"
)
ROUNDTRIP_UNCONNECTED = (
    "No SAME round-trip form is connected to this one: in the same kernel run "
    "`form.send_to_roundtrip = roundtrip_form.audio.set` (notebook 03's form), or type this file into it: "
)
SEND_TARGETS = {  # button label -> mode, or "roundtrip"
    "Audio to audio": "audio-to-audio",
    "Inpaint": "inpaint",
    "Continue": "continuation",
    "SAME round trip": "roundtrip",
}


class GenerationForm(NotebookForm):
    """Widgets -> :class:`GenerationRequest` -> ``Lab.generate`` -> a result view, newest first.

    The form of notebooks 01 (``collection="standard"``) and 02 (``"base"``). ``model`` is a catalog
    key or a local folder. ``simple=True`` shows only model, prompt, duration and seed (the
    start-here quick test).
    ``send_to_roundtrip``: called with a result's file by its "SAME round trip" button.
    """

    def __init__(
        self,
        collection: str = "standard",
        model: str | None = None,
        prompt: str = "",
        duration: float = defaults.DURATION,
        seed: int = -1,
        output_dir: str = defaults.OUTPUT_DIR,
        *,
        session: Session | None = None,
        simple: bool = False,
    ):
        if collection not in COLLECTIONS:
            raise ValueError(f"collection must be one of {', '.join(COLLECTIONS)}; got {collection!r}.")
        self.session = session or shared_session()
        self.output_dir, self.simple = output_dir, simple
        self.send_to_roundtrip: Callable[[str], None] | None = None
        self._build_model_and_prompt(collection, model, prompt, duration, seed)
        self._build_modes()
        self.loras = LoraList()
        self.advanced = SamplerSettings()
        self.steps, self.cfg = self.advanced.steps, self.advanced.cfg
        self._build_view()
        self._build_send()
        self._count = 0
        kept_name = f"Generation form {collection}" + (" quick test" if simple else "")
        self._make_shell(self._inputs(), "Generate", "Generation form", output_dir, kept_name)
        self.shell.busy_disabled = [self.expand_button, *self.send_buttons.values()]
        self.widget = self.shell.widget
        self.picker.observe(self._model_changed)
        self.negative.observe(self._update_hint, "value")
        self.prompt.observe(self._update_hint, "value")
        self.cfg.observe(self._update_hint, "value")
        self.session.on_token_change(self._check_readiness)
        self._model_changed()
        advanced = self.advanced
        for widget in (self.noise, self.duration, advanced.steps, advanced.schedule, advanced.a2a_schedule,
                       *advanced.schedule_params):  # fmt: skip
            widget.observe(self._show_a2a_levels, "value")
        self.picker.observe(self._show_a2a_levels)  # a local folder's config may have its own shift
        self.picker.observe(self._continuation_changed)  # the model's limit
        self._show_a2a_levels()
        for widget in self._watched():
            widget.observe(
                self._input_changed, "selected_index" if isinstance(widget, widgets.Tab) else "value"
            )

    # ------------------------------------------------------------------ building

    def _build_model_and_prompt(self, collection, model, prompt, duration, seed) -> None:
        self.picker = parts.ModelPicker(COLLECTIONS[collection], model)
        self.readiness = widgets.HTML()
        self.alternative_buttons = [widgets.Button(layout={"display": "none"}) for _ in range(2)]
        for button in self.alternative_buttons:
            button.on_click(lambda b: self.picker.select(b.tooltip))
        self.idea = parts.text_field(
            "", "Idea", "a short idea, e.g. rainy lo-fi beat with soft keys", wide=False
        )
        self.idea.layout.width = "520px"  # the whole example shows
        self.preset = widgets.Dropdown(
            options=prompt_style.PRESETS, description="Preset", layout={"width": "170px"}
        )
        self.greedy = widgets.Checkbox(
            description="same answer each time", indent=False, layout={"width": "auto"}
        )
        self.expand_button = widgets.Button(
            description="Expand", icon="magic", tooltip="Write the prompt from the idea"
        )
        self.expand_button.on_click(lambda _: self.shell.start_task(self._expand, "Expand"))
        too_old = prompt_assistant.transformers_too_old()
        self.assist_note = widgets.HTML(message_html(too_old, "warning") if too_old else ASSIST_HELP)
        self._expansion: dict | None = None
        self.prompt = widgets.Textarea(
            value=prompt,
            description="Prompt",
            placeholder="describe the audio (or write an idea above and press Expand)",
            style=parts.STYLE,
            layout={**parts.WIDE, "height": "64px"},
        )
        self.negative = parts.text_field("", "Negative prompt", "what to avoid (needs CFG > 1)")
        self.duration = widgets.FloatText(
            value=duration, description="Duration (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.seed = parts.SeedField(seed)
        self.batch = widgets.IntText(
            value=1, description="Batch size", style=parts.STYLE, layout={"width": "260px"}
        )
        self.hint = widgets.HTML()

    def _build_modes(self) -> None:
        self.a2a_audio = parts.AudioSource("Audio to transform")
        self.noise = widgets.FloatSlider(
            value=0.7, min=0.01, max=1.0, step=0.01, description="Noise level", style=parts.STYLE,
            layout={"width": "480px", "max_width": "100%"},
        )  # fmt: skip
        self.a2a_levels = widgets.HTML()
        self.inpaint_audio = parts.AudioSource("Audio to edit")
        self.regions = parts.text_field("", "Regions (s)", "2-4, 6-7.5")
        self.continue_audio = parts.AudioSource("Audio to continue")
        self.continue_s = widgets.FloatText(
            value=5.0, description="Seconds to add", style=parts.STYLE, layout={"width": "260px"}
        )
        self.continue_note = widgets.HTML()
        self.continue_audio.path.observe(self._continuation_changed, "value")
        self.continue_s.observe(self._continuation_changed, "value")
        self.tabs = compat.titled(
            widgets.Tab,
            [
                widgets.HTML("<small>Generate from the prompt alone.</small>"),
                widgets.VBox([self.a2a_audio.widget, self.noise, self.a2a_levels, widgets.HTML(A2A_HELP)]),
                widgets.VBox([self.inpaint_audio.widget, self.regions, widgets.HTML(INPAINT_HELP)]),
                widgets.VBox(
                    [
                        self.continue_audio.widget,
                        self.continue_s,
                        self.continue_note,
                        widgets.HTML(CONTINUE_HELP),
                    ]
                ),
            ],
            MODE_TITLES,
        )
        self.tabs.observe(self._continuation_changed, "selected_index")
        self.duration.observe(self._show_continuation, "value")

    def _build_view(self) -> None:
        self.preview_on = widgets.Checkbox(
            description="show previews while sampling, every", indent=False, layout={"width": "auto"}
        )
        self.preview_every = widgets.IntText(value=2, layout={"width": "60px"})
        self.preview_steps = widgets.HTML("steps", layout={"margin": "0 16px 0 4px"})
        self.preview_listen = widgets.Checkbox(
            description="with ~3 s to listen to (one decode per preview)",
            indent=False,
            layout={"width": "auto"},
        )
        self.loop = widgets.Checkbox(
            description="loop playback of results", indent=False, layout={"width": "auto"}
        )
        self.preview_caption = widgets.HTML()
        self.preview_image = widgets.Image(format="png", layout={"width": "640px", "max_width": "100%"})
        self.preview_audio = widgets.Audio(
            format="wav", autoplay=False, loop=False, layout={"display": "none"}
        )
        self.preview_box = widgets.VBox(
            [self.preview_caption, self.preview_image, self.preview_audio], layout={"display": "none"}
        )

    def _build_send(self) -> None:
        self.use_result = widgets.Dropdown(
            description="Use result", style=parts.STYLE, layout={"width": "440px", "max_width": "100%"}
        )
        self.send_buttons = {label: widgets.Button(description=f"→ {label}") for label in SEND_TARGETS}
        for label, button in self.send_buttons.items():
            button.on_click(lambda _, target=SEND_TARGETS[label]: self.send(target))
        self.send_box = widgets.VBox(
            [self.use_result, widgets.HBox(list(self.send_buttons.values()), layout=parts.ROW)],
            layout={"display": "none"},
        )
        self._result_seconds: dict[str, float] = {}

    def _inputs(self) -> widgets.Widget:
        model = [self.picker.widget, self.readiness, widgets.HBox(self.alternative_buttons, layout=parts.ROW)]
        if self.simple:
            return widgets.VBox([*model, self.prompt, self.duration, self.seed.widget])
        assistant = widgets.HBox([self.idea, self.preset, self.greedy, self.expand_button], layout=parts.ROW)
        self.preview_row = widgets.HBox(
            [self.preview_on, self.preview_every, self.preview_steps, self.preview_listen, self.loop],
            layout=parts.CENTRED_ROW,
        )
        return widgets.VBox(
            [
                *model,
                assistant,
                self.assist_note,
                self.prompt,
                self.negative,
                widgets.HBox([self.duration, self.batch], layout=parts.ROW),
                self.seed.widget,
                self.hint,
                self.tabs,
                self.loras.widget,
                self.advanced.widget,
                self.preview_row,
                self.send_box,
                self.preview_box,
            ]
        )

    def _watched(self) -> list[widgets.Widget]:
        """The inputs whose change clears an earlier run's message."""
        sources = (self.a2a_audio, self.inpaint_audio, self.continue_audio)
        return [
            self.picker.dropdown, self.picker.path, self.prompt, self.negative, self.duration, self.batch,
            self.seed.box, self.seed.choice, self.tabs, self.noise, self.regions, self.continue_s,
            *(source.path for source in sources), self.advanced.steps, self.advanced.cfg,
        ]  # fmt: skip

    # ------------------------------------------------------------------ reactions

    def _model_changed(self) -> None:
        self.advanced.set(self.picker.defaults())
        self._update_hint()
        self._check_readiness()

    def _check_readiness(self) -> None:
        """Say at once when the chosen model cannot load here, and offer models that can."""
        if self.picker.entry() is None:
            self.readiness.value = ""
            self._offer_alternatives(())
            return
        ready = self.session.lab.readiness(self.picker.dropdown.value, self.session.token)
        kind = "warning" if ready.ok else "error"
        self.readiness.value = message_html(ready.message, kind) if ready.message else ""
        self._offer_alternatives(() if ready.ok else ready.alternatives)

    def _offer_alternatives(self, offered: tuple[str, ...]) -> None:
        """Show a "Use <model> instead" button for each of ``offered``."""
        for button, key in zip(self.alternative_buttons, [*offered, None, None], strict=False):
            button.layout.display = None if key else "none"
            if key:
                button.description, button.tooltip = f"Use {key} instead", key

    def _update_hint(self, change=None) -> None:
        useless = bool(self.negative.value.strip()) and self.cfg.value == 1
        hints = [CFG_HINT] if useless else []
        fit = self._prompt_fit()
        if fit is not None and fit.cut:
            hints.append(parts.prompt_cut_sentence(self.prompt.value, fit.tokens, fit.max_tokens, fit.cut_at))
        self.hint.value = "".join(message_html(hint, "warning") for hint in hints)

    def _prompt_fit(self):
        """How much of the prompt the chosen model reads, once its files are on this machine."""
        try:
            return self.session.lab.prompt_fit(self.picker.value, self.prompt.value)
        except ValueError:  # no folder (yet): nothing to say about the prompt
            return None

    def _show_a2a_levels(self, change=None) -> None:
        """Under the noise level: where the schedule starts and the highest noise it reaches."""
        settings = self.advanced.values()
        try:
            levels = noise_levels(
                self.picker.value,
                float(self.duration.value),
                settings["steps"],
                float(self.noise.value),
                settings["schedule"],
                settings["a2a_schedule"],
            )
        except ValueError:  # a setting the request would refuse: it says so when Generate is pressed
            self.a2a_levels.value = ""
            return
        text = a2a_levels_text(levels, float(self.noise.value))
        self.a2a_levels.value = f"<small>{html.escape(text)}</small>"

    def _input_changed(self, change=None) -> None:
        if not self.shell.running:
            self.shell.message.value, self.shell.last_error = "", None

    def _continuation_changed(self, change=None) -> None:
        """In the Continue tab the duration follows the clip: its length plus the seconds to add, within
        the model's limit (a new clip, seconds to add, model or tab)."""
        seconds = self._clip_seconds()
        if seconds is not None:
            limit = self.picker.entry().max_duration_s if self.picker.entry() is not None else None
            self.duration.value = continuation_duration(seconds, float(self.continue_s.value), limit)
        self._show_continuation()

    def _clip_seconds(self) -> float | None:
        """The continuation clip's length, in the Continue tab with a usable clip; else None."""
        if self.mode != "continuation":
            return None
        try:
            return parts.audio_seconds(self.continue_audio.read("audio to continue"))
        except (ValueError, RuntimeError):
            return None

    def _show_continuation(self, change=None) -> None:
        """Under the seconds to add: what the run will keep and add, from the duration it will use."""
        seconds = self._clip_seconds()
        self.continue_note.value = (
            ""
            if seconds is None
            else "<small>"
            + html.escape(
                continuation_text(float(self.duration.value), float(self.continue_s.value), seconds),
                quote=False,
            )
            + "</small>"
        )

    # ------------------------------------------------------------------ Prompt Assistant

    def _expand(self, progress) -> prompt_assistant.Expansion:
        """Expand the idea (or else the prompt) into the prompt box; the run record keeps its origin."""
        idea = self.idea.value.strip() or self.prompt.value.strip()
        if not idea:
            raise ValueError(
                "Type a short idea to expand (e.g. rainy lo-fi beat with soft keys), then press Expand."
            )
        expansion = self.session.lab.expand(
            idea,
            self.preset.value,
            greedy=bool(self.greedy.value),
            pasted_token=self.session.token,
            progress=progress,
        )
        self.prompt.value = expansion.text
        self._expansion = expansion.metadata()
        loading = f" (+ {expansion.load_s:.0f} s loading)" if expansion.load_s >= 1 else ""
        length = f" It suggests {expansion.duration_s} s." if expansion.duration_s else ""
        self.assist_note.value = (
            f"<small>Written as {html.escape(expansion.category)} by {html.escape(expansion.model_id)} on "
            f"{html.escape(expansion.device)} in {expansion.seconds:.1f} s{loading}; edit it as you like."
            f"{length}</small>"
        )
        return expansion

    # ------------------------------------------------------------------ sending a result on

    def send(self, target: str) -> None:
        """Make the result chosen in "Use result" the source of ``target`` (a mode, or "roundtrip")."""
        path = self.use_result.value
        if not path:
            self.shell.message.value = message_html(
                "Generate a result first; then it can be sent on.", "info"
            )
            return
        if target == "roundtrip":
            if self.send_to_roundtrip is None:
                self.shell.message.value = message_html(ROUNDTRIP_UNCONNECTED + path, "info")
            else:
                self.send_to_roundtrip(path)
                self.shell.message.value = message_html(f"Sent {path} to the SAME round-trip form.", "info")
            return
        seconds = self._result_seconds[path]
        if target == "audio-to-audio":
            self.a2a_audio.set(path)
            self.duration.value = seconds
        elif target == "inpaint":
            self.inpaint_audio.set(path)
            self.duration.value = seconds
            if not self.regions.value.strip():
                self.regions.value = f"{seconds / 3:.2f}-{2 * seconds / 3:.2f}"
        else:
            self.continue_audio.set(path)
        self.tabs.selected_index = MODES.index(target)
        what = {
            "audio-to-audio": "audio to audio",
            "inpaint": "inpainting",
            "continuation": "the continuation",
        }
        self.shell.message.value = message_html(
            f"{self.use_result.label} is now the source of {what[target]}: check the settings, then press "
            "Generate.",
            "info",
        )

    def _offer(self, result) -> None:
        """Add the result's files to "Use result", newest first and chosen."""
        options = list(self.use_result.options)
        for i, path in enumerate(result.paths):
            item = f" · item {i + 1}" if len(result.paths) > 1 else ""
            prompt = result.settings.get("prompt", "")
            label = (
                f"#{self._count}{item} · {result.model_key} · {prompt[:40]}{'…' if len(prompt) > 40 else ''}"
            )
            self._result_seconds[path] = result.audio.shape[-1] / result.sample_rate
            options.insert(i, (label, path))
        self.use_result.options = options
        self.use_result.value = result.paths[0]
        self.send_box.layout.display = None

    # ------------------------------------------------------------------ shell callbacks

    @property
    def mode(self) -> str:
        return "text-to-audio" if self.simple else MODES[self.tabs.selected_index or 0]

    def read(self) -> GenerationRequest:
        """The request the widgets describe, checked (ValueError with one sentence otherwise)."""
        mode, source, regions, add = self.mode, None, [], 0.0
        if mode == "audio-to-audio":
            source = self.a2a_audio.read("audio to transform")
        elif mode == "inpaint":
            source = self.inpaint_audio.read("audio to edit")
            regions = parts.parse_regions(self.regions.value)
        elif mode == "continuation":
            source = self.continue_audio.read("audio to continue")
            add = float(self.continue_s.value)
        loras = [] if self.simple else self.loras.uses()
        prompt = self.prompt.value.strip()
        expansion = None
        if self._expansion is not None and not self.simple:
            expansion = {**self._expansion, "edited": prompt != self._expansion["text"]}
        request = GenerationRequest(
            model=self.picker.value,
            prompt=prompt,
            duration=float(self.duration.value),
            negative_prompt="" if self.simple else self.negative.value.strip(),
            **self.advanced.values(),
            seed=self.seed.value,
            batch_size=1 if self.simple else int(self.batch.value),
            mode=mode,
            source_audio=source,
            init_noise_level=float(self.noise.value),
            regions=regions,
            continuation_s=add,
            lora_files=[use.file for use in loras],
            lora_strengths=[use.strength for use in loras],
            lora_intervals=[use.interval for use in loras],
            lora_layer_filters=[use.layer_filter for use in loras],
            lora_svd_bases=[use.svd_bases for use in loras],
            prompt_expansion=expansion,
            output_dir=self.output_dir,
        )
        return request

    def fill(self, request: GenerationRequest) -> None:
        """Set the widgets to ``request`` (a past run's, or a result sent on to another mode)."""
        self.picker.select(request.model)
        self.prompt.value, self.negative.value = request.prompt, request.negative_prompt
        self.duration.value, self.batch.value = request.duration, request.batch_size
        self.advanced.set(request.settings())
        self.advanced.set_output_level(request.peak_ceiling_dbfs, request.float_wav)
        self.advanced.confirm_long.value = request.confirm_long
        if request.seed == -1:
            self.seed.choice.value = parts.NEW_EACH_RUN
        else:
            self.seed.fix(request.seed)
        self.noise.value = request.init_noise_level
        for source in (self.a2a_audio, self.inpaint_audio, self.continue_audio):
            source.set(request.source_audio or "")
        self.regions.value = ", ".join(f"{start:g}-{end:g}" for start, end in request.regions)
        if request.mode == "continuation":
            self.continue_s.value = request.continuation_s
            self.duration.value = request.duration
        self.loras.fill(request.loras())
        self._expansion = request.prompt_expansion
        if request.prompt_expansion:
            self.idea.value = request.prompt_expansion.get("idea", "")
            self.preset.value = request.prompt_expansion.get("preset", "Auto")
        self.tabs.selected_index = MODES.index(request.mode)

    def execute(self, request: GenerationRequest, progress):
        previewing = self.preview_on.value and not self.simple
        try:
            return self.session.lab.generate(
                request,
                pasted_token=self.session.token,
                progress=progress,
                on_preview=self._show_preview if previewing else None,
                preview_every=self.preview_every.value,
                preview_listen=bool(self.preview_listen.value),
            )
        finally:
            self._clear_preview()

    def _show_preview(self, preview: Preview) -> None:
        self.preview_box.layout.display = None
        self.preview_caption.value = f"<small><b>Preview</b> · {html.escape(preview.caption)}</small>"
        self.preview_image.value = preview.image
        if preview.audio is not None:
            self.preview_audio.value = render.wav_bytes(preview.audio, preview.sample_rate)
            self.preview_audio.layout.display = None

    def _clear_preview(self) -> None:
        """Hide the live preview and drop its bytes (they would stay in saved widget state)."""
        self.preview_box.layout.display = self.preview_audio.layout.display = "none"
        self.preview_image.value = self.preview_audio.value = b""

    def render(self, result) -> str:
        self._count += 1
        self.seed.remember(result.seed)
        self._update_hint()  # the model is loaded now: a prompt longer than it reads is named
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
                loop=bool(self.loop.value),
            )
            for i, audio in enumerate(result.audio)
        ]
        if result.paths and not self.simple:
            self._offer(result)
        return render.result_html(header, clips, parts.run_rows(result), self.shell.notes)


def a2a_levels_text(levels: list[float], asked: float) -> str:
    """What an audio-to-audio schedule does with the noise level asked for, in one or two sentences."""
    top = max(levels)
    step = levels.index(top) + 1
    text = f"First noise level {levels[0]:.2f}, highest reached {top:.2f} at step {step} (asked {asked:.2f})"
    if top > asked + 1e-6:
        return text + ": the schedule rises above the level asked for; the corrected A2A schedule does not."
    return text + "."


generation_form = GenerationForm  # the notebooks' name: 01 (collection="standard") and 02 ("base")
