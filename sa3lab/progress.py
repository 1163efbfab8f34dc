"""How a job reports progress: ``stage(text)``, ``start(total, text)``, ``step(done, total, text)``.

A form's progress bar implements these (and may raise from ``step`` to stop a run between steps);
:class:`NoProgress` is the silent default, :class:`PartProgress` shows one of several runs as its
share of a single bar.
"""

from __future__ import annotations


class NoProgress:
    def stage(self, text: str) -> None:
        pass

    def start(self, total: int, text: str) -> None:
        pass

    def step(self, done: int, total: int, text: str | None = None) -> None:
        pass


class PartProgress:
    """Reports run ``index`` of ``count`` as its share of one bar (runs may have different step counts)."""

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
