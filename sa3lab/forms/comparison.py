"""The comparison grid: one prompt through several models (a base checkpoint and its post-trained
sibling, or local folders), per seed."""

from __future__ import annotations

import html
from pathlib import Path

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
    entry = catalog.ENTRIES.get(key)  # anything else counts as a folder here; the run checks it
    if entry is None:
        return "its config's defaults"
    d = entry.defaults
    return f"{d['steps']} steps, CFG {d['cfg_scale']:g}"


class ComparisonForm(NotebookForm):
    """Notebook 02's grid: rows are seeds, columns are models (each at its own default steps and CFG).

    ``model`` is a base checkpoint (its post-trained sibling is added), a post-trained one (its base
    is used), ``demo`` or a local folder; more models to compare with (catalog keys or folders) go in
    the "Compare with" field, one per line.
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
        if model in catalog.ENTRIES and catalog.get(model).collection == "standard":
            model = comparison_models(model)[0]  # a post-trained key: start from its base
        self.picker = parts.ModelPicker(BASE_KEYS, model)
        self.others = widgets.Textarea(
            description="Compare with",
            placeholder="one model per line: a catalog key (small-music) or a folder (/path/to/model)",
            style=parts.STYLE,
            layout={**parts.WIDE, "height": "52px"},
        )
        self.prompt = widgets.Textarea(
            value=prompt, description="Prompt", style=parts.STYLE, layout={**parts.WIDE, "height": "64px"}
        )
        self.negative = parts.text_field("", "Negative prompt", "used where CFG > 1 (the base model)")
        self.duration = widgets.FloatText(
            value=duration, description="Duration (s)", style=parts.STYLE, layout={"width": "260px"}
        )
        self.seeds = parts.text_field(str(seed), "Seeds", "42, 7, 123 (one row each; -1 = random)")
        self.plan = widgets.HTML()
        self.picker.observe(self._model_changed)
        self.others.observe(lambda _: self._update_plan(), "value")
        self._model_changed()
        inputs = widgets.VBox(
            [
                self.picker.widget,
                self.others,
                self.prompt,
                self.negative,
                self.duration,
                self.seeds,
                self.plan,
            ]
        )
        self._make_shell(inputs, "Compare", "Comparison form", output_dir)
        self.widget = self.shell.widget

    def models(self) -> list[str]:
        """The grid's columns: the chosen model, then each line of "Compare with"."""
        return [self.picker.value, *(line.strip() for line in self.others.value.splitlines() if line.strip())]

    def _model_changed(self) -> None:
        """A new model: "Compare with" offers its pair (a base checkpoint's sibling; none for a folder)."""
        self.others.value = "\n".join(comparison_models(self.picker.value)[1:])
        self._update_plan()

    def _update_plan(self) -> None:
        keys = self.models()
        columns = " and ".join(f"<b>{html.escape(k)}</b> ({_settings(k)})" for k in keys)
        gated = [k for k in keys if k in catalog.ENTRIES and catalog.get(k).gated]
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
        return self.session.lab.compare(
            request, seeds, pasted_token=self.session.token, progress=progress, models=self.models()
        )

    def render(self, rows) -> str:
        """A grid of its own (a CSS grid, not a table a notebook's styles reach): one column per model,
        its settings on top, one row per seed."""
        first = rows[0]
        cell = "style='min-width:0;text-align:left'"
        heads = "".join(
            f"<div {cell}><b>{html.escape(_short(r.model_key))}</b> · {r.settings['steps']} steps, "
            f"CFG {r.settings['cfg_scale']:g}</div>"
            for r in first
        )
        body = "".join(
            f"<div {cell}>"
            + render.clip_html(
                r.audio[0],
                r.sample_rate,
                title=f"seed {r.seed} · {r.timings.get('total', 0.0):.1f} s",
                quality=r.quality[0],
                saved=r.paths[0] if r.paths else None,
            )
            + "</div>"
            for row in rows
            for r in row
        )
        prompt = html.escape(first[0].settings.get("prompt", ""))
        notes = "".join(message_html(note, "warning") for note in self.shell.notes)
        grid = f"display:grid;grid-template-columns:repeat({len(first)},minmax(0,1fr));gap:8px;margin-top:4px"
        box = "border:1px solid #ddd;padding:6px;margin:6px 0;text-align:left"
        return (
            f"<div class='sa3lab-result' style='{box}'>"
            f"<div><b>Comparison</b> · “{prompt}”</div>{notes}"
            f"<div class='sa3lab-grid' style='{grid}'>{heads}{body}</div></div>"
        )


def _short(model: str) -> str:
    """A model as a column names it: a catalog key, or a folder's last part."""
    return model if model in catalog.ENTRIES else Path(model).name or model


comparison_form = ComparisonForm  # notebook 02
