"""Kernel-level model cache: models stay loaded between runs; loading another evicts the oldest.

A load has two parts: ``prepare`` (download and check the files: what fails for reasons a person can
fix) runs while the loaded models are still there, so such a failure leaves the cache as it was;
only then is the oldest model evicted, to free its memory, and ``build`` runs. (A failure while
building, e.g. out of memory, comes after that eviction: its memory was needed.)
"""

from __future__ import annotations

import ctypes
import functools
import gc
import time
from collections import OrderedDict
from collections.abc import Callable

import torch


class ModelCache:
    """Up to ``max_models`` loaded models, least recently used evicted first and really freed."""

    def __init__(self, max_models: int = 1):
        if isinstance(max_models, bool) or not isinstance(max_models, int) or max_models < 1:
            raise ValueError(f"max_models must be a whole number of at least 1; got {max_models!r}.")
        self.max_models = max_models
        self._models: OrderedDict[str, object] = OrderedDict()

    def get(
        self, key: str, build: Callable[..., object], prepare: Callable[[], object] | None = None
    ) -> tuple[object, bool, float]:
        """``(model, cache_hit, load_elapsed_s)``; on a miss ``build(prepare())`` (or ``build()``)."""
        start = time.perf_counter()
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key], True, time.perf_counter() - start
        prepared = prepare() if prepare is not None else None
        while len(self._models) >= self.max_models:
            self._evict_oldest()
        model = build(prepared) if prepare is not None else build()
        self._models[key] = model
        return model, False, time.perf_counter() - start

    def _evict_oldest(self) -> None:
        self._models.popitem(last=False)
        free_memory()

    def clear(self) -> None:
        self._models.clear()
        free_memory()

    def __contains__(self, key: str) -> bool:
        return key in self._models

    def keys(self) -> list[str]:
        return list(self._models)


def return_freed_heap() -> None:
    """Give the heap memory a run freed back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    glibc keeps freed pages that lie between live allocations, such as the results a form keeps, so
    without this a long session's resident memory creeps up run by run although nothing leaks.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only (not musl, macOS or Windows)
    except (OSError, AttributeError, TypeError):
        return None


def free_memory() -> None:
    """Collect dropped models and return cached GPU memory to the driver."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
