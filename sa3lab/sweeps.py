"""The sweep job: many prompts x seeds x settings, generated in exact batches, resumable from its manifest.

A :class:`SweepRequest` is checked up front (every problem gets its own sentence) and says how many
items it makes and about how long they take. :func:`run` generates the items that its output folder
does not hold yet, through a backend (``local``: this kernel's model; ``ray``: actors, see
:mod:`sa3lab.sweep_ray`), and writes each item as it arrives: a WAV plus the generation job's JSON
sidecar, named after the item, and one line in ``manifest.jsonl`` (append-only: an item's last line
is its state). Running the same sweep again skips the items whose file is there (after a crash, a
Stop or a closed laptop). A batch that fails is run again item by item; an item that fails twice is
recorded as failed (and tried again by the next run).

Items with the same model and settings are generated in batches (``stable_audio_3.batching``), and
each item's audio equals its own batch-1 ``generate`` call, so the files do not depend on the
backend, the batch size or the order.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import random
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import catalog, checks
from .generation import GenerationRequest
from .progress import NoProgress
from .runs import RANDOM_SEEDS, RunResult, new_result, save_result

BACKENDS = ("local", "ray")
GRID_KEYS = ("model", "steps", "cfg_scale", "duration")
CSV_COLUMNS = ("prompt", "duration", "negative_prompt", "seed")
MANIFEST = "manifest.jsonl"
# what makes a sweep's items (random seeds are drawn from these; where and how it runs does not count)
DEFINITION = ("model", "prompts", "seeds", "grid", "duration", "negative_prompt", "steps", "cfg_scale")
MAX_ITEMS = 10_000
MAX_RANDOM_SEEDS = 1000
# Failures a generation can raise (a bad value, out of memory, non-finite audio); anything else stops the run.
GENERATION_ERRORS = (ValueError, RuntimeError, MemoryError)
# The rough time model of :meth:`SweepRequest.estimate`: seconds per (parameter x second of latents x
# step x guidance branch) on 2 CPU cores, from README "Performance" (small-music, 30 s: 21.2 s), a
# fixed cost per item (text encoding, decoding of a tiny model) and a GPU's speed-up over 2 CPU cores.
CPU2_SECONDS_PER_PARAM_SECOND_STEP = 1.3e-10
ITEM_OVERHEAD_S = 0.05
PADDING_S = 6.0  # the engine generates this much more than the duration
GPU_SPEEDUP = 30.0  # not measured: a guess until a GPU run of benchmarks/bench_sweeps.py is recorded


@dataclass(frozen=True)
class SweepItem:
    """One generation of a sweep. Its :attr:`id` is a digest of everything that makes its audio."""

    model: str
    prompt: str
    seed: int
    duration: float
    negative_prompt: str = ""
    steps: int | None = None  # None: the model's default
    cfg_scale: float | None = None

    @property
    def id(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def stem(self) -> str:
        """The file name of its WAV and sidecar, without suffix: readable, and unique by the id."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.prompt.lower()).strip("-")[:32] or "prompt"
        return f"{slug}-{self.seed}-{self.id}"

    def request(self, output_dir: str) -> GenerationRequest:
        """The generation job's request that makes this item alone."""
        return GenerationRequest(
            model=self.model,
            prompt=self.prompt,
            duration=self.duration,
            negative_prompt=self.negative_prompt,
            steps=self.steps,
            cfg_scale=self.cfg_scale,
            seed=self.seed,
            output_dir=output_dir,
        )


