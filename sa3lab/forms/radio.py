"""The radio form (notebook 06): a playlist of prompts played as one endless stream that continues itself.

Start makes segments until Stop (or ``segments`` of them: the headless run); Start again resumes the
same stream while the model and lengths stay the same. Skip and "Apply playlist" take effect at the
next segment boundary. After each segment the form shows how far the stream is ahead of a listener
who started with the first segment ("buffer") and the real-time factor; before Start it warns when
the estimate says this machine cannot keep up. The result block keeps a compressed preview of the
stream's last :data:`PREVIEW_S` seconds in the notebook; the whole stream is in the output folder.
"""

from __future__ import annotations

import html
import time
from dataclasses import replace

import ipywidgets as widgets
import soundfile as sf
import torch

from .. import catalog, defaults, render
from ..generation import GenerationRequest
from ..radio import SEED_POLICIES, Radio, RadioRequest, Segment, check_playlist
from . import parts
from .advanced import SamplerSettings
from .loras import LoraList
from .radio_player import RadioPlayer
from .session import Session, shared_session
from .shell import NotebookForm, StopRequested

MODELS = (*catalog.keys("standard", "base"), "demo")
PREVIEW_S = 60.0  # seconds of the stream's end kept as an MP3 preview in the notebook (~300 KB)
PLAYLIST_HELP = "one prompt per line; end a line with | N to hold it for N segments (default 1)"


