"""The generation form's advanced settings: sampler, steps, guidance, schedules, padding and the
output level (collapsed).

Each control shows its one-line help beside it and the range :data:`sa3lab.generation.SETTINGS`
gives (the request checks the same ranges and says what to change). The model's defaults come from
:func:`sa3lab.catalog.model_defaults`, through :meth:`SamplerSettings.set`.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from .. import defaults, peaks
from ..generation import (
    A2A_SCHEDULE_HELP,
    LONG_STEPS,
    SAMPLER_HELP,
    SAMPLERS,
    SCHEDULE_HELP,
    SCHEDULES,
    SETTINGS,
)
from . import compat
from .parts import CENTRED_ROW, ROW, STYLE

DEFAULT_SCHEDULE = "default"
SCHEDULE_CHOICES = [
    ("the model config's own", DEFAULT_SCHEDULE),
    ("LogSNR shift", "logsnr"),
    ("Flux shift", "flux"),
    ("Full shift", "full"),
    ("None (linear)", "none"),
]
A2A_SCHEDULE_CHOICES = [("upstream's", "upstream"), ("corrected (PR #94)", "corrected")]
NARROW = {"width": "380px", "max_width": "100%"}  # a slider keeps a track of ~170 px
PEAK_HELP = (
    "Outputs louder than this (16-bit WAV, FLAC, MP3, OGG, M4A, the players) are turned down by one gain, "
    f"never clipped; quiet ones are not boosted ({peaks.LOWEST_CEILING_DBFS:g} to 0)."
)
FLOAT_WAV_HELP = "The saved 32-bit float WAV keeps the decoder's level, or gets the same gain."


def _help(text: str) -> widgets.HTML:
    return widgets.HTML(
        f"<small style='color:#555'>{html.escape(text)}</small>",
        layout={"width": "440px", "max_width": "100%"},
    )


def _row(control: widgets.Widget, text: str) -> widgets.HBox:
    return widgets.HBox([control, _help(text)], layout=CENTRED_ROW)


def _range(name: str) -> str:
    spec = SETTINGS[name]
    return f"{spec.help} ({spec.low:g}-{spec.high:g})"


class SamplerSettings:
    """Widgets for every sampler setting; :meth:`values` gives them as request fields."""

    def __init__(self):
        self.sampler = widgets.Dropdown(options=SAMPLERS, description="Sampler", style=STYLE, layout=NARROW)
        self.steps = widgets.IntText(description=SETTINGS["steps"].label, style=STYLE, layout=NARROW)
        self.cfg = widgets.FloatText(description=SETTINGS["cfg_scale"].label, style=STYLE, layout=NARROW)
        self.cfg_interval = widgets.FloatRangeSlider(
            value=(0.0, 1.0), min=0, max=1, step=0.01, description="CFG interval", style=STYLE, layout=NARROW
        )
        self.scale_phi = widgets.FloatSlider(
            min=0, max=1, step=0.01, description=SETTINGS["scale_phi"].label, style=STYLE, layout=NARROW
        )
        self.cfg_norm_threshold = widgets.FloatText(
            description=SETTINGS["cfg_norm_threshold"].label, style=STYLE, layout=NARROW
        )
        self.apg_scale = widgets.FloatSlider(
            min=0, max=1, step=0.05, description=SETTINGS["apg_scale"].label, style=STYLE, layout=NARROW
        )
        self.schedule = widgets.Dropdown(
            options=SCHEDULE_CHOICES, description="Schedule", style=STYLE, layout=NARROW
        )
        self.schedule_params = [
            widgets.FloatText(style={"description_width": "110px"}, layout={"width": "200px"})
            for _ in range(4)
        ]
        self.param_ranges = widgets.HTML()
        self.a2a_schedule = widgets.Dropdown(
            options=A2A_SCHEDULE_CHOICES, description="A2A schedule", style=STYLE, layout=NARROW
        )
        self.padding = widgets.FloatText(
            description=SETTINGS["duration_padding"].label, style=STYLE, layout=NARROW
        )
        self.ceiling = widgets.FloatText(
            value=defaults.PEAK_CEILING_DBFS, description="Peak ceiling (dBFS)", style=STYLE, layout=NARROW
        )
        self.float_wav = widgets.Dropdown(
            options=[("raw level (overs kept)", "raw"), ("turned down like the others", "protected")],
            value=defaults.FLOAT_WAV,
            description="Float WAV",
            style=STYLE,
            layout=NARROW,
        )
        self.confirm_long = widgets.Checkbox(
            description=f"allow more than {LONG_STEPS} steps (a long run)",
            indent=False,
            layout={"width": "auto"},
        )
        self.schedule.observe(self._schedule_changed, "value")
        rows = [
            _row(self.sampler, SAMPLER_HELP),
            _row(self.steps, _range("steps")),
            self.confirm_long,
            _row(self.cfg, _range("cfg_scale")),
            _row(self.cfg_interval, _range("cfg_interval")),
            _row(self.scale_phi, _range("scale_phi")),
            _row(self.cfg_norm_threshold, _range("cfg_norm_threshold")),
            _row(self.apg_scale, _range("apg_scale")),
            _row(self.schedule, SCHEDULE_HELP),
            widgets.HBox(self.schedule_params, layout=ROW),
            self.param_ranges,
            _row(self.a2a_schedule, A2A_SCHEDULE_HELP),
            _row(self.padding, _range("duration_padding")),
            _row(self.ceiling, PEAK_HELP),
            _row(self.float_wav, FLOAT_WAV_HELP),
        ]
        self.widget = compat.titled(widgets.Accordion, [widgets.VBox(rows)], ["Advanced settings"])
        self.widget.selected_index = None  # collapsed (ipywidgets 7 opens the first pane otherwise)
        self._schedule_changed()

    def _schedule_changed(self, change=None) -> None:
        """Label the parameter boxes for the chosen shift, with its defaults and ranges."""
        params = SCHEDULES.get(self.schedule.value, ())
        for box, param in zip(self.schedule_params, [*params, *[None] * (4 - len(params))], strict=True):
            box.layout.display = None if param else "none"
            if param:
                box.description = param.name.replace("_", " ")
                box.value = param.default
        lines = [f"{p.name.replace('_', ' ')} {p.low:g} to {p.high:g}" for p in params]
        self.param_ranges.value = (
            f"<small style='color:#555'>{html.escape(', '.join(lines))}</small>" if lines else ""
        )

    def set(self, settings: dict) -> None:
        """Show ``settings`` (a model's defaults, or a past run's settings as it ran)."""
        self.sampler.value = settings["sampler"]
        self.steps.value, self.cfg.value = settings["steps"], settings["cfg_scale"]
        self.cfg_interval.value = tuple(settings["cfg_interval"])
        self.scale_phi.value = settings["scale_phi"]
        self.cfg_norm_threshold.value = settings["cfg_norm_threshold"]
        self.apg_scale.value = settings["apg_scale"]
        self.padding.value = settings["duration_padding"]
        self.a2a_schedule.value = settings["a2a_schedule"]
        schedule = settings["schedule"]
        self.schedule.value = DEFAULT_SCHEDULE if schedule is None else schedule["type"]
        for box, param in zip(self.schedule_params, SCHEDULES.get(self.schedule.value, ()), strict=False):
            box.value = schedule[param.name]

    def values(self) -> dict:
        """The request fields: every sampler setting as shown, and ``confirm_long``."""
        kind = self.schedule.value
        params = SCHEDULES.get(kind, ())
        schedule = (
            None
            if kind == DEFAULT_SCHEDULE
            else {
                "type": kind,
                **{p.name: box.value for p, box in zip(params, self.schedule_params, strict=False)},
            }
        )
        return {
            "sampler": self.sampler.value,
            "steps": int(self.steps.value),
            "cfg_scale": float(self.cfg.value),
            "cfg_interval": tuple(float(x) for x in self.cfg_interval.value),
            "scale_phi": float(self.scale_phi.value),
            "cfg_norm_threshold": float(self.cfg_norm_threshold.value),
            "apg_scale": float(self.apg_scale.value),
            "schedule": schedule,
            "duration_padding": float(self.padding.value),
            "a2a_schedule": self.a2a_schedule.value,
            "confirm_long": bool(self.confirm_long.value),
            "peak_ceiling_dbfs": float(self.ceiling.value),
            "float_wav": self.float_wav.value,
        }

    def set_output_level(self, ceiling_dbfs: float, float_wav: str) -> None:
        """Show a past run's peak ceiling and float WAV choice (a model's defaults leave them be)."""
        self.ceiling.value, self.float_wav.value = ceiling_dbfs, float_wav
