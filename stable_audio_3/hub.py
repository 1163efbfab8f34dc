"""Where a model's files come from: a local folder, a known model name or any Hub repo id.

Downloads go through huggingface_hub, so its cache, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and
``HF_HUB_CACHE``/``HF_HOME`` apply (read at call time here, not only at import: :func:`endpoint`,
:func:`default_cache_dir`, :func:`token_path` and :func:`is_cached` say what they are now). Failures
become a :class:`HubAccessError` with one actionable sentence and a ``reason``; no message ever
contains the token. The name ``demo`` resolves to the tiny model built on this machine
(:mod:`stable_audio_3.demo`).

Two faults heal themselves: a token the Hub rejects (401 invalid credentials) is dropped for an open
repo (:class:`TokenRejectedWarning`), and a cached file that is damaged (see
:class:`~stable_audio_3.loading.DamagedFileError`) is downloaded again once, through huggingface_hub's
``force_download`` (:class:`CacheRepairedWarning`); offline, the error names the folder to delete.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
from huggingface_hub import errors as hf_errors

from .demo import DEMO, demo_model_dir
from .loading import DamagedFileError, check_safetensors, read_config

DIFFUSION_MODELS = {
    name: f"stabilityai/stable-audio-3-{name}"
    for name in ("small-music", "small-sfx", "medium", "small-music-base", "small-sfx-base", "medium-base")
}
AUTOENCODER_MODELS = {"same-s": "stabilityai/SAME-S", "same-l": "stabilityai/SAME-L"}
# Full checkpoints that already contain each autoencoder (probed in the cache before downloading it)
AUTOENCODER_HOSTS = {
    "same-s": ["stabilityai/stable-audio-3-small-music", "stabilityai/stable-audio-3-small-sfx"],
    "same-l": ["stabilityai/stable-audio-3-medium"],
}
CONFIG, WEIGHTS, TEXT_ENCODER = "model_config.json", "model.safetensors", "t5gemma-b-b-ul2"
TOKENS_PAGE = "https://huggingface.co/settings/tokens"


class HubAccessError(ValueError):
    """A model's files could not be had.

    ``reason`` is needs_login, needs_terms, token_rejected (the Hub refused the token itself),
    not_found, offline, damaged (a cached file is broken and could not be downloaded again) or
    server_error.
    """

    def __init__(self, message: str, reason: str, repo_id: str | None = None):
        super().__init__(message)
        self.reason, self.repo_id = reason, repo_id


class TokenRejectedWarning(UserWarning):
    """The Hub rejected the token (401 invalid credentials); an open repo was downloaded without it."""


class CacheRepairedWarning(UserWarning):
    """A damaged file in the huggingface_hub cache was downloaded again."""


@dataclass(frozen=True)
class ModelFiles:
    """Local paths of a model's files, and where they came from.

    The ``resolve_*`` functions (and so ``from_pretrained``) take a ModelFiles as it is, so files can
    be resolved and checked before a model is built from them.
    """

    config_path: Path
    weights_path: Path
    text_encoder_dir: Path | None
    repo_id: str | None = None
    revision: str | None = None  # the commit hash, when the files came from the Hub
    weights_prefix: str = ""  # where the wanted weights sit in the file (an autoencoder inside a full model)

    def __str__(self) -> str:
        return self.repo_id or str(self.config_path.parent)


def model_page(repo_id: str) -> str:
    return f"https://huggingface.co/{repo_id}"


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def endpoint() -> str | None:
    """The Hub address set in ``HF_ENDPOINT``, or None for huggingface_hub's default."""
    return os.environ.get("HF_ENDPOINT") or None


def _hf_home() -> Path:
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")


