"""Pieces shared by the sweep tests (tests/lab/test_sweeps.py, the sweep form's and the notebook's)."""

import json
from pathlib import Path

from sa3lab.sweeps import MANIFEST

PROMPTS = ["rain on a tin roof", "warm synth pad", "kick drum"]
NO_RAY = "ray is not installed (pip install 'sa3lab[cluster]')"


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / MANIFEST).read_text().splitlines()]


class StopAfter:
    """A progress that stops the sweep (as the form's Stop or an interrupt does) once ``count`` items
    are finished."""

    def __init__(self, count: int, stop=KeyboardInterrupt):
        self.count, self.stop = count, stop

    def stage(self, text):
        pass

    def start(self, total, text):
        pass

    def step(self, done, total, text=None):
        if done >= self.count:
            raise self.stop
