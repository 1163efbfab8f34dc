"""Notebook 01 in the classic Notebook 6.5 front end with ipywidgets 7, the Colab-like environment's.

The nearest widget-7 front end we can run (Colab's own page cannot run here): the classic server,
its kernel and its widget front end all come from .venv-colab. Screenshots go to test-artifacts/.
"""

import pytest
from browser_fixtures import needs_chromium, shot
from colab_env import open_classic_demo_form

from sa3lab.forms.generation import MODE_TITLES

pytestmark = [pytest.mark.browser, pytest.mark.colab, needs_chromium]


@pytest.fixture(scope="module")
def notebook_01(browser, classic_server):
    """Notebook 01 for the demo model, all cells run, its form on the page."""
    page = open_classic_demo_form(
        browser, classic_server, str(classic_server[2] / "outputs"), "colab_classic_01_failure.png"
    )
    yield page
    page.close()


def test_the_form_renders_and_generate_shows_a_result(notebook_01):
    page = notebook_01
    assert "VBox(children" not in page.inner_text("#notebook")  # widgets rendered, not their repr
    shot(page, "colab_classic_01_form.png")
    page.locator(".output_area .widget-button", has_text="Generate").first.click()
    page.wait_for_selector(".output_area .sa3lab-result audio")
    shot(page, "colab_classic_01_generated.png")


def test_the_mode_tabs_show_their_titles(notebook_01):
    labels = notebook_01.locator(".widget-tab .lm-TabBar-tabLabel")
    assert labels.all_inner_texts() == list(MODE_TITLES)