def parse_playlist(text: str) -> list[tuple[str, int]]:
    """``prompt | N`` lines (N segments; 1 without it), empty lines skipped, checked."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        prompt, bar, count = line.rpartition("|")
        if not bar:
            prompt, count = count, "1"
        try:
            entries.append((prompt.strip(), int(count.strip())))
        except ValueError:
            raise ValueError(
                f"Playlist line {number}: after | give a whole number of segments, e.g. 'calm piano | 4'."
            ) from None
    return check_playlist(entries)


def playlist_text(playlist) -> str:
    return "\n".join(f"{prompt} | {count}" for prompt, count in check_playlist(playlist))


class RadioForm(NotebookForm):
    """Widgets -> :class:`~sa3lab.radio.RadioRequest` -> ``Lab.radio`` -> live status and the stream.

    ``segments``: how many segments one Start makes (None: until Stop).
    """

    def __init__(
        self,
        model: str = "small-music",
        playlist=(("ambient pads, slow evolving, warm", 4), ("downtempo beat, soft drums", 4)),
        *,
        segment_s: float = defaults.RADIO_SEGMENT_S,
        context_s: float = defaults.RADIO_CONTEXT_S,
        seed: int = 42,
        seed_policy: str = "increment",
        segments: int | None = None,
        output_dir: str = defaults.OUTPUT_DIR,
        session: Session | None = None,
    ):
        self.session = session or shared_session()
        self.output_dir, self.segments = output_dir, segments
        self.radio: Radio | None = None
        self.player = RadioPlayer()
        self._played = (None, 0)  # the stream the player was sent, and up to which sample
        self.picker = parts.ModelPicker(MODELS, model)
        self.playlist = widgets.Textarea(
            value=playlist_text(playlist),
            description="Playlist",
            placeholder=PLAYLIST_HELP,
            style=parts.STYLE,
            layout={**parts.WIDE, "height": "96px"},
        )
        self.segment_s = widgets.FloatText(
            value=segment_s, description="Segment (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.context_s = widgets.FloatText(
            value=context_s, description="Context (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.seed = widgets.IntText(
            value=seed, description="Seed", style=parts.STYLE, layout={"width": "260px"}
        )
        self.seed_policy = widgets.Dropdown(
            options=SEED_POLICIES, value=seed_policy, description="Seed policy", style=parts.STYLE
        )
        self.negative = parts.text_field("", "Negative prompt", "for every prompt (needs CFG > 1)")
        self.advanced = SamplerSettings()
        self.loras = LoraList()
        self.skip_button = widgets.Button(
            description="Skip", icon="forward", tooltip="next prompt, next segment"
        )
        self.apply_button = widgets.Button(description="Apply playlist", icon="refresh")
        self.skip_button.on_click(lambda _: self.radio and self.radio.skip())
        self.apply_button.on_click(lambda _: self._apply_playlist())
        self.plan = widgets.HTML()
        self.live = widgets.HTML()
        self.picker.observe(self._model_changed)
        for field in (self.segment_s, self.context_s, self.advanced.steps, self.advanced.cfg):
            field.observe(lambda _: self._update_plan(), "value")
        self._model_changed()
        inputs = widgets.VBox(
            [
                self.picker.widget,
                self.playlist,
                widgets.HBox([self.segment_s, self.context_s]),
                widgets.HBox([self.seed, self.seed_policy]),
                self.negative,
                self.loras.widget,
                self.advanced.widget,
                self.plan,
                widgets.HBox([self.skip_button, self.apply_button]),
                self.player,
                self.live,
            ]
        )
        self._make_shell(inputs, "Start", "Radio form", output_dir)
        self.widget = self.shell.widget

    # ------------------------------------------------------------------ reactions

    def _model_changed(self) -> None:
        try:
            self.advanced.set(self.picker.defaults())
        except ValueError:
            pass  # a folder still being typed: the settings stay
        self._update_plan()

    def _update_plan(self) -> None:
        """Before Start: the estimated real-time factor, a warning when it is below 1."""
        try:
            speed = self.request().estimated_speed(self.session.lab.machine)
        except ValueError as exc:
            self.plan.value = render.message_html(str(exc), "warning")
            return
        if speed < 1:
            self.plan.value = render.message_html(
                f"This machine cannot keep up: it makes about {speed:.2f} s of stream per second (an "
                "estimate from the model's size), so playback will wait for each segment. Use a GPU, a "
                "small model, fewer steps or the demo model, or let it run ahead before listening.",
                "warning",
            )
        else:
            self.plan.value = f"<small>Estimated real-time factor {speed:.1f} (above 1 keeps up).</small>"

    def _apply_playlist(self) -> None:
        try:
            playlist = parse_playlist(self.playlist.value)
        except ValueError as exc:
            self.shell.message.value = render.message_html(str(exc), "error")
            return
        if self.radio is not None:
            self.radio.change_playlist(playlist)
            self.shell.message.value = render.message_html(
                f"The playlist takes effect at the next segment: “{playlist[0][0]}”.", "info"
            )

    # ------------------------------------------------------------------ shell callbacks

    def request(self) -> RadioRequest:
        settings = self.advanced.values()
        loras = self.loras.uses()
        playlist = parse_playlist(self.playlist.value)
        generation = GenerationRequest(
            model=self.picker.value,
            prompt=playlist[0][0],
            negative_prompt=self.negative.value.strip(),
            seed=int(self.seed.value),
            lora_files=[use.file for use in loras],
            lora_strengths=[use.strength for use in loras],
            lora_intervals=[use.interval for use in loras],
            lora_layer_filters=[use.layer_filter for use in loras],
            output_dir=self.output_dir,
            **settings,
        )
        request = RadioRequest(
            generation,
            playlist,
            float(self.segment_s.value),
            float(self.context_s.value),
            self.seed_policy.value,
        )
        request.check()
        return request

    def read(self) -> Radio:
        """The stream to go on with: the current one if only its playlist changed, else a new one."""
        request = self.request()
        radio = self.radio
        if radio is not None and _same_stream(radio.request, request):
            if radio.request.playlist != request.playlist:
                radio.change_playlist(request.playlist)
            return radio
        self.radio = Radio.new(request)
        return self.radio

    def execute(self, radio: Radio, progress):
        at_start, first_done = radio.seconds, []

        def shown(segment: Segment) -> None:
            first_done.append(time.perf_counter())
            made, listened = radio.seconds - at_start, first_done[-1] - first_done[0]
            self.live.value = status_html(radio, segment, made - listened)
            self._to_player(radio)

        self.live.value = f"<small>starting at {radio.seconds:.1f} s of the stream…</small>"
        self.player.prebuffer_s = radio.request.segment_s
        try:
            self.session.lab.radio(radio, self.segments, self.session.token, progress, on_segment=shown)
        except StopRequested:
            pass  # the segment under way is dropped; the stream stays as it was after the last one
        finally:
            self.player.flush()
        if not radio.state.segments:
            raise StopRequested
        return radio

    def _to_player(self, radio: Radio) -> None:
        """Send the player the stream's new final stretch (the last crossfade waits for the next join)."""
        stream, sent = self._played
        new_stream = stream is not radio
        if new_stream:
            sent = radio.final_length - round(radio.request.segment_s * radio.state.sample_rate)
            sent = max(0, min(sent, radio.final_length))  # a resumed stream plays from its last segment
        end = radio.final_length
        if end > sent:
            self.player.add(radio.read(sent, end), radio.state.sample_rate, new_stream=new_stream)
        self._played = (radio, end)

    def stopped_text(self) -> str:
        return "Stopped before the first segment; nothing was made. Press Start to begin."

    def render(self, radio: Radio) -> str:
        state = radio.state
        rate = state.sample_rate
        start = max(0, state.length - round(PREVIEW_S * rate))
        audio, _ = sf.read(
            str(radio.joined_path), start=start, stop=state.length, dtype="float32", always_2d=True
        )
        prompts = " → ".join(dict.fromkeys(segment["prompt"] for segment in state.segments))
        title = f"{len(state.segments)} segments · {radio.seconds:.1f} s" + (
            f" (the preview: the last {PREVIEW_S:g} s)" if start else ""
        )
        clip = render.clip_html(
            torch.from_numpy(audio.T.copy()), rate, title=title, saved=str(radio.joined_path)
        )
        rows = {
            "model": radio.request.generation.model,
            "playlist": prompts,
            "segment / context": f"{radio.request.segment_s:g} s / {radio.request.context_s:g} s",
            "seeds": ", ".join(str(segment["seed"]) for segment in state.segments[-8:]),
            "seed policy": radio.request.seed_policy,
            "sidecar": str(radio.sidecar_path),
        }
        header = f"<b>Radio</b> · “{html.escape(prompts)}”"
        return render.result_html(header, [clip], rows, self.shell.notes)


def _same_stream(old: RadioRequest, new: RadioRequest) -> bool:
    """Whether ``new`` goes on with ``old``'s stream: everything but the playlist and seed policy equal."""
    return (old.generation, old.segment_s, old.context_s) == (
        replace(new.generation, prompt=old.generation.prompt),
        new.segment_s,
        new.context_s,
    )


def status_html(radio: Radio, segment: Segment, buffer_s: float) -> str:
    """After a segment: where the stream stands, how far it is ahead of a listener who started with
    this Start's first segment, the real-time factor, and a warning when the stream falls behind."""
    speed = segment.realtime_factor
    line = (
        f"segment {segment.index + 1} (“{html.escape(segment.prompt)}”, seed {segment.seed}) · "
        f"stream {radio.seconds:.1f} s · "
        + (f"buffer: {buffer_s:.1f} s ahead" if buffer_s >= 0 else f"buffer: empty, {-buffer_s:.1f} s behind")
        + f" · real-time factor {speed:.2f}"
    )
    if speed < 1:
        return render.message_html(
            line + ": this machine cannot keep up, so playback will pause between segments.", "warning"
        )
    return f"<small>{line}</small>"


radio_form = RadioForm  # notebook 06
