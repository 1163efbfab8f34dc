"""The part every form shares: run button, stop button, progress, messages and a results list.

A form supplies ``read`` (widgets -> request, raising ``ValueError`` with one sentence on bad input),
``execute`` (request, progress) -> result, and ``render`` (result -> widget). The shell runs the job in
a background thread from the button (so Stop and other widgets keep working) or in the calling thread
from :meth:`FormShell.run` (headless / papermill), through the same code path. Results are added
newest first and earlier ones stay, whatever happens to a later run.
"""

from __future__ import annotations

import html
import threading
import traceback
from collections.abc import Callable

import ipywidgets as widgets
from IPython.display import display


class StopRequested(Exception):
    """Raised between sampling steps after the user pressed Stop."""


class Progress:
    """Drives the progress bar from engine callbacks and carries the Stop flag."""

    def __init__(self, bar: widgets.IntProgress, label: widgets.Label):
        self.bar, self.label = bar, label
        self.stop_event = threading.Event()

    def start(self, total: int, text: str) -> None:
        self.bar.max, self.bar.value, self.label.value = max(total, 1), 0, text

    def step(self, done: int, total: int, text: str | None = None) -> None:
        """Record progress; raises :class:`StopRequested` if Stop was pressed."""
        self.bar.max, self.bar.value = max(total, 1), done
        if text:
            self.label.value = text
        if self.stop_event.is_set():
            raise StopRequested()

    def stage(self, text: str) -> None:
        self.label.value = text


def message_html(text: str, kind: str = "error") -> str:
    colour = {"error": "#b00020", "info": "#0b5394", "warning": "#8a6d00"}[kind]
    return (
        f'<div class="sa3lab-message sa3lab-{kind}" style="border-left:4px solid {colour};'
        f'padding:4px 8px;margin:4px 0">{html.escape(text)}</div>'
    )


class FormShell:
    """Buttons, progress, message area and results list around a form's own inputs."""

    def __init__(
        self,
        inputs: widgets.Widget,
        read: Callable[[], object],
        execute: Callable[[object, Progress], object],
        render: Callable[[object], widgets.Widget],
        run_label: str = "Generate",
        secrets: Callable[[], list[str]] = list,
    ):
        self._read, self._execute, self._render = read, execute, render
        self._secrets = secrets
        self.run_button = widgets.Button(description=run_label, button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="", layout={"width": "320px"})
        self.status = widgets.Label(value="")
        self.message = widgets.HTML(value="")
        self.results = widgets.VBox([])
        self.progress = Progress(self.bar, self.status)
        self.last_result = None
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.progress.stop_event.set())
        controls = widgets.HBox([self.run_button, self.stop_button, self.bar, self.status])
        self.widget = widgets.VBox([inputs, controls, self.message, self.results])

    def start(self) -> None:
        """Button path: run in a background thread so the kernel stays responsive."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.run_button.disabled = True  # at once, so a second click cannot queue another run
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a button-started run has finished (for tests and scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self):
        """Read the inputs, run once and show the result; returns it (None if the run failed)."""
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.progress.stop_event.clear()
        self.message.value, self.last_error = "", None
        try:
            request = self._read()
            result = self._execute(request, self.progress)
            view = self._render(result)
        except StopRequested:
            self._show(
                "Stopped before the end; nothing was generated. Press the button again to start over.", "info"
            )
            return None
        except ValueError as exc:
            self._show(str(exc), "error")
            return None
        except MemoryError:
            self._show(_OOM_TEXT, "error")
            return None
        except Exception as exc:  # noqa: BLE001 - the kernel must survive anything a run does
            if _is_out_of_memory(exc):
                self._show(_OOM_TEXT, "error")
            else:
                self._show_unexpected(exc)
            return None
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True
        self.results.children = (view, *self.results.children)
        self.last_result = result
        self.status.value = "done"
        return result

    def _redact(self, text: str) -> str:
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, "[token]")
        return text

    def _show(self, text: str, kind: str) -> None:
        text = self._redact(text)
        self.last_error = text if kind == "error" else None
        self.message.value = message_html(text, kind)
        self.status.value = "stopped" if kind == "info" else "failed"

    def _show_unexpected(self, exc: Exception) -> None:
        text = f"Something went wrong that the lab did not expect ({type(exc).__name__}: {exc})."
        self._show(text, "error")
        details = html.escape(self._redact("".join(traceback.format_exception(exc))))
        self.message.value += (
            "<details><summary>Technical details</summary>"
            f"<pre style='font-size:11px'>{details}</pre></details>"
        )


class NotebookForm:
    """What a notebook cell gets: ``display()`` shows ``widget``; ``run()`` runs once like the button."""

    widget: widgets.Widget
    shell: FormShell

    def run(self):
        """One run with the current values, exactly as the button does it (headless / papermill)."""
        return self.shell.run()

    def display(self) -> None:
        display(self.widget)

    def _ipython_display_(self) -> None:
        self.display()


_OOM_TEXT = (
    "The device ran out of memory: try a shorter duration, batch size 1, chunked decoding, "
    "or a smaller model (small instead of medium)."
)


def _is_out_of_memory(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()
