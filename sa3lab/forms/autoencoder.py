"""The SAME round-trip form: encode audio to latents and decode it back, then listen, look and measure."""

from __future__ import annotations

import html
import math

import ipywidgets as widgets

from .. import defaults, quality, render
from ..roundtrip import AUTOENCODER_KEYS, RoundTripRequest, RoundTripResult
from . import parts
from .session import Session, shared_session
from .shell import NotebookForm


def _snr(value: float) -> str:
    """The SNR with what it means: it compares the waveforms sample by sample, so a codec that keeps
    the sound but not its exact phase scores low; the STFT distance below ignores phase."""
    if math.isinf(value) and value > 0:
        return "identical (∞ dB)"
    if value >= 20:
        meaning = "the waveform is kept closely"
    elif value >= 0:
        meaning = "the waveform differs audibly or in phase; listen, and see the STFT distance"
    else:
        meaning = (
            "below 0 dB the difference is louder than the input, sample by sample: the waveform is not "
            "kept (phase, timing or a random-weight model such as demo); listen, and see the STFT distance"
        )
    return f"{value:.2f} dB ({meaning})"


class AutoencoderForm(NotebookForm):
    """Notebook 03: widgets -> :class:`RoundTripRequest` -> ``Lab.roundtrip`` -> before/after view.

    ``model`` is same-s, same-l, demo or a local folder.
    """

    def __init__(
        self,
        model: str | None = "same-s",
        audio: str = "",
        duration: float = 5.0,
        seed: int = -1,
        output_dir: str = defaults.OUTPUT_DIR,
        *,
        session: Session | None = None,
    ):
        self.session = session or shared_session()
        self.output_dir = output_dir
        self.picker = parts.ModelPicker(AUTOENCODER_KEYS, model)
        self.audio = parts.AudioSource("Audio file", audio, "empty: a built-in test chord")
        self.duration = widgets.FloatText(
            value=duration, description="Duration (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.chunked = widgets.Checkbox(
            value=False, description="Chunked encode / decode (less memory)", layout={"width": "auto"}
        )
        self.seed = parts.SeedField(seed)
        help_text = widgets.HTML(
            "<small>Duration: the length of the test chord; a file is cut to its first seconds. "
            "SAME-S pairs with the small models, SAME-L with medium.</small>"
        )
        inputs = widgets.VBox(
            [self.picker.widget, self.audio.widget, self.duration, self.chunked, self.seed.widget, help_text]
        )
        self._count = 0
        self._make_shell(inputs, "Round trip", "SAME round-trip form", output_dir)
        self.widget = self.shell.widget

    def read(self) -> RoundTripRequest:
        request = RoundTripRequest(
            model=self.picker.value,
            audio=self.audio.value,
            duration=float(self.duration.value),
            chunked=bool(self.chunked.value),
            seed=self.seed.value,
            output_dir=self.output_dir,
        )
        return request

    def execute(self, request: RoundTripRequest, progress) -> RoundTripResult:
        return self.session.lab.roundtrip(request, pasted_token=self.session.token, progress=progress)

    def render(self, result: RoundTripResult) -> str:
        self._count += 1
        run = result.run
        header = f"<b>#{self._count}</b> {html.escape(run.model_key)} · {html.escape(result.source)}"
        before = render.clip_html(
            result.before,
            result.sample_rate,
            title="Before (input)",
            quality=quality.assess(result.before, result.sample_rate),
        )
        after = render.clip_html(
            result.after,
            result.sample_rate,
            title="After (decoded)",
            quality=run.quality[0],
            saved=run.paths[0] if run.paths else None,
        )
        channels, samples = result.before.shape
        frames = result.latent_shape[-1]
        rows = {
            "latent shape": " × ".join(str(n) for n in result.latent_shape),
            "latent frame rate": f"{result.latent_rate_hz:.2f} frames/s",
            "compression": f"{channels * samples / max(1, math.prod(result.latent_shape[1:])):.1f}× "
            f"({samples} samples × {channels} ch -> {frames} frames)",
            "SNR": _snr(result.snr_db),
            "multi-resolution STFT distance": f"{result.stft_distance:.3f} (0 = identical)",
            "chunked": run.settings.get("chunked"),
            **parts.run_rows(run),
        }
        return render.result_html(header, [before, after], rows)


autoencoder_form = AutoencoderForm  # notebook 03
