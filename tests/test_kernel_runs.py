"""A button-started run in a real kernel, driven over the Jupyter protocol as a front end would.

The test is the front end: it executes the form's cell, clicks Generate / Stop by sending the comm
messages a browser sends, interrupts the kernel, and reads what the kernel publishes. In the kernel a
setup cell records the thread every message is sent from: Colab shows no widget update sent from a
background thread (googlecolab/colabtools#3373), so every message of a run must come from the main
thread. Runs with this environment's kernel and, when present, the Colab-pinned one (ipykernel 6,
ipywidgets 7).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

ROOT = Path(__file__).resolve().parents[1]
COLAB_PYTHON = ROOT / ".venv-colab" / "bin" / "python"
PYTHONS = {"this": Path(sys.executable), "colab": COLAB_PYTHON}

RECORDER = """
import threading, IPython
_session = IPython.get_ipython().kernel.session
SENT = []
_send = _session.send
def _recording_send(stream, msg_or_type, content=None, *args, **kwargs):
    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type["header"]["msg_type"]
    SENT.append((kind, threading.current_thread().name))
    return _send(stream, msg_or_type, content, *args, **kwargs)
_session.send = _recording_send
"""


def form_cell(output_dir: str, steps: int) -> str:
    return (
        "import sa3lab\n"
        "form = sa3lab.generation_form(model='demo', prompt='hum', duration=1.0, seed=5, "
        f"output_dir={output_dir!r})\n"
        f"form.steps.value = {steps}\n"
        "form.display()\n"
    )


class FrontEnd:
    """The front-end side of one kernel: execute cells, click buttons, collect what comes back."""

    def __init__(self, python: Path, cwd: Path):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        specs = cwd / "kernels"
        (specs / "under-test").mkdir(parents=True)
        argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        spec = {"argv": argv, "display_name": "under test", "language": "python"}
        (specs / "under-test" / "kernel.json").write_text(json.dumps(spec))
        self.km = KernelManager(
            kernel_name="under-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)])
        )
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.buttons: dict[str, str] = {}
        self.labels: dict[str, str] = {}  # comm id -> latest value of a Label / HTML widget
        self.iopub: list[dict] = []

    def pump(self, seconds: float = 0.05) -> None:
        end = time.time() + seconds
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(0.01, end - time.time()))
            except Exception:  # noqa: BLE001 - queue.Empty: nothing more for now
                if time.time() >= end:
                    return
                continue
            self.iopub.append(msg)
            content = msg["content"]
            if msg["msg_type"] in ("comm_open", "comm_msg"):
                state = content.get("data", {}).get("state", {})
                if state.get("_model_name") == "ButtonModel":
                    self.buttons[state["description"]] = content["comm_id"]
                if "value" in state and isinstance(state["value"], str):
                    self.labels[content["comm_id"]] = state["value"]

    def execute(self, code: str, timeout: float = 300, cell_id: str | None = None) -> None:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
        metadata = {"cellId": cell_id} if cell_id else {}
        msg = self.kc.session.msg("execute_request", content, metadata=metadata)
        self.kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        end = time.time() + timeout
        while time.time() < end:
            self.pump(0.1)
            try:
                reply = self.kc.get_shell_msg(timeout=0.05)
            except Exception:  # noqa: BLE001
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                assert reply["content"]["status"] == "ok", reply["content"]
                self.pump(0.2)
                return
        raise AssertionError(f"cell did not finish: {code[:60]}")

    def evaluate(self, expression: str):
        """The JSON value of ``expression`` in the kernel, read back through a printed line."""
        before = len(self.iopub)
        self.execute(f"import json as _j; print('@@' + _j.dumps({expression}))")
        for msg in self.iopub[before:]:
            text = msg["content"].get("text", "")
            if msg["msg_type"] == "stream" and "@@" in text:
                return json.loads(text.split("@@", 1)[1])
        raise AssertionError(f"no value for {expression}")

    def click(self, description: str, page=None) -> None:
        """Click a button, from this page connection or from ``page`` (another jupyter_client Session)."""
        data = {"method": "custom", "content": {"event": "click"}}
        content = {"comm_id": self.buttons[description], "data": data}
        self.kc.shell_channel.send((page or self.kc.session).msg("comm_msg", content))

    def wait_for_status(self, words: tuple[str, ...], timeout: float = 300) -> str:
        end = time.time() + timeout
        while time.time() < end:
            self.pump(0.1)
            for value in self.labels.values():
                if value in words:
                    return value
        raise AssertionError(f"no status among {words}; labels: {set(self.labels.values())}")

    def results_shown(self) -> int:
        return sum(
            "sa3lab-result" in str(m["content"].get("data", {}).get("text/html", ""))
            for m in self.iopub
            if m["msg_type"] == "update_display_data"
        )

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(params=list(PYTHONS))
def front_end(request, tmp_path):
    python = PYTHONS[request.param]
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{python} is missing: CI must build the Colab-pinned environment first")
        pytest.skip(f"{python} is not built here (make colab-env)")
    fe = FrontEnd(python, tmp_path)
    fe.execute(RECORDER)
    yield fe
    fe.close()


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