def default_cache_dir() -> Path:
    """The huggingface_hub cache folder, from the environment as it is now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return _hf_home() / "hub"


def token_path() -> Path:
    """Where ``hf auth login`` / ``notebook_login`` store the token, from the environment as it is now."""
    return Path(os.environ.get("HF_TOKEN_PATH") or _hf_home() / "token")


def is_cached(repo_id: str, filename: str = "model.safetensors", cache_dir=None) -> bool:
    """Whether ``filename`` of ``repo_id`` is in the local huggingface_hub cache (no network)."""
    try:
        found = huggingface_hub.try_to_load_from_cache(
            repo_id, filename, cache_dir=cache_dir or default_cache_dir()
        )
    except Exception:  # noqa: BLE001 - an unreadable cache counts as no cache
        return False
    return isinstance(found, str)


def is_rejected_token(exc: Exception) -> bool:
    """Whether a huggingface_hub error is the Hub refusing the token itself (401 invalid credentials)."""
    if not isinstance(exc, hf_errors.HfHubHTTPError) or isinstance(exc, hf_errors.GatedRepoError):
        return False
    response = getattr(exc, "response", None)
    if getattr(response, "status_code", None) != 401:
        return False
    message = response.headers.get("X-Error-Message") or exc.server_message or ""
    return "invalid credentials" in message.lower()


def translate_error(exc: Exception, repo_id: str) -> HubAccessError:
    """One actionable sentence for a huggingface_hub failure (never echoing the request or token)."""
    page = model_page(repo_id)
    if isinstance(exc, ValueError) and isinstance(exc.__cause__, Exception):
        exc = exc.__cause__  # a failed force download wraps the Hub's answer
    if is_rejected_token(exc):
        return HubAccessError(
            f"The Hub rejected the token (401: invalid credentials) for {repo_id}; replace it with a valid "
            f"one from {TOKENS_PAGE}.",
            "token_rejected",
            repo_id,
        )
    if isinstance(exc, hf_errors.GatedRepoError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 403:
            return HubAccessError(
                f"{repo_id} is gated and this token's account has not accepted its terms: open {page}, "
                "accept them with the account that owns the token, then run again.",
                "needs_terms",
                repo_id,
            )
        return HubAccessError(
            f"{repo_id} is gated: log in (huggingface_hub.notebook_login() or `hf auth login`) or paste a "
            f"token, after accepting the terms at {page}.",
            "needs_login",
            repo_id,
        )
    if isinstance(exc, (hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError)):
        return HubAccessError(
            f"{repo_id} was not found on the Hub (check the name and revision); known models: "
            f"{', '.join([*DIFFUSION_MODELS, *AUTOENCODER_MODELS])}.",
            "not_found",
            repo_id,
        )
    if isinstance(exc, hf_errors.RemoteEntryNotFoundError):
        return HubAccessError(
            f"{repo_id} has no such file; it is not a Stable Audio 3 repo with {CONFIG} and {WEIGHTS}.",
            "not_found",
            repo_id,
        )
    if is_offline() or isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return HubAccessError(
            f"{repo_id} is not in the local cache and HF_HUB_OFFLINE is set; unset it to download, or "
            "pre-download the model on a machine with network and share the cache folder.",
            "offline",
            repo_id,
        )
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        # huggingface_hub reports a failed metadata request (no network, or a server error) this way
        return HubAccessError(
            f"The Hub could not be reached or answered with an error for {repo_id}, and it is not in the "
            "local cache; check the network and try again in a minute.",
            "server_error",
            repo_id,
        )
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return HubAccessError(
            f"The Hub answered with an error (HTTP {status}) for {repo_id}; try again in a minute.",
            "server_error",
            repo_id,
        )
    return HubAccessError(
        f"Downloading {repo_id} failed ({type(exc).__name__}: the connection broke or timed out); "
        "check the network and run again — finished files are kept in the cache.",
        "server_error",
        repo_id,
    )


class _Downloads:
    """The downloads of one model, through huggingface_hub's cache.

    Once the Hub rejects the token (401 invalid credentials), the remaining files come anonymously:
    open repos work, with one :class:`TokenRejectedWarning`; a gated repo says the token was
    rejected. (huggingface_hub's own token, ``HF_TOKEN`` or the stored login, is what a ``None``
    token means, so that case falls back too.) Each file is checked, and a damaged cached file is
    downloaded again once with huggingface_hub's ``force_download`` (:class:`CacheRepairedWarning`);
    offline, or if the new copy is damaged too, the error names the cache folder to delete.
    """

    def __init__(self, token, cache_dir):
        self.token, self.cache_dir = token, cache_dir or default_cache_dir()
        self.rejected = False

    def file(self, repo_id: str, filename: str, check, revision=None) -> Path:
        """One file, checked by ``check(path)`` (raising DamagedFileError when broken)."""
        path = self.fetch(repo_id, filename, revision)
        return self._check_or_repair(repo_id, filename, path, check)

    def checkpoint(self, repo_id: str, revision=None) -> tuple[Path, Path]:
        """Config and weights of a Hub repo, both checked."""
        config = self.file(repo_id, CONFIG, read_config, revision)
        return config, self.file(repo_id, WEIGHTS, check_safetensors, revision)

    def snapshot(self, repo_id: str, allow_patterns: list[str], revision=None, tqdm_class=None) -> Path:
        """The snapshot folder of a repo's files matching ``allow_patterns`` (``tqdm_class``: progress)."""
        return Path(
            self._call(
                repo_id,
                lambda token: huggingface_hub.snapshot_download(
                    repo_id,
                    revision=revision,
                    token=token,
                    cache_dir=self.cache_dir,
                    allow_patterns=allow_patterns,
                    endpoint=endpoint(),
                    local_files_only=is_offline(),
                    tqdm_class=tqdm_class,
                ),
            )
        )

    def folder(self, repo_id: str, subfolder: str, revision=None) -> Path:
        """A subfolder of a repo (e.g. the bundled text encoder); its safetensors files are checked."""
        root = self.snapshot(repo_id, [f"{subfolder}/*"], revision)
        folder = root / subfolder
        if not (folder / "config.json").exists():
            raise HubAccessError(f"{repo_id} has no {subfolder}/ text encoder folder.", "not_found", repo_id)
        for file in sorted(folder.rglob("*.safetensors")):
            self._check_or_repair(repo_id, file.relative_to(root).as_posix(), file, check_safetensors)
        return folder

    def fetch(self, repo_id: str, filename: str, revision=None, force: bool = False) -> Path:
        """One file, unchecked (``force``: download it again)."""
        return Path(
            self._call(
                repo_id,
                lambda token: huggingface_hub.hf_hub_download(
                    repo_id,
                    filename,
                    revision=revision,
                    token=token,
                    cache_dir=self.cache_dir,
                    endpoint=endpoint(),
                    local_files_only=is_offline(),
                    force_download=force,
                ),
            )
        )

    def _call(self, repo_id: str, request):
        """``request(token)``, anonymous once the Hub has rejected the token; every failure one sentence."""
        if not self.rejected:
            try:
                return request(self.token)
            except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence below
                error = translate_error(exc, repo_id)
                if error.reason != "token_rejected" or self.token is False:
                    raise error from None
            self.rejected = True
            try:
                found = request(False)
            except Exception as exc:  # noqa: BLE001
                raise self._anonymous_error(exc, repo_id) from None
            warnings.warn(
                TokenRejectedWarning(
                    f"The Hub rejected the token (401: invalid credentials), so {repo_id} (an open repo) "
                    f"was downloaded without it; replace the token with a valid one from {TOKENS_PAGE} "
                    "to use gated models."
                ),
                stacklevel=5,
            )
            return found
        try:
            return request(False)
        except Exception as exc:  # noqa: BLE001
            raise self._anonymous_error(exc, repo_id) from None

    @staticmethod
    def _anonymous_error(exc: Exception, repo_id: str) -> HubAccessError:
        """What an anonymous attempt after a rejected token failed with; gated repos name the token."""
        error = translate_error(exc, repo_id)
        if error.reason not in ("needs_login", "needs_terms"):
            return error
        return HubAccessError(
            f"The Hub rejected the token (401: invalid credentials) and {repo_id} is gated: replace the "
            f"token with a valid one from {TOKENS_PAGE}, of an account that has accepted the terms at "
            f"{model_page(repo_id)}.",
            "token_rejected",
            repo_id,
        )

    def _check_or_repair(self, repo_id: str, filename: str, path: Path, check) -> Path:
        try:
            check(path)
            return path
        except DamagedFileError as exc:
            damage = exc
        folder = _repo_cache_folder(path)
        if is_offline():
            raise HubAccessError(
                f"{filename} of {repo_id} in the Hugging Face cache {damage.problem}, and HF_HUB_OFFLINE is "
                f"set, so it cannot be downloaded again: delete the folder {folder} (or replace it with a "
                "good copy) and run again with the network on.",
                "damaged",
                repo_id,
            )
        fresh = self.fetch(repo_id, filename, _commit_of(path), force=True)
        try:
            check(fresh)
        except DamagedFileError as again:
            raise HubAccessError(
                f"{filename} of {repo_id} {again.problem} even after downloading it again: delete the "
                f"folder {folder} and run again; if that does not help, the file on the Hub is damaged.",
                "damaged",
                repo_id,
            ) from None
        warnings.warn(
            CacheRepairedWarning(
                f"{filename} of {repo_id} in the Hugging Face cache {damage.problem}; it was downloaded "
                "again and is complete now."
            ),
            stacklevel=4,
        )
        return fresh


