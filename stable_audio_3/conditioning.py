"""Prompt and duration conditioners: T5Gemma text embeddings and the ``seconds_total`` embedding.

The module tree holds only the checkpoint's ``conditioner.*`` weights (the learned padding embedding
and the duration Linear). The T5Gemma encoder is a bundled copy of ``google/t5gemma-b-b-ul2`` in its
own folder; it lives in a plain :class:`TextEncoder` object outside the tree, so it is never built on
the meta device, never listed in the state dict and never cast with the rest of the model. It runs in
the dtype its ``config.json`` records (bfloat16) with eager attention, which applies the 50.0
attention-logit soft-cap like the reference.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import checks
from .layers import expo_fourier_features
from .loading import CheckpointMismatchError

TEXT_MODEL_NAME = "google/t5gemma-b-b-ul2"
TEXT_WIDTH = 768
TEXT_ENCODER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
# The bundled checkpoint is encoder-decoder; the encoder-only model drops these weights on purpose.
_DECODER_PREFIXES = ("model.decoder.", "decoder.", "lm_head.")
NUMBER_FEATURES = 256
PROMPT_PADDING_MODES = ("learned", "zero", "none")
INPUT_OF = {"prompt": "prompts", "seconds_total": "durations"}
CACHE_ENTRIES = 8


@dataclass
class Conditioning:
    """What the DiT receives: cross-attention tokens and their mask, and the global vector."""

    cross_attn: torch.Tensor  # (B, tokens, dim)
    cross_attn_mask: torch.Tensor  # (B, tokens), 1 for valid tokens
    global_cond: torch.Tensor | None  # (B, dim)


# --------------------------------------------------------------------------- text encoder


def _check_loading_info(info: dict, weights: Path) -> None:
    """Raise if transformers left a weight uninitialised or found one it did not use."""
    missing = sorted(info["missing_keys"])
    unexpected = sorted(k for k in info["unexpected_keys"] if not k.startswith(_DECODER_PREFIXES))
    mismatched = sorted(str(k) for k in info["mismatched_keys"])
    if missing:
        raise CheckpointMismatchError(
            f"{weights} has no weight '{missing[0]}' ({len(missing)} missing in all); "
            "the text-encoder folder is incomplete or belongs to another model."
        )
    if unexpected:
        raise CheckpointMismatchError(
            f"{weights} has an unexpected weight '{unexpected[0]}' ({len(unexpected)} in all); "
            "the text-encoder folder belongs to another model."
        )
    if mismatched or info["error_msgs"]:
        detail = mismatched[0] if mismatched else info["error_msgs"][0]
        raise CheckpointMismatchError(f"{weights} does not fit its config.json: {detail}.")


def load_text_encoder(folder: Path) -> nn.Module:
    """The T5Gemma encoder of ``folder`` on the CPU, in its recorded dtype, loaded strictly."""
    from transformers import AutoConfig, T5GemmaEncoderModel
    from transformers.utils import logging as hf_logging

    weights = folder / "model.safetensors"
    config = AutoConfig.from_pretrained(str(folder), is_encoder_decoder=False)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # its load report would list the decoder weights we skip
    hf_logging.disable_progress_bar()  # a bar for a second-long load only litters saved notebooks
    try:
        with torch.device("cpu"):
            model, info = T5GemmaEncoderModel.from_pretrained(
                str(folder),
                config=config,
                dtype="auto",
                attn_implementation="eager",
                output_loading_info=True,
            )
    except RuntimeError as err:
        raise CheckpointMismatchError(f"{weights} does not fit its config.json: {err}") from err
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    _check_loading_info(info, weights)
    width = model.config.encoder.hidden_size
    if width != TEXT_WIDTH:
        raise CheckpointMismatchError(
            f"{folder}/config.json describes a {width}-wide encoder; "
            f"SA3 needs {TEXT_MODEL_NAME} ({TEXT_WIDTH})."
        )
    return model.eval().requires_grad_(False)


def _same_device(current: torch.device, wanted: torch.device) -> bool:
    return current.type == wanted.type and wanted.index in (None, current.index)


@dataclass(frozen=True)
class PromptFit:
    """A prompt's length in tokens against what the text encoder keeps (``max_length``, the model
    config's); ``cut_at``: the number of characters kept when it is longer, else None."""

    tokens: int
    max_tokens: int
    cut_at: int | None

    @property
    def cut(self) -> bool:
        return self.cut_at is not None


