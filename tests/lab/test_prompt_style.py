"""Cleaning and checking the Prompt Assistant's answers (pure text rules)."""

import pytest

from sa3lab import prompt_style

GOOD = (
    "Deep house groove with a rubbery synth bass and shuffled hats, warm and hypnotic. BPM: 122. "
    "Length: 150 seconds."
)


def test_finish_moves_the_length_out_and_puts_the_tag_in_front():
    raw = f"<think>\nplanning\n</think>\n\n- {GOOD[0].lower()}{GOOD[1:]}"
    text, seconds = prompt_style.finish(raw, "Music")
    assert seconds == 150
    assert text == (
        "TrackType: Music, VocalType: Instrumental, Deep house groove with a rubbery synth bass and shuffled "
        "hats, warm and hypnotic. BPM: 122."
    )


def test_finish_keeps_a_tag_the_model_wrote_and_one_shots_get_none():
    assert prompt_style.finish("TrackType: SFX, door slam. length: 2 second", "SFX") == (
        "TrackType: SFX, door slam.",
        2,
    )
    assert prompt_style.finish('"kick drum, dry. then a tail."', "One-shot") == (
        "Kick drum, dry. Then a tail.",
        None,
    )


@pytest.mark.parametrize(
    "answer, keeps",
    [
        (GOOD, True),
        (f"<think></think>{GOOD}", True),
        (GOOD.replace("warm", "female vocals, warm"), False),
        (GOOD.replace("warm", "**warm**"), False),
        (GOOD.replace(" Length: 150 seconds.", ""), False),
        ("word " * 46 + "Length: 10 seconds", False),
    ],
)
def test_follows_style(answer, keeps):
    assert prompt_style.follows_style(answer) is keeps


def test_categories_from_tags_and_labels():
    assert prompt_style.category_from_tags("TrackType: Music, VocalType: Instrumental, techno") == "Music"
    assert prompt_style.category_from_tags("tracktype: sfx, rain") == "SFX"
    assert prompt_style.category_from_tags("TrackType: Music, techno") is None  # no VocalType: ask the model
    assert prompt_style.category_from_label(" one_shot\n") == "One-shot"
    assert prompt_style.category_from_label("music_genre") == "Music"
    assert prompt_style.category_from_label("instrument") == "Instrument"
    assert prompt_style.category_from_label("no idea") == "SFX"


def test_every_category_has_instructions_that_ask_for_the_length():
    assert set(prompt_style.SYSTEM_PROMPTS) == set(prompt_style.CATEGORIES) == set(prompt_style.TAGS)
    for instructions in prompt_style.SYSTEM_PROMPTS.values():
        assert "Length: N seconds" in instructions
        examples = [line[2:] for line in instructions.splitlines() if line.startswith("- ")]
        assert examples and all(prompt_style.follows_style(e) for e in examples)
