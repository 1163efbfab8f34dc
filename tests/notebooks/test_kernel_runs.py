"""A button-started run in a real kernel, driven over the Jupyter protocol as a front end would.

The test is the front end: it executes the form's cell, clicks Generate / Stop by sending the comm
messages a browser sends, interrupts the kernel, and reads what the kernel publishes. In the kernel a
setup cell records the thread every message is sent from: Colab shows no widget update sent from a
background thread (googlecolab/colabtools#3373), so every message of a run must come from the main
thread. Runs with this environment's kernel and, when present, the Colab-pinned one (ipykernel 6,
ipywidgets 7).
"""

from __future__ import annotations


def form_cell(output_dir: str, steps: int) -> str:
    return (
        "import sa3lab\n"
        "form = sa3lab.generation_form(model='demo', prompt='hum', duration=1.0, seed=5, "
        f"output_dir={output_dir!r})\n"
        f"form.steps.value = {steps}\n"
        "form.display()\n"
    )


def test_a_click_runs_on_the_main_thread_and_the_result_reaches_the_cell(front_end, tmp_path):
    front_end.execute(form_cell(str(tmp_path / "out"), steps=4))
    front_end.execute("SENT.clear()")
    front_end.click("Generate")
    front_end.wait_for_status(("sampling",))
    front_end.click("Generate")  # a second click during the run does nothing
    assert front_end.wait_for_status(("done", "failed")) == "done"
    front_end.pump(0.5)
    assert front_end.results_shown() == 1
    sent = front_end.evaluate("SENT")
    widget_updates = [thread for kind, thread in sent if kind in ("comm_msg", "update_display_data")]
    assert widget_updates and set(widget_updates) == {"MainThread"}, sent
    assert len(list((tmp_path / "out").glob("*.wav"))) == 1


def test_stop_and_interrupt_stop_a_button_run_between_steps_and_the_kernel_lives_on(front_end, tmp_path):
    front_end.execute(form_cell(str(tmp_path / "out"), steps=200))
    front_end.click("Generate")
    front_end.wait_for_status(("sampling",))
    front_end.click("Stop")
    assert front_end.wait_for_status(("stopped", "done")) == "stopped"
    front_end.labels.clear()
    front_end.click("Generate")
    front_end.wait_for_status(("sampling",))
    front_end.km.interrupt_kernel()
    assert front_end.wait_for_status(("stopped", "done")) == "stopped"
    assert front_end.evaluate("form.shell.last_error") is None
    assert front_end.evaluate("1 + 1") == 2  # the kernel is alive and answers cells
    assert front_end.results_shown() == 0 and not list((tmp_path / "out").glob("*.wav"))


def test_after_a_page_reload_results_show_inside_the_form_and_a_rerun_cell_closes_the_old_form(
    front_end, tmp_path
):
    from jupyter_client.session import Session

    front_end.execute(form_cell(str(tmp_path / "out"), steps=2), cell_id="cell-1")
    first_form = front_end.evaluate("form.widget.model_id")
    reloaded_page = Session(key=front_end.kc.session.key)  # a new page connection: a new session id
    front_end.click("Generate", page=reloaded_page)
    assert front_end.wait_for_status(("done", "failed")) == "done"
    front_end.pump(0.5)
    shown = [v for v in front_end.labels.values() if "sa3lab-result" in v]
    assert shown and "This page was reloaded" in shown[0]
    front_end.execute(form_cell(str(tmp_path / "out"), steps=2), cell_id="cell-1")  # the cell runs again
    closed = {m["content"]["comm_id"] for m in front_end.iopub if m["msg_type"] == "comm_close"}
    assert first_form in closed
