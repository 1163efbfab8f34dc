"""The part every form shares: run and stop buttons, progress, messages, and results as cell outputs.

A form supplies ``read`` (widgets -> request, raising ``ValueError`` with one sentence on bad input),
``execute`` (request, progress) -> result, and ``render`` (result -> one HTML block). Warnings a run
raises (a negative prompt that has no effect, a repaired cache, a rejected token) are kept in
:attr:`FormShell.notes` for its result to show. Both the button
and :meth:`FormShell.run` (headless / papermill) go through :meth:`FormShell.run` on the kernel's main
thread (see :mod:`.kernel`). Other long jobs of a form (expanding a prompt) go through
:meth:`FormShell.start_task`: the same thread, progress, Stop and messages, one job at a time.
Results are ordinary rich output: :meth:`FormShell.display` shows the form and, below it in the same
cell, an output with a display id that every result updates (newest first), so results are saved
with the notebook, survive a kernel restart and show in static exports, without widget state.
Earlier results stay, whatever happens to a later run.

After a page reload the front end no longer knows that output (its display-id routing lived in the
old page), so a run requested from another page connection also shows the results inside the form,
with a sentence asking to run the cell again. Re-running a form's cell closes the previous form's
widgets (fewer widgets for the front end to restore).

One run at a time in a kernel: a form started while another form's run is going waits for it
("queued behind the running generation"; Stop takes it off the queue), then runs.

A notebook stays usable (Colab shows at most about 10 MB of outputs per notebook): the results output
holds the newest results up to :data:`RESULTS_BUDGET` bytes; older ones leave it (and the kernel's
memory) with a line saying so, and stay in the output folder, where the results library lists them.
"""

from __future__ import annotations

import html
import traceback
import warnings
from collections.abc import Callable

import ipywidgets as widgets
from IPython.display import HTML, display

from ..cache import return_freed_heap
from ..render import message_html
from ..upstream_clash import clash_notice
from . import kernel, parts
from .kept_results import KeptResults


class StopRequested(Exception):
    """Raised between sampling steps after the user pressed Stop."""


STOPPED_TEXT = "Stopped before the end; nothing was generated. Press the button again to start over."
QUEUED_TEXT = "queued behind the running generation"
RESULTS_BUDGET = 6_000_000  # bytes of result HTML one form keeps in the notebook (about 18 results of 30 s)
RELOADED_TEXT = (
    "This page was reloaded after the form was shown, so new results cannot be written into the "
    "notebook: they show here and are saved in the output folder; run this cell again to put them "
    "into the notebook."
)
OOM_TEXT = (
    "The device ran out of memory: try a shorter duration, batch size 1, chunked decoding, "
    "or a smaller model (small instead of medium)."
)


class Progress:
    """Drives the progress bar from job callbacks, hears Stop between steps and carries its flag."""

    def __init__(self, bar: widgets.IntProgress, label: widgets.Label):
        self.bar, self.label = bar, label
        self.stop_requested = False

    def start(self, total: int, text: str) -> None:
        self.bar.max, self.bar.value, self.label.value = max(total, 1), 0, text

    def step(self, done: int, total: int, text: str | None = None) -> None:
        """Record progress; raises :class:`StopRequested` if Stop was pressed."""
        self.bar.max, self.bar.value = max(total, 1), done
        if text:
            self.label.value = text
        kernel.process_ui_events()
        if self.stop_requested:
            raise StopRequested()

    def stage(self, text: str) -> None:
        self.label.value = text
        kernel.process_ui_events()


FORM_CSS = (  # a form cell's outputs at full height (Notebook 7 and classic scroll tall ones), and the
    # way-back line hidden while its cell shows a form connected to a kernel
    "<style>.jp-mod-outputsScrolled .jp-Cell-outputArea:has(.sa3lab-form),"
    "div.output_scroll:has(.sa3lab-form){max-height:none;height:auto;overflow-y:visible;box-shadow:none}"
    ".jp-Cell:has(.sa3lab-form:not(.jupyter-widgets-disconnected)) .sa3lab-way-back,"
    "div.cell:has(.sa3lab-form:not(.jupyter-widgets-disconnected)) .sa3lab-way-back{display:none}</style>"
)
WAY_BACK_TEXT = (
    "After a kernel restart or on reopening the notebook, the form above does not work: run this cell "
    "again to get it back"
)


def form_box(children: list) -> widgets.VBox:
    """A form's column of ``children``, with the rules that show its cell's outputs whole rather than in
    a small scrolling box (a person can still fold them with the cell's output collapser) and hide the
    way-back line while the form works."""
    style = widgets.HTML(FORM_CSS, layout={"display": "none"})
    # the class is given at creation: with a later add_class, the classic page (ipywidgets 7) showed no form
    return widgets.VBox([*children, style], _dom_classes=("sa3lab-form",))


