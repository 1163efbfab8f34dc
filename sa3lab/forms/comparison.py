"""The comparison grid: one prompt through a base checkpoint and its post-trained sibling, per seed."""

from __future__ import annotations

import html

import ipywidgets as widgets

from .. import catalog, defaults, render
from ..comparison import MAX_SEEDS, comparison_models
from ..generation import GenerationRequest
from ..render import message_html
from . import parts
from .session import Session, shared_session
from .shell import NotebookForm

BASE_KEYS = (*catalog.keys("base"), "demo")


def _settings(key: str) -> str:
    d = catalog.get(key).defaults
    return f"{d['steps']} steps, CFG {d['cfg_scale']:g}"


class ComparisonForm(NotebookForm):
    """Notebook 02's grid: rows are seeds, columns are models (each at its own default steps and CFG).

    ``model`` is a base checkpoint (its post-trained sibling is added), a post-trained one (its base
    is used) or ``demo``.
    """

    def __init__(
        self,
        model: str | None = None,
        prompt: str = "",
        duration: float = defaults.DURATION,
        seed: int = 42,
        output_dir: str = defaults.OUTPUT_DIR,
        *,
        session: Session | None = None,
    ):
        self.session = session or shared_session()
        self.output_dir = output_dir
        notice = ""
        if model in catalog.ENTRIES and catalog.get(model).collection == "standard":
            model = comparison_models(model)[0]  # a post-trained key: start from its base
        elif model is not None and model not in BASE_KEYS:
            notice = f"The grid compares catalog models only; {model} is not one of {', '.join(BASE_KEYS)}."
            model = None
        self.picker = parts.ModelPicker(BASE_KEYS, model, allow_local=False)
        self.prompt = widgets.Textarea(
            value=prompt, description="Prompt", style=parts.STYLE, layout={**parts.WIDE, "height": "64px"}
        )
        self.negative = parts.text_field("", "Negative prompt", "used where CFG > 1 (the base model)")
        self.duration = widgets.FloatText(
            value=duration, description="Duration (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.seeds = parts.text_field(str(seed), "Seeds", "42, 7, 123 (one row each; -1 = random)")
        self.plan = widgets.HTML()
        self.picker.observe(self._update_plan)
        self._update_plan()
        inputs = widgets.VBox(
            [self.picker.widget, self.prompt, self.negative, self.duration, self.seeds, self.plan]
        )
        self._make_shell(inputs, "Compare", "Comparison form")
        self.widget = self.shell.widget
        if notice:
            self.shell.message.value = message_html(notice, "info")

    def _update_plan(self) -> None:
        keys = comparison_models(self.picker.value)
        columns = " and ".join(f"<b>{k}</b> ({_settings(k)})" for k in keys)
        gated = [k for k in keys if catalog.get(k).gated]
        note = f" {', '.join(gated)} is gated: log in first (notebook 00)." if gated else ""
        self.plan.value = (
            f"<small>Runs {columns} with the same prompt and seed, one row per seed.{note}</small>"
        )

    def read(self) -> tuple[GenerationRequest, list[int]]:
        request = GenerationRequest(
            model=self.picker.value,
            prompt=self.prompt.value.strip(),
            duration=float(self.duration.value),
            negative_prompt=self.negative.value.strip(),
            output_dir=self.output_dir,
        )
        seeds = parts.parse_seeds(self.seeds.value, MAX_SEEDS)
        return request, seeds

    def execute(self, job, progress):
        request, seeds = job
        return self.session.lab.compare(request, seeds, pasted_token=self.session.token, progress=progress)

    def render(self, rows) -> str:
        """A grid: one column per model (its settings on top), one row per seed."""
        first = rows[0]
        heads = "".join(
            f"<th style='text-align:left'>{html.escape(r.model_key)} · {r.settings['steps']} steps, "
            f"CFG {r.settings['cfg_scale']:g}</th>"
            for r in first
        )
        body = "".join(
            "<tr>"
            + "".join(
                "<td style='vertical-align:top'>"
                + render.clip_html(
                    r.audio[0],
                    r.sample_rate,
                    title=f"seed {r.seed} · {r.timings.get('total', 0.0):.1f} s",
                    quality=r.quality[0],
                    saved=r.paths[0] if r.paths else None,
                )
                + "</td>"
                for r in row
            )
            + "</tr>"
            for row in rows
        )
        prompt = html.escape(first[0].settings.get("prompt", ""))
        notes = "".join(message_html(note, "warning") for note in self.shell.notes)
        return (
            "<div class='sa3lab-result' style='border:1px solid #ddd;padding:6px;margin:6px 0'>"
            f"<div><b>Comparison</b> · “{prompt}”</div>{notes}"
            f"<table class='sa3lab-grid'><tr>{heads}</tr>{body}</table></div>"
        )


comparison_form = ComparisonForm  # notebook 02
