"""``Lab``: the one object a form talks to. A request goes in, a saved and checked result comes out.

The jobs live in their own modules (:mod:`.generation`, :mod:`.comparison`, :mod:`.roundtrip`,
:mod:`.sweeps`, :mod:`.training`); the lab holds what they share in a kernel: the model cache, the
access checker, the machine's device policy, and the token lookup.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from stable_audio_3.hub import TokenRejectedWarning, resolve_autoencoder_files, resolve_model_files

from . import catalog, comparison, device, generation, roundtrip, sweeps, training
from .auth import Access, AccessChecker, resolve_token
from .cache import ModelCache


class Lab:
    """Model cache, access checks and the run path shared by every form and headless run."""

    def __init__(self, cache: ModelCache | None = None, checker: AccessChecker | None = None, machine=None):
        self.cache = cache or ModelCache()
        self.checker = checker or AccessChecker()
        self.machine = machine or device.probe()

    # ------------------------------------------------------------------ shared by the jobs

    @staticmethod
    def token(pasted_token: str | None = None) -> str | None:
        """The token to use: the pasted one, else the stored login, ``HF_TOKEN`` or a notebook secret."""
        return resolve_token(pasted_token).token

    def check_access(self, key: str, pasted_token: str | None = None):
        entry = catalog.get(key)
        return self.checker.check(entry.repo_id, self.token(pasted_token)) if entry.repo_id else None

    def download_token(self, entry: catalog.Entry | None, pasted_token: str | None = None):
        """The token to download ``entry`` with; ValueError with the Hub's advice when it cannot.

        A gated entry needs access (offline passes: the cache decides). A token the Hub rejects
        (401 invalid credentials) is dropped for an open entry: the result is ``False`` (anonymous),
        and a :class:`~stable_audio_3.hub.TokenRejectedWarning` names the token's source and how to
        replace it. Local folders get the token as it is.
        """
        token = self.token(pasted_token)
        if entry is None or entry.repo_id is None or (token is None and not entry.gated):
            return token
        access = self.checker.check(entry.repo_id, token)
        if access.ok and access.token_rejected:
            warnings.warn(TokenRejectedWarning(access.message), stacklevel=2)
            return False
        if entry.gated and not access.ok and access.status is not Access.OFFLINE:
            raise ValueError(access.message)
        return token

    def policy(self, entry: catalog.Entry | None) -> device.Policy:
        return device.choose(self.machine, gpu_first=bool(entry and entry.gpu_first))

    def load_generator(self, model: str, entry: catalog.Entry | None, token):
        """``(StableAudioModel, cache_hit, load_s)`` for a catalog key (``demo`` included) or a folder.

        The files are downloaded and checked (a damaged cached file is fetched again) before the
        cached model is evicted, so a model that cannot be had leaves the previous one loaded.
        """
        from stable_audio_3 import StableAudioModel

        source = model if entry is not None else str(Path(model).expanduser())
        policy = self.policy(entry)
        key = f"{source}|{policy.device}|{policy.dit_dtype}|{policy.autoencoder_dtype}"
        return self.cache.get(
            key,
            lambda files: StableAudioModel.from_pretrained(
                files,
                device=policy.device,
                dtype=policy.dit_dtype,
                autoencoder_dtype=policy.autoencoder_dtype,
            ),
            prepare=lambda: resolve_model_files(source, token=token),
        )

    def load_autoencoder(self, model: str, entry: catalog.Entry | None, token):
        """``(AutoencoderModel, cache_hit, load_s)`` for same-s, same-l, demo or a folder (files first)."""
        from stable_audio_3 import AutoencoderModel

        source = model if entry is not None else str(Path(model).expanduser())
        policy = self.policy(entry)
        return self.cache.get(
            f"autoencoder|{source}|{policy.device}",
            lambda files: AutoencoderModel.from_pretrained(
                files, device=policy.device, dtype=policy.autoencoder_dtype
            ),
            prepare=lambda: resolve_autoencoder_files(source, token=token),
        )

    # ------------------------------------------------------------------ the jobs

    def generate(
        self,
        request: generation.GenerationRequest,
        pasted_token: str | None = None,
        progress=None,
        previews=None,
    ):
        """See :func:`sa3lab.generation.run`."""
        return generation.run(self, request, pasted_token, progress, previews)

    def compare(
        self, request: generation.GenerationRequest, seeds: list[int], pasted_token=None, progress=None
    ):
        """See :func:`sa3lab.comparison.run`."""
        return comparison.run(self, request, seeds, pasted_token, progress)

    def roundtrip(self, request: roundtrip.RoundTripRequest, pasted_token: str | None = None, progress=None):
        """See :func:`sa3lab.roundtrip.run`."""
        return roundtrip.run(self, request, pasted_token, progress)

    def sweep(self, request: sweeps.SweepRequest, pasted_token=None, progress=None, on_update=None):
        """See :func:`sa3lab.sweeps.run`."""
        return sweeps.run(self, request, pasted_token, progress, on_update)

    def train(self, request: training.TrainingRequest, pasted_token=None, progress=None, **callbacks):
        """See :func:`sa3lab.training.run` (``on_step``, ``on_preview``)."""
        return training.run(self, request, pasted_token, progress, **callbacks)


__all__ = ["Lab"]
