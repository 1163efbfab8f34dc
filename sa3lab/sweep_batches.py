"""Generating a sweep's items in exact batches through the run core, and the counts a backend keeps.

Items with the same model and settings are generated in batches (``stable_audio_3.batching``), and
each item's audio equals its own batch-1 ``generate`` call, so the files do not depend on the
backend, the batch size or the order. A batch that fails is run again item by item.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .runs import RunResult
from .sweep_plan import SweepItem, SweepRequest, duration_text

# Failures a generation can raise (a bad value, out of memory, non-finite audio); anything else stops the run.
GENERATION_ERRORS = (ValueError, RuntimeError, MemoryError)


@dataclass
class Outcome:
    """One item as a backend hands it back: its result (not yet saved), or the error of its last try."""

    item: SweepItem
    result: RunResult | None
    seconds: float
    attempts: int
    error: str | None = None


def generate_items(
    core,
    loaded,
    items: list[SweepItem],
    *,
    output_dir: str,
    max_batch=None,
    on_batch=None,
    on_step=None,
) -> Iterator[Outcome]:
    """Generate ``items`` (one :func:`chunks` group) with their model in exact batches through the run
    core, yielding each batch's outcomes.

    ``loaded``: the run core's :class:`~sa3lab.run_core.Loaded` model. A batch that raises one of
    :data:`GENERATION_ERRORS` is run again item by item, once. ``on_batch(n)`` is called before each
    batch of ``n`` items, ``on_step(done, total)`` after every sampler step (either may raise to stop).
    """
    from stable_audio_3.batching import plan_batches

    requests = [item.request(output_dir) for item in items]
    calls = [core.engine_arguments(request) for request in requests]
    for batch in plan_batches(loaded.model, calls, max_batch=max_batch):
        chunk = list(batch.indices)
        if on_batch is not None:
            on_batch(len(chunk))
        try:
            yield from _generate_batch(core, loaded, items, requests, chunk, batch.kwargs, 1, on_step)
        except GENERATION_ERRORS as first:
            for index in chunk:
                single = plan_batches(loaded.model, [calls[index]], max_batch=1)[0].kwargs
                try:
                    yield from _generate_batch(core, loaded, items, requests, [index], single, 2, on_step)
                except GENERATION_ERRORS as exc:
                    error = str(exc) or type(exc).__name__
                    yield Outcome(items[index], None, 0.0, 2, f"{error} (first try: {first})")


def _generate_batch(core, loaded, items, requests, chunk, kwargs, attempt, on_step):
    start = time.perf_counter()
    callback = None if on_step is None else (lambda info: on_step(info["i"] + 1, info["steps"]))
    batch = [requests[i] for i in chunk]
    generation = core.sample(loaded.model, batch, kwargs, on_step=callback)
    seconds = (time.perf_counter() - start) / len(chunk)
    share = {stage: value / len(chunk) for stage, value in generation.timings.items()}
    timings = {**loaded.timings, **share, "total": seconds}
    results = core.results(loaded.model, batch, generation, cache_hit=loaded.cache_hit, timings=timings)
    return [Outcome(items[i], result, seconds, attempt) for i, result in zip(chunk, results, strict=True)]


def chunks(items: list[SweepItem], size: int | None) -> list[list[SweepItem]]:
    """Items of one model and settings together (at most ``size`` per chunk; None: no limit)."""
    groups: dict[tuple, list[SweepItem]] = {}
    for item in items:
        groups.setdefault(item.group(), []).append(item)
    out = []
    for group in groups.values():
        step = size or len(group)
        out += [group[i : i + step] for i in range(0, len(group), step)]
    return out


@dataclass
class SweepProgress:
    """Counts of a running sweep, for the live table: done, running, failed, skipped, items per minute."""

    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    stopped: bool = False  # Stop or an interrupt ended the run (nothing is running any more)
    started: float = field(default_factory=time.perf_counter)

    @property
    def finished(self) -> int:
        return self.skipped + self.done + self.failed

    def items_per_minute(self) -> float:
        elapsed = time.perf_counter() - self.started
        return 60.0 * (self.done + self.failed) / elapsed if elapsed > 0 else 0.0

    def rows(self) -> dict:
        rate = self.items_per_minute()
        left = self.total - self.finished
        rows = {
            "done": f"{self.done + self.skipped} of {self.total}"
            + (f" ({self.skipped} from an earlier run)" if self.skipped else ""),
            **({"state": f"stopped: {self.done + self.skipped} saved"} if self.stopped else {}),
            "running": 0 if self.stopped else self.running,
            "failed": self.failed,
            "items per minute": f"{rate:.2f}" if self.done + self.failed else "-",
        }
        if rate and left and not self.stopped:
            rows["time left"] = duration_text(60.0 * left / rate)
        return rows


class LocalBackend:
    """This kernel, one device: the run core's cached model, the items' batches one after another."""

    def __init__(self, core, request: SweepRequest, pasted_token=None):
        self.core, self.request, self.token = core, request, pasted_token

    def run(self, pending: list[SweepItem], counts: SweepProgress, update) -> Iterable[Outcome]:
        for chunk in chunks(pending, None):
            update(f"loading {chunk[0].model}")
            loaded = self.core.load(chunk[0].model, self.token)

            def on_batch(size):
                counts.running = size
                update(f"{counts.finished} of {counts.total} items; a batch of {size}")

            def on_step(done, total):
                update(f"{counts.finished} of {counts.total} items; sampling step {done}/{total}")

            yield from generate_items(
                self.core,
                loaded,
                chunk,
                output_dir=self.request.output_dir,
                max_batch=self.request.max_batch,
                on_batch=on_batch,
                on_step=on_step,
            )
