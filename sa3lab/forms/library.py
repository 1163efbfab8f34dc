"""The results library's form: pages of past runs as cell output, and buttons to load, export, delete.

The runs are HTML written below the form through a display id (:class:`.shell.CellOutput`), so the
page on show is saved with the notebook. Buttons run on the kernel's main thread like a form's run.
Each file in the list has a relative download link, which JupyterLab and Notebook 7 serve; Colab
serves no relative links, so there a *Download* button hands the chosen export to
``google.colab.files.download``. (A data-URI link would work offline too, but a 30 s WAV is 5-10 MB
of base64 in the notebook, most of Colab's 10 MB display budget, so the library makes none.)

Once a page is shown, the players of the next older page are drawn into the library's cache after
the request (one run per event-loop callback, none while a form's job is going), so "Older" usually
answers without making any.

*Download all* zips every file of the output folder (:meth:`sa3lab.library.Library.zip_all`); its
link heads the list, so JupyterLab, Notebook 7 and the exported HTML (beside the notebook) serve it,
and on Colab the browser downloads it at once. On Colab, *Keep results on Google Drive* links the
output folder to a folder on Drive (:mod:`sa3lab.drive`), so results outlive the runtime.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from pathlib import Path

import ipywidgets as widgets

from .. import catalog, defaults, drive
from ..library import EXPORTS, PAGE_RUNS, Library, Listing, Run, export_formats, missing_formats_note
from ..render import message_html
from . import compat, kernel, parts, shell
from .shell import CellOutput, form_box

TITLE_CHARS = 110  # a run's line in the picker
AUTO = {"width": "auto"}  # buttons as wide as their text


def colab_download(path: Path) -> None:
    """Have Colab's page download ``path`` (ValueError with one sentence where google.colab is missing)."""
    try:
        from google.colab import files
    except ImportError:
        raise ValueError(
            "The Download button needs Google Colab (google.colab); here use the file's link in the list."
        ) from None
    files.download(str(path))


