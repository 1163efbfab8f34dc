"""An upload through the browser's own file chooser, in JupyterLab: the form names the file and the Upload
button counts it (not "Upload (0)", which reads as if nothing arrived). Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf
from browser_fixtures import needs_chromium, open_page, shot

from sa3lab.audio_input import reference_chord

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

FORM_CELL = """import sa3lab
form = sa3lab.generation_form(model="demo", prompt="rain", duration=1.0, seed=1, output_dir={out!r})
form.display()"""


def test_an_uploaded_wav_is_named_and_counted_in_jupyterlab(browser, lab_server, tmp_path):
    import nbformat

    output_dir = str(lab_server[2] / "outputs-upload")
    name = "upload.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FORM_CELL.format(out=output_dir))])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab_server[2] / name)
    clip = tmp_path / "my take.wav"
    sf.write(clip, reference_chord(1.0).T.numpy(), 44100)
    page = open_page(browser, lab_server, name, "jupyterlab")
    try:
        page.locator(".jp-OutputArea .lm-TabBar-tab", has_text="Audio to audio").first.click()
        upload = page.locator(".jp-OutputArea .widget-upload:visible").first
        upload.wait_for()
        assert upload.inner_text().strip() == "Upload (0)"  # nothing uploaded yet: true
        with page.expect_file_chooser() as chooser:
            upload.click()
        chooser.value.set_files(str(clip))
        chosen = page.locator(".jp-OutputArea :text('my take.wav · 1.00 s')").first
        chosen.wait_for()  # the kernel emptied the upload before it named the file: both are on the page
        page.locator(".jp-OutputArea audio:visible").first.wait_for()
        fields = page.locator(".jp-OutputArea .widget-text:visible input")
        assert "my take.wav" in [fields.nth(i).input_value() for i in range(fields.count())]
        shot(page, "upload_named_and_counted.png")
        text = upload.inner_text().strip()
        assert "(0)" not in text and text == "Upload (1)"
    finally:
        page.close()
        shutil.rmtree(output_dir, ignore_errors=True)
