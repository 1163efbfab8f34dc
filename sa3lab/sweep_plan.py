"""A sweep's definition: prompts x seeds x settings, each item a generation request.

A :class:`SweepRequest` is checked up front (every problem gets its own sentence), lists its items
(:class:`SweepItem`: one generation each, named by a digest of everything that makes its audio) and
says about how long they take. Running it is :mod:`sa3lab.sweeps`.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import catalog, checks, defaults
from .generation import GenerationRequest
from .runs import RANDOM_SEEDS

BACKENDS = ("local", "ray")
# Everything a generation can set that makes its audio: each can be set for the whole sweep
# (SweepRequest fields or ``settings``), per prompt, or varied in the grid.
PER_RUN = ("prompt", "seed", "batch_size", "output_dir", "prompt_expansion", "confirm_long")
GRID_KEYS = tuple(name for name in GenerationRequest.__dataclass_fields__ if name not in PER_RUN)
OWN_FIELDS = ("model", "duration", "negative_prompt", "steps", "cfg_scale")  # SweepRequest's own
CSV_COLUMNS = ("prompt", "seed", *GRID_KEYS)
# what makes a sweep's items (random seeds are drawn from these; where and how it runs does not count)
DEFINITION = (
    "model",
    "prompts",
    "seeds",
    "grid",
    "duration",
    "negative_prompt",
    "steps",
    "cfg_scale",
    "settings",
)
MAX_ITEMS = 10_000
MAX_RANDOM_SEEDS = 1000
# The time model of :meth:`SweepRequest.estimate`, term by term as a run spends it (2 CPU cores,
# float32; fitted to docs/performance.md's small-music figures and the demo model, see
# benchmarks/bench_sweeps.py --estimate): loading each model not yet in the kernel's cache, then per
# item the text encoder, every sampler step of every guidance branch (a fixed cost per step plus
# the model's parameters x seconds of latents), decoding (per second of audio) and saving the files.
LOAD_S, LOAD_S_PER_PARAM = 2.0, 3.0e-9  # with the first run's warm-up
TEXT_ENCODER_S, TEXT_S_PER_PARAM = 0.02, 3.5e-9  # the demo's tiny encoder; T5Gemma's parameters
TINY_PARAMS = 10_000_000  # a model below this (the demo, test fixtures) has a tiny text encoder too
STEP_S, STEP_S_PER_PARAM_SECOND = 0.03, 9.7e-11
DECODE_S_PER_SECOND, DECODE_S_PER_PARAM_SECOND = 0.01, 1.4e-10
ASSUMED_BATCH = 8  # items per batch where max_batch is not set (the run fits them to the memory)
SAVE_S = 0.02  # a WAV, its sidecar and a manifest line
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
    settings: tuple = ()  # the other generation settings, as sorted (name, value) pairs

    @property
    def id(self) -> str:
        made_of = asdict(self)
        if not self.settings:  # the ids of sweeps without other settings stay as they were
            made_of.pop("settings")
        return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()[:12]

    def group(self) -> tuple:
        """What items must share to be generated in one batch: model and every setting."""
        return (self.model, self.duration, self.steps, self.cfg_scale, self.settings)

    @property
    def stem(self) -> str:
        """The file name of its WAV and sidecar, without suffix: readable, and unique by the id."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.prompt.lower()).strip("-")[:32] or "prompt"
        return f"{slug}-{self.seed}-{self.id}"

    def request(self, output_dir: str) -> GenerationRequest:
        """The generation request that makes this item alone."""
        return GenerationRequest(
            model=self.model,
            prompt=self.prompt,
            duration=self.duration,
            negative_prompt=self.negative_prompt,
            steps=self.steps,
            cfg_scale=self.cfg_scale,
            seed=self.seed,
            output_dir=output_dir,
            **{name: _thawed(name, value) for name, value in self.settings},
        )


