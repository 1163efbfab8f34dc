"""The round-trip job: encode audio with a SAME autoencoder, decode it back, measure how close it is."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from . import catalog, checks, defaults, metrics
from .audio_input import REFERENCE_CHORD_RATE, check_readable, read_audio, reference_chord
from .progress import NoProgress
from .runs import RunResult, new_result, random_seed, save_result

AUTOENCODER_KEYS = (*catalog.keys("autoencoder"), "demo")  # demo: the demo model's autoencoder
LOCAL_FOLDER_MAX_S = 380.0


@dataclass
class RoundTripRequest(catalog.ModelRequest):
    """``model`` is same-s, same-l, demo (the tiny demo model's autoencoder) or a local folder."""

    model: str
    audio: str = ""  # a file to encode; empty: the built-in test chord
    duration: float = 5.0  # length of the test chord; files are cut to their first ``duration`` seconds
    chunked: bool = False
    seed: int = -1
    output_dir: str = defaults.OUTPUT_DIR

    def check(self) -> None:
        """Raise ValueError with one sentence for anything a person must fix (values normalised in place)."""
        self.model = checks.path("The model must be same-s, same-l, demo or a model folder", self.model)
        entry = self.entry()
        if entry is not None and entry.key not in AUTOENCODER_KEYS:
            raise ValueError(
                f"{entry.key} is a text-to-audio model; choose same-s or same-l here "
                "(text-to-audio models are in notebooks 01 and 02)."
            )
        limit = LOCAL_FOLDER_MAX_S if entry is None else entry.max_duration_s
        self.duration = checks.real(
            f"Duration must be a number of seconds, more than 0 and at most {limit:g} s for {self.model}",
            self.duration,
            above=0,
            high=limit,
        )
        self.audio = checks.path("The audio must be a file path (or empty: the test chord)", self.audio, True)
        if self.audio.strip():
            check_readable(self.audio)
        self.chunked = checks.flag("chunked must be True or False", self.chunked)
        self.seed = checks.seed(self.seed)
        self.output_dir = checks.path(
            "The output folder must be a folder path, e.g. 'outputs'", self.output_dir
        )


@dataclass
class RoundTripResult:
    """What went in and came out at ``sample_rate`` as (channels, samples), and how far apart they are."""

    before: torch.Tensor
    after: torch.Tensor
    sample_rate: int
    latent_shape: tuple[int, ...]
    latent_rate_hz: float
    snr_db: float
    stft_distance: float
    source: str
    run: RunResult  # the decoded audio as saved, with timings and metadata


def _input(request: RoundTripRequest) -> tuple[int, torch.Tensor, str]:
    """(rate, (channels, samples), label) of the file (its first two channels), or of the test chord."""
    if request.audio.strip():
        rate, audio = read_audio(request.audio, max_seconds=request.duration)
        label = request.audio.strip()
        if audio.shape[0] > 2:  # the autoencoders are stereo: keep the first two, as generation does
            label, audio = f"{label} (channels 1-2 of {audio.shape[0]})", audio[:2]
        return rate, audio, label
    return REFERENCE_CHORD_RATE, reference_chord(request.duration), f"test chord ({request.duration:g} s)"


def run(core, request: RoundTripRequest, pasted_token: str | None = None, progress=None) -> RoundTripResult:
    """Encode a file (or the built-in test chord) with a SAME autoencoder, decode it, measure, save."""
    if not isinstance(request, RoundTripRequest):
        raise ValueError(f"A round trip takes a RoundTripRequest; got {checks.shown(request)}.")
    progress = progress or NoProgress()
    start = time.perf_counter()
    loaded = core.load(request.model, pasted_token, progress, autoencoder=True)
    ae, cache_hit = loaded.model, loaded.cache_hit
    rate, audio, label = _input(request)
    sr = int(ae.sample_rate)
    length = max(1, round(audio.shape[-1] * sr / rate))
    before = ae.prepare(audio, rate)[0, :, :length].to("cpu", torch.float32)
    seed = random_seed() if request.seed == -1 else request.seed
    timings = dict(loaded.timings)
    progress.start(2, "encoding")
    t0 = time.perf_counter()
    latents = ae.encode(before.unsqueeze(0), sr, chunked=request.chunked)
    timings["encoding"] = time.perf_counter() - t0
    progress.step(1, 2, "decoding")
    t0 = time.perf_counter()
    noise = torch.Generator(ae.device).manual_seed(seed)  # this run's own: runs in parallel stay apart
    after = ae.decode(latents, chunked=request.chunked, generator=noise)[0].to("cpu", torch.float32)[
        ..., :length
    ]
    timings["decoding"] = time.perf_counter() - t0
    progress.step(2, 2, "measuring")
    timings["total"] = time.perf_counter() - start
    latent_rate = sr / ae.downsampling_ratio
    snr, distance = metrics.snr_db(before, after), metrics.multi_resolution_stft_distance(before, after)
    result = new_result(
        ae,
        after.unsqueeze(0),
        seed=seed,
        model_key=request.model,
        timings=timings,
        cache_hit=cache_hit,
        settings={
            "source": label,
            "duration": request.duration,
            "chunked": request.chunked,
            "latent_shape": list(latents.shape),
            "latent_rate_hz": latent_rate,
            "snr_db": snr,
            "multi_resolution_stft_distance": distance,
        },
        requested_s=length / sr,
    )
    save_result(result, request.output_dir)
    return RoundTripResult(before, after, sr, tuple(latents.shape), latent_rate, snr, distance, label, result)
