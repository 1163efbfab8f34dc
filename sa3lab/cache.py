"""Kernel-level model cache: models stay loaded between runs; loading another evicts the oldest."""

from __future__ import annotations

import gc
import time
from collections import OrderedDict
from collections.abc import Callable

import torch


class ModelCache:
    """Up to ``max_models`` loaded models, least recently used evicted first and really freed."""

    def __init__(self, max_models: int = 1):
        if max_models < 1:
            raise ValueError("max_models must be at least 1.")
        self.max_models = max_models
        self._models: OrderedDict[str, object] = OrderedDict()

    def get(self, key: str, loader: Callable[[], object]) -> tuple[object, bool, float]:
        """``(model, cache_hit, load_elapsed_s)``; ``loader`` runs only on a miss."""
        start = time.perf_counter()
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key], True, time.perf_counter() - start
        while len(self._models) >= self.max_models:
            self._evict_oldest()
        model = loader()
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


def free_memory() -> None:
    """Collect dropped models and return cached GPU memory to the driver."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
