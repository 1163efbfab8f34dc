"""The sweep job: a sweep's items that its folder lacks, generated and recorded, resumable from its manifest.

:func:`run` generates the items that its output folder does not hold yet, through a backend
(``local``: this kernel's model, :class:`sa3lab.sweep_batches.LocalBackend`; ``ray``: actors, see
:mod:`sa3lab.sweep_ray`), and writes each item as it arrives: a WAV plus the run core's JSON sidecar,
named after the item, and one line in ``manifest.jsonl`` (append-only: an item's last line is its
state). Running the same sweep again skips the items whose file is there (after a crash, a Stop or
a closed laptop). An item that fails twice is recorded as failed (and tried again by the next run).
"""

from __future__ import annotations

import json
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import checks
from .progress import NoProgress
from .runs import save_result
from .sweep_batches import LocalBackend, Outcome, SweepProgress
from .sweep_plan import SweepRequest

MANIFEST = "manifest.jsonl"


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


def run(core, request: SweepRequest, pasted_token: str | None = None, progress=None, on_update=None):
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
        with closing(_backend(core, request, pasted_token).run(pending, counts, update)) as outcomes:
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


def _backend(core, request: SweepRequest, pasted_token):
    if request.backend == "ray":
        from .sweep_ray import RayBackend  # Ray is imported only when chosen

        return RayBackend(core, request, pasted_token)
    return LocalBackend(core, request, pasted_token)


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
            **dict(item.settings),
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
    as_ran = {k: v for k, v in outcome.result.settings.items() if k not in ("prompt", "batch_size")}
    record["settings"].update(as_ran)  # every setting as it ran, and exactly the LoRA files used
    return {**record, "file": Path(path).name, "status": "done"}