@dataclass
class SweepRequest:
    """A sweep: prompts x seeds x a grid of settings, written to ``output_dir``. Holds no token.

    ``prompts``: a list of prompts (text, or dicts with ``prompt`` and optionally ``duration``,
    ``negative_prompt``, ``seed``), or the path of a text file (one prompt per line; ``#`` starts a
    comment) or a CSV file with those columns. A row's own seed replaces ``seeds`` for that row.
    ``seeds``: a list, or a number N for N random seeds drawn from the definition (the same sweep
    draws the same seeds, so it resumes). ``grid``: lists of values for any of :data:`GRID_KEYS`;
    every combination runs. ``backend``: ``local`` or ``ray`` (``address``: an existing Ray cluster,
    none: a local one; ``workers``: actors, default one per GPU, else 2). ``max_batch``: items per
    ``generate`` call (default: as many as half the free memory holds, up to 16).
    """

    model: str = "small-music"
    prompts: list | str = field(default_factory=list)
    seeds: list[int] | int = field(default_factory=lambda: [0])
    grid: dict[str, list] = field(default_factory=dict)
    duration: float = 10.0
    negative_prompt: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    output_dir: str = "outputs/sweep"
    backend: str = "local"
    address: str | None = None
    workers: int | None = None
    max_batch: int | None = None

    # ------------------------------------------------------------------ definition

    def rows(self) -> list[dict]:
        """The prompts as dicts (``prompt`` + optional per-row values); ValueError if they cannot be read."""
        if isinstance(self.prompts, (str, Path)):
            return _read_prompt_file(Path(self.prompts).expanduser())
        if not isinstance(self.prompts, (list, tuple)):
            raise ValueError(
                f"Prompts must be a list of prompts or the path of a .txt or .csv file; got "
                f"{checks.shown(self.prompts)}."
            )
        return [row if isinstance(row, dict) else {"prompt": row} for row in self.prompts]

    def seed_list(self) -> list[int]:
        """The seeds: the list given, or N drawn reproducibly from the rest of the definition."""
        if isinstance(self.seeds, (list, tuple)):
            return list(self.seeds)
        count = checks.whole(
            self.seeds,
            f"Seeds must be a list of seeds or a number of random seeds from 1 to {MAX_RANDOM_SEEDS}",
            low=1,
            high=MAX_RANDOM_SEEDS,
        )
        definition = {k: v for k, v in asdict(self).items() if k in DEFINITION}
        digest = hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).digest()
        return random.Random(digest).sample(range(RANDOM_SEEDS), count)

    def settings_grid(self) -> list[dict]:
        """Every combination of the grid's values (one empty combination without a grid)."""
        if not isinstance(self.grid, dict):
            raise ValueError(
                f"The grid must be a dict of setting -> list of values; got {checks.shown(self.grid)}."
            )
        unknown = [key for key in self.grid if key not in GRID_KEYS]
        if unknown:
            raise ValueError(f"The grid can vary {', '.join(GRID_KEYS)}; not {', '.join(map(str, unknown))}.")
        for key, values in self.grid.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"The grid's {key} must be a non-empty list of values, e.g. [8, 16].")
        keys = list(self.grid)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*self.grid.values())]

    def items(self) -> list[SweepItem]:
        """Every item, in order: prompts, then seeds, then grid combinations; duplicates once."""
        seeds, combos, out = self.seed_list(), self.settings_grid(), {}
        for row in self.rows():
            row_seeds = [row["seed"]] if row.get("seed") not in (None, "") else seeds
            for seed, combo in itertools.product(row_seeds, combos):
                values = {
                    "model": self.model,
                    "duration": row.get("duration")
                    if row.get("duration") not in (None, "")
                    else self.duration,
                    "negative_prompt": row.get("negative_prompt") or self.negative_prompt,
                    "steps": self.steps,
                    "cfg_scale": self.cfg_scale,
                    **combo,
                }
                item = SweepItem(prompt=row.get("prompt"), seed=seed, **values)
                out.setdefault(_hashable(item), item)
        return list(out.values())

    # ------------------------------------------------------------------ checks and estimate

    def problems(self) -> list[str]:
        """One sentence per problem with this sweep (empty: it can run)."""
        found: list[str] = []
        if self.backend not in BACKENDS:
            found.append(f"The backend must be local or ray; got {checks.shown(self.backend)}.")
        for name, value, low in (("workers", self.workers, 1), ("max_batch", self.max_batch, 1)):
            if value is not None:
                try:
                    checks.whole(value, f"{name} must be a whole number of 1 or more (or None)", low=low)
                except ValueError as exc:
                    found.append(str(exc))
        if self.address is not None and not isinstance(self.address, str):
            found.append(
                f"The Ray address must be text such as 'ray://head:10001'; got {checks.shown(self.address)}."
            )
        try:
            checks.path(self.output_dir, "The output folder must be a folder path, e.g. 'outputs/sweep'")
            rows = self.rows()
            self.seed_list()
            self.settings_grid()
        except ValueError as exc:
            return [*found, str(exc)]
        if not rows:
            found.append("Give at least one prompt (one per line, or a .txt / .csv file of prompts).")
        for index, row in enumerate(rows, 1):
            extra = sorted(set(row) - set(CSV_COLUMNS))
            if extra:
                found.append(
                    f"Prompt {index} has unknown fields {', '.join(extra)}; use {', '.join(CSV_COLUMNS)}."
                )
        items = self.items()
        if len(items) > MAX_ITEMS:
            return [f"This sweep has {len(items)} items; split it into sweeps of at most {MAX_ITEMS}."]
        if any(item.seed == -1 for item in items):
            found.append(
                "A sweep's seeds must be 0 or more, so that it can resume; for random seeds give their "
                "number instead (seeds=8)."
            )
        return list(dict.fromkeys(found + _item_problems(items, self.output_dir)))

    def check(self) -> None:
        """Raise ValueError with one sentence per problem (all of them at once)."""
        found = self.problems()
        if found:
            raise ValueError(" ".join(found))

    def estimate(self, machine) -> Estimate:
        """The counts of items, prompts, seeds and settings, and a rough duration on ``machine``."""
        items = self.items()
        gpu = machine.cuda or machine.mps
        speed = GPU_SPEEDUP if gpu else torch.get_num_threads() / 2
        seconds = 0.0
        for item in items:
            alone = item.request(self.output_dir)
            entry, settings = alone.entry(), alone.settings()
            params = entry.params if entry is not None else catalog.SMALL_PARAMS
            branches = 1 if settings["cfg_scale"] == 1 else 2
            work = params * (item.duration + PADDING_S) * settings["steps"] * branches
            seconds += (work * CPU2_SECONDS_PER_PARAM_SECOND_STEP + ITEM_OVERHEAD_S) / speed
        return Estimate(
            items=len(items),
            prompts=len({item.prompt for item in items}),
            seeds=len({item.seed for item in items}),
            settings=len({(i.model, i.duration, i.steps, i.cfg_scale) for i in items}),
            seconds=seconds,
            device="the GPU" if gpu else f"{torch.get_num_threads()} CPU threads",
        )


