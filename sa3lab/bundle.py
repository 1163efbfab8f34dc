"""A workshop bundle: sa3lab's wheel, the notebooks and a pre-filled Hugging Face cache; a folder and a zip.

An instructor makes it once, online, with a token whose account accepted the gated models' terms
(found the usual way: stored login, ``HF_TOKEN``, a Colab or Kaggle secret; never written
anywhere): ``python -m sa3lab bundle --models small-music,same-s --out DIR``. On a runtime without
network the notebooks' first cell (:mod:`sa3lab.bootstrap`) finds the folder beside the notebook, in
the working folder, on a Drive or in a Kaggle input dataset, installs the wheel, and points
``HF_HUB_CACHE`` at ``DIR/hf-cache/hub`` with ``HF_HUB_OFFLINE=1``: the models load with no token.

The cache has huggingface_hub's layout (``models--owner--name/refs|snapshots``) with the files
stored in the snapshot folders themselves instead of symlinks into ``blobs/`` (the layout
huggingface_hub writes where symlinks are not supported), so the bundle survives zips, Drive and
Kaggle datasets, which drop symlinks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from .bootstrap import BUNDLE_CACHE, BUNDLE_MARK

CHECKOUT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "sa3lab", "stable_audio_3")  # what the wheel is built from
LICENCE_FILES = ["LICENSE*", "README.md"]  # each model repo's licence and model card travel with it


def checkout_root(root: Path = CHECKOUT) -> Path:
    """The checkout this sa3lab runs from; a bundle takes its notebooks and builds its wheel there."""
    if not (root / "pyproject.toml").is_file() or not (root / "notebooks").is_dir():
        raise ValueError(
            f"sa3lab runs from {root}, which is not a checkout of the project: run the bundle command from a "
            "checkout (git clone), or pass --wheel and --notebooks."
        )
    return root


def build_wheel(root: Path, out: Path) -> Path:
    """sa3lab's wheel, built from a copy of the checkout at ``root`` (which stays clean), into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in SOURCES:
            source, copy = root / name, Path(tmp) / name
            if source.is_dir():
                shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, copy)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), tmp],
            capture_output=True,
            text=True,
        )
    wheels = sorted(out.glob("sa3lab-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"Building the wheel failed ({last}); run `make dist` to see why.")
    return wheels[-1]


def _store_without_symlinks(cache: Path) -> None:
    """Replace each snapshot symlink by the file it points to; drop the emptied blobs and the locks."""
    links = [(p, p.resolve()) for p in sorted(cache.rglob("*")) if p.is_symlink()]
    uses = Counter(target for _, target in links)
    for link, target in links:
        link.unlink()
        uses[target] -= 1
        if uses[target]:
            shutil.copy2(target, link)
        else:
            target.replace(link)  # its last link: moved, not copied
    for folder in [*cache.glob("models--*/blobs"), cache / ".locks"]:
        shutil.rmtree(folder, ignore_errors=True)


def _fill_cache(models: list[str], cache: Path, token: str | None) -> dict[str, dict]:
    """Download each model through the engine's Hub code into ``cache``; {model: its repos and revisions}."""
    from stable_audio_3.hub import (
        AUTOENCODER_MODELS,
        DIFFUSION_MODELS,
        download_snapshot,
        resolve_autoencoder_files,
        resolve_model_files,
    )

    filled = {}
    for model in models:
        print(f"{model}: downloading into {cache} ...", flush=True)
        if model in DIFFUSION_MODELS:
            files = resolve_model_files(model, token=token, cache_dir=cache)
        else:  # the autoencoder's own repo, so the start-here table shows it as cached
            files = resolve_autoencoder_files(AUTOENCODER_MODELS[model], token=token, cache_dir=cache)
        download_snapshot(files.repo_id, LICENCE_FILES, token=token, revision=files.revision, cache_dir=cache)
        filled[model] = {"repo_id": files.repo_id, "revision": files.revision}
    return filled


def check_models(models: list[str]) -> list[str]:
    """The models, each once, if all are models of the collections (ValueError otherwise)."""
    from stable_audio_3.hub import AUTOENCODER_MODELS, DIFFUSION_MODELS

    known = [*DIFFUSION_MODELS, *AUTOENCODER_MODELS]
    unknown = [m for m in models if m not in known]
    if unknown or not models:
        raise ValueError(
            f"A bundle holds models of the collections: {', '.join(unknown) or 'none'} given, known ones are "
            f"{', '.join(known)} (comma-separated, e.g. --models small-music,same-s)."
        )
    return list(dict.fromkeys(models))


def _zip(folder: Path) -> Path:
    """``folder``.zip beside it, ``folder``'s name its one top folder (weights stored, the rest deflated)."""
    archive = folder.with_name(folder.name + ".zip")
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                method = zipfile.ZIP_STORED if path.suffix == ".safetensors" else zipfile.ZIP_DEFLATED
                zf.write(path, path.relative_to(folder.parent).as_posix(), compress_type=method)
    return archive


README = """sa3lab workshop bundle: sa3lab {version}, models {models}.

Put this folder (or the zip, unpacked) beside the notebooks you open, in /content (Colab),
/kaggle/working, on your Google Drive, or add it to a Kaggle notebook as a dataset; or open the
notebooks in notebooks/ here. Their first cell installs sa3lab from the wheel and loads these models
from hf-cache/ offline, with no account or token. Elsewhere: pip install the wheel, then set
HF_HUB_CACHE=<this folder>/{cache}/hub and HF_HUB_OFFLINE=1 before starting Jupyter.
The models come with their licences (hf-cache/hub/models--*/snapshots/*/): share this bundle only
with people who may use them under those terms.
"""


def make_bundle(
    models: list[str], out: Path, wheel: Path | None = None, token: str | None = None, zip_it: bool = True
) -> Path:
    """Write the bundle folder ``out`` (and ``out``.zip); returns the folder."""
    models = check_models(models)
    root = checkout_root()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("sa3lab-*.whl"):
        old.unlink()
    if wheel:
        wheel = Path(shutil.copy2(wheel, out))
    else:
        print("building the wheel ...", flush=True)
        wheel = build_wheel(root, out)
    shutil.copytree(
        root / "notebooks", out / "notebooks", dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*")
    )
    cache = out / BUNDLE_CACHE / "hub"
    filled = _fill_cache(models, cache, token)
    _store_without_symlinks(cache)
    version = wheel.name.split("-")[1]
    (out / BUNDLE_MARK).write_text(
        json.dumps({"sa3lab": version, "wheel": wheel.name, "models": filled}, indent=1) + "\n"
    )
    (out / "README.txt").write_text(
        README.format(version=version, models=", ".join(models), cache=BUNDLE_CACHE)
    )
    if zip_it:
        print(f"zipping into {out.name}.zip ...", flush=True)
        _zip(out)
    return out
