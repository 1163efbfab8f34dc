"""Prompt Assistant: a small instruction model that expands a short idea into a full SA3 prompt.

As in upstream's Gradio UI (``stable_audio_3/interface/reprompt.py`` @636f906) the model is
``Qwen/Qwen3.5-2B`` run locally through transformers: its chat template with thinking turned off, the
preset's instructions as the system message, ``Input: <idea>\\nOutput: `` as the user message,
sampling at temperature 1.11 with at most 128 new tokens, and up to five tries until an answer keeps
the style (:mod:`sa3lab.prompt_style`). ``greedy=True`` decodes greedily instead: reproducible, one try.

The model is downloaded on first use through huggingface_hub (its cache, ``HF_ENDPOINT`` and
``HF_HUB_OFFLINE`` apply; the model's ``config.json`` is read first, so a transformers too old for
the architecture is reported before gigabytes arrive), then kept loaded: :func:`shared` gives the
kernel's one assistant. It runs on the GPU when there is one (:mod:`sa3lab.device`).
"""

from __future__ import annotations

import functools
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
import torch
from tqdm.std import tqdm

from stable_audio_3 import hub

from . import device, prompt_style

MODEL_ID = "Qwen/Qwen3.5-2B"
DOWNLOAD_GB = 4.2  # upstream's button: "Download Prompt Assistant (~4.2 GB)"
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt"]
TEMPERATURE = 1.11
MAX_NEW_TOKENS = 128
CLASSIFIER_TOKENS = 16
MAX_ATTEMPTS = 5
TYPICAL_NEW_TOKENS = 70  # a 45-word answer is about 60-70 tokens
# First transformers release with the architecture (5.1 lacks qwen3_5, 5.2 has it)
MIN_TRANSFORMERS = {"qwen3_5": "5.2"}
# Qwen3.5-2B's language model (vision tower not loaded): 1.37 B in the layers + 0.51 B tied
# embeddings, counted from its model card's sizes; used when its config.json is not at hand.
TEXT_PARAMETERS, EMBEDDING_PARAMETERS = 1_881_825_088, 508_559_360


@dataclass(frozen=True)
class Expansion:
    """One expanded idea, ready for the form and the run record."""

    idea: str
    preset: str  # as chosen
    category: str  # the preset the text was written with ("Auto" resolved)
    text: str  # the prompt: tag + sentence + BPM, without the length
    duration_s: int | None  # the length the model proposed, if it gave one
    raw: str  # the model's answer as it came
    follows_style: bool  # False: no try kept the rules, ``text`` is the last try's
    attempts: int
    new_tokens: int
    greedy: bool
    temperature: float | None
    max_new_tokens: int
    model_id: str
    revision: str | None
    device: str
    dtype: str
    seconds: float  # classifying and writing, not loading
    load_s: float  # downloading and loading done by this call (0 once loaded)

    def metadata(self) -> dict:
        """What a run's record keeps of the expansion it was written from (no timings)."""
        kept = (
            "idea",
            "preset",
            "category",
            "text",
            "greedy",
            "temperature",
            "model_id",
            "revision",
            "device",
        )
        return {name: getattr(self, name) for name in kept}


@dataclass(frozen=True)
class CpuEstimate:
    """How long an expansion takes on this machine's CPU, from the model's size and measured speeds.

    Prefill costs 2 FLOPs per layer weight per prompt token at the measured matrix-multiply rate;
    every new token reads all weights once (float32) at the measured memory rate.
    """

    typical_s: float
    longest_s: float
    parameters: int
    prompt_tokens: int
    gflops: float
    gbytes_per_s: float

    def sentence(self) -> str:
        return (
            f"On this CPU an expansion takes about {self.typical_s:.0f} s (up to {self.longest_s:.0f} s), "
            f"estimated from {self.parameters / 1e9:.2f} B parameters, {self.prompt_tokens} prompt tokens "
            f"and this machine's measured {self.gflops:.0f} GFLOP/s and {self.gbytes_per_s:.0f} GB/s; "
            "a GPU takes seconds."
        )


