"""Start here: the set-up check, login, the coverage table and a quick test, in one view."""

from __future__ import annotations

import html

import ipywidgets as widgets

from .. import defaults, drive
from ..render import message_html
from ..setup_check import TOKEN_SOURCES, token_notice
from . import compat, kernel, parts
from .generation import GenerationForm
from .session import Session, shared_session
from .shell import NotebookForm

GREEN, RED = "#1b7f3b", "#b00020"


def _list(items: list[str], mark: str, colour: str) -> str:
    return "".join(
        f"<div style='margin:2px 0'><span style='color:{colour}'>{mark}</span> {html.escape(t)}</div>"
        for t in items
    )


class StartHere(NotebookForm):
    """Notebook 00: set-up check, login, coverage table and a quick test with ``model``.

    ``display()`` shows everything; ``run()`` runs the quick test once (same path as its button).
    """

    def __init__(
        self,
        model: str = "demo",
        prompt: str = "",
        duration: float = 2.0,
        seed: int = -1,
        output_dir: str = defaults.OUTPUT_DIR,
        *,
        session: Session | None = None,
        colab: bool | None = None,
    ):
        self.session = session or shared_session()
        self.output_dir = output_dir
        self.colab = compat.colab_available() if colab is None else bool(colab)
        self.check = widgets.HTML()
        self.token_field = compat.SecretField(
            value="",
            description="Token",
            placeholder="paste a Hugging Face token (hf_…), then press Enter",
            continuous_update=False,
            style=parts.STYLE,
            layout={"width": "560px", "max_width": "100%"},
        )
        auto = {"width": "auto"}
        self.use_button = widgets.Button(description="Use token", icon="key", layout=auto)
        self.forget_button = widgets.Button(description="Forget pasted token", icon="times", layout=auto)
        self.login_button = widgets.Button(
            description="Log in with Hugging Face",
            icon="sign-in",
            tooltip="huggingface_hub.notebook_login()",
            layout=auto,
        )
        self.login_state = widgets.HTML()
        self.login_output = widgets.Output()
        self.coverage_table = widgets.HTML(layout={"width": "100%"})
        self.refresh_button = widgets.Button(description="Check again", icon="refresh", layout=auto)
        self.drive_button = widgets.Button(
            description="Keep results on Google Drive", icon="cloud", layout=auto
        )
        self.drive_state = widgets.HTML(
            f"<small>Results go to {html.escape(str(output_dir))} on this runtime's disk, which is gone when "
            "the runtime is recycled; keep them on Drive, or use the library's Download all.</small>"
        )
        self.drive_root = drive.DRIVE_ROOT
        self.test = GenerationForm(
            "all", model, prompt, duration, seed, output_dir, session=self.session, simple=True
        )
        self.shell = self.test.shell  # run() runs the quick test

        self.token_field.observe(lambda _: self._take_token(), "value")
        self.use_button.on_click(lambda _: self._take_token())
        self.forget_button.on_click(lambda _: self.session.set_token(None))
        self.login_button.on_click(lambda _: self._notebook_login())
        self.refresh_button.on_click(lambda _: self.refresh(recheck=True))
        self.drive_button.on_click(lambda _: kernel.on_main_thread(self.keep_on_drive))
        self.session.on_token_change(self._token_changed)
        self.test.picker.observe(self._refresh_check)
        self.refresh()

        login_help = widgets.HTML(
            "<small>The pasted token stays in this kernel's memory only: the field empties itself, and the "
            "token is never saved to the notebook, to disk or to run metadata. <i>Log in with Hugging "
            "Face</i> stores a login on this machine instead (huggingface_hub.notebook_login).</small>"
        )
        self.widget = widgets.VBox(
            [
                widgets.HTML("<h3>Set-up check</h3>"),
                self.check,
                *(
                    [widgets.HBox([self.drive_button, self.drive_state], layout=parts.ROW)]
                    if self.colab
                    else []
                ),
                widgets.HTML("<h3>Log in</h3>"),
                widgets.HBox([self.token_field, self.use_button, self.forget_button], layout=parts.ROW),
                widgets.HBox([self.login_button, self.login_state], layout=parts.ROW),
                login_help,
                self.login_output,
                widgets.HTML("<h3>Models: access with your token, size, where they run</h3>"),
                widgets.HBox([self.refresh_button]),
                self.coverage_table,
                widgets.HTML("<h3>Quick test</h3>"),
                self.test.widget,
            ]
        )

    # ------------------------------------------------------------------ results on Drive

    def keep_on_drive(self) -> None:
        """Colab: ``output_dir`` becomes a link to a folder on Google Drive (see :mod:`sa3lab.drive`)."""
        try:
            _, said = drive.keep_on_drive(self.output_dir, self.drive_root)
        except (ValueError, OSError) as exc:
            self.drive_state.value = message_html(str(exc), "error")
        else:
            self.drive_state.value = message_html(said, "info")

    # ------------------------------------------------------------------ login

    def _take_token(self) -> None:
        """Move a pasted token from the widget into memory and empty the widget at once."""
        value = self.token_field.value
        if value:
            self.token_field.value = ""
            self.session.set_token(value)

    def _token_changed(self) -> None:
        self.refresh(recheck=False)

    def _notebook_login(self) -> None:
        import huggingface_hub

        with self.login_output:
            try:
                huggingface_hub.notebook_login()
            except Exception as exc:  # noqa: BLE001 - show why, keep the kernel alive
                self.login_state.value = message_html(
                    f"The login did not finish ({type(exc).__name__}); paste a token above instead.", "error"
                )
                return
        self.refresh(recheck=True)

    # ------------------------------------------------------------------ views

    def _model_key(self) -> str:
        return self.test.picker.dropdown.value

    def _refresh_check(self) -> None:
        report, choice = self.session.lab.setup_report(self._model_key(), self.session.token)
        facts = "".join(
            f"<tr><th style='text-align:left;padding-right:12px'>{html.escape(k)}</th>"
            f"<td>{html.escape(v)}</td></tr>"
            for k, v in report.facts
        )
        self.check.value = (
            (message_html(report.switch, "warning") if report.switch else "")
            + f"<table class='sa3lab-table'>{facts}</table>"
            f"<div style='margin-top:6px'><b>Will work</b>{_list(report.works, '✔', GREEN)}</div>"
            f"<div style='margin-top:6px'><b>Will not work (yet)</b>{_list(report.limits, '✘', RED)}</div>"
        )
        self.login_state.value = (
            f"<small>In use: {html.escape(TOKEN_SOURCES[choice.source])}.</small>"
            if choice.token
            else "<small>Not logged in: base models, SAME and demo still work.</small>"
        )

    def _refresh_coverage(self, recheck: bool) -> None:
        rows = self.session.lab.coverage(self.session.token, recheck=recheck)
        head = ("model", "repo", "gated", "access with your token", "size", "where it runs", "runnable here")
        body = []
        for r in rows:
            repo = f"<a href='{r.page}' target='_blank'>{html.escape(r.repo_id)}</a>" if r.page else "-"
            status = f"<span style='white-space:nowrap'>{html.escape(r.status)}</span>"
            if r.detail:
                detail = html.escape(r.detail)
                status += (
                    f"<details><summary><small>what to do</small></summary><small>{detail}</small></details>"
                )
            runnable = ("✔ yes" if r.runnable else "✘ no") + (
                f"<br><small>{html.escape(r.why)}</small>" if r.why else ""
            )
            cells = (
                html.escape(r.key),
                repo,
                "yes" if r.gated else "no",
                status,
                html.escape(r.size),
                html.escape(r.device_advice),
                runnable,
            )
            body.append(
                "<tr>"
                + "".join(f"<td style='vertical-align:top;padding:2px 8px'>{c}</td>" for c in cells)
                + "</tr>"
            )
        heads = "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>" for h in head)
        notice = token_notice(rows)
        self.coverage_table.value = (message_html(notice, "warning") if notice else "") + (
            f"<table class='sa3lab-table' style='width:100%'><tr>{heads}</tr>{''.join(body)}</table>"
        )

    def refresh(self, recheck: bool = False) -> None:
        """Recompute the set-up check and the coverage table (``recheck``: ask the Hub again)."""
        self._refresh_check()
        self._refresh_coverage(recheck)


start_here = StartHere  # notebook 00