class LibraryForm:
    """The runs of ``output_dir``, ``page_runs`` to a page, newest first; ``form`` is the notebook's form.

    Loading needs a form with ``fill`` (the generation forms); clearing results takes any form.
    ``colab``: show the Download button (None: when google.colab can be imported).
    """

    def __init__(
        self,
        output_dir=defaults.OUTPUT_DIR,
        form=None,
        *,
        page_runs: int = PAGE_RUNS,
        colab: bool | None = None,
    ):
        if not isinstance(page_runs, int) or not 1 <= page_runs <= 20:
            raise ValueError(f"page_runs must be a whole number from 1 to 20; got {page_runs!r}.")
        self.library = Library(output_dir)
        self.form, self.page_runs, self.page = form, page_runs, 0
        self.listing = Listing([], [])
        self.html = ""
        self.drawing = 0  # counts the pages shown: drawing ahead for an earlier one stops
        self.output = CellOutput("Results library")
        self.colab = compat.colab_available() if colab is None else bool(colab)

        self.newer = widgets.Button(description="Newer", icon="arrow-left")
        self.older = widgets.Button(description="Older", icon="arrow-right")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.page_label = widgets.Label()
        self.choice = widgets.Dropdown(description="Run", options=[], layout=parts.WIDE)
        self.load_button = widgets.Button(description="Load into the form", icon="upload", layout=AUTO)
        self.clear_button = widgets.Button(description="Clear the form's results", icon="eraser", layout=AUTO)
        formats = export_formats()
        self.format = widgets.Dropdown(
            description="Format", options=[(fmt.label, key) for key, fmt in formats.items()], value="wav"
        )
        self.export_button = widgets.Button(description="Export", icon="file")
        self.download_button = widgets.Button(description="Download", icon="download")
        self.all_button = widgets.Button(description="Download all", icon="file-archive-o", layout=AUTO)
        self.drive_button = widgets.Button(
            description="Keep results on Google Drive", icon="cloud", layout=AUTO
        )
        self.drive_root = drive.DRIVE_ROOT
        self.really = widgets.Checkbox(value=False, description="really delete", indent=False, layout=AUTO)
        self.delete_button = widgets.Button(description="Delete", icon="trash", button_style="danger")
        note = missing_formats_note()
        self.message = widgets.HTML(message_html(note, "info") if note else "")
        self.downloads = widgets.Output() if self.colab else None  # where Colab's download script runs

        actions = [  # (button, action, what the message line says while it works)
            (self.newer, lambda: self._turn(-1), "Turning the page"),
            (self.older, lambda: self._turn(1), "Turning the page"),
            (self.refresh_button, self._refresh_said, "Reading the output folder"),
            (self.load_button, self.load, "Loading the run's settings into the form"),
            (self.clear_button, self.clear_results, "Clearing the form's results"),
            (self.export_button, self.export, "Exporting"),
            (self.download_button, self.download, "Exporting for download"),
            (self.all_button, self.download_all, "Zipping every file of the output folder"),
            (self.drive_button, self.keep_on_drive, "Moving the results to Google Drive"),
            (self.delete_button, self.delete, "Deleting"),
        ]
        self.buttons = [button for button, _, _ in actions]
        for button, action, working in actions:
            button.on_click(
                lambda _, action=action, working=working: kernel.on_main_thread(
                    lambda: self._do(action, working)
                )
            )
        if hasattr(form, "shell"):  # follow the form: each new result shows here without a Refresh
            form.shell.on_result(lambda: kernel.after_this_request(self._follow))
        self.choice.observe(lambda _: setattr(self.really, "value", False), "value")

        pages = widgets.HBox([self.newer, self.older, self.refresh_button, self.page_label], layout=parts.ROW)
        rows = [pages, self.choice]
        form_buttons = [self.load_button] if hasattr(form, "fill") else []
        form_buttons += [self.clear_button] if hasattr(form, "shell") else []
        if form_buttons:
            rows.append(widgets.HBox(form_buttons, layout=parts.ROW))
        export_row = [self.format, self.export_button] + ([self.download_button] if self.colab else [])
        everything = [self.all_button] + ([self.drive_button] if self.colab else [])
        rows += [
            widgets.HBox(export_row, layout=parts.ROW),
            widgets.HBox(everything, layout=parts.ROW),
            widgets.HBox([self.really, self.delete_button], layout=parts.ROW),
        ]
        rows += [self.message, self.output.fallback] + ([self.downloads] if self.colab else [])
        self.widget = form_box(rows)

    # ------------------------------------------------------------------ showing

    def display(self) -> None:
        """The form and, below it, the current page of runs."""
        self.refresh()
        self.output.display(self.widget, self.html)

    def _ipython_display_(self) -> None:
        self.display()

    def refresh(self) -> None:
        """Read the folder again and show the current page."""
        self.listing = self.library.scan()
        pages = self.listing.pages(self.page_runs)
        self.page = min(max(self.page, 0), pages - 1)
        start = self.page * self.page_runs
        runs = self.listing.page(self.page, self.page_runs)
        chosen = self.choice.value
        self.choice.options = [
            (_short(f"{start + i + 1}. {run.title()}"), start + i) for i, run in enumerate(runs)
        ]
        indices = range(start, start + len(runs))
        self.choice.value = chosen if chosen in indices else (start if runs else None)
        self.newer.disabled, self.older.disabled = self._at_ends()
        self.page_label.value = f"page {self.page + 1} of {pages} · {_runs(len(self.listing.runs))}"
        self.html = self.library.page_html(self.listing, self.page, self.page_runs)
        self.output.show(self.html)
        self._draw_ahead()

    def _draw_ahead(self) -> None:
        """Once this request is over, draw the next older page's players into the library's cache, one
        run per callback (a click waits for one player at most), so "Older" answers from the cache."""
        self.drawing += 1
        if self.page + 1 < self.listing.pages(self.page_runs):
            runs = self.listing.page(self.page + 1, self.page_runs)
            kernel.after_this_request(partial(self._draw, self.drawing, runs))

    def _draw(self, drawing: int, runs: list[Run]) -> None:
        """Draw ``runs[0]``, then schedule the rest; nothing once another page is shown or while a form's
        job is going (a page shown after it draws ahead again). A run deleted or unreadable meanwhile is
        skipped: drawing ahead never changes what is on screen nor says anything."""
        if drawing != self.drawing or not runs or shell.a_job_is_running():
            return
        try:
            self.library.prepare(runs[0])
        except Exception:  # noqa: BLE001 - never to the page: turning to it says what went wrong
            return
        kernel.after_this_request(partial(self._draw, drawing, runs[1:]))

    def _at_ends(self) -> tuple[bool, bool]:
        """Whether the first and the last page are on show (Newer / Older have nowhere to go)."""
        return self.page == 0, self.page >= self.listing.pages(self.page_runs) - 1

    def _follow(self) -> None:
        """A new result of the form: show the folder as it is now."""
        self._do(self.refresh, "Adding the new result")

    def _turn(self, pages: int) -> None:
        self.page += pages
        self.refresh()

    def _refresh_said(self) -> str:
        self.refresh()
        return f"The list shows the output folder as it is now ({_runs(len(self.listing.runs))})."

    # ------------------------------------------------------------------ actions

    def _do(self, action, working: str = "") -> None:
        """Run one button's action; the message line says ``working…`` meanwhile (the buttons wait),
        then the action's sentence (or the error's)."""
        self.output.notice_reload()
        enabled = [button for button in self.buttons if not button.disabled]
        for button in enabled:
            button.disabled = True
        self.message.value = message_html(f"{working}…", "info") if working else ""
        try:
            said = action()
        except ValueError as exc:
            self.message.value = message_html(str(exc), "error")
        except OSError as exc:
            self.message.value = message_html(f"A file could not be read or written ({exc}).", "error")
        except Exception as exc:  # noqa: BLE001 - the kernel must survive anything a button does
            self.message.value = message_html(
                f"Something went wrong that the library did not expect ({type(exc).__name__}: {exc}).",
                "error",
            )
        else:
            self.message.value = message_html(said, "info") if said else ""
        finally:
            for button in enabled:
                button.disabled = False
            self.newer.disabled, self.older.disabled = self._at_ends()

    def selected(self) -> Run:
        """The run chosen in the picker (ValueError if none, or if its files are gone)."""
        if self.choice.value is None:
            raise ValueError("There is no run to choose yet: generate one, then press Refresh.")
        run = self.listing.runs[self.choice.value]
        if not run.wav.is_file():
            raise ValueError(f"{run.wav.name} is no longer in the folder; press Refresh.")
        return run

    def load(self) -> str:
        """Put the chosen run's settings into the form."""
        if not hasattr(self.form, "fill"):
            raise ValueError("This library has no generation form to load settings into.")
        run = self.selected()
        request = run.request()
        picker = getattr(self.form, "picker", None)
        offered = [value for _, value in picker.dropdown.options] if picker is not None else []
        if request.model in catalog.ENTRIES and offered and request.model not in offered:
            raise ValueError(
                f"This run used {request.model}, which this notebook's form does not offer; load it from "
                "the library of the notebook whose form has it."
            )
        self.form.fill(request)
        try:
            self.form.read()
        except ValueError as exc:
            return f"Loaded the settings of {run.wav.name} into the form, but: {exc}"
        return (
            f"Loaded the settings of {run.wav.name} into the form (seed {request.seed}); "
            "Generate runs them again."
        )

    def clear_results(self) -> str:
        """Empty the form's list of results (the saved files stay)."""
        if not hasattr(self.form, "shell"):
            raise ValueError("This library has no form whose results it could clear.")
        self.form.shell.clear_results()
        return "The form's results are cleared from the notebook; their files stay in the output folder."

    def export(self) -> str:
        """Write the chosen run in the chosen format; its link appears in the list."""
        run = self.selected()
        path = self.library.export(run, self.format.value)
        self.refresh()
        if path == run.wav:
            return f"{path.name} is already a 32-bit float WAV: its link is in the list below."
        return f"Exported {path.name} ({EXPORTS[self.format.value].label}): its link is in the list below."

    def download(self) -> str:
        """Colab: export the chosen run in the chosen format and have the browser download it."""
        run = self.selected()
        path = self.library.export(run, self.format.value)
        if self.downloads is not None:
            self.downloads.clear_output()
        with self.downloads or nullcontext():
            colab_download(path)
        self.refresh()
        return f"Your browser downloads {path.name}."

    def download_all(self) -> str:
        """Zip every file of the output folder; its link heads the list (Colab: the browser downloads it)."""
        path = self.library.zip_all()
        self.refresh()
        size = f"{path.stat().st_size / 1e6:.1f} MB"
        if self.colab:
            if self.downloads is not None:
                self.downloads.clear_output()
            with self.downloads or nullcontext():
                colab_download(path)
            return f"Your browser downloads {path.name} ({size}), every file of {self.library.folder}."
        return (
            f"Wrote {path.name} ({size}), every file of {self.library.folder}: its link heads the list below."
        )

    def keep_on_drive(self) -> str:
        """Colab: the output folder becomes a link to a folder on Google Drive (mounted if need be)."""
        _, said = drive.keep_on_drive(self.library.folder, self.drive_root)
        self.refresh()
        return said

    def delete(self) -> str:
        """Remove the chosen run's files, once “really delete” is ticked."""
        run = self.selected()
        if not self.really.value:
            raise ValueError(
                f"Tick “really delete” first: deleting {run.wav.name} removes its audio, record and "
                "exports for good."
            )
        removed = self.library.delete(run, confirm=True)
        self.really.value = False
        self.refresh()
        names = ", ".join(path.name for path in removed)
        return f"Deleted {run.wav.name} and its files ({names})."


def _runs(count: int) -> str:
    return f"{count} run{'s' * (count != 1)}"


def _short(text: str) -> str:
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


library_form = LibraryForm  # the notebooks' name: sa3lab.library_form(OUTPUT_DIR, form=form)