class TextEncoder:
    """Tokenizer + T5Gemma encoder of a local folder, loaded on first use.

    :meth:`encode` keeps the last few results keyed by the prompt list, on the encoder's device
    (the cache is safe to use from several threads at once).
    """

    def __init__(self, folder: Path, max_length: int):
        self.folder = folder
        self.max_length = max_length
        self._tokenizer = None
        self._model: nn.Module | None = None
        self._cache: OrderedDict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            self._model = load_text_encoder(self.folder)
        return self._model

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder))
        return self._tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> TextEncoder:
        """Move the encoder to ``device`` (dtype unchanged); a real move empties the cache."""
        device = torch.device(device)
        if not _same_device(self.device, device):
            self._model = self.model.to(device)
            self._cache.clear()
        return self

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, max_length) and a bool mask of the real tokens, right-padded."""
        encoded = self.tokenizer(
            list(prompts),
            truncation=True,
            max_length=self.max_length,
            padding="max_length",
            return_tensors="pt",
        )
        return encoded["input_ids"], encoded["attention_mask"].to(torch.bool)

    def fit(self, prompt: str) -> PromptFit:
        """How much of ``prompt`` the encoder takes: its tokens, the most it keeps, and where a cut falls."""
        tokens = len(self.tokenizer(checks.text("prompt", prompt))["input_ids"])
        if tokens <= self.max_length:
            return PromptFit(tokens, self.max_length, None)
        kept = self.tokenizer(
            prompt, truncation=True, max_length=self.max_length, return_offsets_mapping=True
        )
        ends = [end for _, end in kept["offset_mapping"] if end]  # special tokens cover no text
        return PromptFit(tokens, self.max_length, max(ends, default=0))

    def encode(self, prompts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        """Last hidden state (B, max_length, 768) in the encoder's dtype and the token mask."""
        self.to(device)
        key = tuple(prompts)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        ids, mask = self.tokenize(prompts)
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.no_grad():
            hidden = self.model(input_ids=ids, attention_mask=mask)["last_hidden_state"]
        with self._cache_lock:
            self._cache[key] = (hidden, mask)
            if len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return hidden, mask


# --------------------------------------------------------------------------- conditioners


