"""The generation form's LoRA list: files (typed or uploaded), each with strength, interval and layer filter.

LoRA modifies whichever mode runs, so the list sits outside the mode tabs. The per-file controls are
upstream's (strength, the noise-level interval in which the file is on, and a layer filter that
turns it off on matching layers). An ``-xs`` file also gets a path field for the frozen SVD bases
(``svd_bases.pt``) it was trained against, filled in when this lab's training wrote them beside it.
"""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as widgets

from stable_audio_3.lora import companion_bases, header_adapter_type

from .. import render
from ..generation import MAX_LORA_STRENGTH, LoraUse
from . import compat
from .parts import CENTRED_ROW, COLAB_UPLOAD_HELP, ROW, take_uploads

HELP = (
    f"<small>Each file: its strength (0 = off, negatives invert it, up to ±{MAX_LORA_STRENGTH:g}); the noise "
    "levels where it is on (1 = the start of sampling, 0 = the end: 0.5-1 shapes the structure only, "
    "0-0.5 the detail only); a layer filter: comma-separated parts of layer names to leave without it, "
    "e.g. <code>layers.[0-11].</code> or <code>cross_attn</code> (empty: every layer). They apply in "
    "every mode. An -xs file also takes the <code>svd_bases.pt</code> it was trained against; without it "
    "its bases are recomputed from the model and the result may differ from upstream's.</small>"
)


class LoraRow:
    """One LoRA file and its controls. An uploaded file shows its name; a typed one its path."""

    def __init__(self, use: LoraUse, shown_name: str | None, remove, renamed):
        self.file = use.file
        self.path = widgets.Text(
            value=shown_name or use.file,
            placeholder="path/to/lora.safetensors",
            disabled=shown_name is not None,
            layout={"width": "260px", "max_width": "100%"},
        )
        self.strength = widgets.FloatText(
            value=use.strength,
            description="strength",
            style={"description_width": "60px"},
            layout={"width": "140px"},
        )
        self.interval = widgets.FloatRangeSlider(
            value=tuple(use.interval),
            min=0,
            max=1,
            step=0.01,
            description="noise levels",
            style={"description_width": "80px"},
            layout={"width": "340px", "max_width": "100%"},
        )
        self.layer_filter = compat.with_tooltip(
            widgets.Text(value=use.layer_filter, placeholder="layers to skip", layout={"width": "190px"}),
            "Parts of layer names to leave without this LoRA, comma-separated (empty: none skipped)",
        )
        self.svd_bases = compat.with_tooltip(
            widgets.Text(
                value=use.svd_bases,
                placeholder="svd_bases.pt it was trained on",
                layout={"width": "260px", "max_width": "100%"},
            ),
            "The svd_bases.pt this -xs file was trained on (empty: recomputed, may differ from upstream)",
        )
        self.remove = widgets.Button(icon="trash", tooltip="Remove this LoRA", layout={"width": "40px"})
        self.remove.on_click(lambda _: remove(self))
        self.path.observe(lambda _: renamed(), "value")
        self.path.observe(lambda _: self._show_bases(), "value")
        self.widget = widgets.HBox(
            [self.path, self.svd_bases, self.strength, self.interval, self.layer_filter, self.remove],
            layout=CENTRED_ROW,
        )
        self._show_bases()

    def _file(self) -> str:
        return self.file if self.path.disabled else self.path.value.strip()

    @property
    def xs(self) -> bool:
        """Whether the file is an -xs adapter (read from its header)."""
        kind = header_adapter_type(Path(self._file()).expanduser()) if self._file() else None
        return bool(kind and kind.endswith("-xs"))

    def _show_bases(self) -> None:
        """The bases field only for an -xs file, filled with the bases this lab's training wrote beside it."""
        xs = self.xs
        self.svd_bases.layout.display = None if xs else "none"
        beside = companion_bases(Path(self._file()).expanduser()) if xs else None
        if beside is not None and not self.svd_bases.value.strip() and beside.is_file():
            self.svd_bases.value = str(beside)

    def use(self) -> LoraUse:
        bases = self.svd_bases.value.strip() if self.xs else ""
        return LoraUse(
            self._file(),
            float(self.strength.value),
            tuple(self.interval.value),
            self.layer_filter.value.strip(),
            bases,
        )


class LoraList:
    """Rows of LoRA files; "Add a LoRA file" adds an empty row, an upload adds one row per file."""

    def __init__(self):
        self.rows: list[LoraRow] = []
        self.box = widgets.VBox()
        self.add_button = widgets.Button(description="Add a LoRA file", icon="plus")
        self.add_button.on_click(lambda _: self.add(LoraUse("")))
        self.upload = widgets.FileUpload(
            accept=".safetensors,.ckpt", multiple=True, description="Upload LoRA"
        )
        self.upload.observe(self._uploaded, "value")
        self.note = widgets.HTML()
        help_html = HELP + (COLAB_UPLOAD_HELP if compat.colab_available() else "")
        body = widgets.VBox(
            [
                self.box,
                widgets.HBox([self.add_button, self.upload], layout=ROW),
                self.note,
                widgets.HTML(help_html),
            ]
        )
        self.widget = compat.titled(widgets.Accordion, [body], ["LoRA (none)"])
        self.widget.selected_index = None  # collapsed until a file is added

    def _uploaded(self, change) -> None:
        saved, problem = take_uploads(self.upload, change["new"])
        self.note.value = render.message_html(problem, "warning") if problem else ""
        for name, path in saved:
            self.add(LoraUse(str(path)), shown_name=name)

    def add(self, use: LoraUse, shown_name: str | None = None) -> LoraRow:
        row = LoraRow(use, shown_name, self._remove, self._retitle)
        self.rows.append(row)
        self._changed()
        self.widget.selected_index = 0
        return row

    def _remove(self, row: LoraRow) -> None:
        self.rows.remove(row)
        row.widget.close()
        self._changed()

    def _changed(self) -> None:
        self.box.children = [row.widget for row in self.rows]
        self._retitle()

    def _retitle(self) -> None:
        names = [
            html.escape(row.path.value.rsplit("/", 1)[-1]) for row in self.rows if row.path.value.strip()
        ]
        self.widget.set_title(0, f"LoRA ({', '.join(names) or 'none'}; applies to every mode)")

    def uses(self) -> list[LoraUse]:
        """The rows with a file, in order (empty rows are skipped)."""
        return [use for use in (row.use() for row in self.rows) if use.file]

    def fill(self, uses: list[LoraUse]) -> None:
        """Show exactly ``uses`` (a past run's LoRA files)."""
        for row in list(self.rows):
            self._remove(row)
        for use in uses:
            self.add(use)
        if not uses:
            self.widget.selected_index = None
