"""Which Hugging Face token to use, and whether it can download a given repo.

Token sources, in order: a value pasted in a form (used for that request only, never written to disk
by sa3lab), the stored huggingface_hub login, ``HF_TOKEN``, a Colab secret, a Kaggle secret. Access
checks go through huggingface_hub's ``auth_check`` and are cached per (sha256(token), repo id) for a
few minutes. Nothing here stores, logs or returns a raw token except :func:`resolve_token`'s result.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from huggingface_hub import HfApi
from huggingface_hub import errors as hf_errors
from huggingface_hub import utils as hf_utils

from stable_audio_3.hub import is_offline, model_page, translate_error

# No network (refused connection, DNS failure, timeout) surfaces as the HTTP client's transport error,
# which is not an OSError. huggingface_hub 1.x talks through httpx (named huggingface_hub.utils.httpx
# only from 1.33 on), 2.x through httpx2 (named so there).
_TRANSPORT_ERROR = (getattr(hf_utils, "httpx", None) or importlib.import_module("httpx")).TransportError


@dataclass(frozen=True)
class TokenChoice:
    """A token and a non-secret label of where it came from."""

    token: str | None
    source: str  # "pasted", "stored login", "HF_TOKEN", "Colab secret", "Kaggle secret" or "none"

    def __repr__(self) -> str:  # never show the token, even by accident
        return f"TokenChoice(source={self.source!r}, token={'set' if self.token else 'none'})"


def _token_file() -> str | None:
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    path = os.environ.get("HF_TOKEN_PATH") or os.path.join(home, "token")
    try:
        with open(path) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _colab_secret() -> str | None:
    try:
        from google.colab import userdata  # type: ignore[import-not-found]

        return userdata.get("HF_TOKEN")
    except Exception:  # noqa: BLE001 - not on Colab, or the secret is missing or not shared
        return None


def _kaggle_secret() -> str | None:
    try:
        from kaggle_secrets import UserSecretsClient  # type: ignore[import-not-found]

        return UserSecretsClient().get_secret("HF_TOKEN")
    except Exception:  # noqa: BLE001 - not on Kaggle, or no such secret
        return None


def resolve_token(pasted: str | None = None) -> TokenChoice:
    """The first token found, in the documented order."""
    if pasted and pasted.strip():
        return TokenChoice(pasted.strip(), "pasted")
    sources: list[tuple[str, Callable[[], str | None]]] = [
        ("stored login", _token_file),
        ("HF_TOKEN", lambda: os.environ.get("HF_TOKEN")),
        ("Colab secret", _colab_secret),
        ("Kaggle secret", _kaggle_secret),
    ]
    for label, read in sources:
        value = read()
        if value:
            return TokenChoice(value.strip(), label)
    return TokenChoice(None, "none")


class Access(str, Enum):
    OK = "ok"
    NEEDS_LOGIN = "needs_login"
    NEEDS_TERMS = "needs_terms"
    NOT_FOUND = "not_found"
    OFFLINE = "offline"
    SERVER_ERROR = "server_error"


@dataclass(frozen=True)
class AccessResult:
    repo_id: str
    status: Access
    message: str  # one actionable sentence (empty when ok)

    @property
    def ok(self) -> bool:
        return self.status is Access.OK


def token_digest(token: str | None) -> str:
    return hashlib.sha256(token.encode()).hexdigest() if token else "anonymous"


class AccessChecker:
    """Cached answers to "can this token download this repo?"."""

    def __init__(self, ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self.clock = ttl_s, clock
        self._cache: dict[tuple[str, str], tuple[float, AccessResult]] = {}

    def check(self, repo_id: str, token: str | None, cached_locally: bool = False) -> AccessResult:
        key = (token_digest(token), repo_id)
        hit = self._cache.get(key)
        if hit is not None and self.clock() - hit[0] < self.ttl_s:
            return hit[1]
        result = self._ask_hub(repo_id, token, cached_locally)
        if result.status is not Access.OFFLINE:
            self._cache[key] = (self.clock(), result)
        return result

    def clear(self) -> None:
        self._cache.clear()

    @staticmethod
    def _ask_hub(repo_id: str, token: str | None, cached_locally: bool) -> AccessResult:
        if is_offline():
            return _offline(repo_id, cached_locally)
        try:
            HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None).auth_check(repo_id, token=token or False)
        except (hf_errors.HfHubHTTPError, OSError, hf_errors.OfflineModeIsEnabled, _TRANSPORT_ERROR) as exc:
            error = translate_error(exc, repo_id)
            if error.reason == "server_error" and not isinstance(exc, hf_errors.HfHubHTTPError):
                return _offline(repo_id, cached_locally)
            return AccessResult(repo_id, Access(error.reason), str(error))
        return AccessResult(repo_id, Access.OK, "")


def _offline(repo_id: str, cached_locally: bool) -> AccessResult:
    if cached_locally:
        return AccessResult(repo_id, Access.OFFLINE, "Offline, using the cached copy.")
    return AccessResult(
        repo_id,
        Access.OFFLINE,
        f"Offline and {repo_id} is not in the local cache: connect to download it "
        f"(see {model_page(repo_id)}), or copy a pre-filled cache folder to this machine.",
    )