class CellOutput:
    """A widget shown in a cell, with an HTML output below it that later calls rewrite (a display id).

    After a page reload the front end no longer knows that output, so a request from another page
    connection also shows the HTML in :attr:`fallback` (a widget inside the form), with a sentence
    asking to run the cell again. A form shown inside another form's widget (no cell of its own, so
    no output a display id could rewrite: "Try it") sets :attr:`inside` and shows its results there.
    """

    def __init__(self, title: str):
        self.title = title
        self.fallback = widgets.HTML(value="")
        self.inside = False  # results go to :attr:`fallback`, inside the widget, and nowhere else
        self._handle = None
        self._shown_in: str | None = None  # the page connection that ran the form's cell
        self._reloaded = False

    def display(self, widget: widgets.Widget, text_html: str) -> None:
        """``widget`` (a plain-text stand-in where no widget can show), then ``text_html`` below it."""
        _close_earlier_form_of_this_cell(widget)
        view = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
        text = f"{self.title} (interactive when the kernel runs; its results are the output below)"
        display({"application/vnd.jupyter.widget-view+json": view, "text/plain": text}, raw=True)
        self._handle = display(HTML(text_html), display_id=True)
        self._shown_in, self._reloaded = kernel.client_session(), False
        self.fallback.value = ""

    def notice_reload(self) -> None:
        """A request from another page connection than the one that showed the form: a reload."""
        session = kernel.client_session()
        if self._shown_in and session and session != self._shown_in:
            self._reloaded = True

    def show(self, text_html: str) -> None:
        """Rewrite the output below the widget (and the fallback after a reload)."""
        if self.inside:
            self.fallback.value = text_html
            return
        if self._handle is not None:
            self._handle.update(HTML(text_html))
        if self._reloaded:
            self.fallback.value = message_html(RELOADED_TEXT, "info") + text_html