def download(repo_id: str, filename: str, *, token=None, revision=None, cache_dir=None) -> Path:
    """One file of a repo through huggingface_hub's cache (a rejected token is dropped for open repos)."""
    return _Downloads(token, cache_dir).fetch(repo_id, filename, revision)


def download_snapshot(
    repo_id: str, allow_patterns: list[str], *, token=None, revision=None, cache_dir=None, tqdm_class=None
) -> Path:
    """The snapshot folder of a repo's files matching ``allow_patterns``, through huggingface_hub's cache.

    ``tqdm_class`` receives huggingface_hub's progress bars (files, and bytes where it reports them).
    """
    return _Downloads(token, cache_dir).snapshot(repo_id, allow_patterns, revision, tqdm_class)


def _repo_cache_folder(path: Path) -> Path:
    """The ``models--owner--name`` folder of a file in the huggingface_hub cache layout."""
    for parent in Path(path).parents:
        if parent.name.startswith("models--"):
            return parent
    return Path(path).parent


def _commit_of(path: Path) -> str | None:
    """The snapshot commit hash of a file in the huggingface_hub cache layout."""
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def _looks_like_path(name: str) -> bool:
    """Whether ``name`` can only be meant as a file-system path (not a model name or repo id)."""
    return (
        name.startswith((".", "/", "~"))
        or "\\" in name
        or name.count("/") > 1
        or name.endswith("/")
        or Path(name).expanduser().exists()
    )


