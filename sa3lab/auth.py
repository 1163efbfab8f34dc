"""Which Hugging Face token to use, and whether it can download a given repo.

Token sources, in order: a value pasted in a form (used for that request only, never written to disk
by sa3lab), the stored huggingface_hub login, ``HF_TOKEN``, a Colab secret, a Kaggle secret. Access
checks go through huggingface_hub's ``auth_check`` and are cached per (sha256(token), repo id) for a
few minutes. A token the Hub rejects (401 invalid credentials) is reported as such: open repos are
then used anonymously (``AccessResult.token_rejected`` with a notice), gated ones say to replace it.
Nothing here stores, logs or returns a raw token except :func:`resolve_token`'s result.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from huggingface_hub import HfApi
from huggingface_hub import errors as hf_errors
from huggingface_hub import utils as hf_utils

from stable_audio_3.hub import TOKENS_PAGE, endpoint, is_offline, model_page, token_path, translate_error

# No network (refused connection, DNS failure, timeout) surfaces as the HTTP client's transport error,
# which is not an OSError. huggingface_hub 1.x talks through httpx (named huggingface_hub.utils.httpx
# only from 1.33 on), 2.x through httpx2 (named so there).
_TRANSPORT_ERROR = (getattr(hf_utils, "httpx", None) or importlib.import_module("httpx")).TransportError


TOKEN_SOURCES = {
    "pasted": "a token pasted in this notebook (kept in memory for this session only)",
    "stored login": "the stored Hugging Face login on this machine",
    "HF_TOKEN": "the HF_TOKEN environment variable",
    "Colab secret": "the HF_TOKEN Colab secret",
    "Kaggle secret": "the HF_TOKEN Kaggle secret",
}
REPLACE_TOKEN = {  # how to put a valid token in place of a rejected one, per source
    "pasted": f"paste a valid token from {TOKENS_PAGE}",
    "stored login": (
        f"log in again with a valid token from {TOKENS_PAGE} (huggingface_hub.notebook_login() or "
        "`hf auth login`)"
    ),
    "HF_TOKEN": f"set HF_TOKEN to a valid token from {TOKENS_PAGE}",
    "Colab secret": f"replace the HF_TOKEN secret in Colab's Secrets panel (the key icon) with a valid token "
    f"from {TOKENS_PAGE}",
    "Kaggle secret": f"replace the HF_TOKEN secret (Add-ons > Secrets) with a valid token from {TOKENS_PAGE}",
}


@dataclass(frozen=True)
class TokenChoice:
    """A token and a non-secret label of where it came from."""

    token: str | None
    source: str  # "pasted", "stored login", "HF_TOKEN", "Colab secret", "Kaggle secret" or "none"

    def __repr__(self) -> str:  # never show the token, even by accident
        return f"TokenChoice(source={self.source!r}, token={'set' if self.token else 'none'})"


def _token_file() -> str | None:
    try:
        return token_path().read_text().strip() or None
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


def _stored_sources() -> list[tuple[str, Callable[[], str | None]]]:
    return [
        ("stored login", _token_file),
        ("HF_TOKEN", lambda: os.environ.get("HF_TOKEN")),
        ("Colab secret", _colab_secret),
        ("Kaggle secret", _kaggle_secret),
    ]


def resolve_token(pasted: str | None = None) -> TokenChoice:
    """The first token found, in the documented order."""
    if pasted is not None and not isinstance(pasted, str):
        raise ValueError(f"A pasted token must be text; got a value of type {type(pasted).__name__}.")
    if pasted and pasted.strip():
        return TokenChoice(pasted.strip(), "pasted")
    for label, read in _stored_sources():
        value = read()
        if value:
            return TokenChoice(value.strip(), label)
    return TokenChoice(None, "none")


def token_source(token: str | None) -> str:
    """Where ``token`` comes from: the first stored source that holds it, else "pasted" ("none": no token)."""
    if not token:
        return "none"
    for label, read in _stored_sources():
        value = read()
        if value and value.strip() == token:
            return label
    return "pasted"


def rejected_token_notice(source: str) -> str:
    """The sentence for a token the Hub rejected, when open repos go on without it."""
    return (
        f"The Hub rejected the token from {TOKEN_SOURCES[source]} (401: invalid credentials), so the open "
        f"models download without it; to use the gated ones, {REPLACE_TOKEN[source]}."
    )


class Access(str, Enum):
    OK = "ok"
    NEEDS_LOGIN = "needs_login"
    NEEDS_TERMS = "needs_terms"
    TOKEN_REJECTED = "token_rejected"  # a gated repo, and the Hub refused the token itself
    NOT_FOUND = "not_found"
    OFFLINE = "offline"
    SERVER_ERROR = "server_error"


@dataclass(frozen=True)
class AccessResult:
    repo_id: str
    status: Access
    message: str  # one actionable sentence (empty when ok, unless the token was rejected)
    token_rejected: bool = False  # the Hub refused the token (an open repo is ok without it)

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
            HfApi(endpoint=endpoint()).auth_check(repo_id, token=token or False)
        except (hf_errors.HfHubHTTPError, OSError, hf_errors.OfflineModeIsEnabled, _TRANSPORT_ERROR) as exc:
            error = translate_error(exc, repo_id)
            if error.reason == "token_rejected" and token:
                return _rejected(repo_id, token, AccessChecker._ask_hub(repo_id, None, cached_locally))
            if error.reason == "server_error" and not isinstance(exc, hf_errors.HfHubHTTPError):
                return _offline(repo_id, cached_locally)
            return AccessResult(repo_id, Access(error.reason), str(error))
        return AccessResult(repo_id, Access.OK, "")


def _rejected(repo_id: str, token: str, anonymous: AccessResult) -> AccessResult:
    """The result for a token the Hub refused, given what anonymous access to the repo gives."""
    source = token_source(token)
    if anonymous.ok:
        return AccessResult(repo_id, Access.OK, rejected_token_notice(source), token_rejected=True)
    if anonymous.status in (Access.NEEDS_LOGIN, Access.NEEDS_TERMS):
        return AccessResult(
            repo_id,
            Access.TOKEN_REJECTED,
            f"The Hub rejected the token from {TOKEN_SOURCES[source]} (401: invalid credentials) and "
            f"{repo_id} is gated: {REPLACE_TOKEN[source]}, of an account that has accepted the terms at "
            f"{model_page(repo_id)}.",
            token_rejected=True,
        )
    return replace(anonymous, token_rejected=True)


def _offline(repo_id: str, cached_locally: bool) -> AccessResult:
    if cached_locally:
        return AccessResult(repo_id, Access.OFFLINE, "Offline, using the cached copy.")
    return AccessResult(
        repo_id,
        Access.OFFLINE,
        f"Offline and {repo_id} is not in the local cache: connect to download it "
        f"(see {model_page(repo_id)}), or copy a pre-filled cache folder to this machine.",
    )
