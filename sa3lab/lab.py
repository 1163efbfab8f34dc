"""``Lab``: the one object a form talks to. A request goes in, a saved and checked result comes out.

The jobs live in their own modules (:mod:`.comparison`, :mod:`.radio`, :mod:`.roundtrip`,
:mod:`.sweeps`, :mod:`.training`) and make their audio through the run core (:mod:`.run_core`); the
lab owns the kernel's state (the core: model cache, access checker, machine, LoRA state and locks; the Prompt
Assistant) and hands the core to each job. Jobs never call back into the lab. Forms reach the
engine, the Prompt Assistant, step previews and the set-up checks through the lab alone.
"""

from __future__ import annotations

from . import comparison, roundtrip, setup_check, sweeps, training
from . import radio as radio_job
from .auth import resolve_token
from .generation import GenerationRequest
from .previews import PreviewFits, StepPreviews
from .run_core import RunCore
from .sweep_plan import SweepRequest


class Lab:
    """The kernel's run core and the jobs every form and headless run share."""

    def __init__(self, cache=None, checker=None, machine=None, assistant=None):
        self.core = RunCore(cache, checker, machine)
        self._assistant = assistant
        self.preview_fits = PreviewFits()  # what step previews learnt of each loaded model

    @property
    def cache(self):
        return self.core.cache

    @property
    def checker(self):
        return self.core.checker

    @property
    def machine(self):
        return self.core.machine

    def token(self, pasted_token: str | None = None) -> str | None:
        """The token to use: the pasted one, else the stored login, ``HF_TOKEN`` or a notebook secret."""
        return self.core.token(pasted_token)

    def load_generator(self, model: str, entry, token):
        """See :meth:`sa3lab.run_core.RunCore.load_generator`."""
        return self.core.load_generator(model, entry, token)

    def load_autoencoder(self, model: str, entry, token):
        """See :meth:`sa3lab.run_core.RunCore.load_autoencoder`."""
        return self.core.load_autoencoder(model, entry, token)

    def prompt_fit(self, model: str, prompt: str):
        """See :meth:`sa3lab.run_core.RunCore.prompt_fit` (None while the model's files are not here)."""
        return self.core.prompt_fit(model, prompt)

    # ------------------------------------------------------------------ set-up checks

    def readiness(self, model: str, pasted_token: str | None = None) -> setup_check.Readiness:
        """Whether ``model`` (a catalog key) can load here, and what to use instead when it cannot."""
        return setup_check.readiness(model, self.checker, self.token(pasted_token))

    def setup_report(self, model: str, pasted_token: str | None = None):
        """``(SetupReport, TokenChoice)``: what will and will not work here, and which token is in use."""
        choice = resolve_token(pasted_token)
        return setup_check.setup_report(self.machine, model, choice), choice

    def coverage(self, pasted_token: str | None = None, recheck: bool = False) -> list:
        """One :class:`~sa3lab.setup_check.CoverageRow` per catalog entry (``recheck``: ask the Hub again)."""
        if recheck:
            self.checker.clear()
        return setup_check.coverage(self.checker, self.token(pasted_token))

    # ------------------------------------------------------------------ the Prompt Assistant

    @property
    def assistant(self):
        """The kernel's Prompt Assistant (loaded on first use)."""
        if self._assistant is None:
            from .prompt_assistant import PromptAssistant

            self._assistant = PromptAssistant()
        return self._assistant

    def expand(self, idea: str, preset: str, *, greedy: bool = False, pasted_token=None, progress=None):
        """The Prompt Assistant's :class:`~sa3lab.prompt_assistant.Expansion` of ``idea`` in ``preset``."""
        if progress is not None and not self.assistant.loaded:
            first = "" if self.assistant.is_cached() else " (first use: download)"
            progress.stage("Prompt Assistant: loading" + first)
        return self.assistant.expand(
            idea, preset, greedy=greedy, token=self.token(pasted_token), progress=progress
        )

    # ------------------------------------------------------------------ the jobs

    def generate(
        self,
        request: GenerationRequest,
        pasted_token: str | None = None,
        progress=None,
        on_preview=None,
        preview_every: int = 2,
        preview_listen: bool = False,
    ):
        """See :meth:`sa3lab.run_core.RunCore.generate`; ``on_preview(Preview)`` is shown the denoised
        estimate every ``preview_every`` steps (``preview_listen``: decoded to audio too)."""
        previews = None
        if on_preview is not None:
            previews = StepPreviews(on_preview, preview_every, preview_listen, self.preview_fits)
        return self.core.generate(request, pasted_token, progress, previews)

    def compare(
        self, request: GenerationRequest, seeds: list[int], pasted_token=None, progress=None, models=None
    ):
        """See :func:`sa3lab.comparison.run`."""
        return comparison.run(self.core, request, seeds, pasted_token, progress, models)

    def roundtrip(self, request: roundtrip.RoundTripRequest, pasted_token: str | None = None, progress=None):
        """See :func:`sa3lab.roundtrip.run`."""
        return roundtrip.run(self.core, request, pasted_token, progress)

    def sweep(self, request: SweepRequest, pasted_token=None, progress=None, on_update=None):
        """See :func:`sa3lab.sweeps.run`."""
        return sweeps.run(self.core, request, pasted_token, progress, on_update)

    def radio(self, radio, segments=None, pasted_token=None, progress=None, on_segment=None):
        """See :func:`sa3lab.radio.run` (a RadioRequest starts a stream, a Radio goes on with one)."""
        return radio_job.run(self.core, radio, segments, pasted_token, progress, on_segment)

    def train(self, request: training.TrainingRequest, pasted_token=None, progress=None, **callbacks):
        """See :func:`sa3lab.training.run` (``on_step``, ``on_preview``)."""
        return training.run(self.core, request, pasted_token, progress, **callbacks)


__all__ = ["Lab"]