@dataclass
class SweepRequest:
    """A sweep: prompts x seeds x a grid of settings, written to ``output_dir``. Holds no token.

    ``prompts``: a list of prompts (text, or dicts with ``prompt`` and optionally ``duration``,
    ``negative_prompt``, ``seed``), or the path of a text file (one prompt per line; ``#`` starts a
    comment) or a CSV file with those columns. A row's own seed replaces ``seeds`` for that row.
    ``seeds``: a list, or a number N for N random seeds drawn from the definition (the same sweep
    draws the same seeds, so it resumes). ``grid``: lists of values for any of :data:`GRID_KEYS`;
    every combination runs. ``settings``: any other generation setting for every item (a sampler,
    a schedule, LoRA files with their strengths, a mode with its source file...); a prompt dict or
    CSV column may set any of :data:`GRID_KEYS` for its row. ``backend``: ``local`` or ``ray``
    (``address``: an existing Ray cluster, none: a local one; ``workers``: actors, default one per
    GPU, else 2). ``max_batch``: items per ``generate`` call (default: as many as half the free
    memory holds, up to 16).
    """

    model: str = "small-music"
    prompts: list | str = field(default_factory=list)
    seeds: list[int] | int = field(default_factory=lambda: [0])
    grid: dict[str, list] = field(default_factory=dict)
    duration: float = defaults.DURATION
    negative_prompt: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    settings: dict = field(default_factory=dict)
    output_dir: str = defaults.SWEEP_OUTPUT_DIR
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
            f"Seeds must be a list of seeds or a number of random seeds from 1 to {MAX_RANDOM_SEEDS}",
            self.seeds,
            low=1,
            high=MAX_RANDOM_SEEDS,
        )
        definition = {k: v for k, v in asdict(self).items() if k in DEFINITION and (v or k != "settings")}
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
        """Every item, in order: prompts, then seeds, then grid combinations; duplicates once.

        A value comes from the grid, else the prompt's row, else the sweep (its own fields, then
        ``settings``)."""
        seeds, combos, out = self.seed_list(), self.settings_grid(), {}
        sweep = {**self._settings(), **{name: getattr(self, name) for name in OWN_FIELDS}}
        for row in self.rows():
            row_seeds = [row["seed"]] if row.get("seed") not in (None, "") else seeds
            own = {k: v for k, v in row.items() if k in GRID_KEYS and v not in (None, "")}
            for seed, combo in itertools.product(row_seeds, combos):
                values = {**sweep, **own, **combo}
                others = tuple(sorted((k, _frozen(v)) for k, v in values.items() if k not in OWN_FIELDS))
                item = SweepItem(
                    prompt=row.get("prompt"),
                    seed=seed,
                    settings=others,
                    **{name: values[name] for name in OWN_FIELDS},
                )
                out.setdefault(_hashable(item), item)
        return list(out.values())

    def _settings(self) -> dict:
        """``settings`` checked for its names (values are checked with each item's request)."""
        if not isinstance(self.settings, dict):
            raise ValueError(
                f"The settings must be a dict of generation settings, e.g. {{'sampler': 'euler'}}; "
                f"got {checks.shown(self.settings)}."
            )
        unknown = [str(k) for k in self.settings if k not in GRID_KEYS or k in OWN_FIELDS]
        if unknown:
            raise ValueError(
                f"The sweep's settings can hold {', '.join(k for k in GRID_KEYS if k not in OWN_FIELDS)} "
                f"(set {', '.join(OWN_FIELDS)} with the sweep's own fields); not {', '.join(unknown)}."
            )
        return dict(self.settings)

    # ------------------------------------------------------------------ checks and estimate

    def problems(self) -> list[str]:
        """One sentence per problem with this sweep (empty: it can run)."""
        found: list[str] = []
        if self.backend not in BACKENDS:
            found.append(f"The backend must be local or ray; got {checks.shown(self.backend)}.")
        for name, value, low in (("workers", self.workers, 1), ("max_batch", self.max_batch, 1)):
            if value is not None:
                try:
                    checks.whole(f"{name} must be a whole number of 1 or more (or None)", value, low=low)
                except ValueError as exc:
                    found.append(str(exc))
        if self.address is not None and not isinstance(self.address, str):
            found.append(
                f"The Ray address must be text such as 'ray://head:10001'; got {checks.shown(self.address)}."
            )
        try:
            checks.path("The output folder must be a folder path, e.g. 'outputs/sweep'", self.output_dir)
            rows = self.rows()
            self.seed_list()
            self.settings_grid()
            self._settings()
        except PromptFileError as exc:
            return [*found, *exc.problems]
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

    def estimate(self, machine, loaded=()) -> Estimate:
        """The counts of items, prompts, seeds and settings, and a rough duration on ``machine``:
        loading each model that is not in ``loaded`` (the cache's keys), then every item."""
        items = self.items()
        gpu = machine.cuda or machine.mps
        models = {item.model for item in items} - set(loaded)
        stages = {"load": sum(load_seconds(model_params(model)) for model in models)}
        for item in items:
            for stage, seconds in estimated_stages(item.request(self.output_dir), machine).items():
                stages[stage] = stages.get(stage, 0.0) + seconds
        if items:
            stages["sampling"] -= self._batch_savings(items)
        return Estimate(
            items=len(items),
            prompts=len({item.prompt for item in items}),
            seeds=len({item.seed for item in items}),
            settings=len({item.group() for item in items}),
            seconds=sum(stages.values()),
            device="the GPU" if gpu else f"{torch.get_num_threads()} CPU threads",
            rows=len(self.rows()),
            stages=stages,
        )

    def _batch_savings(self, items: list[SweepItem]) -> float:
        """The fixed per-step cost that items generated together in one batch share (a batch of the
        same model and settings, up to ``max_batch`` or :data:`ASSUMED_BATCH` items)."""
        groups: dict[tuple, list[SweepItem]] = {}
        for item in items:
            groups.setdefault(item.group(), []).append(item)
        saved = 0.0
        for group in groups.values():
            settings = group[0].request(self.output_dir).settings()
            branches = 1 if settings["cfg_scale"] == 1 else 2
            size = min(len(group), self.max_batch or ASSUMED_BATCH)
            batches = -(-len(group) // size)
            saved += (len(group) - batches) * settings["steps"] * branches * STEP_S
        return saved


def model_params(model: str) -> int:
    """A model's parameters (DiT + autoencoder): the catalog's count, or a local folder's weights
    counted from their file's header (a small model's where it cannot be read)."""
    entry = catalog.lookup(model)
    if entry is not None:
        return entry.params
    from safetensors import safe_open

    try:
        with safe_open(str(Path(model).expanduser() / "model.safetensors"), framework="pt") as weights:
            return sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys())
    except Exception:  # noqa: BLE001 - an unreadable file is the loader's to report; this is an estimate
        return catalog.SMALL_PARAMS