class PromptConditioner(nn.Module):
    """T5Gemma embeddings with the padded positions handled per ``padding_mode``.

    ``learned`` replaces them by ``padding_embedding``; the mixed-dtype ``where`` promotes the
    bfloat16 text to the parameter's dtype or float32, as upstream does.
    """

    def __init__(self, text_encoder: TextEncoder, dim: int, padding_mode: str):
        super().__init__()
        if padding_mode not in PROMPT_PADDING_MODES:
            raise ValueError(
                f"Unknown prompt padding_mode {padding_mode!r}; use one of {PROMPT_PADDING_MODES}."
            )
        self.text_encoder = text_encoder
        self.padding_mode = padding_mode
        if padding_mode == "learned":
            self.padding_embedding = nn.Parameter(torch.zeros(dim))

    def forward(self, prompts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, mask = self.text_encoder.encode(prompts, device)
        if self.padding_mode == "learned":
            return torch.where(mask[..., None], hidden, self.padding_embedding), mask
        if self.padding_mode == "zero":
            return hidden * mask[..., None].float(), mask
        return hidden, mask


class ExpoFourierFeatures(nn.Module):
    """Parameter-free module wrapper of :func:`expo_fourier_features` (index 0 of the embedder)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return expo_fourier_features(t, self.dim)


class NumberEmbedder(nn.Module):
    """``embedding = [ExpoFourierFeatures(256), Linear(256, dim)]`` (checkpoint keys ``embedding.1.*``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.embedding = nn.Sequential(ExpoFourierFeatures(NUMBER_FEATURES), nn.Linear(NUMBER_FEATURES, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of float32 ``x`` (a half-precision input would put its rounding into the phases
        of the high frequencies), then the Linear in its own dtype."""
        features, linear = self.embedding[0](x.float()), self.embedding[1]
        return linear(features.to(linear.weight.dtype))


class NumberConditioner(nn.Module):
    """A number clamped to [min_val, max_val], scaled to [0, 1] and embedded as one (B, 1, dim) token."""

    def __init__(self, dim: int, min_val: float, max_val: float):
        super().__init__()
        if not max_val > min_val:
            raise ValueError(f"Number conditioner needs max_val > min_val, got [{min_val}, {max_val}].")
        self.min_val = min_val
        self.max_val = max_val
        self.embedder = NumberEmbedder(dim)

    def forward(self, values: list[float], device) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor([float(v) for v in values], dtype=torch.float32, device=device)
        x = x.clamp(self.min_val, self.max_val)
        x = (x - self.min_val) / (self.max_val - self.min_val)
        embeds = self.embedder(x)[:, None, :]
        return embeds, torch.ones(embeds.shape[0], 1, device=device)


def prompt_max_length(config: dict) -> int:
    """The most tokens of a prompt the T5Gemma conditioner (its ``config``) reads."""
    return int(config.get("max_length", 128))


@functools.lru_cache(maxsize=4)
def prompt_reader(folder: Path, max_length: int) -> TextEncoder:
    """A text encoder of ``folder`` used only to count tokens (:meth:`TextEncoder.fit`): its weights are
    never loaded; the last few are kept, so a form can ask on every keystroke."""
    return TextEncoder(folder, max_length)


def _prompt_conditioner(config: dict, dim: int, text_encoder_dir) -> PromptConditioner:
    name = config.get("model_name", TEXT_MODEL_NAME)
    if name != TEXT_MODEL_NAME:
        raise ValueError(f"Unsupported text encoder {name!r}; SA3 models use {TEXT_MODEL_NAME!r}.")
    if config.get("project_out", False) or dim != TEXT_WIDTH:
        raise ValueError(
            f"The prompt conditioner projects {TEXT_WIDTH} -> {dim}; this engine supports only the released "
            f"layout (cond_dim {TEXT_WIDTH}, project_out false)."
        )
    if text_encoder_dir is None:
        raise ValueError(
            "The model config has a T5Gemma prompt conditioner but no text-encoder folder was given; "
            "pass the folder holding the t5gemma-b-b-ul2 files."
        )
    folder = Path(text_encoder_dir)
    missing = [file for file in TEXT_ENCODER_FILES if not (folder / file).is_file()]
    if missing:
        raise ValueError(
            f"The text-encoder folder {folder} lacks {missing[0]}; it needs {TEXT_ENCODER_FILES}."
        )
    text_encoder = TextEncoder(folder, prompt_max_length(config))
    return PromptConditioner(text_encoder, dim, config.get("padding_mode", "zero"))


def _number_conditioner(config: dict, dim: int) -> NumberConditioner:
    features = config.get("fourier_features_type", "learned")
    if features != "expo":
        raise ValueError(
            f"Number conditioner fourier_features_type {features!r} is not supported; "
            "released models use 'expo'."
        )
    return NumberConditioner(dim, config.get("min_val", 0), config.get("max_val", 1))


class Conditioners(nn.Module):
    """The conditioners of a model config (keys ``conditioners.<id>.*``) and their routing to the DiT."""

    def __init__(self, conditioners: dict[str, nn.Module], cross_attention_cond_ids, global_cond_ids):
        super().__init__()
        for cid in [*cross_attention_cond_ids, *global_cond_ids]:
            if cid not in conditioners:
                raise ValueError(
                    f"The diffusion config routes {cid!r}, which is not a conditioner in the config."
                )
        self.conditioners = nn.ModuleDict(conditioners)
        self.cross_attention_cond_ids = list(cross_attention_cond_ids)
        self.global_cond_ids = list(global_cond_ids)

    @classmethod
    def from_config(
        cls,
        conditioning: dict,
        text_encoder_dir,
        *,
        cross_attention_cond_ids=("prompt", "seconds_total"),
        global_cond_ids=("seconds_total",),
    ) -> Conditioners:
        """Build from ``model.conditioning``; the routing ids come from ``model.diffusion``."""
        dim = int(conditioning["cond_dim"])
        conditioners = {}
        for entry in conditioning["configs"]:
            cid, kind, config = entry["id"], entry["type"], entry.get("config", {})
            if cid not in INPUT_OF:
                raise ValueError(f"Unsupported conditioner id {cid!r}; this engine knows {sorted(INPUT_OF)}.")
            if kind == "t5gemma":
                conditioners[cid] = _prompt_conditioner(config, dim, text_encoder_dir)
            elif kind == "number":
                conditioners[cid] = _number_conditioner(config, dim)
            else:
                raise ValueError(
                    f"Unsupported conditioner type {kind!r} for {cid!r}; use 't5gemma' or 'number'."
                )
        return cls(conditioners, cross_attention_cond_ids, global_cond_ids)

    def text_encoders(self) -> list[TextEncoder]:
        return [c.text_encoder for c in self.conditioners.values() if isinstance(c, PromptConditioner)]

    def to_device(self, device) -> None:
        """Load the text encoder(s) if needed and move them to ``device``."""
        for text_encoder in self.text_encoders():
            text_encoder.to(device)

    def forward(self, prompts: list[str], durations: list[float], device) -> dict[str, tuple]:
        """Each conditioner's (tensor, mask), by id."""
        if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("Prompts must be a non-empty list of strings.")
        if len(durations) != len(prompts):
            raise ValueError(
                f"Got {len(prompts)} prompts but {len(durations)} durations; give one per prompt."
            )
        inputs = {"prompts": list(prompts), "durations": list(durations)}
        return {cid: cond(inputs[INPUT_OF[cid]], device) for cid, cond in self.conditioners.items()}

    def condition(self, prompts: list[str], durations: list[float], device) -> Conditioning:
        """Conditioner outputs concatenated as the DiT wants them (upstream's routing and dtype promotion)."""
        outputs = self(prompts, durations, device)
        cross = [outputs[cid] for cid in self.cross_attention_cond_ids]
        global_cond = None
        if self.global_cond_ids:
            global_cond = torch.cat([outputs[cid][0] for cid in self.global_cond_ids], dim=-1)
            if global_cond.ndim == 3:
                global_cond = global_cond.squeeze(1)
        return Conditioning(
            cross_attn=torch.cat([tensor for tensor, _ in cross], dim=1),
            cross_attn_mask=torch.cat([mask for _, mask in cross], dim=1),
            global_cond=global_cond,
        )
