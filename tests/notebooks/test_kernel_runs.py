"""A button-started run in a real kernel, driven over the Jupyter protocol as a front end would.

The test is the front end: it executes the form's cell, clicks Generate / Stop by sending the comm
messages a browser sends, interrupts the kernel, and reads what the kernel publishes. In the kernel a
setup cell records the thread every message is sent from: Colab shows no widget update sent from a
background thread (googlecolab/colabtools#3373), so every message of a run must come from the main
thread. Runs with this environment's kernel and, when present, the Colab-pinned one (ipykernel 6,
ipywidgets 7). The front end itself: tests/kernel_front_end.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import time

import pytest
from safetensors import safe_open
from training_helpers import BASE, SHORT


def form_cell(output_dir: str, steps: int) -> str:
    return (
        "import sa3lab\n"
        "form = sa3lab.generation_form(model='demo', prompt='hum', duration=1.0, seed=5, "
        f"output_dir={output_dir!r})\n"
        f"form.steps.value = {steps}\n"
        "form.display()\n"
    )


# Each step of a run first waits 0.5 s, so a click or an interrupt sent once the run shows its progress
# reaches it before its end: on an idle machine the demo's steps can all end before a click arrives (a
# second Generate then starts a new run, Stop comes too late), and under load the front end, reading
# the kernel's messages in order, may see a step long after the kernel did it.
SLOW_STEPS = """
import time
_step = form.shell.progress.step
def _slow_step(*args, **kwargs):
    time.sleep(0.5)
    return _step(*args, **kwargs)
form.shell.progress.step = _slow_step
"""


def test_a_click_runs_on_the_main_thread_and_the_result_reaches_the_cell(front_end, tmp_path):
    front_end.execute(form_cell(str(tmp_path / "out"), steps=4))
    front_end.execute(SLOW_STEPS)
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
    front_end.execute(SLOW_STEPS)
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


# ------------------------------------------------------------------------------ the training form


def wait_for_label(front_end, pattern: str, timeout: float = 300) -> re.Match:
    """The match of ``pattern`` at the start of a Label / HTML widget's latest value (progress, status)."""
    end = time.time() + timeout
    while time.time() < end:
        front_end.pump(0.1)
        for value in front_end.labels.values():
            if match := re.match(pattern, value):
                return match
    raise AssertionError(f"no label matching {pattern!r}; labels: {set(front_end.labels.values())}")


def training_step(front_end, at_least: int) -> int:
    """Wait until the progress line shows step ``at_least`` or later (each update may replace the last)."""
    while True:
        step = int(wait_for_label(front_end, r"step (\d+)/")[1])
        if step >= at_least:
            return step
        front_end.labels.clear()


# Stop, resume and interrupt of the training form also run in-process (tests/forms, tests/lab)
@pytest.mark.slow
def test_stop_and_interrupt_in_a_kernel_end_after_a_step_and_save_a_file_that_resumes(front_end, tmp_path):
    """Start / Stop clicked as a browser does, then the notebook's interrupt, in a real kernel."""
    out = tmp_path / "out"
    front_end.execute(
        "from sa3lab.training import write_example_dataset\n"
        "from sa3lab.forms.training import TrainingForm\n"
        f"data = write_example_dataset({str(tmp_path / 'data')!r}, clips=2, seconds=0.6)\n"
        f"form = TrainingForm(model={BASE!r}, data_dir=str(data), steps=500, output_dir={str(out)!r}, "
        f"rank=2, duration={SHORT!r})\n"
        "form.display()\n"
    )
    front_end.execute(SLOW_STEPS)
    front_end.click("Start training")
    training_step(front_end, 1)
    front_end.click("Stop")
    wait_for_label(front_end, r"stopped \(what it finished is below\)$")  # not "done" (issue 24)
    first = front_end.evaluate(
        "[form.shell.last_result.step, form.shell.last_result.stopped, form.resume.value]"
    )
    assert first[1] and 1 <= first[0] < 500 and first[2] == str(out / "my-lora.safetensors")
    assert any("stopped at step" in str(m["content"].get("data", {})) for m in front_end.iopub)

    front_end.labels.clear()
    front_end.click("Start training")  # resumes from the file Stop saved
    training_step(front_end, first[0] + 2)
    front_end.km.interrupt_kernel()
    wait_for_label(front_end, r"stopped \(what it finished is below\)$")
    second = front_end.evaluate(
        "[form.shell.last_result.step, form.shell.last_result.stopped, form.shell.last_error]"
    )
    assert second[0] > first[0] + 1 and second[1] and second[2] is None
    with safe_open(str(out / "my-lora.safetensors"), framework="pt") as f:
        assert json.loads(f.metadata()["training"])["step"] == second[0]
    assert front_end.evaluate("1 + 1") == 2  # the kernel lives on


def test_a_pasted_token_travels_to_the_kernel_only_and_is_echoed_to_no_front_end(front_end):
    token = "hf_" + "Pasted" * 6
    front_end.execute("import sa3lab\nstart = sa3lab.start_here(model='demo')\nstart.display()")
    opened = [m["content"] for m in front_end.iopub if m["msg_type"] == "comm_open"]
    (field,) = [c["comm_id"] for c in opened if c["data"]["state"].get("_model_name") == "PasswordModel"]
    seen = len(front_end.iopub)
    update = {"method": "update", "state": {"value": token}, "buffer_paths": []}
    front_end.kc.shell_channel.send(front_end.kc.session.msg("comm_msg", {"comm_id": field, "data": update}))
    front_end.pump(2.0)
    published = json.dumps([m["content"] for m in front_end.iopub[seen:]])
    assert token not in published and "echo_update" not in published
    digest = hashlib.sha256(token.encode()).hexdigest()
    took = "__import__('hashlib').sha256((start.session.token or '').encode()).hexdigest()"
    assert front_end.evaluate(took) == digest  # the kernel took it
    assert front_end.evaluate("start.token_field.value") == ""  # and emptied the field