def speed_over_2_cores(machine) -> float:
    """How much faster than 2 CPU cores ``machine`` does the work of a model's parameters."""
    return GPU_SPEEDUP if machine.cuda or machine.mps else torch.get_num_threads() / 2


def load_seconds(params: int) -> float:
    """A rough time to load a model of ``params`` parameters from the disk (not a download)."""
    return LOAD_S + LOAD_S_PER_PARAM * params


def estimated_seconds(request: GenerationRequest, machine) -> float:
    """A rough wall time of one generation on ``machine`` once its model is loaded."""
    return sum(estimated_stages(request, machine).values())


def estimated_stages(request: GenerationRequest, machine) -> dict[str, float]:
    """:func:`estimated_seconds` stage by stage, named as a run's record times them: text encoding,
    every sampler step of every guidance branch, decoding and saving (see the constants above). The
    fixed costs (Python and kernel launches) do not shrink with more threads or a GPU; the work does."""
    speed = speed_over_2_cores(machine)
    settings, params = request.settings(), model_params(request.model)
    text = TEXT_S_PER_PARAM * catalog.T5GEMMA_ENCODER_PARAMS if params > TINY_PARAMS else 0.0
    steps = settings["steps"] * (1 if settings["cfg_scale"] == 1 else 2)
    sampling = steps * STEP_S_PER_PARAM_SECOND * params * (request.duration + PADDING_S)
    decoding = request.duration * DECODE_S_PER_PARAM_SECOND * params
    return {
        "text_encoding": TEXT_ENCODER_S + text / speed,
        "sampling": steps * STEP_S + sampling / speed,
        "decoding": request.duration * DECODE_S_PER_SECOND + decoding / speed,
        "saving": SAVE_S,
    }