def unsupported_architecture(config: dict, source: str) -> str | None:
    """One sentence if the installed transformers cannot run the model ``config`` describes."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = config.get("model_type", "")
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return None
    need = MIN_TRANSFORMERS.get(model_type)
    needs = f" (it needs transformers {need} or newer)" if need else ""
    upgrade = f'pip install -U "transformers>={need}"' if need else "pip install -U transformers"
    return (
        f"The Prompt Assistant's model {source} is a {model_type!r} model, which transformers "
        f"{transformers.__version__} cannot run{needs}: run `{upgrade}`, then restart the kernel."
    )


def transformers_too_old(model_type: str = "qwen3_5") -> str | None:
    """One sentence, said before anything is clicked or downloaded, when the installed transformers is
    older than the first release that runs ``model_type`` (Kaggle ships 5.0, Qwen3.5 needs 5.2)."""
    from importlib.metadata import version

    from packaging.version import Version

    need, have = MIN_TRANSFORMERS.get(model_type), version("transformers")
    if need is None or Version(have) >= Version(need):
        return None
    return (
        f"The Prompt Assistant needs transformers {need} or newer for {MODEL_ID} and this runtime has "
        f'{have} (Kaggle\'s is 5.0): run `pip install -U "transformers>={need}"` and restart the kernel '
        "to use it; everything else works with this transformers."
    )


def _check_architecture(config_path: Path, source: str) -> None:
    problem = unsupported_architecture(json.loads(Path(config_path).read_text()), source)
    if problem:
        raise ValueError(problem)


class PromptAssistant:
    """Expands ideas with one instruction model (a Hub repo id or a local folder), loaded on first use."""

    def __init__(
        self, model_id: str = MODEL_ID, revision: str | None = None, *, machine=None, device_name=None
    ):
        self.model_id, self.revision = model_id, revision
        self.policy = device.choose(machine or device.probe(), device=device_name)
        self.dtype = device.language_model_dtype(self.policy)
        self.loaded_revision: str | None = None
        self._tokenizer = None
        self._model = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _local_folder(self) -> Path | None:
        path = Path(self.model_id).expanduser()
        return path if path.is_dir() else None

    def is_cached(self) -> bool:
        """Whether the weights are already here (a local folder, or the Hub cache); no network."""
        if self._local_folder() is not None or self.loaded:
            return True
        config = huggingface_hub.try_to_load_from_cache(
            self.model_id, "config.json", cache_dir=hub.default_cache_dir(), revision=self.revision
        )
        return isinstance(config, str) and any(Path(config).parent.glob("*.safetensors"))

    def load(self, token=None, progress=None) -> float:
        """Download (first use) and load the model; the seconds this took, 0 if it was loaded."""
        if self.loaded:
            return 0.0
        start = time.perf_counter()
        folder = self._local_folder()
        if folder is not None:
            _check_architecture(folder / "config.json", self.model_id)
        else:
            folder = self._download(token, progress)
        if progress is not None:
            progress.stage(f"loading the Prompt Assistant ({self.policy.device}, {_name(self.dtype)})")
        self._tokenizer, self._model = _load(folder, self.dtype, self.policy.device)
        return time.perf_counter() - start

    def _download(self, token, progress) -> Path:
        if progress is not None:
            progress.stage(f"checking {self.model_id}")
        try:
            config_path = hub.download(self.model_id, "config.json", token=token, revision=self.revision)
        except hub.HubAccessError as exc:
            if exc.reason != "not_found":
                raise
            raise hub.HubAccessError(
                f"{self.model_id} was not found on the Hub or has no config.json; check the Prompt "
                "Assistant's model id (the default is Qwen/Qwen3.5-2B).",
                "not_found",
                self.model_id,
            ) from None
        _check_architecture(config_path, self.model_id)
        bars = _DownloadBars(progress, self.model_id)
        try:
            folder = hub.download_snapshot(
                self.model_id, DOWNLOAD_PATTERNS, token=token, revision=self.revision, tqdm_class=bars.cls
            )
        except hub.HubAccessError:
            bars.reraise()  # a Stop pressed during the download, not a download failure
            raise
        self.loaded_revision = folder.name
        return folder

    def unload(self) -> None:
        """Drop the model (frees its memory); the next expansion loads it again from the cache."""
        from .cache import free_memory

        self._tokenizer = self._model = None
        free_memory()

    def expand(
        self,
        idea: str,
        preset: str = "Auto",
        *,
        greedy: bool = False,
        temperature: float = TEMPERATURE,
        max_new_tokens: int = MAX_NEW_TOKENS,
        token=None,
        progress=None,
    ) -> Expansion:
        """Expand ``idea`` with ``preset`` (Auto picks Music, Instrument, SFX or One-shot)."""
        idea = _check_request(idea, preset, greedy, temperature, max_new_tokens)
        load_s = self.load(token, progress)
        start = time.perf_counter()
        category = preset if preset != "Auto" else self._category(idea, progress)
        tries = 1 if greedy else MAX_ATTEMPTS
        for attempt in range(1, tries + 1):
            raw, new_tokens = self._answer(
                prompt_style.SYSTEM_PROMPTS[category],
                idea,
                greedy,
                temperature,
                max_new_tokens,
                progress,
                f"writing a {category} prompt" + (f" (try {attempt})" if attempt > 1 else ""),
            )
            if prompt_style.follows_style(raw):
                break
        text, duration_s = prompt_style.finish(raw, category)
        if not text:
            raise ValueError(
                "The Prompt Assistant wrote nothing usable for this idea; press Expand again or write the "
                "prompt yourself."
            )
        return Expansion(
            idea=idea, preset=preset, category=category, text=text, duration_s=duration_s, raw=raw,
            follows_style=prompt_style.follows_style(raw), attempts=attempt, new_tokens=new_tokens,
            greedy=greedy, temperature=None if greedy else temperature, max_new_tokens=max_new_tokens,
            model_id=self.model_id, revision=self.loaded_revision, device=self.policy.device,
            dtype=_name(self.dtype), seconds=time.perf_counter() - start, load_s=load_s,
        )  # fmt: skip

    def _category(self, idea: str, progress) -> str:
        tagged = prompt_style.category_from_tags(idea)
        if tagged:
            return tagged
        label, _ = self._answer(
            prompt_style.CLASSIFIER_PROMPT, idea, True, None, CLASSIFIER_TOKENS, progress, "choosing a preset"
        )
        return prompt_style.category_from_label(label)

    def _answer(self, system, idea, greedy, temperature, max_new_tokens, progress, label) -> tuple[str, int]:
        """The model's answer to one chat turn and the number of tokens it wrote."""
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Input: {idea}\nOutput: "},
        ]
        text = self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        inputs = self._tokenizer(text, return_tensors="pt").to(self.policy.device)
        sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": temperature}
        with torch.inference_mode():
            output = self._model.generate(
                **inputs,
                **sampling,
                max_new_tokens=max_new_tokens,
                pad_token_id=self._tokenizer.pad_token_id,
                streamer=None if progress is None else _TokenProgress(progress, max_new_tokens, label),
            )
        new = output[0, inputs["input_ids"].shape[-1] :]
        return self._tokenizer.decode(new, skip_special_tokens=True), int(new.numel())

    def cpu_estimate(self, preset: str = "Auto") -> CpuEstimate:
        """How long one expansion with ``preset`` takes on this CPU (measures the CPU, ~1 s)."""
        prompt_style.check_preset(preset)
        parameters, embeddings = self._parameter_counts()
        turns = [prompt_style.SYSTEM_PROMPTS["Music" if preset == "Auto" else preset]]
        if preset == "Auto":
            turns.append(prompt_style.CLASSIFIER_PROMPT)
        prompt_tokens = sum(self._count_tokens(t) for t in turns)
        extra = CLASSIFIER_TOKENS if preset == "Auto" else 0
        gflops, gbytes = measure_cpu()
        prefill = 2 * (parameters - embeddings) * prompt_tokens / (gflops * 1e9)
        per_token = 4 * parameters / (gbytes * 1e9)
        return CpuEstimate(
            typical_s=prefill + per_token * (TYPICAL_NEW_TOKENS + extra),
            longest_s=prefill + per_token * (MAX_NEW_TOKENS + extra),
            parameters=parameters,
            prompt_tokens=prompt_tokens,
            gflops=gflops,
            gbytes_per_s=gbytes,
        )

    def _parameter_counts(self) -> tuple[int, int]:
        """(all, embedding) parameters of the language model: counted if loaded or its config is here."""
        if self._model is None:
            config = self._cached_config()
            if config is None:
                return TEXT_PARAMETERS, EMBEDDING_PARAMETERS
            from transformers import AutoConfig, AutoModelForCausalLM

            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config.parent))
        else:
            model = self._model
        return sum(p.numel() for p in model.parameters()), model.get_input_embeddings().weight.numel()

    def _cached_config(self) -> Path | None:
        """The model's config.json if it is here and this transformers can build the model."""
        folder = self._local_folder()
        found = (
            folder / "config.json"
            if folder is not None
            else huggingface_hub.try_to_load_from_cache(
                self.model_id, "config.json", cache_dir=hub.default_cache_dir(), revision=self.revision
            )
        )
        if not isinstance(found, (str, Path)) or not Path(found).is_file():
            return None
        config = json.loads(Path(found).read_text())
        return None if unsupported_architecture(config, self.model_id) else Path(found)

    def _count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            return math.ceil(len(text) / 4)  # about 4 characters per token for English text
        return len(self._tokenizer(text)["input_ids"])


