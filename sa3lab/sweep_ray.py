"""The ``ray`` backend of a sweep: Ray actors, one per GPU (or per CPU slot), each keeping its model loaded.

Imported only when a sweep chooses ``backend="ray"`` (install ``sa3lab[cluster]``). ``ray.init`` joins
the cluster at the sweep's ``address`` (none: a local one is started, or the one this process already
joined is used). The driver cuts the pending items into chunks of one model and settings and hands
each actor its next chunk as soon as it returns one, so faster workers take more; the driver alone
writes files and the manifest. Ray restarts an actor whose process dies and runs its chunk again
(``max_restarts`` / ``max_task_retries``); an actor that keeps dying is dropped and its items are
recorded as failed (the next run of the sweep tries them again). The actors end with the sweep.

A local Ray (no ``address``) is for its owner alone: its node takes the address 127.0.0.1, so that its
servers (GCS, raylet, workers, agents) listen on loopback only, and it requires Ray's token
authentication (``RAY_AUTH_MODE=token``, the token in ``~/.ray/auth_token``, readable by its owner
only), so that another user of the same machine cannot submit work to it either. Without the
token a client is refused ("Unauthenticated"). A Ray that cannot authenticate (before 2.52), or
``RAY_AUTH_MODE=disabled``, is refused rather than started open.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
from collections import deque
from contextlib import contextmanager
from pathlib import Path

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


AUTH_MODE = "RAY_AUTH_MODE"  # Ray's switch for token authentication ("token" / "disabled"), from 2.52
FIRST_AUTH = (2, 52)  # the first Ray with token authentication
DEFAULT_AUTH = (2, 59)  # the first Ray that turns it on for the local clusters it starts


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start a local one that only its owner can use (loopback,
    token authentication; ``num_cpus`` its CPUs, default all); nothing if this process has joined one."""
    if ray.is_initialized():
        return
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if address is not None:
        ray.init(address=address, **options)
        return
    _require_token_auth()
    with _loopback_node():
        ray.init(num_cpus=num_cpus, **options)
    if not token_auth_enabled():
        ray.shutdown()
        raise RuntimeError(
            f"Ray {ray.__version__} started a local cluster without token authentication; "
            "install sa3lab[cluster] (ray>=2.59) to run a sweep on a local Ray."
        )


def token_auth_enabled() -> bool:
    """Whether this process's Ray requires its token on every request (``RAY_AUTH_MODE=token``)."""
    try:
        from ray._raylet import AuthenticationMode, get_authentication_mode
    except ImportError:  # a Ray without token authentication
        return False
    return get_authentication_mode() == AuthenticationMode.TOKEN


def _require_token_auth() -> None:
    """Turn on token authentication for the local cluster about to start (Ray 2.59 and later do so
    themselves unless told otherwise), and make sure its token file is its owner's alone."""
    version = tuple(int(n) for n in re.findall(r"\d+", ray.__version__)[:2])
    if version < FIRST_AUTH:
        raise RuntimeError(
            f"Ray {ray.__version__} cannot authenticate its clients: a local Ray would accept work from "
            "anyone who can reach this machine. Install sa3lab[cluster] (ray>=2.59), or give the address "
            "of a cluster you secured yourself."
        )
    mode = os.environ.get(AUTH_MODE, "token")
    if mode.lower() != "token":
        raise RuntimeError(
            f"{AUTH_MODE}={mode}: a local Ray without token authentication would accept work from anyone "
            f"who can reach it. Unset {AUTH_MODE} (or set it to token), or give the address of a cluster "
            "you secured yourself."
        )
    if AUTH_MODE not in os.environ and version < DEFAULT_AUTH:  # later ones turn it on themselves
        os.environ[AUTH_MODE] = "token"
        try:  # as Ray does: its cached settings in this process read the variable again
            from ray._raylet import Config

            Config.initialize("")
        except (ImportError, AttributeError):
            pass
    if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
        _private_token_file(Path.home() / ".ray" / "auth_token")


def _private_token_file(path: Path) -> None:
    """Ray's default token file, created with a new token if missing; readable by its owner only
    (Ray itself writes it with the process's umask, often readable by everyone)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            path.chmod(0o600)
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))  # as ``ray get-auth-token --generate``: 256 random bits


@contextmanager
def _loopback_node():
    """While a local Ray starts, its node's address is 127.0.0.1, so its servers listen on loopback.

    On Linux Ray gives a local node the machine's outward address and then binds its servers to every
    interface ("::"); with the node address 127.0.0.1 it binds them to loopback. ``ray.init`` turns a
    ``_node_ip_address`` of 127.0.0.1 back into the outward address, so this uses the switch Ray
    itself keeps for single-machine nodes (macOS, Windows); the node keeps its address once started.
    Where a Ray lacks that switch the cluster starts as before, protected by its token alone.
    """
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield
        return
    saved = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved


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