@dataclass(frozen=True)
class Estimate:
    items: int
    prompts: int
    seeds: int
    settings: int
    seconds: float
    device: str

    def sentence(self) -> str:
        return (
            f"{_count(self.items, 'item')} ({_count(self.prompts, 'prompt')} x {_count(self.seeds, 'seed')} "
            f"x {_count(self.settings, 'setting')}); "
            f"about {_duration_text(self.seconds)} on {self.device} with one worker (a rough estimate from "
            "the model's size; the progress table shows the measured rate)."
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _item_problems(items: list[SweepItem], output_dir: str) -> list[str]:
    """Each item's own check, once per problem: naming its prompt where not every prompt has it."""
    hits: dict[str, list] = {}
    for item in items:
        try:
            item.request(output_dir).check()
        except ValueError as exc:
            hits.setdefault(str(exc), []).append(item.prompt)
    prompts = {_hashable(p) for p in (item.prompt for item in items)}
    out = []
    for problem, hit in hits.items():
        first = hit[0]
        if {_hashable(p) for p in hit} == prompts or not isinstance(first, str) or not first.strip():
            out.append(problem)
        else:
            others = " and others" if len({_hashable(p) for p in hit}) > 1 else ""
            out.append(f"“{first[:40]}”{others}: {problem}")
    return out


def _hashable(item):
    try:
        return hash(item), item
    except TypeError:  # an unchecked value (a list where a number belongs): keep it, the checks name it
        return id(item), id(item)


def _read_prompt_file(path: Path) -> list[dict]:
    """Rows of a .csv file (a ``prompt`` column, optional others) or prompts of a text file, one per line."""
    if not path.is_file():
        raise ValueError(f"The prompts file {path} was not found; check the path, or type the prompts.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        raise ValueError(
            f"The prompts file {path} could not be read as UTF-8 text; save it as UTF-8."
        ) from None
    if path.suffix.lower() != ".csv":
        lines = [line.strip() for line in text.splitlines()]
        return [{"prompt": line} for line in lines if line and not line.startswith("#")]
    reader = csv.DictReader(text.splitlines())
    if "prompt" not in (reader.fieldnames or []):
        raise ValueError(f"The CSV file {path} needs a header row with a 'prompt' column.")
    rows = []
    for number, raw in enumerate(reader, 2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not row["prompt"]:
            continue
        for key, kind in (("duration", float), ("seed", int)):
            if row.get(key):
                try:
                    row[key] = kind(row[key])
                except ValueError:
                    raise ValueError(
                        f"Line {number} of {path.name}: the {key} {row[key]!r} is not a "
                        f"{'number of seconds' if kind is float else 'whole number'}."
                    ) from None
        rows.append({k: v for k, v in row.items() if v != ""})
    return rows


# ---------------------------------------------------------------------------------------------- generating


@dataclass
class Outcome:
    """One item as a backend hands it back: its result (not yet saved), or the error of its last try."""

    item: SweepItem
    result: RunResult | None
    seconds: float
    attempts: int
    error: str | None = None


def generate_items(
    model,
    items: list[SweepItem],
    *,
    output_dir: str,
    max_batch=None,
    on_batch=None,
    on_step=None,
    cache_hit=True,
    load_s=0.0,
) -> Iterator[Outcome]:
    """Generate ``items`` with one loaded model in exact batches, yielding each batch's outcomes.

    A batch that raises one of :data:`GENERATION_ERRORS` is run again item by item, once.
    ``on_batch(n)`` is called before each batch of ``n`` items, ``on_step(done, total)`` after every
    sampler step (either may raise to stop).
    """
    from stable_audio_3.batching import plan_batches

    calls = [_generate_kwargs(item) for item in items]
    for batch in plan_batches(model, calls, max_batch=max_batch):
        chunk = [items[i] for i in batch.indices]
        if on_batch is not None:
            on_batch(len(chunk))
        try:
            yield from _generate_batch(model, chunk, batch.kwargs, 1, output_dir, on_step, cache_hit, load_s)
        except GENERATION_ERRORS as first:
            for item in chunk:
                single = plan_batches(model, [_generate_kwargs(item)], max_batch=1)[0].kwargs
                try:
                    yield from _generate_batch(
                        model, [item], single, 2, output_dir, on_step, cache_hit, load_s
                    )
                except GENERATION_ERRORS as exc:
                    error = str(exc) or type(exc).__name__
                    yield Outcome(item, None, 0.0, 2, f"{error} (first try: {first})")


def _generate_kwargs(item: SweepItem) -> dict:
    settings = item.request("").settings()
    return {
        "prompt": item.prompt,
        "negative_prompt": item.negative_prompt or None,
        "duration": item.duration,
        "steps": settings["steps"],
        "cfg_scale": settings["cfg_scale"],
        "seed": item.seed,
    }


def _generate_batch(model, chunk, kwargs, attempt, output_dir, on_step, cache_hit, load_s):
    start = time.perf_counter()
    callback = None if on_step is None else (lambda info: on_step(info["i"] + 1, info["steps"]))
    out = model.generate(**kwargs, callback=callback, disable_tqdm=True, return_info=True)
    audio = out.audio.to("cpu", torch.float32)
    seconds = (time.perf_counter() - start) / len(chunk)
    share = {stage: value / len(chunk) for stage, value in out.timings.items()}
    outcomes = []
    for i, item in enumerate(chunk):
        request = item.request(output_dir)
        settings = request.settings()
        result = new_result(
            model,
            audio[i : i + 1],
            seed=out.seed[i],
            model_key=item.model,
            timings={"load": load_s, **share, "total": seconds},
            cache_hit=cache_hit,
            settings={
                "prompt": item.prompt,
                "negative_prompt": item.negative_prompt,
                "duration": item.duration,
                **settings,
                "mode": "text-to-audio",
                "batch_size": len(chunk),
            },
            requested_s=item.duration,
            request=asdict(replace(request, steps=settings["steps"], cfg_scale=settings["cfg_scale"])),
        )
        outcomes.append(Outcome(item, result, seconds, attempt))
    return outcomes


def chunks(items: list[SweepItem], size: int | None) -> list[list[SweepItem]]:
    """Items of one model and settings together (at most ``size`` per chunk; None: no limit)."""
    groups: dict[tuple, list[SweepItem]] = {}
    for item in items:
        groups.setdefault((item.model, item.duration, item.steps, item.cfg_scale), []).append(item)
    out = []
    for group in groups.values():
        step = size or len(group)
        out += [group[i : i + step] for i in range(0, len(group), step)]
    return out


# ---------------------------------------------------------------------------------------------- the run


class Manifest:
    """``manifest.jsonl`` of an output folder: one JSON line per finished try; an item's last line counts."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / MANIFEST

    def records(self) -> dict[str, dict]:
        """The last record of each item id (a line cut short by a crash is ignored)."""
        latest: dict[str, dict] = {}
        if not self.path.exists():
            return latest
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
                latest[record["id"]] = record
            except (ValueError, KeyError, TypeError):
                continue
        return latest

    def finished(self) -> set[str]:
        """Ids of the items done whose file is still there."""
        return {
            item_id
            for item_id, record in self.records().items()
            if record.get("status") == "done" and (self.path.parent / record.get("file", "")).is_file()
        }

    def append(self, record: dict) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps(record, default=str) + "\n")


@dataclass
class SweepProgress:
    """Counts of a running sweep, for the live table: done, running, failed, skipped, items per minute."""

    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
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
            "running": self.running,
            "failed": self.failed,
            "items per minute": f"{rate:.2f}" if self.done + self.failed else "-",
        }
        if rate and left:
            rows["time left"] = _duration_text(60.0 * left / rate)
        return rows


@dataclass
class SweepResult:
    """What a sweep run leaves: the manifest's records of this sweep's items, and the run's counts."""

    output_dir: str
    manifest: str
    records: list[dict]
    progress: SweepProgress
    seconds: float
    backend: str
    stopped: bool = False  # the run was stopped before the end (its finished items are kept)

    def failed(self) -> list[dict]:
        return [r for r in self.records if r.get("status") != "done"]


def run(lab, request: SweepRequest, pasted_token: str | None = None, progress=None, on_update=None):
    """Check the sweep, generate the items its folder lacks through its backend, and record each one.

    ``progress``: the job progress protocol (its ``step`` may raise to stop the sweep between steps);
    ``on_update(SweepProgress)`` is called whenever the counts change.
    """
    if not isinstance(request, SweepRequest):
        raise ValueError(f"A sweep takes a SweepRequest; got {checks.shown(request)}.")
    request.check()
    progress = progress or NoProgress()
    folder = Path(request.output_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(folder)
    items = request.items()
    finished = manifest.finished()
    pending = [item for item in items if item.id not in finished]
    counts = SweepProgress(total=len(items), skipped=len(items) - len(pending))
    start = time.perf_counter()

    def update(text: str | None = None) -> None:
        if on_update is not None:
            on_update(counts)
        progress.step(counts.finished, counts.total, text)

    update("starting")
    if pending:
        with closing(_backend(lab, request, pasted_token).run(pending, counts, update)) as outcomes:
            for outcome in outcomes:
                record = _record(outcome, folder)
                manifest.append(record)
                counts.running = max(0, counts.running - 1)
                if record["status"] == "done":
                    counts.done += 1
                else:
                    counts.failed += 1
                update(f"{counts.finished} of {counts.total} items")
    return collect(request, counts, time.perf_counter() - start)


def collect(request: SweepRequest, counts: SweepProgress, seconds: float, stopped: bool = False):
    """The :class:`SweepResult` of what the sweep's folder holds now (after a stopped run too)."""
    manifest = Manifest(Path(request.output_dir).expanduser())
    latest = manifest.records()
    return SweepResult(
        output_dir=str(manifest.path.parent),
        manifest=str(manifest.path),
        records=[latest[item.id] for item in request.items() if item.id in latest],
        progress=counts,
        seconds=seconds,
        backend=request.backend,
        stopped=stopped,
    )


def _backend(lab, request: SweepRequest, pasted_token):
    if request.backend == "ray":
        from .sweep_ray import RayBackend  # Ray is imported only when chosen

        return RayBackend(lab, request, pasted_token)
    return LocalBackend(lab, request, pasted_token)


def _record(outcome: Outcome, folder: Path) -> dict:
    """Save a finished item's audio and sidecar; its manifest line."""
    item = outcome.item
    record = {
        "id": item.id,
        "prompt": item.prompt,
        "settings": {
            "model": item.model,
            "duration": item.duration,
            "negative_prompt": item.negative_prompt,
            "steps": item.steps,
            "cfg_scale": item.cfg_scale,
        },
        "seed": item.seed,
        "file": None,
        "status": "failed",
        "seconds": round(outcome.seconds, 3),
        "attempts": outcome.attempts,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if outcome.result is None:
        return {**record, "error": outcome.error}
    (path,) = save_result(outcome.result, folder, stems=[item.stem])
    record["settings"].update(
        steps=outcome.result.settings["steps"], cfg_scale=outcome.result.settings["cfg_scale"]
    )
    return {**record, "file": Path(path).name, "status": "done"}


class LocalBackend:
    """This kernel, one device: the lab's cached model, the items' batches one after another."""

    def __init__(self, lab, request: SweepRequest, pasted_token=None):
        self.lab, self.request, self.token = lab, request, pasted_token

    def run(self, pending: list[SweepItem], counts: SweepProgress, update) -> Iterable[Outcome]:
        for chunk in chunks(pending, None):
            model_key = chunk[0].model
            entry = catalog.lookup(model_key)
            update(f"loading {model_key}")
            token = self.lab.download_token(entry, self.token)
            model, cache_hit, load_s = self.lab.load_generator(model_key, entry, token)

            def on_batch(size):
                counts.running = size
                update(f"{counts.finished} of {counts.total} items; a batch of {size}")

            def on_step(done, total):
                update(f"{counts.finished} of {counts.total} items; sampling step {done}/{total}")

            yield from generate_items(
                model,
                chunk,
                output_dir=self.request.output_dir,
                max_batch=self.request.max_batch,
                on_batch=on_batch,
                on_step=on_step,
                cache_hit=cache_hit,
                load_s=load_s,
            )
