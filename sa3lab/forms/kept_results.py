"""A form's results kept beside its output files, so that running its cell again shows them again.

A form's results are ordinary cell outputs (saved with the notebook), but running the cell again,
the way back after a kernel restart or on reopening, clears them before the kernel can see them.
So each shown form keeps the HTML of its results in ``<output folder>/.sa3lab-results/<key>.json``
and a new form shown in the same cell takes them back. The key is the notebook cell's id where the
front end sends one (JupyterLab, Notebook 7, VS Code); elsewhere (Colab, the classic page) it is the
form's own name, so forms of one name writing to one folder share their results.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ..runs import atomic_write

FOLDER = ".sa3lab-results"  # inside the form's output folder; the results library lists only its top level


class KeptResults:
    """The kept results of one shown form: ``load`` when shown, ``save`` after each change."""

    def __init__(self, output_dir, key: str):
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", key).strip("-")[:40]
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        self.path = Path(output_dir).expanduser() / FOLDER / f"{slug}-{digest}.json"

    def load(self) -> tuple[list[str], int]:
        """(result HTML blocks newest first, how many older ones left the view); none if unreadable."""
        try:
            kept = json.loads(self.path.read_text())
            blocks, dropped = kept["results"], int(kept["dropped"])
        except (OSError, ValueError, KeyError, TypeError):
            return [], 0
        if not all(isinstance(block, str) for block in blocks):
            return [], 0
        return blocks, dropped

    def save(self, blocks: list[str], dropped: int) -> None:
        """Write the results; a folder that cannot be written costs only the keeping, never the run."""
        text = json.dumps({"results": blocks, "dropped": dropped})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(text))
        except OSError:
            pass