def _repo_id_for(name_or_path: str, registry: dict) -> str:
    if name_or_path in registry:
        return registry[name_or_path]
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if path.is_file():
            raise ValueError(f"{path} is a file; give the folder that holds {CONFIG} and {WEIGHTS}.")
        raise ValueError(
            f"The folder {path} was not found; check the path (or give a model name such as small-music)."
        )
    if name_or_path.count("/") == 1 and not name_or_path.startswith((".", "/")):
        return name_or_path
    raise ValueError(
        f"{name_or_path!r} is not a known model, a Hub repo id (owner/name) or a folder with {CONFIG} and "
        f"{WEIGHTS}; known models: {', '.join(registry)}."
    )


def _entry(mapping, key, default):
    """``mapping[key]`` if mapping is a dict holding it, else ``default`` (configs may be damaged)."""
    return mapping.get(key, default) if isinstance(mapping, dict) else default


def text_encoder_config(config: dict) -> dict | None:
    """The T5Gemma prompt conditioner's own config in a model config, or None when it has none."""
    for entry in _entry(_entry(_entry(config, "model", {}), "conditioning", {}), "configs", []) or []:
        if _entry(entry, "type", None) == "t5gemma":
            cfg = _entry(entry, "config", {})
            return cfg if isinstance(cfg, dict) else {}
    return None


def _text_encoder_source(config: dict) -> tuple[str | None, str]:
    cfg = text_encoder_config(config)
    if cfg is None:
        return None, ""
    return cfg.get("model_path") or cfg.get("repo_id"), cfg.get("subfolder") or ""


def _local_folder(path: Path) -> tuple[Path, Path]:
    """Config and weights of a local folder, present and undamaged (DamagedFileError otherwise)."""
    config, weights = path / CONFIG, path / WEIGHTS
    missing = [p.name for p in (config, weights) if not p.is_file()]
    if missing:
        raise ValueError(f"The folder {path} lacks {' and '.join(missing)}; it needs {CONFIG} and {WEIGHTS}.")
    read_config(config)
    check_safetensors(weights)
    return config, weights


def _as_path(name_or_path) -> Path:
    return demo_model_dir() if str(name_or_path) == DEMO else Path(str(name_or_path)).expanduser()


def resolve_model_files(name_or_path, token=None, revision=None, cache_dir=None) -> ModelFiles:
    """Config, weights and text-encoder folder of a text-to-audio model (damaged cached files healed)."""
    if isinstance(name_or_path, ModelFiles):
        return name_or_path
    downloads = _Downloads(token, cache_dir)
    path = _as_path(name_or_path)
    if path.is_dir():
        config_path, weights_path = _local_folder(path)
        local_te = path / TEXT_ENCODER
        text_dir = local_te if (local_te / "config.json").exists() else None
        if text_dir is None:
            text_dir = _hub_text_encoder(config_path, downloads)
        return ModelFiles(config_path, weights_path, text_dir)
    repo_id = _repo_id_for(str(name_or_path), {**DIFFUSION_MODELS, **AUTOENCODER_MODELS})
    config_path, weights_path = downloads.checkpoint(repo_id, revision)
    return ModelFiles(
        config_path,
        weights_path,
        _hub_text_encoder(config_path, downloads, repo_id, revision),
        repo_id,
        _commit_of(config_path),
    )


