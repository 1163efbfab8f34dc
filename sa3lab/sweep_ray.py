"""The ``ray`` backend of a sweep: Ray actors, one per GPU (or per CPU slot), each keeping its model loaded.

Imported only when a sweep chooses ``backend="ray"`` (install ``sa3lab[cluster]``). ``ray.init`` joins
the cluster at the sweep's ``address`` (none: a local one is started, or the one this process already
joined is used). The driver cuts the pending items into chunks of one model and settings and hands
each actor its next chunk as soon as it returns one, so faster workers take more; the driver alone
writes files and the manifest. Ray restarts an actor whose process dies and runs its chunk again
(``max_restarts`` / ``max_task_retries``); an actor that keeps dying is dropped and its items are
recorded as failed (the next run of the sweep tries them again). The actors end with the sweep.
"""

from __future__ import annotations

import logging
import os
from collections import deque

import ray
from ray.exceptions import RayActorError, RayTaskError

from . import catalog
from .run_core import RunCore
from .sweep_batches import Outcome, SweepProgress, chunks, generate_items
from .sweep_plan import SweepItem, SweepRequest

RESTARTS = 2  # times Ray restarts a dead actor and retries its chunk
MAX_CHUNK = 8
WAIT_S = 0.25  # how often the driver looks up from waiting (progress, Stop)


class SweepWorker:
    """One actor: a run core of its own (its model stays loaded between chunks), ``threads`` torch threads."""

    def __init__(self, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.core = RunCore()

    def pid(self) -> int:
        return os.getpid()

    def generate(self, items: list[SweepItem], output_dir: str, max_batch: int | None) -> list[Outcome]:
        """The outcomes of ``items`` (one model), generated in exact batches; the driver saves them."""
        loaded = self.core.load(items[0].model)
        return list(generate_items(self.core, loaded, items, output_dir=output_dir, max_batch=max_batch))


def connect(address: str | None = None) -> None:
    """Join the cluster at ``address``, or start a local one; nothing if this process has joined one."""
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)


class RayBackend:
    """Runs a sweep's pending items on Ray actors (see the module docstring)."""

    def __init__(self, core, request: SweepRequest, pasted_token=None):
        self.core, self.request, self.token = core, request, pasted_token

    def _prepare_models(self, pending: list[SweepItem]) -> None:
        """Check access to each model here first, so that errors show before any actor starts; for a
        local Ray also fetch the files, which its actors then find in the cache."""
        from stable_audio_3.hub import resolve_model_files

        for model_key in dict.fromkeys(item.model for item in pending):
            entry = catalog.lookup(model_key)
            token = self.core.download_token(entry, self.token)
            if self.request.address is None:  # a local Ray: its actors read this machine's cache
                resolve_model_files(model_key, token=token)

    def _actors(self) -> list:
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), resources.get("CPU", 1)
        workers = self.request.workers or gpus or 2
        if gpus:
            options, threads = {"num_gpus": 1, "num_cpus": 1}, None
        else:
            options, threads = {"num_cpus": cpus / workers}, max(1, int(cpus // workers))
        remote = ray.remote(max_restarts=RESTARTS, max_task_retries=RESTARTS)(SweepWorker)
        return [remote.options(**options).remote(threads) for _ in range(workers)]

    def run(self, pending: list[SweepItem], counts: SweepProgress, update):
        self._prepare_models(pending)
        update("connecting to Ray")
        connect(self.request.address)
        actors = self._actors()
        size = self.request.max_batch or min(MAX_CHUNK, max(1, -(-len(pending) // (2 * len(actors)))))
        queue = deque(chunks(pending, size))
        running: dict = {}  # object ref -> (actor, chunk)

        def give(actor) -> None:
            if queue:
                chunk = queue.popleft()
                ref = actor.generate.remote(chunk, self.request.output_dir, self.request.max_batch)
                running[ref] = (actor, chunk)
                counts.running += len(chunk)

        try:
            for actor in actors:
                give(actor)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
                if not ready:
                    update(None)
                    continue
                actor, chunk = running.pop(ready[0])
                try:
                    outcomes = ray.get(ready[0])
                except RayActorError as exc:
                    actors.remove(actor)
                    outcomes = _lost(
                        chunk, f"its Ray worker died {RESTARTS + 1} times ({type(exc).__name__})"
                    )
                    if not actors:
                        while queue:
                            outcomes += _lost(queue.popleft(), "no Ray worker is left")
                except RayTaskError as exc:
                    raise (exc.cause if isinstance(exc.cause, ValueError) else exc) from None
                else:
                    give(actor)
                yield from outcomes
        finally:
            for actor in actors:
                ray.kill(actor)


def _lost(chunk: list[SweepItem], why: str) -> list[Outcome]:
    return [Outcome(item, None, 0.0, RESTARTS + 1, f"Not generated: {why}.") for item in chunk]