class FormShell:
    """Buttons, progress and messages around a form's own inputs; results below them as cell output."""

    def __init__(
        self,
        inputs: widgets.Widget,
        read: Callable[[], object],
        execute: Callable[[object, Progress], object],
        render: Callable[[object], str],
        run_label: str = "Generate",
        secrets: Callable[[], list[str]] = list,
        title: str = "sa3lab form",
        stopped: Callable[[], str] = lambda: STOPPED_TEXT,
        output_dir=None,
        kept_name: str | None = None,
    ):
        """``output_dir``: where the form's results are kept for a re-run of its cell (none: not kept),
        under its cell's id or else ``kept_name`` (default: ``title``); see :mod:`.kept_results`."""
        self._read, self._execute, self._render = read, execute, render
        self._output_dir, self._kept_name = output_dir, kept_name or title
        self.kept: KeptResults | None = None  # set when the form is shown in a cell
        self._stopped = stopped  # the sentence shown when Stop or an interrupt ends a run
        self._secrets, self.title = secrets, title
        self.run_button = widgets.Button(description=run_label, button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.bar = widgets.IntProgress(
            value=0, min=0, max=1, description="", layout={"width": "320px", "max_width": "100%"}
        )
        self.status = widgets.Label(value="")
        self.message = widgets.HTML(value="")
        self.output = CellOutput(title)
        self.fallback = self.output.fallback  # results shown inside the form after a page reload
        self.progress = Progress(self.bar, self.status)
        self.results: list[str] = []  # HTML blocks, newest first
        self.dropped = 0  # older results that left the view (budget)
        self.notes: list[str] = []  # the warnings of the latest run, once each, for its result
        self.last_result = None
        self.last_error: str | None = None
        self.last_message = ""  # the last sentence the form showed (an error, or why a run stopped)
        self.reading = False  # a run is reading its inputs (a refusal then means it never started)
        self._result_callbacks: list[Callable[[], None]] = []
        self.running = False
        self.busy_disabled: list[widgets.Widget] = []  # the form's other buttons, disabled during any job
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        controls = widgets.HBox(
            [self.run_button, self.stop_button, self.bar, self.status],
            layout=parts.CENTRED_ROW,
        )
        self.widget = form_box([inputs, controls, self.message, self.fallback])

    # ------------------------------------------------------------------ showing

    def display(self, widget: widgets.Widget | None = None) -> None:
        """The form (a widget, with a plain-text stand-in where no widget can show) and its results.

        ``widget``: what to show instead of the shell's own widget (a view that contains it). A form
        with no results yet takes back those kept by an earlier form of the same cell.
        """
        if self._output_dir is not None:
            self.kept = KeptResults(self._output_dir, kernel.cell_id() or self._kept_name)
            if not self.results:
                self.results, self.dropped = self.kept.load()
        self.output.display(widget or self.widget, self.results_html())

    def results_html(self) -> str:
        older = (
            message_html(
                f"{self.dropped} older result(s) left this view to keep the notebook small; their files and "
                "records are in the output folder (the results library lists them).",
                "info",
            )
            if self.dropped
            else ""
        )
        way_back = WAY_BACK_TEXT + ("; these results come back with it." if self.results else ".")
        line = f'<div class="sa3lab-way-back" style="color:#555;font-size:12px;margin:2px 0">{way_back}</div>'
        return line + "".join(self.results) + older

    def _add_result(self, block: str) -> None:
        """``block`` first; the oldest results leave once the kept ones pass the budget (one always stays)."""
        self.results.insert(0, block)
        while len(self.results) > 1 and sum(map(len, self.results)) > RESULTS_BUDGET:
            self.results.pop()
            self.dropped += 1
        self._keep()

    def _keep(self) -> None:
        if self.kept is not None:
            self.kept.save(self.results, self.dropped)

    def _show_results(self) -> None:
        self.output.show(self.results_html())

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Button path: the same run, on the kernel's main thread; a click during a run does nothing.

        While another form's job is going this one is queued and runs after it.
        """
        self._start(self.run)

    def start_task(self, job: Callable[[Progress], object], name: str) -> None:
        """Another button's job: :meth:`run_task` on the kernel's main thread (queued the same way);
        ``name`` (e.g. "Expand") heads its status, so it is not read as the Run button's."""
        self._start(lambda: self.run_task(job, name))

    def _start(self, work: Callable[[], object]) -> None:
        if self.running:
            return
        self.running = True  # at once, so a click that arrives before the run starts is ignored too
        self._set_busy(True)
        if _ACTIVE:
            _QUEUE.append((self, work))
            self.status.value = QUEUED_TEXT
            return
        kernel.on_main_thread(work)

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.run_button, *self.busy_disabled):
            widget.disabled = busy
        self.stop_button.disabled = not busy

    def stop(self) -> None:
        """Stop the job between two steps, or take a queued one off the queue."""
        queued = [entry for entry in _QUEUE if entry[0] is self]
        if queued:
            _QUEUE.remove(queued[0])
            self.running = False
            self._set_busy(False)
            self.status.value = "not started (taken off the queue)"
            return
        self.progress.stop_requested = True

    def run(self):
        """Read the inputs, run once and show the result; returns it (None if the run failed)."""
        produced = self.run_task(self._produce)
        if produced is None:
            return None
        result, block = produced
        self._add_result(block)
        self._show_results()
        self.last_result = result
        if getattr(result, "stopped", False):  # Stop ended it early: the result holds what it finished
            self.status.value = "stopped (what it finished is below)"
        for callback in self._result_callbacks:
            callback()
        return result

    def on_result(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each run that added a result (e.g. a results library follows)."""
        self._result_callbacks.append(callback)

    def _produce(self, progress: Progress):
        request = self._read()
        self.reading = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = self._execute(request, progress)
        self.notes = list(
            dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning))
        )
        return result, self._render(result)

    def run_task(self, job: Callable[[Progress], object], name: str = ""):
        """``job(progress)`` with Stop, the interrupt and errors handled; its value (None if it failed).

        A bad input or any failure shows one message in the form; the kernel and earlier results stay.
        Afterwards a job that was queued meanwhile starts. ``name``: see :meth:`start_task`.
        """
        _ACTIVE.append(self)
        try:
            return self._run_job(job, name)
        finally:
            _ACTIVE.remove(self)
            if _QUEUE and not _ACTIVE:
                _QUEUE.pop(0)[1]()

    def _run_job(self, job: Callable[[Progress], object], name: str = ""):
        self.running, self.progress.stop_requested = True, False
        self._set_busy(True)
        self.output.notice_reload()
        self.message.value, self.last_error = "", None
        self.bar.value, self.bar.bar_style, self.status.value = 0, "", ""
        self.reading = not name  # the Run button's job, until its inputs are read
        # widget messages still waiting (an edit the page sent just before the click, which ipykernel 7
        # can leave behind the click while the kernel is busy) are applied before the inputs are read
        kernel.process_ui_events()
        try:
            value = job(self.progress)
        except (StopRequested, KeyboardInterrupt):
            self._show(self._stopped(), "info")
            return None
        except ValueError as exc:
            self._show(str(exc), "error", not_started=self.reading)
            return None
        except MemoryError:
            self._show(OOM_TEXT, "error")
            return None
        except Exception as exc:  # noqa: BLE001 - the kernel must survive anything a run does
            if _is_out_of_memory(exc):
                self._show(OOM_TEXT, "error")
            elif isinstance(exc, ImportError) and (clash := clash_notice()):  # upstream's files over ours
                self._show(clash, "error")
            else:
                self._show_unexpected(exc)
            return None
        finally:
            self.running = False
            self._set_busy(False)
            if name:
                self.status.value = f"{name}: {self.status.value or 'done'}"
            return_freed_heap()
        if not name:
            self.status.value = "done"
        return value

    def clear_results(self) -> None:
        """Empty the results output (the saved files stay)."""
        self.results.clear()
        self.dropped = 0
        self._keep()
        self._show_results()

    # ------------------------------------------------------------------ messages

    def _redact(self, text: str) -> str:
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, "[token]")
        return text

    def _show(self, text: str, kind: str, not_started: bool = False) -> None:
        """``text`` in the form; the status says whether the run stopped, failed or never started (an
        input to fix: the bar stays empty), and a failed run's bar turns red."""
        text = self._redact(text)
        self.last_message = text
        self.last_error = text if kind == "error" else None
        self.message.value = message_html(text, kind)
        if kind == "info":
            self.status.value = "stopped"
        elif not_started:
            self.status.value = "not started: see the message"
        else:
            self.status.value, self.bar.bar_style = "failed", "danger"

    def _show_unexpected(self, exc: Exception) -> None:
        text = f"Something went wrong that the lab did not expect ({type(exc).__name__}: {exc})."
        self._show(text, "error")
        details = html.escape(self._redact("".join(traceback.format_exception(exc))))
        self.message.value += (
            "<details><summary>Technical details</summary>"
            f"<pre style='font-size:11px'>{details}</pre></details>"
        )


class RunFailed(Exception):
    """A run started from code with ``check=True`` (the notebooks' ``RUN = True``) ended without a result.

    IPython shows it as its one sentence, without a traceback, as a plain cell output; "Run all" and
    papermill stop at that cell (papermill exits non-zero).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class NotebookForm:
    """What a notebook cell gets: ``display()`` shows the form and its results; ``run()`` runs once."""

    widget: widgets.Widget
    shell: FormShell

    def _make_shell(
        self,
        inputs: widgets.Widget,
        run_label: str,
        title: str,
        output_dir=None,
        kept_name: str | None = None,
    ) -> FormShell:
        """The shell around ``inputs`` that runs this form's ``read`` / ``execute`` / ``render``; its
        results are kept in ``output_dir`` for a re-run of its cell (see :class:`FormShell`)."""
        self.shell = FormShell(
            inputs,
            self.read,
            self.execute,
            self.render,
            run_label=run_label,
            secrets=self.session.secrets,
            title=title,
            stopped=self.stopped_text,
            output_dir=output_dir,
            kept_name=kept_name,
        )
        return self.shell

    def stopped_text(self) -> str:
        """The sentence shown when Stop or an interrupt ends a run before it returns its result."""
        return STOPPED_TEXT

    def run(self, check: bool = False):
        """One run with the current values, exactly as the button does it; its result, or None when it
        failed or was stopped (the form says why). ``check``: raise :class:`RunFailed` with that
        sentence instead (headless runs, so that they fail loudly)."""
        result = self.shell.run()
        if result is None and check:
            raise RunFailed(self.shell.last_message)
        return result

    def display(self) -> None:
        self.shell.display(self.widget)

    def _ipython_display_(self) -> None:
        self.display()


_ACTIVE: list[FormShell] = []  # the shell whose run is going (one at a time in a kernel)
_QUEUE: list[tuple[FormShell, Callable[[], object]]] = []  # jobs started meanwhile, in click order
_SHOWN_IN_CELL: dict[str, widgets.Widget] = {}  # notebook cell id -> the form widget it shows


def a_job_is_running() -> bool:
    """Whether a form's run or task is going in this kernel (or waiting behind one)."""
    return bool(_ACTIVE or _QUEUE)


def _close_tree(widget: widgets.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def _close_earlier_form_of_this_cell(widget: widgets.Widget) -> None:
    cell = kernel.cell_id()
    if cell is None:
        return
    earlier = _SHOWN_IN_CELL.get(cell)
    if earlier is not None and earlier is not widget:
        _close_tree(earlier)
    _SHOWN_IN_CELL[cell] = widget


def _is_out_of_memory(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()
