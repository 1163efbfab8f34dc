"""The radio's player in a real browser: segments of the demo model play back to back (WebAudio schedule).

Notebook 06 is opened in JupyterLab 4 and in Notebook 7 (the servers of tests/notebooks/test_browser.py);
Start, then (once four stretches arrived) Listen are clicked as a person would, and the page's own
schedule (the player's ``data-schedule``) is read: every stretch starts where the previous one ends,
within one audio frame, and the page's audio clock has played through at least three of them. The
kernel runs four segments ahead first because on this shared machine the demo model does not always
keep up; a later stretch may then wait, which the page marks, and the test checks that it was a real
wait (the stretch arrived after the audio ran out).
"""

import json
import shutil

import pytest
from browser_fixtures import needs_chromium, open_notebook, shot
from colab_env import open_classic_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

SCHEDULE = "el => JSON.parse(el.dataset.schedule || '[]')"
RECEIVED = "el => Number(el.dataset.received || 0) >= 4"
PLAYED = """el => {
    const s = JSON.parse(el.dataset.schedule || '[]');
    return s.length >= 4 && Number(el.dataset.now) > s[2].start + s[2].duration;
}"""


@pytest.mark.parametrize("app", ["jupyterlab", "notebook7"])
def test_the_page_plays_the_segments_back_to_back(browser, lab_server, app):  # noqa: F811
    output_dir = f"outputs-radio-{app}"
    page = open_notebook(
        browser,
        lab_server,
        "06_radio.ipynb",
        app,
        MODEL="demo",
        PLAYLIST=[["warm pads", 2], ["soft drums", 2]],
        SEGMENT_S=1.0,
        CONTEXT_S=0.5,
        OUTPUT_DIR=output_dir,
    )
    try:
        player = page.locator(".sa3lab-radio-player")
        page.locator("button.jupyter-button", has_text="Start").click()
        # let the kernel run ahead four segments (this machine is shared by many jobs: a buffer)
        page.wait_for_function(RECEIVED, arg=player.element_handle(), timeout=180_000)
        player.locator("button").click()  # the user gesture an AudioContext needs
        page.wait_for_function(PLAYED, arg=player.element_handle(), timeout=180_000)
        schedule = player.evaluate(SCHEDULE)
        page.locator("button.jupyter-button", has_text="Stop").click()
        shot(page, f"radio_{app}.png")
        assert len(schedule) >= 4, schedule
        assert [s["index"] for s in schedule] == list(range(len(schedule)))
        assert not any(s["gap"] for s in schedule[:4]), json.dumps(schedule)
        for before, after in zip(schedule, schedule[1:], strict=False):
            end = before["start"] + before["duration"]
            if after["gap"]:  # only where the page ran dry: it arrived after the previous one ended
                assert after["arrived"] >= end and after["start"] > end, json.dumps(schedule)
            else:
                assert abs(after["start"] - end) <= 1 / after["rate"], (before, after)
            assert after["frames"] == round(after["duration"] * after["rate"])
        assert "buffer:" in player.inner_text()
        try:
            page.wait_for_selector(".sa3lab-result audio", timeout=60_000)  # Stop shows the stream so far
        finally:
            shot(page, f"radio_{app}_stopped.png")
    finally:
        page.close()
        shutil.rmtree(lab_server[2] / output_dir, ignore_errors=True)


@pytest.mark.colab
def test_the_classic_notebook_with_ipywidgets_7_plays_the_segments_back_to_back(browser, classic_server):
    """The nearest to Colab's front end that runs here: classic Notebook 6.5, ipywidgets 7 (.venv-colab)."""
    page = open_classic_notebook(
        browser,
        classic_server,
        "06_radio.ipynb",
        MODEL="demo",
        PLAYLIST=[["warm pads", 2], ["soft drums", 2]],
        SEGMENT_S=1.0,
        CONTEXT_S=0.5,
        OUTPUT_DIR=str(classic_server[2] / "outputs-radio"),
    )
    try:
        player = page.locator(".sa3lab-radio-player")
        page.locator(".output_area .widget-button", has_text="Start").first.click()
        page.wait_for_function(RECEIVED, arg=player.element_handle(), timeout=180_000)
        player.locator("button").click()
        page.wait_for_function(PLAYED, arg=player.element_handle(), timeout=180_000)
        schedule = player.evaluate(SCHEDULE)
        page.locator(".output_area .widget-button", has_text="Stop").first.click()
        shot(page, "radio_classic.png")
        assert not any(s["gap"] for s in schedule[:4]), json.dumps(schedule)
        for before, after in zip(schedule[:4], schedule[1:4], strict=False):
            assert abs(after["start"] - (before["start"] + before["duration"])) <= 1 / after["rate"]
    finally:
        page.close()
