"""The comparison job: one prompt through several models (by default a base checkpoint and its
post-trained sibling), per seed."""

from __future__ import annotations

from dataclasses import replace

from . import catalog, checks, generation
from .generation import GenerationRequest
from .progress import PartProgress
from .runs import RunResult, random_seed

MAX_SEEDS = 8
MAX_MODELS = 4


def comparison_models(key: str) -> list[str]:
    """The models a comparison runs side by side by default: a base checkpoint and its post-trained
    sibling; the demo or a local folder alone (add others to compare it with)."""
    entry = catalog.lookup(key)
    if entry is None or entry.key == "demo":
        return [key]
    if entry.collection == "base":
        return [entry.key, entry.sibling]
    bases = [e.key for e in catalog.in_collection("base") if e.sibling == entry.key]
    if not bases:
        raise ValueError(
            f"{key} has no base / post-trained pair; choose small-music-base, small-sfx-base or medium-base, "
            "or name the models to compare."
        )
    return [bases[0], entry.key]


def run(
    core,
    request: GenerationRequest,
    seeds: list[int],
    pasted_token: str | None = None,
    progress=None,
    models: list[str] | None = None,
) -> list[list[RunResult]]:
    """One row per seed: ``request`` run through each of ``models`` (catalog keys or local folders;
    default: :func:`comparison_models` of the request's model), same seed.

    Each model uses its own default sampler settings (the point of the comparison). Every model is
    checked (access, or the folder's files) before anything runs, so a missing login fails in a
    second, not after a run; the runs go model by model, so each model is loaded once even with a
    one-model cache.
    """
    if not isinstance(request, GenerationRequest):
        raise ValueError(f"A comparison takes a GenerationRequest; got {checks.shown(request)}.")
    seeds = [
        checks.seed(seed)
        for seed in checks.items("Seeds must be a list of whole numbers, e.g. [42, 7]", seeds)
    ]
    if not seeds:
        raise ValueError("Give at least one seed, e.g. 42 or 42, 7.")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"Use at most {MAX_SEEDS} seeds per comparison; got {len(seeds)}.")
    models = comparison_models(request.model) if models is None else list(models)
    if not 1 <= len(models) <= MAX_MODELS:
        raise ValueError(f"Compare 1 to {MAX_MODELS} models; got {len(models)}.")
    variants = [replace(request, model=key, **dict.fromkeys(generation.SAMPLER_SETTINGS)) for key in models]
    for variant in variants:
        core.download_token(variant.entry(), pasted_token)
    seeds = [random_seed() if seed == -1 else seed for seed in seeds]
    rows: list[list[RunResult]] = [[] for _ in seeds]
    count = len(seeds) * len(variants)
    for col, variant in enumerate(variants):  # model by model, so each loads once
        for row, seed in enumerate(seeds):
            index = col * len(seeds) + row
            part = None if progress is None else PartProgress(progress, index, count, variant.model)
            rows[row].append(core.generate(replace(variant, seed=seed), pasted_token, progress=part))
    return rows
