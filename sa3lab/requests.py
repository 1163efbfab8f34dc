"""What a form asks the lab to do, checked once with messages a person can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import catalog

MODES = ("text-to-audio", "audio-to-audio", "inpaint")


@dataclass
class GenerationRequest:
    """One generation. ``model`` is a catalog key or a local model folder. Holds no token."""

    model: str
    prompt: str
    duration: float = 10.0
    negative_prompt: str = ""
    steps: int | None = None  # None: the model's default
    cfg_scale: float | None = None
    seed: int = -1
    batch_size: int = 1
    mode: str = "text-to-audio"
    source_audio: str | None = None  # file for audio-to-audio / inpainting
    init_noise_level: float = 0.7
    regions: list[tuple[float, float]] = field(default_factory=list)  # inpaint (start, end) seconds
    lora_files: list[str] = field(default_factory=list)
    lora_strengths: list[float] = field(default_factory=list)
    output_dir: str = "outputs"

    def entry(self) -> catalog.Entry | None:
        """The catalog entry, or None for a local folder."""
        if Path(self.model).expanduser().is_dir():
            return None
        return catalog.get(self.model)

    def check(self) -> None:
        """Raise ValueError with one sentence for anything a person must fix."""
        entry = self.entry()
        if entry is not None and not entry.runnable:
            raise ValueError(f"{entry.key} cannot run here: {entry.not_runnable_reason}")
        if entry is not None and entry.kind != "generation":
            raise ValueError(f"{entry.key} is an autoencoder; use the SAME notebook (03) for it.")
        if not self.prompt.strip():
            raise ValueError("Enter a prompt: describe the audio you want, e.g. 'rain on a tin roof'.")
        limit = entry.max_duration_s if entry is not None else None
        if not self.duration > 0 or (limit is not None and self.duration > limit):
            raise ValueError(
                f"Duration must be more than 0 and at most {limit:g} s for {self.model}; "
                f"got {self.duration:g} s."
                if limit is not None
                else f"Duration must be more than 0 seconds; got {self.duration:g}."
            )
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"Steps must be at least 1; got {self.steps}.")
        if self.cfg_scale is not None and self.cfg_scale < 0:
            raise ValueError(f"CFG scale must be 0 or more; got {self.cfg_scale:g}.")
        if not 1 <= self.batch_size <= 16:
            raise ValueError(f"Batch size must be between 1 and 16; got {self.batch_size}.")
        if self.mode not in MODES:
            raise ValueError(f"Mode must be one of {', '.join(MODES)}; got {self.mode!r}.")
        if self.mode != "text-to-audio":
            if not self.source_audio or not Path(self.source_audio).expanduser().is_file():
                raise ValueError(
                    f"Choose an existing audio file for {self.mode}; {self.source_audio!r} was not found."
                )
        if self.mode == "audio-to-audio" and not 0 < self.init_noise_level <= 1:
            raise ValueError(f"The noise level must be above 0 and at most 1; got {self.init_noise_level:g}.")
        if self.mode == "inpaint":
            if not self.regions:
                raise ValueError("Add at least one region to regenerate (start and end in seconds).")
            for start, end in self.regions:
                if not 0 <= start < end <= self.duration:
                    raise ValueError(
                        f"The region {start:g}-{end:g} s must lie inside 0-{self.duration:g} s "
                        "with start < end."
                    )
        if len(self.lora_strengths) not in (0, len(self.lora_files)):
            raise ValueError("Give one LoRA strength per LoRA file (or none for strength 1).")
