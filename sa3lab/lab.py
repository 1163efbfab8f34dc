"""``Lab``: the one object a form talks to. A request goes in, a saved and checked result comes out."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from pathlib import Path

import torch

from stable_audio_3.demo import demo_model_dir

from . import catalog, device, metrics, quality
from .audio_input import REFERENCE_CHORD_RATE, read_audio, reference_chord
from .auth import Access, AccessChecker, resolve_token
from .cache import ModelCache
from .requests import GenerationRequest
from .roundtrip import RoundTripRequest, RoundTripResult
from .runs import RunResult, save_result

MAX_SEED = 99998

class Lab:
    """Model cache, access checks and the run path shared by every form and headless run."""

    def __init__(self, cache: ModelCache | None = None, checker: AccessChecker | None = None, machine=None):
        self.cache = cache or ModelCache()
        self.checker = checker or AccessChecker()
        self.machine = machine or device.probe()

    def check_access(self, key: str, pasted_token: str | None = None):
        entry = catalog.get(key)
        token = resolve_token(pasted_token).token
        return self.checker.check(entry.repo_id, token) if entry.repo_id else None

    def _source(self, request: GenerationRequest, entry) -> str:
        if entry is None:
            return str(Path(request.model).expanduser())
        return str(demo_model_dir()) if entry.key == "demo" else entry.key

    def _load(self, request: GenerationRequest, entry, token: str | None, policy):
        from stable_audio_3 import StableAudioModel

        source = self._source(request, entry)
        key = f"{source}|{policy.device}|{policy.dit_dtype}|{policy.autoencoder_dtype}"
        return self.cache.get(
            key,
            lambda: StableAudioModel.from_pretrained(
                source,
                device=policy.device,
                dtype=policy.dit_dtype,
                autoencoder_dtype=policy.autoencoder_dtype,
                token=token,
            ),
        )

    def generate(
        self, request: GenerationRequest, pasted_token: str | None = None, progress=None
    ) -> RunResult:
        """Check, load (or reuse), generate, assess and save one request."""
        request.check()
        entry = request.entry()
        timings: dict[str, float] = {}
        token = resolve_token(pasted_token).token
        start = time.perf_counter()
        if entry is not None and entry.gated:
            access = self.checker.check(entry.repo_id, token)
            if not access.ok and access.status is not Access.OFFLINE:
                raise ValueError(access.message)
        timings["access_check"] = time.perf_counter() - start
        policy = device.choose(self.machine, gpu_first=bool(entry and entry.gpu_first))
        if progress is not None:
            progress.stage("loading the model (first run downloads it)")
        model, cache_hit, load_s = self._load(request, entry, token, policy)
        timings["load"] = load_s
        defaults = entry.defaults if entry is not None else catalog.POST_TRAINED
        steps = request.steps or defaults["steps"]
        cfg = request.cfg_scale if request.cfg_scale is not None else defaults["cfg_scale"]
        kwargs = dict(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            duration=request.duration,
            steps=steps,
            cfg_scale=cfg,
            batch_size=request.batch_size,
            seed=request.seed,
        )
        if request.mode == "audio-to-audio":
            kwargs.update(
                init_audio=read_audio(request.source_audio), init_noise_level=request.init_noise_level
            )
        elif request.mode == "inpaint":
            starts, ends = zip(*request.regions, strict=True)
            kwargs.update(
                inpaint_audio=read_audio(request.source_audio),
                inpaint_mask_start_seconds=list(starts),
                inpaint_mask_end_seconds=list(ends),
            )
        if request.lora_files:
            model.unload_lora()
            model.load_lora(request.lora_files)
            for i, strength in enumerate(request.lora_strengths):
                model.set_lora_strength(strength, lora_index=i)
        elif model.lora_names:
            model.unload_lora()
        if progress is not None:
            progress.start(steps, "sampling")
            kwargs["callback"] = lambda info: progress.step(info["i"] + 1, info["steps"])
        audio = model.generate(**kwargs, disable_tqdm=progress is not None).to("cpu", torch.float32)
        timings.update(model.last_timings)
        timings["total"] = time.perf_counter() - start
        result = RunResult(
            audio=audio,
            sample_rate=model.sample_rate,
            seed=model.last_seed,
            model_key=request.model,
            repo_id=model.source.repo_id if model.source else None,
            revision=model.source.revision if model.source else None,
            device=str(model.device),
            dtype=str(model.dtype).removeprefix("torch."),
            timings=timings,
            cache_hit=cache_hit,
            load_elapsed_s=load_s,
            settings={
                "prompt": request.prompt,
                "negative_prompt": request.negative_prompt,
                "duration": request.duration,
                "steps": steps,
                "cfg_scale": cfg,
                "mode": request.mode,
                "batch_size": request.batch_size,
            },
            quality=[quality.assess(a, model.sample_rate, request.duration) for a in audio],
        )
        save_result(result, request.output_dir)
        return result

    def compare(
        self, request: GenerationRequest, seeds: list[int], pasted_token: str | None = None, progress=None
    ) -> list[list[RunResult]]:
        """One row per seed: ``request`` run through each model of :func:`comparison_models`, same seed.

        Each model uses its own default steps and CFG (the point of the comparison). Access to every
        model is checked before anything runs, so a missing login fails in a second, not after a run;
        the runs go model by model, so each model is loaded once even with a one-model cache.
        """
        if not seeds:
            raise ValueError("Give at least one seed, e.g. 42 or 42, 7.")
        keys = comparison_models(request.model)
        variants = [replace(request, model=key, steps=None, cfg_scale=None) for key in keys]
        token = resolve_token(pasted_token).token
        for variant in variants:
            variant.check()
            entry = variant.entry()
            if entry is not None and entry.gated:
                access = self.checker.check(entry.repo_id, token)
                if not access.ok and access.status is not Access.OFFLINE:
                    raise ValueError(access.message)
        seeds = [random.randrange(0, MAX_SEED + 1) if seed == -1 else seed for seed in seeds]
        rows: list[list[RunResult]] = [[] for _ in seeds]
        count = len(seeds) * len(variants)
        for col, variant in enumerate(variants):  # model by model, so each loads once
            for row, seed in enumerate(seeds):
                index = col * len(seeds) + row
                part = None if progress is None else _PartProgress(progress, index, count, variant.model)
                rows[row].append(self.generate(replace(variant, seed=seed), pasted_token, progress=part))
        return rows

    def roundtrip(
        self, request: RoundTripRequest, pasted_token: str | None = None, progress=None
    ) -> RoundTripResult:
        """Encode a file (or the built-in test chord) with a SAME autoencoder, decode it, measure, save."""
        from stable_audio_3 import AutoencoderModel
        from stable_audio_3.audio import prepare_audio

        request.check()
        progress = progress or _NoProgress()
        entry = None if request.is_local() else catalog.get(request.model)
        token = resolve_token(pasted_token).token
        start = time.perf_counter()
        policy = device.choose(self.machine, gpu_first=bool(entry and entry.gpu_first))
        if request.model == "demo":
            source = str(demo_model_dir())
        else:
            source = request.model if entry is not None else str(Path(request.model).expanduser())
        progress.stage("loading the autoencoder (first run downloads it)")
        ae, cache_hit, load_s = self.cache.get(
            f"autoencoder|{source}|{policy.device}",
            lambda: AutoencoderModel.from_pretrained(
                source, device=policy.device, token=token, dtype=policy.autoencoder_dtype
            ),
        )
        if request.audio.strip():
            rate, audio = read_audio(request.audio, max_seconds=request.duration)
            label = request.audio.strip()
        else:
            rate, audio = REFERENCE_CHORD_RATE, reference_chord(request.duration)
            label = f"test chord ({request.duration:g} s)"
        sr = int(ae.sample_rate)
        length = max(1, round(audio.shape[-1] * sr / rate))
        before = prepare_audio((rate, audio), sample_rate=sr, length=length, channels=2)[0]
        before = before.to("cpu", torch.float32)
        seed = random.randrange(0, MAX_SEED + 1) if request.seed == -1 else request.seed
        timings = {"load": load_s}
        progress.start(2, "encoding")
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        latents = ae.encode(before.unsqueeze(0), sr, chunked=request.chunked)
        timings["encoding"] = time.perf_counter() - t0
        progress.step(1, 2, "decoding")
        t0 = time.perf_counter()
        after = ae.decode(latents, chunked=request.chunked)[0].to("cpu", torch.float32)
        after = after[..., : before.shape[-1]]
        timings["decoding"] = time.perf_counter() - t0
        progress.step(2, 2, "measuring")
        timings["total"] = time.perf_counter() - start
        latent_rate = sr / ae.downsampling_ratio
        snr, distance = metrics.snr_db(before, after), metrics.multi_resolution_stft_distance(before, after)
        repo_id, revision = ae.source.repo_id, ae.source.revision
        run = RunResult(
            audio=after.unsqueeze(0),
            sample_rate=sr,
            seed=seed,
            model_key=request.model,
            repo_id=repo_id,
            revision=revision,
            device=str(ae.device),
            dtype=str(ae.dtype).removeprefix("torch."),
            timings=timings,
            cache_hit=cache_hit,
            load_elapsed_s=load_s,
            settings={
                "source": label,
                "duration": request.duration,
                "chunked": request.chunked,
                "latent_shape": list(latents.shape),
                "latent_rate_hz": latent_rate,
                "snr_db": snr,
                "multi_resolution_stft_distance": distance,
            },
            quality=[quality.assess(after, sr, before.shape[-1] / sr)],
        )
        save_result(run, request.output_dir)
        return RoundTripResult(
            before, after, sr, tuple(latents.shape), latent_rate, snr, distance, label, run
        )


def comparison_models(key: str) -> list[str]:
    """The models a comparison runs side by side: a base checkpoint and its post-trained sibling."""
    entry = catalog.get(key)
    if entry.key == "demo":
        return ["demo"]  # no sibling: one column, still useful to check the grid on any machine
    if entry.collection == "base":
        return [entry.key, entry.sibling]
    bases = [e.key for e in catalog.in_collection("base") if e.sibling == entry.key]
    if not bases:
        raise ValueError(
            f"{key} has no base / post-trained pair; choose small-music-base, small-sfx-base or medium-base."
        )
    return [bases[0], entry.key]


class _NoProgress:
    def stage(self, text: str) -> None:
        pass

    def start(self, total: int, text: str) -> None:
        pass

    def step(self, done: int, total: int, text: str | None = None) -> None:
        pass


class _PartProgress:
    """Reports one run of ``count`` as its share of a single bar (steps differ between models)."""

    UNITS = 1000

    def __init__(self, progress, index: int, count: int, label: str):
        self.progress, self.index, self.count, self.label = progress, index, count, label

    def _at(self, fraction: float, text: str | None) -> None:
        done = int(self.UNITS * (self.index + fraction) / self.count)
        label = f"{self.label} ({self.index + 1}/{self.count}): {text}" if text else None
        self.progress.step(done, self.UNITS, label)

    def stage(self, text: str) -> None:
        self._at(0.0, text)

    def start(self, total: int, text: str) -> None:
        self._at(0.0, text)

    def step(self, done: int, total: int, text: str | None = None) -> None:
        self._at(done / max(total, 1), text or "sampling")


__all__ = ["Lab", "comparison_models", "demo_model_dir"]
