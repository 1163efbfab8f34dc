"""The start-here form (sa3lab.start_here): the token field, access per model, the quick test run."""

from pathlib import Path

import pytest
from form_helpers import FAKE_TOKEN, saved_state
from hub_fixtures import ACCEPTED_TOKEN

from sa3lab import start_here
from sa3lab.forms.session import Session
from sa3lab.lab import Lab

pytestmark = pytest.mark.usefixtures("no_real_login")


def test_start_here_moves_a_pasted_token_into_memory_and_shows_access_per_model(hub, out):
    session = Session(lab=Lab())
    start = start_here(model="demo", prompt="x", duration=1.0, output_dir=out, session=session)
    table = start.coverage_table.value
    assert "needs login (401)" in table and "built locally" in table and "MLX, ONNX and TensorRT" in table
    assert "not logged in" in start.check.value and "Device" in start.check.value
    start.token_field.value = FAKE_TOKEN
    assert start.token_field.value == "" and session.token == FAKE_TOKEN
    assert "pasted in this notebook" in start.login_state.value
    start.token_field.value = ACCEPTED_TOKEN
    start.use_button.click()
    assert session.token == ACCEPTED_TOKEN
    small_music_row = start.coverage_table.value.split("<tr>")[2]
    assert "stable-audio-3-small-music<" in small_music_row and ">ok<" in small_music_row
    for secret in (FAKE_TOKEN, ACCEPTED_TOKEN):
        assert secret not in saved_state() and secret not in repr(session)
    start.forget_button.click()
    assert session.token is None and "Not logged in" in start.login_state.value


def test_start_here_says_once_that_the_hub_rejected_the_token_and_open_models_still_work(
    hub, out, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)  # the loopback Hub, like the real one, answers 401 to it
    start = start_here(model="demo", prompt="x", output_dir=out, session=Session(lab=Lab()))
    table = start.coverage_table.value
    notice, rows = table.split("<table", 1)
    assert (
        "rejected the token from the HF_TOKEN environment variable" in notice and notice.count("sa3lab-") == 2
    )
    assert "set HF_TOKEN to a valid token" in notice and FAKE_TOKEN not in table
    same_s = next(row for row in rows.split("<tr>") if "SAME-S<" in row)
    assert "✔ yes" in same_s


def test_start_here_quick_test_runs_the_demo(session, out):
    start = start_here(model="demo", prompt="hum", duration=1.0, seed=2, output_dir=out, session=session)
    start.test.steps.value = 2
    assert "demo" in start.test.picker.dropdown.value and start.test.tabs not in _leaves(start.widget)
    result = start.run()
    assert result is not None and result.model_key == "demo" and len(start.test.shell.results) == 1


def _leaves(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _leaves(child)


def test_start_here_on_a_cpu_colab_runtime_says_first_how_to_get_a_gpu(hub, out, monkeypatch):
    from sa3lab.device import Machine

    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260819")
    start = start_here(model="demo", prompt="x", output_dir=out, session=Session(lab=Lab(machine=Machine())))
    warning, table = start.check.value.split("<table", 1)
    assert "This Colab runtime has no GPU: choose Runtime &gt; Change runtime type &gt; T4 GPU" in warning
    assert "Colab (hosted notebook)" in table
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    start.refresh()
    assert start.check.value.startswith("<table")


def test_start_here_on_colab_keeps_results_on_a_mounted_drive(hub, out, tmp_path):
    """The mount is a folder standing in for /content/drive (google.colab is not installed here)."""
    plain = start_here(model="demo", output_dir=out, session=Session(lab=Lab()))
    assert plain.drive_button not in _leaves(plain.widget)
    start = start_here(model="demo", output_dir=out, session=Session(lab=Lab()), colab=True)
    assert start.drive_button in _leaves(start.widget) and "on this runtime's disk" in start.drive_state.value
    start.drive_root = tmp_path / "drive"
    start.drive_button.click()
    assert "needs Google Colab (google.colab.drive)" in start.drive_state.value
    (tmp_path / "drive" / "MyDrive").mkdir(parents=True)
    start.drive_button.click()
    kept = tmp_path / "drive" / "MyDrive" / "sa3lab" / Path(out).name
    assert f"Results now go to Google Drive: {kept}" in start.drive_state.value
    assert Path(out).is_symlink() and Path(out).resolve() == kept.resolve()
