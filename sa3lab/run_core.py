"""The run core: everything between a checked request and a saved, checked result, for every job.

Generation, comparison, sweeps (either backend) and training previews make their audio here, and
round trips load and record here too. A run takes its model from the kernel's cache (access checked,
the machine's device policy), puts exactly the LoRA state its request names on the model (and only
that) under the model's lock, calls the engine with the complete settings, refuses non-finite audio
and writes the record that says what made the audio.

The :class:`RunCore` holds the kernel's state for that: the model cache, the access checker, the
machine, the file digests, the LoRA files loaded on each model and each model's lock. A ``Lab`` owns
one; a Ray sweep worker makes its own.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from stable_audio_3 import sampling
from stable_audio_3.checks import NonFiniteOutputError, finite_output
from stable_audio_3.hub import TokenRejectedWarning, is_cached, resolve_autoencoder_files, resolve_model_files
from stable_audio_3.lora import LoraNote

from . import catalog, device
from .audio_input import read_audio
from .auth import Access, AccessChecker, resolve_token
from .cache import ModelCache
from .generation import LONG_STEPS, GenerationRequest, LoraUse
from .progress import NoProgress
from .runs import RunResult, new_result, save_result


@dataclass
class Loaded:
    """A request's model as the cache gave it, and how long the access check and the load took."""

    model: object
    cache_hit: bool
    timings: dict


