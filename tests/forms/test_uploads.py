"""After a form takes an upload, the Upload button still counts the files (not "Upload (0)") and no bytes
stay in the widget state, with ipywidgets 8 and with Colab's ipywidgets 7."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ipywidgets as widgets
import pytest
from form_helpers import demo_form, upload_item
from training_helpers import BASE

from sa3lab.forms import compat
from sa3lab.forms.training import TrainingForm

ROOT = Path(__file__).resolve().parents[2]


def button_text(upload: widgets.FileUpload) -> str:
    """What ipywidgets 8's front end draws on the button: ``f"{description} ({len(value)})"``."""
    return f"{upload.description} ({len(upload.value)})"


def state_bytes(upload: widgets.FileUpload) -> int:
    """Bytes of file content the widget's state (what a saved notebook keeps) holds."""
    state = upload.get_state()
    return sum(len(bytes(item["content"])) for item in state["value"])


@pytest.mark.skipif(compat.MAJOR < 8, reason="the ipywidgets 7 side runs in the Colab-like environment")
def test_the_upload_buttons_count_the_files_taken_and_the_state_keeps_only_their_names(
    session, out, chord_file, tmp_path
):
    form = demo_form(session, out)
    data = Path(chord_file).read_bytes()
    source = form.a2a_audio
    source.upload.value = (upload_item("my clip.wav", data),)
    assert button_text(source.upload) == "Upload (1)" and state_bytes(source.upload) == 0
    assert [item["name"] for item in source.upload.value] == ["my clip.wav"]
    assert source.path.value == "my clip.wav" and "my clip.wav · 1.00 s" in source.chosen.value
    assert data not in json.dumps(widgets.Widget.get_manager_state(), default=str).encode()
    # the same file again is taken again (the value the front end sends differs from the one kept)
    source.path.value = ""
    source.upload.value = (upload_item("my clip.wav", data),)
    assert source.path.value == "my clip.wav" and Path(source.value).read_bytes() == data

    loras = form.loras
    loras.upload.value = (upload_item("a.safetensors", b"abc"), upload_item("b.safetensors", b"de"))
    assert button_text(loras.upload) == "Upload LoRA (2)" and state_bytes(loras.upload) == 0
    assert [row.path.value for row in loras.rows] == ["a.safetensors", "b.safetensors"]  # no row added twice

    training = TrainingForm(BASE, output_dir=str(tmp_path / "train-out"), session=session)
    training.upload.value = (upload_item("take.wav", data), upload_item("take.txt", b"a chord"))
    assert button_text(training.upload) == "Upload clips (2)" and state_bytes(training.upload) == 0
    assert sorted(p.name for p in Path(training.data_dir.value).iterdir()) == ["take.txt", "take.wav"]


IPYWIDGETS_7 = """
import json, sys
from sa3lab.forms.parts import AudioSource
source = AudioSource()
data = open(sys.argv[1], "rb").read()
meta = {"name": "my clip.wav", "type": "audio/wav", "size": len(data), "lastModified": 0}
with source.upload.hold_trait_notifications():  # what the classic front end sends
    source.upload.metadata, source.upload.data = [meta], [data]
    source.upload._counter = 1
state = source.upload.get_state()
print(json.dumps({
    "counter": state["_counter"], "data": len(state["data"]), "value": len(source.upload.value),
    "field": source.path.value, "chosen": source.chosen.value,
    "saved": open(source.value, "rb").read() == data,
}))
"""


def test_with_ipywidgets_7_the_counter_stays_and_the_bytes_go(colab_python, chord_file):
    run = subprocess.run(
        [str(colab_python), "-c", IPYWIDGETS_7, chord_file],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent)},
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    # the classic front end draws f"{description} ({_counter})": "Upload (1)"
    assert (got["counter"], got["data"], got["value"], got["saved"]) == (1, 0, 0, True)
    assert got["field"] == "my clip.wav" and "my clip.wav · 1.00 s" in got["chosen"]
