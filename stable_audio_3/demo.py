"""The ``demo`` model: a tiny random-weight small-music, built on this machine on first use.

``StableAudioModel.from_pretrained("demo")`` and ``AutoencoderModel.from_pretrained("demo")`` load it
like any local folder: no account, no download, a few seconds on a CPU. Its output is noise; it is
for checking a set-up (a workshop laptop, a CI run) before the real weights arrive.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

DEMO = "demo"
RECIPE_VERSION = 2  # bump when the tiny model's recipe changes, so machines rebuild it


def demo_cache_root() -> Path:
    """Where the demo model is kept: ``$STABLE_AUDIO_3_CACHE`` or ``~/.cache/stable_audio_3``."""
    root = os.environ.get("STABLE_AUDIO_3_CACHE") or Path.home() / ".cache" / "stable_audio_3"
    return Path(root)


def demo_model_dir() -> Path:
    """The demo model's folder, built on first use.

    Built in a temporary sibling folder and renamed into place, so two processes that build it at
    once never see half a model.
    """
    folder = demo_cache_root() / f"demo-small-music-v{RECIPE_VERSION}"
    if not (folder / "model_config.json").exists():
        from .random_models import write_model_repo

        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=folder.parent))
        write_model_repo(staging, "small-music", size="tiny")
        try:
            staging.rename(folder)
        except OSError:  # another process finished first: use its copy
            shutil.rmtree(staging, ignore_errors=True)
    return folder
