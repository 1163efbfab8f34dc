"""The generation form's LoRA rows with newer files (issue 25): an -xs file gets a field for its frozen
SVD bases (filled with the bases this lab's training wrote beside it), other files do not, and a run
without the bases shows the note in its result."""

import shutil
from pathlib import Path

import pytest
from form_helpers import LORA, result_blocks
from parity import MODELS

from sa3lab import generation_form
from sa3lab.generation import LoraUse

pytestmark = pytest.mark.usefixtures("no_real_login")
HERE = Path(__file__).parents[1] / "fixtures" / "lora-baked"


def test_the_bases_field_shows_for_xs_files_only_and_takes_the_bases_written_beside_them(session, tmp_path):
    form = generation_form("base", prompt="x", session=session)
    plain = form.loras.add(LoraUse(str(LORA)))
    assert plain.svd_bases.layout.display == "none" and plain.use().svd_bases == ""

    alone = tmp_path / "alone.safetensors"
    shutil.copy(HERE / "dora-rows-xs.safetensors", alone)
    row = form.loras.add(LoraUse(""))
    row.path.value = str(alone)
    assert row.svd_bases.layout.display is None and row.svd_bases.value == ""  # nothing beside it
    row.svd_bases.value = f" {HERE / 'svd_bases.pt'} "
    assert row.use().svd_bases == str(HERE / "svd_bases.pt")

    trained = form.loras.add(LoraUse(str(HERE / "dora-rows-xs.safetensors")))
    assert trained.svd_bases.value == str(HERE / "dora-rows-xs.svd_bases.pt")
    row.path.value = str(LORA)  # no longer -xs: the field hides and is not used
    assert row.svd_bases.layout.display == "none" and row.use().svd_bases == ""
    request = form.read()
    assert request.lora_svd_bases == ["", "", str(HERE / "dora-rows-xs.svd_bases.pt")]


def test_a_run_without_the_bases_shows_why_its_result_may_differ_and_one_with_them_names_them(session, out):
    form = generation_form(
        "base", model=str(MODELS / "small-music-base"), prompt="x", duration=1.0, seed=3, output_dir=out,
        session=session,
    )  # fmt: skip
    form.steps.value = 2
    row = form.loras.add(LoraUse(str(HERE / "dora-rows-xs.safetensors")))
    row.svd_bases.value = ""
    result = form.run()
    assert result is not None and result.settings["loras"][0]["notes"]
    assert "without the frozen SVD bases file (svd_bases.pt)" in result_blocks(form)[0]
    row.svd_bases.value = str(HERE / "svd_bases.pt")
    exact = form.run()
    assert exact is not None and exact.settings["loras"][0]["notes"] == []
    assert "SVD bases svd_bases.pt (sha256" in result_blocks(form)[0]
    assert "without the frozen SVD bases" not in result_blocks(form)[0]
