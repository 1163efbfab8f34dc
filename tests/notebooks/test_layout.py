"""The forms fit a laptop: at 1000 px (JupyterLab with its file browser open) and 1600 px, in JupyterLab,
Notebook 7 and the classic Notebook 6.5 with ipywidgets 7, every control of the generation (its LoRA
pane and Advanced settings open, after three results), library, sweep and training forms lies inside the
visible output area, keeps a usable width and shows its label whole; no form sits in a small scrolling
box. Measured with bounding boxes; screenshots of each form go to test-artifacts/.
"""

import shutil
from functools import partial

import pytest
from browser_fixtures import ARTIFACTS, GENERATE_ENABLED, open_notebook, out_of_place
from colab_env import open_classic_notebook
from parity import MODELS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (1000, 1600)
SHOWN = ", ".join(
    f"{area}:has(.widget-box, .sa3lab-result)" for area in (".jp-OutputArea-output", ".output_subarea")
)
OPEN_FILE_BROWSER = """async () => {
    const app = window.jupyterapp;
    if (!app.commands.hasCommand('filebrowser:activate')) return false;  // Notebook 7: no side panel
    await app.commands.execute('filebrowser:activate');
    return !app.shell.leftCollapsed;
}"""


def check_fits(page, app: str, what: str) -> None:
    """Screenshot of every width, and no control of the page's output areas out of place in any."""
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1000})
        if app == "jupyterlab" and width == min(WIDTHS):
            assert page.evaluate(OPEN_FILE_BROWSER), "the file browser did not open"
        page.wait_for_timeout(500)  # the layout settles
        found, measured = out_of_place(page)
        assert measured >= 10, f"only {measured} controls on the page at {width} px"
        problems += [f"{width} px: {p}" for p in found]
        page.set_viewport_size({"width": width, "height": 4000})  # tall: a whole form in each screenshot
        forms = page.locator(SHOWN)
        for i in range(forms.count()):
            ARTIFACTS.mkdir(exist_ok=True)
            forms.nth(i).screenshot(path=str(ARTIFACTS / f"layout_{what}_{i}_{app}_{width}.png"))
    assert not problems, "\n".join(problems)


def check_generation_and_library(page, app: str, area: str) -> None:
    """Generate three times, open the LoRA pane with a row and Advanced settings, list the run in the library;
    then check every mode's tab (``area``: the front end's output area class)."""
    for _ in range(3):  # results enough to make the outputs taller than Notebook 7's auto-scroll limit
        page.locator(f"{area} .widget-button", has_text="Generate").first.click()
        page.wait_for_selector(f"{area} .sa3lab-result audio")
        page.wait_for_function(GENERATE_ENABLED)
    page.get_by_text("LoRA (none").first.click()  # the LoRA pane opens
    page.locator(f"{area} .widget-button", has_text="Add a LoRA file").first.click()
    page.locator(f"{area} .widget-button .fa-trash").first.wait_for()
    page.get_by_text("Advanced settings").first.click()
    page.locator(f"{area} .widget-button", has_text="Refresh").first.click()
    page.wait_for_selector(".sa3lab-library .sa3lab-run audio")
    for title in ("Audio to audio", "Inpaint", "Continue", "Text to audio"):
        page.locator(f"{area} .widget-tab li", has_text=title).first.click()
        page.wait_for_timeout(300)
        check_fits(page, app, f"01_{title.split()[0].lower()}")


FRONT_ENDS = ["jupyterlab", "notebook7", pytest.param("classic", marks=pytest.mark.colab)]


@pytest.fixture
def opened(request, browser, app):
    """(the output area's class, open(notebook, folder, **parameters) -> page) for ``app``: the notebook
    runs with OUTPUT_DIR ``folder``-``app`` in the server's root; its page closes and the folder goes
    after the test. "classic": the classic Notebook 6.5 with ipywidgets 7 of the Colab-like environment."""
    if app == "classic":
        server, area = request.getfixturevalue("classic_server"), ".output_area"
        open_page = partial(open_classic_notebook, browser, server)
    else:
        server, area = request.getfixturevalue("lab_server"), ".jp-OutputArea"
        open_page = partial(open_notebook, browser, server, app=app)
    pages, folders = [], []

    def open_(name: str, folder: str, **parameters):
        folders.append(server[2] / f"{folder}-{app}")
        pages.append(open_page(name, OUTPUT_DIR=str(folders[-1]), **parameters))
        return pages[-1]

    yield area, open_
    for page in pages:
        page.close()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("app", FRONT_ENDS)
def test_the_generation_and_library_forms_fit(opened, app):
    area, open_ = opened
    page = open_("01_standard_collection.ipynb", "outputs-layout", MODEL="demo", DURATION=1.0)
    check_generation_and_library(page, app, area)


@pytest.mark.parametrize("app", FRONT_ENDS)
def test_the_sweep_form_fits(opened, app):
    area, open_ = opened
    page = open_("05_batch_sweeps.ipynb", "sweeps-layout", MODEL="demo")
    page.locator(f"{area} .widget-button", has_text="Run sweep").first.wait_for()
    check_fits(page, app, "05")


@pytest.mark.parametrize("app", FRONT_ENDS)
def test_the_training_form_fits(opened, app):
    area, open_ = opened
    page = open_(
        "04_train_lora.ipynb", "training-layout", MODEL=str(MODELS / "small-music-base"), STEPS=2,
        DURATION=0.5, PROMPT="plucks",
    )  # fmt: skip
    page.locator(f"{area} .widget-button", has_text="Try it").first.wait_for()  # the last cell ran
    page.locator(f"{area} .widget-button", has_text="Show clips").first.click()  # the captions
    page.locator(f"{area} .widget-textarea").nth(1).wait_for()
    check_fits(page, app, "04")