class RunCore:
    """The one path from a request to a recorded result, and the kernel state it needs."""

    def __init__(self, cache: ModelCache | None = None, checker: AccessChecker | None = None, machine=None):
        self.cache = cache or ModelCache()
        self.checker = checker or AccessChecker()
        self.machine = machine or device.probe()
        self._digests: dict[tuple[str, int, int], str] = {}
        self._loaded_loras: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> versions
        self._locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its runs' lock
        self._locks_lock = threading.Lock()
        self._rejections_noted: set[str] = set()  # sha256 of each rejected token already named

    # ------------------------------------------------------------------ access and models

    @staticmethod
    def token(pasted_token: str | None = None) -> str | None:
        """The token to use: the pasted one, else the stored login, ``HF_TOKEN`` or a notebook secret."""
        return resolve_token(pasted_token).token

    def download_token(self, entry: catalog.Entry | None, pasted_token: str | None = None):
        """The token to download ``entry`` with; ValueError with the Hub's advice when it cannot.

        A gated entry needs access (offline passes: the cache decides). A token the Hub rejects
        (401 invalid credentials) is dropped for an open entry: the result is ``False`` (anonymous),
        and a :class:`~stable_audio_3.hub.TokenRejectedWarning` names the token's source and how to
        replace it, once per token in this kernel. Local folders get the token as it is.
        """
        token = self.token(pasted_token)
        if entry is None or entry.repo_id is None or (token is None and not entry.gated):
            return token
        access = self.checker.check(entry.repo_id, token)
        if access.ok and access.token_rejected:
            digest = hashlib.sha256(token.encode()).hexdigest()
            if digest not in self._rejections_noted:
                self._rejections_noted.add(digest)
                warnings.warn(TokenRejectedWarning(access.message), stacklevel=2)
            return False
        if entry.gated and not access.ok and access.status is not Access.OFFLINE:
            raise ValueError(access.message)
        return token

    def policy(self, entry: catalog.Entry | None) -> device.Policy:
        return device.choose(self.machine, gpu_first=bool(entry and entry.gpu_first))

    def load_generator(self, model: str, entry: catalog.Entry | None, token):
        """``(StableAudioModel, cache_hit, load_s)`` for a catalog key (``demo`` included) or a folder.

        The files are downloaded and checked (a damaged cached file is fetched again) before the
        cached model is evicted, so a model that cannot be had leaves the previous one loaded.
        """
        from stable_audio_3 import StableAudioModel

        source = model if entry is not None else str(Path(model).expanduser())
        policy = self.policy(entry)
        return self.cache.get(
            self._generator_key(model, entry),
            lambda files: StableAudioModel.from_pretrained(
                files,
                device=policy.device,
                dtype=policy.dit_dtype,
                autoencoder_dtype=policy.autoencoder_dtype,
            ),
            prepare=lambda: resolve_model_files(source, token=token),
        )

    def _generator_key(self, model: str, entry: catalog.Entry | None) -> str:
        source = model if entry is not None else str(Path(model).expanduser())
        policy = self.policy(entry)
        return f"{source}|{policy.device}|{policy.dit_dtype}|{policy.autoencoder_dtype}"

    def prompt_fit(self, model: str, prompt: str):
        """How much of ``prompt`` the model's text encoder takes (a
        :class:`~stable_audio_3.conditioning.PromptFit`), counted with its tokenizer alone, or None while
        the model's files are not on this machine (nothing is downloaded or loaded to find out)."""
        from stable_audio_3.pipeline import prompt_fit

        entry = catalog.lookup(model)
        return prompt_fit(model if entry is not None else str(Path(model).expanduser()), prompt)

    def load_autoencoder(self, model: str, entry: catalog.Entry | None, token):
        """``(AutoencoderModel, cache_hit, load_s)`` for same-s, same-l, demo or a folder (files first)."""
        from stable_audio_3 import AutoencoderModel

        source = model if entry is not None else str(Path(model).expanduser())
        policy = self.policy(entry)
        return self.cache.get(
            f"autoencoder|{source}|{policy.device}",
            lambda files: AutoencoderModel.from_pretrained(
                files, device=policy.device, dtype=policy.autoencoder_dtype
            ),
            prepare=lambda: resolve_autoencoder_files(source, token=token),
        )

    def load(self, model: str, pasted_token=None, progress=None, autoencoder: bool = False) -> Loaded:
        """The model of a catalog key or folder from the cache, access checked first, with timings."""
        progress = progress or NoProgress()
        entry = catalog.lookup(model)
        start = time.perf_counter()
        token = self.download_token(entry, pasted_token)
        timings = {"access_check": time.perf_counter() - start}
        what = "the autoencoder" if autoencoder else "the model"
        downloads = entry is not None and entry.repo_id is not None and not is_cached(entry.repo_id)
        progress.stage(
            f"downloading {what} (first use only), then loading it" if downloads else f"loading {what}"
        )
        if autoencoder:
            loaded, hit, seconds = self.load_autoencoder(model, entry, token)
        else:
            loaded, hit, seconds = self.load_generator(model, entry, token)
        timings["load"] = seconds
        return Loaded(loaded, hit, timings)

    # ------------------------------------------------------------------ LoRA state and the lock

    def lock(self, model) -> threading.RLock:
        """The model's lock: a run's LoRA state stays on the model until its engine call is over."""
        with self._locks_lock:
            return self._locks.setdefault(model, threading.RLock())

    @contextmanager
    def using_loras(self, model, loras: list[LoraUse]) -> Iterator[None]:
        """Hold the model's lock with exactly the files of ``loras`` loaded, in order (with their SVD
        bases files), and warn each file's notes (:class:`~stable_audio_3.lora.LoraNote`).

        The same files (same path, size and modification time) stay loaded between runs; otherwise
        every file goes first. Strengths are not set here: each engine call passes its own.
        """
        with self.lock(model):
            wanted = [
                (_file_version(use.file), _file_version(use.svd_bases) if use.svd_bases else None)
                for use in loras
            ]
            loaded = self._loaded_loras.get(model)
            if loaded != wanted or model.lora_paths != [file[0] for file, _ in wanted]:
                model.unload_lora()
                self._loaded_loras[model] = []
                if wanted:
                    model.load_lora(
                        [file[0] for file, _ in wanted], [bases[0] if bases else None for _, bases in wanted]
                    )
                self._loaded_loras[model] = wanted
            else:  # loaded by an earlier run: its notes still hold for this one
                for note in (note for notes in model.lora_notes for note in notes):
                    warnings.warn(note, LoraNote, stacklevel=3)
            yield

    @contextmanager
    def own_adapters(self, model) -> Iterator[None]:
        """Hold the model's lock with no LoRA file loaded, for a job that brings its own adapters
        (training); the next run loads what it names afresh."""
        with self.using_loras(model, []):
            try:
                yield
            finally:
                self._loaded_loras.pop(model, None)

    # ------------------------------------------------------------------ the engine call

    def engine_arguments(self, request: GenerationRequest) -> dict:
        """The keyword arguments of the ``generate`` call that makes ``request`` (one that makes one
        item has no ``batch_size``, so that :func:`stable_audio_3.batching.plan_batches` can batch it)."""
        settings, loras = request.settings(), request.loras()
        arguments = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "duration": request.duration,
            "seed": request.seed,
            "steps": settings["steps"],
            "cfg_scale": settings["cfg_scale"],
            "sampler_type": settings["sampler"],
            "cfg_interval": tuple(settings["cfg_interval"]),
            "scale_phi": settings["scale_phi"],
            "cfg_norm_threshold": settings["cfg_norm_threshold"],
            "apg_scale": settings["apg_scale"],
            "duration_padding_sec": settings["duration_padding"],
            "a2a_schedule": settings["a2a_schedule"],
            "lora_strengths": [lora.strength for lora in loras],
            "clamp_output": False,  # overs are turned down by one gain where they are written (peaks)
        }
        if request.batch_size > 1:
            arguments["batch_size"] = request.batch_size
        if settings["schedule"] is not None:
            arguments["dist_shift"] = _shift(_frozen_schedule(settings["schedule"]))
        if any(lora.interval != (0.0, 1.0) or lora.layer_filter for lora in loras):
            arguments["lora_configs"] = [
                {"lora_index": i, "interval": lora.interval, "layer_filter": lora.layer_filter}
                for i, lora in enumerate(loras)
            ]
        return {**arguments, **_mode_inputs(request)}

    def sample(
        self,
        model,
        requests: list[GenerationRequest],
        arguments: dict,
        *,
        on_step: Callable[[dict], None] | None = None,
        keep_adapters: bool = False,
    ):
        """One engine call making ``requests`` (one batch: same model, settings and LoRA files) with
        ``arguments``; a ``Generation`` whose audio is finite, on the CPU, float32.

        ``keep_adapters``: the job put its own adapters on the model and holds its lock
        (:meth:`own_adapters`: a training run's previews); the model runs with those as they are.
        Non-finite audio raises :class:`~stable_audio_3.checks.NonFiniteOutputError` naming the
        request's LoRA files.
        """
        loras = requests[0].loras()
        what = "The generated audio" + (
            f" (with the LoRA file {', '.join(Path(lora.file).name for lora in loras)})" if loras else ""
        )
        hint = "check that LoRA file, or try lower strengths or another seed" if loras else "try another seed"
        hold = self.lock(model) if keep_adapters else self.using_loras(model, loras)
        try:
            with hold:
                generation = model.generate(
                    **arguments, callback=on_step, disable_tqdm=True, return_info=True
                )
        except NonFiniteOutputError:
            raise NonFiniteOutputError(f"{what} came out with NaN or infinite values; {hint}.") from None
        audio = finite_output(generation.audio.to("cpu", torch.float32), what, hint)
        return replace(generation, audio=audio)

    # ------------------------------------------------------------------ records

    def file_sha256(self, path) -> str:
        """The sha256 of a file (kept per path, size and modification time: a big LoRA is read once)."""
        file = Path(path).expanduser().resolve()
        stat = file.stat()
        key = (str(file), stat.st_size, stat.st_mtime_ns)
        if key not in self._digests:
            digest = hashlib.sha256()
            with open(file, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._digests[key] = digest.hexdigest()
        return self._digests[key]

    def file_record(self, path: str) -> dict:
        return {"file": path, "name": Path(path).name, "sha256": self.file_sha256(path)}

    def results(
        self,
        model,
        requests: list[GenerationRequest],
        generation,
        *,
        cache_hit: bool,
        timings: dict,
    ) -> list[RunResult]:
        """The run record of each request of one engine call: every setting as it ran, the mode's
        inputs, the LoRA files the engine reports it used and the seed actually used."""
        used = [file for file, _ in generation.lora_strengths]
        results = []
        for i, request in enumerate(requests):
            settings, loras = request.settings(), request.loras()
            if used != [str(Path(lora.file).expanduser().resolve()) for lora in loras]:
                raise RuntimeError(f"The model ran with LoRA files {used}, not the request's {loras}.")
            seed = generation.seed[i] if isinstance(generation.seed, (list, tuple)) else generation.seed
            as_ran = replace(request, seed=seed, **settings, confirm_long=settings["steps"] > LONG_STEPS)
            fit = model.prompt_fit(request.prompt)
            record = {
                "prompt": request.prompt,
                "prompt_tokens": {"tokens": fit.tokens, "max_tokens": fit.max_tokens, "cut_at": fit.cut_at},
                "negative_prompt": request.negative_prompt,
                "duration": request.duration,
                **settings,
                "mode": request.mode,
                "batch_size": request.batch_size if len(requests) == 1 else len(requests),
                **self._mode_record(request),
                "loras": [
                    self._lora_record(lora, notes)
                    for lora, notes in zip(loras, model.lora_notes, strict=True)
                ],
                "prompt_expansion": request.prompt_expansion,
            }
            audio = generation.audio if len(requests) == 1 else generation.audio[i : i + 1]
            results.append(
                new_result(
                    model,
                    audio,
                    seed=seed,
                    model_key=request.model,
                    timings=timings,
                    cache_hit=cache_hit,
                    settings=record,
                    requested_s=request.duration,
                    request=asdict(as_ran),
                    ceiling_dbfs=request.peak_ceiling_dbfs,
                    float_wav=request.float_wav,
                )
            )
        return results

    def _lora_record(self, lora: LoraUse, notes: tuple[str, ...]) -> dict:
        """A LoRA file as a run used it: name, sha256, settings, its SVD bases file (name, sha256) and
        the notes on what may make its result differ from upstream's."""
        bases = self.file_record(lora.svd_bases) if lora.svd_bases else None
        return {**self.file_record(lora.file), **asdict(lora), "svd_bases": bases, "notes": list(notes)}

    def _mode_record(self, request: GenerationRequest) -> dict:
        """The mode's inputs: source file (name, sha256), noise level, regions, continuation length."""
        if request.mode == "text-to-audio":
            return {}
        record = {"source": self.file_record(request.source_audio)}
        if request.mode == "audio-to-audio":
            record["init_noise_level"] = request.init_noise_level
        else:
            record["regions"] = request.edit_regions()
        if request.mode == "continuation":
            record["continuation_s"] = request.continuation_s
            record["kept_s"] = request.duration - request.continuation_s
        return record

    # ------------------------------------------------------------------ one generation

    def generate(
        self, request: GenerationRequest, pasted_token: str | None = None, progress=None, previews=None
    ) -> RunResult:
        """Check, load (or reuse), generate, assess and save one request.

        ``previews``: a :class:`sa3lab.previews.StepPreviews` shown the denoised estimate while sampling.
        """
        request = GenerationRequest.checked(request)
        progress = progress or NoProgress()
        start = time.perf_counter()
        loaded = self.load(request.model, pasted_token, progress)
        model = loaded.model
        watch = previews.watch(model, request.duration) if previews is not None else None

        def on_step(info: dict) -> None:
            progress.step(info["i"] + 1, info["steps"])
            if watch is not None:
                watch(info)

        progress.start(request.settings()["steps"], "sampling")
        generation = self.sample(model, [request], self.engine_arguments(request), on_step=on_step)
        timings = {**loaded.timings, **generation.timings}
        if previews is not None:
            previews.learn(model, generation.audio)
            timings["previews"] = previews.seconds
        timings["total"] = time.perf_counter() - start
        (result,) = self.results(model, [request], generation, cache_hit=loaded.cache_hit, timings=timings)
        save_result(result, request.output_dir)
        return result


def _file_version(path) -> tuple[str, int, int]:
    """A LoRA file's path, modification time and size: a file rewritten since it was loaded is new."""
    path = Path(path).expanduser().resolve()
    info = path.stat()
    return str(path), info.st_mtime_ns, info.st_size


def _frozen_schedule(schedule: dict) -> tuple:
    return tuple(sorted(schedule.items()))


@functools.lru_cache(maxsize=64)
def _shift(schedule: tuple):
    """The engine's shift object of a schedule; one object per schedule, so that equal ones batch."""
    return sampling.shift_from_options(dict(schedule))


def _mode_inputs(request: GenerationRequest) -> dict:
    """The engine arguments of the request's mode."""
    if request.mode == "audio-to-audio":
        return {"init_audio": read_audio(request.source_audio), "init_noise_level": request.init_noise_level}
    if request.mode in ("inpaint", "continuation"):
        starts, ends = zip(*request.edit_regions(), strict=True)
        return {
            "inpaint_audio": read_audio(request.source_audio),
            "inpaint_mask_start_seconds": list(starts),
            "inpaint_mask_end_seconds": list(ends),
        }
    return {}