def _check_request(idea, preset, greedy, temperature, max_new_tokens) -> str:
    prompt_style.check_preset(preset)
    idea = (idea or "").strip()
    if not idea:
        raise ValueError(
            "Type a short idea first (for example 'rainy lo-fi beat'); the Prompt Assistant expands it into "
            "a full prompt."
        )
    if not isinstance(max_new_tokens, int) or not 8 <= max_new_tokens <= 1024:
        raise ValueError(f"max_new_tokens must be a whole number from 8 to 1024, not {max_new_tokens!r}.")
    if not greedy and not (isinstance(temperature, (int, float)) and 0 < temperature <= 2):
        raise ValueError(
            f"The temperature must be above 0 and at most 2 (upstream uses 1.11), not {temperature!r}."
        )
    return idea


def _load(folder: Path, dtype: torch.dtype, device_name: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report lists the vision tower, which is not needed
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    finally:
        hf_logging.set_verbosity(verbosity)
    return tokenizer, model.to(device_name).eval().requires_grad_(False)


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@functools.cache
def measure_cpu(width: int = 2048) -> tuple[float, float]:
    """(GFLOP/s of a float32 matrix multiply, GB/s of a matrix-vector product) on this CPU."""

    def best(fn, repeats):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    with torch.inference_mode():
        tokens, weights = torch.randn(256, width), torch.randn(width, 4 * width)
        gflops = 2 * 256 * width * 4 * width / best(lambda: tokens @ weights, 3) / 1e9
        matrix, vector = torch.randn(8 * width, width), torch.randn(width)
        gbytes = matrix.numel() * 4 / best(lambda: matrix @ vector, 5) / 1e9
    return gflops, gbytes


class _DownloadBars:
    """A tqdm class for huggingface_hub that reports its bars to a progress object (or nowhere).

    Byte counts (which recent huggingface_hub versions report) win over the file count once they
    arrive. An exception the progress object raises (Stop) ends the download; :meth:`reraise` raises
    it again in place of the download error it caused.
    """

    def __init__(self, progress, label: str):
        self.progress, self.label = progress, label
        self.error: Exception | None = None
        self.bytes_seen = False
        owner = self

        class Bar(tqdm):
            def __init__(self, *args, **kwargs):
                kwargs.pop("name", None)  # huggingface_hub's own bars take a name; tqdm does not
                super().__init__(*args, **{**kwargs, "disable": False, "file": io.StringIO()})

            def update(self, n=1):
                shown = super().update(n)
                owner.report(self)
                return shown

        self.cls = Bar

    def report(self, bar) -> None:
        if self.progress is None:
            return
        total = max(bar.total or 0, bar.n)
        is_bytes = bar.unit == "B" and total > 0
        if not is_bytes and self.bytes_seen:
            return
        self.bytes_seen |= is_bytes
        text = f"downloading {self.label}: " + (
            f"{_size(bar.n)} of {_size(total)}" if is_bytes else f"file {bar.n} of {total}"
        )
        scale = 1000 if is_bytes else 1
        try:
            self.progress.step(int(bar.n // scale), int(total // scale), text)
        except Exception as exc:
            self.error = exc
            raise

    def reraise(self) -> None:
        if self.error is not None:
            raise self.error


def _size(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


class _TokenProgress:
    """A transformers streamer that reports each new token to a progress object."""

    def __init__(self, progress, total: int, label: str):
        self.progress, self.total, self.label, self.tokens = progress, total, label, -1

    def put(self, value) -> None:
        self.tokens += 1  # the first call carries the prompt
        if self.tokens:
            self.progress.step(self.tokens, self.total, self.label)

    def end(self) -> None:
        pass
