"""An upload through the browser's own file chooser: the form names the file and the Upload button counts it
(not "Upload (0)", which reads as if nothing arrived), in JupyterLab and Notebook 7 (ipywidgets 8) and in
the classic Notebook 6.5 with ipywidgets 7. Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf
from browser_fixtures import needs_chromium, open_page, shot
from colab_env import open_classic_demo_form

from sa3lab.audio_input import reference_chord

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

FORM_CELL = """import sa3lab
form = sa3lab.generation_form(model="demo", prompt="rain", duration=1.0, seed=1, output_dir={out!r})
form.display()"""


def wav(folder) -> str:
    clip = folder / "my take.wav"
    sf.write(clip, reference_chord(1.0).T.numpy(), 44100)
    return str(clip)


def upload_and_check(page, clip: str, outputs: str, picture: str) -> None:
    """Upload ``clip`` on the form's audio-to-audio tab; the form names it and the button counts it."""
    tabs = page.locator(f"{outputs} .lm-TabBar-tab, {outputs} .p-TabBar-tab")
    tabs.filter(has_text="Audio to audio").first.click()
    upload = page.locator(f"{outputs} .widget-upload:visible").first
    upload.wait_for()
    assert upload.inner_text().strip() == "Upload (0)"  # nothing uploaded yet: true
    with page.expect_file_chooser() as chooser:
        upload.click()
    chooser.value.set_files(clip)
    # the kernel empties the upload before it names the file, so both have reached the page
    page.locator(f"{outputs} :text('my take.wav · 1.00 s')").first.wait_for()
    page.locator(f"{outputs} audio:visible").first.wait_for()
    fields = page.locator(f"{outputs} .widget-text:visible input")
    assert "my take.wav" in [fields.nth(i).input_value() for i in range(fields.count())]
    shot(page, picture)
    text = upload.inner_text().strip()
    assert "(0)" not in text and text == "Upload (1)"


@pytest.mark.parametrize("app", ["jupyterlab", "notebook7"])
def test_an_uploaded_wav_is_named_and_counted(browser, lab_server, tmp_path, app):
    import nbformat

    output_dir = str(lab_server[2] / f"outputs-upload-{app}")
    name = f"upload_{app}.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FORM_CELL.format(out=output_dir))])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab_server[2] / name)
    page = open_page(browser, lab_server, name, app)
    try:
        upload_and_check(page, wav(tmp_path), ".jp-OutputArea", f"upload_named_and_counted_{app}.png")
    finally:
        page.close()
        shutil.rmtree(output_dir, ignore_errors=True)


@pytest.mark.colab
def test_an_uploaded_wav_is_named_and_counted_in_the_classic_notebook_with_ipywidgets_7(
    browser, classic_server, tmp_path
):
    page = open_classic_demo_form(browser, classic_server, str(classic_server[2] / "outputs-upload"))
    try:
        upload_and_check(page, wav(tmp_path), ".output_area", "upload_named_and_counted_classic.png")
    finally:
        page.close()
