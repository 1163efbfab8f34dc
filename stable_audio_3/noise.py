"""The random numbers of one generation, drawn from its own ``torch.Generator`` s.

Upstream seeds torch's global generator (``torch.manual_seed(seed)``) and draws from it; here each
generation owns generators on the model's device, seeded the same way, so they give the same
numbers while runs in other threads (or other models) draw from theirs. A :class:`Noise` is either
one stream for the whole batch (upstream's behaviour for one seed) or one stream per batch item
(a list of seeds): then item ``i`` draws exactly what a batch-1 generation with seed ``i`` draws.
``Noise(None)`` draws from the global generator, as the lower-level functions do by default.
"""

from __future__ import annotations

import torch


class Noise:
    """Gaussian noise from one generator for the batch, or one generator per batch item."""

    def __init__(self, generators: list[torch.Generator] | None, per_item: bool = False):
        self.generators = generators or [None]
        self.per_item = per_item

    @classmethod
    def seeded(cls, seeds: int | list[int], device) -> Noise:
        """Generators on ``device`` seeded like ``torch.manual_seed``: one, or one per item of a list."""
        per_item = isinstance(seeds, (list, tuple))
        values = list(seeds) if per_item else [seeds]
        return cls([torch.Generator(torch.device(device)).manual_seed(s) for s in values], per_item)

    def item(self, i: int) -> Noise:
        """The stream of batch item ``i`` alone (per-item noise only)."""
        if not self.per_item:
            raise ValueError("Only per-item noise can be split by batch item.")
        return Noise([self.generators[i]])

    def randn(self, shape, *, dtype=None, device=None) -> torch.Tensor:
        """``torch.randn(shape)``; per item, row ``i`` of axis 0 comes from generator ``i``."""
        if not self.per_item:
            return torch.randn(shape, dtype=dtype, device=device, generator=self.generators[0])
        self._check_batch(shape[0])
        rows = [
            torch.randn((1, *shape[1:]), dtype=dtype, device=device, generator=g) for g in self.generators
        ]
        return torch.cat(rows)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        """``torch.randn_like(x)``: filled in ``x``'s memory order, as randn_like does."""
        if not self.per_item:
            return torch.empty_like(x).normal_(generator=self.generators[0])
        self._check_batch(x.shape[0])
        return torch.cat(
            [torch.empty_like(x[i : i + 1]).normal_(generator=g) for i, g in enumerate(self.generators)]
        )

    def _check_batch(self, batch: int) -> None:
        if batch != len(self.generators):
            raise ValueError(
                f"Per-item noise has {len(self.generators)} streams but the batch has {batch} items."
            )


GLOBAL_NOISE = Noise(None)  # torch's global generator, as upstream draws
