"""An autoencoder round trip (encode, then decode) as a checked request and its measured result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import catalog
from .audio_input import check_readable
from .runs import RunResult

AUTOENCODER_KEYS = ("same-s", "same-l", "demo")
LOCAL_FOLDER_MAX_S = 380.0


@dataclass
class RoundTripRequest:
    """``model`` is same-s, same-l, demo (the tiny demo model's autoencoder) or a local folder."""

    model: str
    audio: str = ""  # a file to encode; empty: the built-in test chord
    duration: float = 5.0  # length of the test chord; files are cut to their first ``duration`` seconds
    chunked: bool = False
    seed: int = -1
    output_dir: str = "outputs"

    def is_local(self) -> bool:
        return self.model not in catalog.ENTRIES

    def check(self) -> None:
        """Raise ValueError with one sentence for anything a person must fix."""
        limit = LOCAL_FOLDER_MAX_S
        if self.is_local():
            if not Path(self.model).expanduser().is_dir():
                raise ValueError(
                    f"{self.model!r} is neither {', '.join(AUTOENCODER_KEYS)} nor an existing folder; "
                    "choose a model or type the folder that holds model_config.json and model.safetensors."
                )
        else:
            entry = catalog.get(self.model)
            if entry.key not in AUTOENCODER_KEYS:
                raise ValueError(
                    f"{entry.key} is a text-to-audio model; choose same-s or same-l here "
                    "(text-to-audio models are in notebooks 01 and 02)."
                )
            limit = entry.max_duration_s
        if not 0 < self.duration <= limit:
            raise ValueError(
                f"Duration must be more than 0 and at most {limit:g} s for {self.model}; "
                f"got {self.duration:g} s."
            )
        if self.audio.strip():
            check_readable(self.audio)
        if self.seed < -1:
            raise ValueError(f"Seed must be -1 (random) or a number of 0 or more; got {self.seed}.")


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