def _hub_text_encoder(config_path: Path, downloads: _Downloads, own_repo=None, revision=None) -> Path | None:
    """The text encoder folder: the model repo's own copy if it has one, else the repo its config names.

    (The released base configs name the gated post-trained repo; using the base repo's own copy when
    it exists keeps the open models usable without accepting terms.)
    """
    source, subfolder = _text_encoder_source(read_config(config_path))
    if source is None:
        return None
    if Path(source).is_dir():
        return Path(source) / subfolder
    if own_repo is not None and own_repo != source:
        try:
            return downloads.folder(own_repo, subfolder, revision)
        except HubAccessError as exc:
            if exc.reason != "not_found":
                raise
    return downloads.folder(source, subfolder)


TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")


def local_prompt_files(name_or_path, cache_dir=None) -> tuple[dict, Path] | None:
    """The config of a model's T5Gemma prompt conditioner and the folder of its tokenizer, when both are
    on this machine already (a local folder, or the huggingface_hub cache), else None; nothing is
    downloaded and no weights are read."""
    path = _as_path(name_or_path)
    if path.is_dir():
        config_path, own_repo = path / CONFIG, None
        if not config_path.is_file():
            return None
    else:
        try:
            own_repo = _repo_id_for(str(name_or_path), {**DIFFUSION_MODELS, **AUTOENCODER_MODELS})
        except ValueError:
            return None
        found = huggingface_hub.try_to_load_from_cache(
            own_repo, CONFIG, cache_dir=cache_dir or default_cache_dir()
        )
        if not isinstance(found, str):
            return None
        config_path = Path(found)
    try:
        config = read_config(config_path)
    except DamagedFileError:
        return None
    encoder = text_encoder_config(config)
    if encoder is None:
        return None
    source, subfolder = _text_encoder_source(config)
    candidates = [path / TEXT_ENCODER] if path.is_dir() else []
    if source is not None and Path(source).is_dir():
        candidates.append(Path(source) / subfolder)
    for repo in dict.fromkeys(r for r in (own_repo, source) if r and "/" in r and not Path(r).is_dir()):
        found = huggingface_hub.try_to_load_from_cache(
            repo,
            f"{subfolder}/tokenizer.json" if subfolder else "tokenizer.json",
            cache_dir=cache_dir or default_cache_dir(),
        )
        if isinstance(found, str):
            candidates.append(Path(found).parent)
    for folder in candidates:
        if all((folder / name).is_file() for name in TOKENIZER_FILES):
            return encoder, folder
    return None


def _cached_host_checkpoint(name: str, cache_dir) -> tuple[Path, Path] | None:
    """An undamaged full checkpoint in the cache that carries this autoencoder (no network)."""
    for repo_id in AUTOENCODER_HOSTS.get(name, []):
        found = [
            huggingface_hub.try_to_load_from_cache(repo_id, f, cache_dir=cache_dir or default_cache_dir())
            for f in (CONFIG, WEIGHTS)
        ]
        if all(isinstance(p, str) for p in found):
            try:
                read_config(found[0])
                check_safetensors(found[1])
            except DamagedFileError:
                continue  # its own load repairs it; the autoencoder comes from elsewhere meanwhile
            return Path(found[0]), Path(found[1])
    return None


def resolve_autoencoder_files(name_or_path, token=None, revision=None, cache_dir=None) -> ModelFiles:
    """Config and weights of a SAME autoencoder; ``weights_prefix`` says where its weights sit.

    ``same-s`` / ``same-l`` first use a full SA3 checkpoint already in the cache (small-music, then
    small-sfx; medium), with the weights under ``pretransform.model.``; otherwise the AE repo is
    downloaded. A local folder (or ``demo``) may hold an AE-only or a full checkpoint.
    """
    if isinstance(name_or_path, ModelFiles):
        return name_or_path
    path = _as_path(name_or_path)
    repo_id = None
    if path.is_dir():
        config_path, weights_path = _local_folder(path)
    elif (
        name_or_path in AUTOENCODER_HOSTS
        and revision is None
        and (cached := _cached_host_checkpoint(name_or_path, cache_dir))
    ):
        config_path, weights_path = cached
        repo_id = _repo_of(config_path)
    else:
        repo_id = _repo_id_for(str(name_or_path), AUTOENCODER_MODELS)
        config_path, weights_path = _Downloads(token, cache_dir).checkpoint(repo_id, revision)
    is_full = "encoder" not in _entry(read_config(config_path), "model", {})
    return ModelFiles(
        config_path,
        weights_path,
        None,
        repo_id,
        _commit_of(config_path) if repo_id else None,
        "pretransform.model." if is_full else "",
    )


def _repo_of(path: Path) -> str | None:
    """The repo id of a file in the huggingface_hub cache layout (``models--owner--name``)."""
    for part in path.parts:
        if part.startswith("models--"):
            return part.removeprefix("models--").replace("--", "/")
    return None
