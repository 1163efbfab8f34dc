"""A real kernel driven over the Jupyter protocol as a front end would (the ``front_end`` fixture).

The front end executes cells, clicks buttons by sending the comm messages a browser sends, and reads
what the kernel publishes. A setup cell (``RECORDER``) records the thread every message is sent from.
The fixture runs with this environment's kernel and with the Colab-pinned one (marked ``colab``).
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


@pytest.fixture(params=["this", pytest.param("colab", marks=pytest.mark.colab)])
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
