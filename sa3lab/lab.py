"""``Lab``: the one object a form talks to. A request goes in, a saved and checked result comes out.

The jobs live in their own modules (:mod:`.generation`, :mod:`.comparison`, :mod:`.roundtrip`); the
lab holds what they share in a kernel: the model cache, the access checker, the machine's device
policy, and the token lookup.
"""

from __future__ import annotations

from pathlib import Path

from . import catalog, comparison, device, generation, roundtrip
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

    def require_access(self, entry: catalog.Entry | None, token: str | None) -> None:
        """ValueError with the Hub's advice when ``token`` cannot download a gated entry (offline passes)."""
        if entry is None or not entry.gated:
            return
        access = self.checker.check(entry.repo_id, token)
        if not access.ok and access.status is not Access.OFFLINE:
            raise ValueError(access.message)

    def policy(self, entry: catalog.Entry | None) -> device.Policy:
        return device.choose(self.machine, gpu_first=bool(entry and entry.gpu_first))

    def load_generator(self, model: str, entry: catalog.Entry | None, token: str | None):
        """``(StableAudioModel, cache_hit, load_s)`` for a catalog key (``demo`` included) or a folder."""
        from stable_audio_3 import StableAudioModel

        source = model if entry is not None else str(Path(model).expanduser())
        policy = self.policy(entry)
        key = f"{source}|{policy.device}|{policy.dit_dtype}|{policy.autoencoder_dtype}"
        return self.cache.get(
            key,
            lambda: StableAudioModel.from_pretrained(
                source,
                device=policy.device,
                dtype=policy.dit_dtype,
                autoencoder_dtype=policy.autoencoder_dtype,
                token=token,
            ),
        )

    def load_autoencoder(self, model: str, entry: catalog.Entry | None, token: str | None):
        """``(AutoencoderModel, cache_hit, load_s)`` for same-s, same-l, demo or a folder."""
        from stable_audio_3 import AutoencoderModel

        source = model if entry is not None else str(Path(model).expanduser())
        policy = self.policy(entry)
        return self.cache.get(
            f"autoencoder|{source}|{policy.device}",
            lambda: AutoencoderModel.from_pretrained(
                source, device=policy.device, token=token, dtype=policy.autoencoder_dtype
            ),
        )

    # ------------------------------------------------------------------ the jobs

    def generate(self, request: generation.GenerationRequest, pasted_token: str | None = None, progress=None):
        """See :func:`sa3lab.generation.run`."""
        return generation.run(self, request, pasted_token, progress)

    def compare(
        self, request: generation.GenerationRequest, seeds: list[int], pasted_token=None, progress=None
    ):
        """See :func:`sa3lab.comparison.run`."""
        return comparison.run(self, request, seeds, pasted_token, progress)

    def roundtrip(self, request: roundtrip.RoundTripRequest, pasted_token: str | None = None, progress=None):
        """See :func:`sa3lab.roundtrip.run`."""
        return roundtrip.run(self, request, pasted_token, progress)


__all__ = ["Lab"]