@dataclass(frozen=True)
class Estimate:
    items: int
    prompts: int
    seeds: int
    settings: int
    seconds: float
    device: str
    rows: int = 0  # prompt rows (a row with its own seed or settings makes only those)
    stages: dict = field(default_factory=dict)  # ``seconds`` by stage: load, text_encoding, sampling...

    def counts(self) -> str:
        """How the items come about: a product where every prompt takes every seed and setting."""
        items, seeds, settings = (
            _count(self.items, "item"),
            _count(self.seeds, "seed"),
            _count(self.settings, "setting"),
        )
        if self.prompts * self.seeds * self.settings == self.items:
            return f"{items} ({_count(self.prompts, 'prompt')} x {seeds} x {settings})"
        rows = _count(self.rows or self.prompts, "prompt row")
        return (
            f"{items} from {rows} (a row with its own seed or settings makes only those; "
            f"{seeds} and {settings} in all)"
        )

    def sentence(self) -> str:
        loading = self.stages.get("load", 0.0)
        load = f", loading the model included ({duration_text(loading)})" if loading else ""
        return (
            f"{self.counts()}; about {duration_text(self.seconds)} on {self.device} with one worker{load} "
            "(a rough estimate from the model's size; the progress table shows the measured rate)."
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def duration_text(seconds: float) -> str:
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
            item.request(output_dir)  # checked as it is built
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


def _frozen(value):
    """A hashable form of a setting's value: lists and dicts become tuples (see :func:`_thawed`)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(name: str, value):
    """A setting's value from its :func:`_frozen` form, as :class:`GenerationRequest` takes it."""
    if name == "schedule" and value is not None:
        return dict(value) if isinstance(value, tuple) else value
    default = GenerationRequest.__dataclass_fields__[name].default_factory
    return list(value) if default is list and isinstance(value, tuple) else value


def _hashable(item):
    try:
        return hash(item), item
    except TypeError:  # an unchecked value (a list where a number belongs): keep it, the checks name it
        return id(item), id(item)


MAX_LINE_PROBLEMS = 10  # problems of a prompt file listed one by one; the rest are counted


class PromptFileError(ValueError):
    """Every problem of a prompt file's lines, one sentence each (up to :data:`MAX_LINE_PROBLEMS`)."""

    def __init__(self, problems: list[str]):
        shown = problems[:MAX_LINE_PROBLEMS]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more lines with problems.")
        self.problems = shown
        super().__init__(" ".join(shown))


TEXT_COLUMNS = ("prompt", "negative_prompt", "model", "sampler", "mode", "source_audio", "a2a_schedule")
SECONDS_COLUMNS = ("duration", "duration_padding", "continuation_s")


def _csv_value(key: str, text: str, where: str):
    """A CSV cell as the setting takes it: a whole seed, a number, or JSON for lists and schedules."""
    try:
        if key == "seed":
            return int(text)
        if key in GenerationRequest.__dataclass_fields__ and text[:1] in "[{":
            return json.loads(text)
        return float(text)
    except ValueError:
        what = (
            "whole number"
            if key == "seed"
            else "JSON list or dict"
            if text[:1] in "[{"
            else "number of seconds"
            if key in SECONDS_COLUMNS
            else "number"
        )
        raise ValueError(f"{where}: the {key} {text!r} is not a {what}.") from None


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
    rows, problems = [], []
    for number, raw in enumerate(reader, 2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"Line {number} of {path.name}"
        if not row["prompt"]:
            problems.append(f"{where} has no prompt; write one or delete the line.")
            continue
        for key, text in row.items():
            if text and key not in TEXT_COLUMNS:
                try:
                    row[key] = _csv_value(key, text, where)
                except ValueError as exc:
                    problems.append(str(exc))
        rows.append({k: v for k, v in row.items() if v != ""})
    if problems:
        raise PromptFileError(problems)
    return rows
