"""Upstream's own package (``stable-audio-3``) shares the import name ``stable_audio_3`` with our engine.

Installing both into one environment overwrites files silently, and imports then fail oddly; this
finds such a distribution (standard library only) and says what to do in one sentence.
"""

from __future__ import annotations

import importlib.metadata
import re

ENGINE = "stable_audio_3"


def _provides_engine(dist: importlib.metadata.Distribution) -> bool:
    top_level = dist.read_text("top_level.txt")
    if top_level is not None:
        return ENGINE in top_level.split()
    return f"\n{ENGINE}/" in "\n" + (dist.read_text("RECORD") or "")  # wheels built without top_level.txt


def clashing_distributions(path: list[str] | None = None) -> list[str]:
    """Installed distributions other than sa3lab providing ``stable_audio_3`` (``path``: default sys.path)."""
    found = []
    for dist in importlib.metadata.distributions(**({"path": path} if path is not None else {})):
        name = dist.metadata["Name"] or ""
        if re.sub(r"[-_.]+", "-", name).lower() != "sa3lab" and _provides_engine(dist) and name not in found:
            found.append(name)
    return found


def clash_notice(path: list[str] | None = None) -> str:
    """One sentence when upstream's package is installed beside sa3lab, else ""."""
    names = clashing_distributions(path)
    if not names:
        return ""
    listed = " ".join(names)
    return (
        f"{', '.join(names)} (upstream's package) is installed here too and also provides the module "
        f"{ENGINE}, so one overwrote the other's files: run `pip uninstall -y {listed} sa3lab`, install "
        "sa3lab again and keep upstream in its own environment."
    )
